"""The confirmation stage: search finds candidates, confirmation decides (README, Statistics).

After the search (and its seed re-runs), the best config of each arm — each regularizer by default,
or each objective or model (`[confirm] arm`) — is re-trained on the same `confirm.seeds` fresh seeds
(bench.space.trial_seed: one seed set for every arm, none a search seed), so arms are compared
paired by seed. Confirmation runs are ordinary Optuna trials queued with user attributes
`confirm_arm`, `confirm_of` (the config's first trial) and `confirm_seed`: workers share them,
a killed worker's run is retried, and a resumed study queues only the runs still owed. They are
never pruned and never count against the trial budget.

The best config of an arm is the one with the best median over its seeds, divergences, pruned and
undefined runs counting as the worst value (stats.scored); ties go to the better mean of its
completed seeds, then to the earlier trial. The plan is kept in the study (`confirm/plan`) with the
number of search runs it was chosen from, so every worker confirms the same configs, and a study
extended by more search trials chooses again.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd

from bench import records, stats
from bench.space import CONFIRM

PLAN_ATTR = "confirm/plan"
State = optuna.trial.TrialState


def scores(df: pd.DataFrame, metric: str, direction: str) -> np.ndarray:
    """Each run's value with every run that did not complete with a finite value at the worst."""
    if df.empty:
        return np.array([], dtype=float)
    return stats.scored(df[metric].tolist(), (df["status"] == "completed").tolist(), direction)


def search_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Search trials and their seed re-runs (what selection and the search tables see)."""
    return df[df["confirm_arm"].isna()] if "confirm_arm" in df and not df.empty else df


def confirm_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["confirm_arm"].notna()] if "confirm_arm" in df and not df.empty else df.iloc[0:0]


def select(df: pd.DataFrame, arm: str, metric: str, direction: str) -> dict[str, int]:
    """arm value → first trial of its best config (see the module doc for "best")."""
    df = search_rows(df)
    if df.empty:
        return {}
    df = df.assign(_score=scores(df, metric, direction))
    sign = 1.0 if direction == "minimize" else -1.0
    best: dict[str, tuple] = {}
    for cid, g in df.groupby("config_id", sort=False):
        done = g.loc[g["status"] == "completed", metric].dropna()
        key = (sign * float(np.median(g["_score"])), sign * float(done.mean()) if len(done) else math.inf,
               int(g["trial"].min()))
        value = str(g[arm].iloc[0])
        if value not in best or key < best[value]:
            best[value] = key
    return {value: key[2] for value, key in best.items()}


def plan(study: optuna.Study, spec) -> dict:
    """The arms' configs to confirm (made once per search state, kept in the study)."""
    df = records.trials_frame(study)
    based_on = len(search_rows(df))
    stored = study.user_attrs.get(PLAN_ATTR)
    if stored and stored.get("based_on") == based_on and stored.get("arm") == spec.confirm.arm:
        return stored
    new = {"arm": spec.confirm.arm, "arms": select(df, spec.confirm.arm, spec.metric, spec.direction),
           "based_on": based_on}
    study.set_user_attr(PLAN_ATTR, new)
    return new


def pending(study: optuna.Study, spec) -> list[tuple[dict, dict]]:
    """Confirmation runs still owed: every planned arm × seed not finished, running or queued."""
    if spec.confirm.seeds == 0 or spec.multi_objective:
        return []
    p = plan(study, spec)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    have = {(t.user_attrs.get("confirm_of"), t.user_attrs.get("confirm_seed")) for t in trials.values()
            if CONFIRM in t.user_attrs and t.state != State.FAIL}
    return [(trials[src].params, {CONFIRM: arm, "confirm_of": src, "confirm_seed": i})
            for arm, src in p["arms"].items() for i in range(spec.confirm.seeds) if (src, i) not in have]


def seed_matrix(df: pd.DataFrame, spec, arms: dict[str, int]) -> pd.DataFrame:
    """Scored confirmation values, one row per confirmation seed, one column per arm (NaN: not run yet)."""
    rows = confirm_rows(df)
    rows = rows[[int(o) in set(arms.values()) and arms.get(a) == int(o)
                 for a, o in zip(rows["confirm_arm"], rows["confirm_of"])]] if not rows.empty else rows
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(_score=scores(rows, spec.metric, spec.direction))
    return rows.pivot_table(index="confirm_seed", columns="confirm_arm", values="_score", aggfunc="first")


def table(df: pd.DataFrame, spec, arms: dict[str, int]) -> pd.DataFrame:
    """Per arm: its confirmed config, the median over confirmation seeds (divergences = worst) with
    its CI, the divergence rate, and against the baseline, paired by seed: the two-sided signed-rank
    p with Holm across arms, probability of improvement and difference of medians with CIs, TOST
    against `confirm.margin`, the seeds 80 % power would need, and a verdict."""
    m = seed_matrix(df, spec, arms)
    if m.empty:
        return pd.DataFrame()
    c, metric, direction = spec.confirm, spec.metric, spec.direction
    runs = confirm_rows(df)
    rows = []
    for arm in m.columns:
        mine = runs[(runs["confirm_arm"] == arm) & (runs["confirm_of"] == arms[arm])]
        med, lo, hi = stats.median_ci(m[arm].dropna().to_numpy(), direction)
        first = df[df["trial"] == arms[arm]].iloc[0]
        row = {"arm": arm, "config_trial": arms[arm], **first[records.CONFIG_KEYS].to_dict(),
               "seeds": int(m[arm].notna().sum()), "diverged": float((mine["status"] == "diverged").mean()),
               "median": med, "median_ci_low": lo, "median_ci_high": hi,
               "mean_completed": float(mine.loc[mine["status"] == "completed", metric].mean())}
        if arm != c.baseline and c.baseline in m:
            pair = m[[arm, c.baseline]].dropna()
            row.update({"paired_seeds": len(pair),
                        **stats.paired(pair[arm], pair[c.baseline], direction, c.margin).row()})
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("paired_seeds", "p", "p_holm", "verdict"):  # the same columns whether or not anything was tested
        if col not in out:
            out[col] = math.nan
    if out["p"].notna().any():
        tested = out["p"].notna()
        out.loc[tested, "p_holm"] = stats.holm(out.loc[tested, "p"])
        if c.margin:
            out.loc[tested, "p_equivalent_holm"] = stats.holm(out.loc[tested, "p_equivalent"])
    out["verdict"] = [_verdict(r, c) for _, r in out.iterrows()]
    sign = 1 if direction == "minimize" else -1  # ties of the median: the better mean of completed seeds
    out = out.assign(_k=sign * out["median"], _m=sign * out["mean_completed"]).sort_values(
        ["_k", "_m", "arm"], na_position="last").drop(columns=["_k", "_m"])
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def _verdict(r: pd.Series, c) -> str:
    if r["arm"] == c.baseline:
        return "baseline"
    if "p_holm" not in r or pd.isna(r.get("p_holm")):
        return f"untested (no baseline {c.baseline!r} runs)"
    if r["p_holm"] < stats.ALPHA:
        return f"{'better' if r['p_better'] < r['p_worse'] else 'worse'} than {c.baseline}"
    if c.margin and r.get("p_equivalent_holm", 1.0) < stats.ALPHA:
        return f"equivalent to {c.baseline} (±{c.margin:g})"
    return f"inconclusive: {stats.describe_needed(r['seeds_needed'], int(r['paired_seeds']))}"
