"""Do the metrics agree? For each benchmark task (study × model family) the confirmed arms are ranked by
the median of every metric the dataset reports over their confirmation seeds, and each ranking is
compared with the study metric's by Kendall's τ (scipy's τ-b: ties allowed). A decisive verdict *flips
with a metric* when, on that metric, the Hodges–Lehmann interval of the same paired differences lies
wholly on the other side of 0 — i.e. the signed-rank test the verdict rests on, inverted into that
interval, would be significant the other way (unadjusted: a flag for a reader, not a claim).

And does the ranking hold at the sample count used? On image tasks scored by domain FID, each
confirmation run's generator draws N_MAX samples once; FID at N = 500 … N_MAX is computed on the
first N of them against the first N real test images, and the smallest N whose arm ranking has
τ ≥ 0.9 against the ranking at N_MAX is reported (Chong & Forsyth 2020: FID's bias depends on N and
on the model, so rankings can change with N).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from bench import stats

TAU_STABLE = 0.9
SAMPLE_SIZES = (500, 1000, 2000, 5000, 10000)


def metric_runs(runs: pd.DataFrame, trials: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """Long form, one row per confirmation run × metric the dataset reports: the run's value in the
    metric's direction (a run that did not complete at the worst, kept). `runs` are a study's rows of
    bench.benchmark.task_runs (with their trial numbers); `columns` the dataset's report columns."""
    rows = []
    by_trial = trials.set_index("trial")
    for name, col in columns.items():
        if name not in by_trial or by_trial.loc[runs["trial"], name].isna().all():
            continue
        vals = by_trial.loc[runs["trial"], name].to_numpy(dtype=float)
        ok = (by_trial.loc[runs["trial"], "status"] == "completed").to_numpy()
        scored = stats.scored(vals.tolist(), ok.tolist(), col.direction)
        rows.append(runs[["study", "task", "arm", "regularizer", "seed", "trial"]].assign(
            metric=name, direction=col.direction, value=scored))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _goodness(values: np.ndarray, direction: str) -> np.ndarray:
    """Higher is better, finite (a diverged run's ±∞ becomes a value beyond every finite one)."""
    return stats.finite_stand_in(np.asarray(values, dtype=float) * (-1.0 if direction == "minimize" else 1.0))


def arm_medians(mruns: pd.DataFrame) -> pd.DataFrame:
    """task × arm × metric → the median over seeds, oriented so that higher is better."""
    out = []
    for (task, metric), g in mruns.groupby(["task", "metric"], sort=True):
        med = g.groupby("arm")["value"].median()
        out.append(pd.DataFrame({"task": task, "metric": metric, "arm": med.index,
                                 "goodness": _goodness(med.to_numpy(), g["direction"].iloc[0])}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["task", "metric", "arm", "goodness"])


def tau(x, y) -> float:
    """Kendall's τ-b of two rankings (scipy); NaN where either is constant or has fewer than 2 items."""
    if len(x) < 2:
        return math.nan
    return float(kendalltau(x, y).statistic)


def agreement(mruns: pd.DataFrame, study_metric: dict[str, str]) -> pd.DataFrame:
    """Per task and metric: Kendall's τ between the arms' ranking by that metric and by the study's own
    metric (`study_metric`: task → its metric), with the number of arms ranked."""
    med = arm_medians(mruns)
    rows = []
    for task, g in med.groupby("task", sort=True):
        own = g[g["metric"] == study_metric[task]].set_index("arm")["goodness"]
        for metric, h in g.groupby("metric", sort=True):
            other = h.set_index("arm")["goodness"].reindex(own.index)
            rows.append({"task": task, "study_metric": study_metric[task], "metric": metric,
                         "arms": int(other.notna().sum()), "tau": tau(own[other.notna()], other.dropna())})
    return pd.DataFrame(rows)


def suite_agreement(per_task: pd.DataFrame) -> pd.DataFrame:
    """Across the suite, per metric: the mean and lowest τ over the tasks that rank ≥ 3 arms (fewer
    give τ of ±1 or undefined), and how many such tasks there are."""
    g = per_task[(per_task["arms"] >= 3) & per_task["tau"].notna()].groupby("metric")["tau"]
    return pd.DataFrame({"tasks": g.size(), "mean_tau": g.mean(), "min_tau": g.min()}).reset_index()


def flips(mruns: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """Per decisive claim (an arm better or worse than its baseline): the metrics on which the paired
    Hodges–Lehmann interval lies wholly the other way (see the module doc). Columns task, arm,
    verdict, flips_on (comma-separated, empty when none)."""
    rows = []
    for c in claims.itertuples():
        verdict = str(c.verdict)
        if not verdict.startswith(("better", "worse")):
            continue
        want = 1.0 if verdict.startswith("better") else -1.0
        against = []
        task_runs = mruns[mruns["task"] == c.task]
        for metric, g in task_runs.groupby("metric", sort=True):
            a = g[g["arm"] == c.arm].set_index("seed")["value"]
            b = g[g["arm"] == c.baseline].set_index("seed")["value"]
            seeds = a.index.intersection(b.index)
            if len(seeds) < 2:
                continue
            d = stats.improvement(a[seeds].to_numpy(), b[seeds].to_numpy(), g["direction"].iloc[0])
            _, lo, hi = stats.hodges_lehmann(stats.finite_stand_in(d))
            if (want > 0 and hi < 0) or (want < 0 and lo > 0):
                against.append(metric)
        rows.append({"task": c.task, "arm": c.arm, "verdict": verdict, "flips_on": ", ".join(against)})
    return pd.DataFrame(rows, columns=["task", "arm", "verdict", "flips_on"])


# --- the ranking against the sample count ---------------------------------------------------------------

def fid_by_n(fake_features, real_features, sizes=SAMPLE_SIZES) -> dict[int, float]:
    """FID of the first N fake features against the first N real ones, for each N both have."""
    from stabgen.metrics.frechet import fid_from_features

    top = min(len(fake_features), len(real_features))
    return {n: fid_from_features(fake_features[:n], real_features[:n]) for n in sizes if n <= top}


def cached_fid_by_n(cache: Path, key: str, compute) -> dict[int, float]:
    """`compute()` once per confirmation run (key: study/trial), kept in a JSON file across invocations."""
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    if key not in known:
        known[key] = {str(n): v for n, v in compute().items()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    return {int(n): float(v) for n, v in known[key].items()}


def sample_size_curve(fids: pd.DataFrame) -> pd.DataFrame:
    """`fids`: task, arm, seed, n, fid (a diverged run: inf). Per task and N: τ between the arms'
    ranking by median FID at N and at the task's largest N, and whether it reaches TAU_STABLE."""
    rows = []
    for task, g in fids.groupby("task", sort=True):
        med = g.groupby(["n", "arm"])["fid"].median().unstack("arm")
        top = med.loc[med.index.max()]
        for n, row in med.iterrows():
            rows.append({"task": task, "n": int(n), "arms": int(row.notna().sum()),
                         "tau_vs_largest_n": tau(_goodness(row.to_numpy(), "minimize"),
                                                 _goodness(top.to_numpy(), "minimize"))})
    return pd.DataFrame(rows, columns=["task", "n", "arms", "tau_vs_largest_n"])


def smallest_stable_n(curve: pd.DataFrame, threshold: float = TAU_STABLE) -> pd.DataFrame:
    """Per task: the smallest N from which on τ against the largest N stays ≥ threshold."""
    rows = []
    for task, g in curve.groupby("task", sort=True):
        g = g.sort_values("n")
        ok = (g["tau_vs_largest_n"] >= threshold).to_numpy()
        # from the last N that fails, every larger N holds: the answer is the next one
        fail = np.flatnonzero(~ok)
        n = int(g["n"].iloc[fail[-1] + 1]) if fail.size and fail[-1] + 1 < len(g) else \
            (int(g["n"].iloc[0]) if not fail.size else math.nan)
        rows.append({"task": task, "arms": int(g["arms"].max()), "smallest_n_tau_0.9": n})
    return pd.DataFrame(rows)
