"""The confirmation stage: search finds candidates, confirmation decides (docs/statistics.md).

After the search (and its seed re-runs), the best config of each arm — (model, objective,
regularizer) by default, or (model, objective) or the model (`[confirm] arm`; bench.arms) — is
re-trained on the same `confirm.seeds` fresh seeds
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

Each arm is tested against the baseline arm of its own family (bench.arms: a VAE arm never against a
GAN baseline), after a quality gate (the dataset's, stabgen.datasets.Gate): an arm whose median run
is below it "did not train at this budget" and is neither better nor worse; a baseline below it
leaves its family without a verdict. Where every baseline seed already sits at the metric's ceiling,
"better" cannot be shown at this budget: such an arm is "untestable at this budget" unless it is
significantly worse.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import optuna
import pandas as pd

from bench import records, stats
from bench.arms import baseline_label
from bench.space import CONFIRM
from bench.storage import all_trials
from stabgen.datasets import DATASETS

PLAN_ATTR = "confirm/plan"
PROTOCOL = 2  # arms within one family, per-arm search, gates (a plan of an older protocol is made again)
State = optuna.trial.TrialState
log = logging.getLogger(__name__)


def select(df: pd.DataFrame, kind: str, metric: str, direction: str) -> dict[str, int]:
    """arm label → first trial of its best config (see the module doc for "best")."""
    df = records.search_rows(df)
    if df.empty:
        return {}
    df = df.assign(_arm=records.arm_labels(df, kind))
    df = df.assign(_score=records.scores(df, metric, direction))
    sign = 1.0 if direction == "minimize" else -1.0
    best: dict[str, tuple] = {}
    for cid, g in df.groupby("config_id", sort=False):
        done = g.loc[g["status"] == "completed", metric].dropna()
        key = (sign * float(np.median(g["_score"])), sign * float(done.mean()) if len(done) else math.inf,
               int(g["trial"].min()))
        value = str(g["_arm"].iloc[0])
        if value not in best or key < best[value]:
            best[value] = key
    return {value: key[2] for value, key in best.items()}


def plan(study: optuna.Study, spec) -> dict:
    """The arms' configs to confirm (made once per search state, kept in the study)."""
    df = records.trials_frame(study)
    based_on = len(records.search_rows(df))
    stored = study.user_attrs.get(PLAN_ATTR)
    if (stored and stored.get("based_on") == based_on and stored.get("arm") == spec.confirm.arm
            and stored.get("protocol") == PROTOCOL):
        return stored
    new = {"arm": spec.confirm.arm, "arms": select(df, spec.confirm.arm, spec.metric, spec.direction),
           "based_on": based_on, "protocol": PROTOCOL}
    unequal = search_counts(df, spec.confirm.arm)
    if len(set(unequal.values())) > 1:
        log.warning("arms unequal in search trials before confirmation: "
                    + ", ".join(f"{k} {v}" for k, v in unequal.items()))
    study.set_user_attr(PLAN_ATTR, new)
    return new


def search_counts(df: pd.DataFrame, kind: str) -> dict[str, int]:
    """Search trials (not seed re-runs) per arm: equal under the per-arm search."""
    df = records.search_rows(df)
    if df.empty:
        return {}
    df = df[df["seed_rerun_of"].isna()] if "seed_rerun_of" in df else df
    return {str(k): int(v) for k, v in records.arm_labels(df, kind).value_counts(sort=False).sort_index().items()}


def pending(study: optuna.Study, spec) -> list[tuple[dict, dict]]:
    """Confirmation runs still owed: every planned arm × seed of its current stage (`targets`) not
    finished, running or queued. Called when nothing is running, so every queued stage is complete."""
    if spec.confirm.seeds == 0 or spec.multi_objective:
        return []
    p = plan(study, spec)
    want = targets(records.trials_frame(study), spec, {k: int(v) for k, v in p["arms"].items()})
    trials = {t.number: t for t in all_trials(study)}  # the search's and the owed runs' (bench.storage)
    have = {(t.user_attrs.get("confirm_of"), t.user_attrs.get("confirm_seed")) for t in trials.values()
            if CONFIRM in t.user_attrs and t.state != State.FAIL}
    return [(trials[src].params, {CONFIRM: arm, "confirm_of": src, "confirm_seed": i})
            for arm, src in p["arms"].items() for i in range(want[arm]) if (src, i) not in have]


def targets(df: pd.DataFrame, spec, arms: dict[str, int]) -> dict[str, int]:
    """Seeds each arm is owed now. The sequential design (confirm.stages > 1): every arm gets `seeds`;
    at each look (a stage complete) an arm still open — tested, undecided at Pocock's level, below the
    cap, its own two-sided p not above stats.FUTILITY — gets `seeds` more, and its family's baseline as
    many as its open arms need (paired by seed). Decided, gated and ceiling-bound arms stop there."""
    c = spec.confirm
    first = {a: c.seeds for a in arms}
    m = seed_matrix(df, spec, arms)
    n = {a: int(m[a].notna().sum()) if a in m else 0 for a in arms}
    if c.stages == 1 or any(n[a] < c.seeds for a in arms):
        return first
    out = dict(n)
    for r in table(df, spec, arms).itertuples():
        if r.open:
            out[r.arm] = max(out[r.arm], n[r.arm] + c.seeds)
            out[r.baseline] = max(out.get(r.baseline, 0), n[r.arm] + c.seeds)
    return out


def seed_matrix(df: pd.DataFrame, spec, arms: dict[str, int]) -> pd.DataFrame:
    """Scored confirmation values, one row per confirmation seed, one column per arm (NaN: not run yet)."""
    rows = records.confirm_rows(df)
    rows = rows[[int(o) in set(arms.values()) and arms.get(a) == int(o)
                 for a, o in zip(rows["confirm_arm"], rows["confirm_of"])]] if not rows.empty else rows
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(_score=records.scores(rows, spec.metric, spec.direction))
    return rows.pivot_table(index="confirm_seed", columns="confirm_arm", values="_score", aggfunc="first")


# every column of a tested row (stats.Paired, flattened), so confirm.csv has one schema whatever was tested
PAIRED_COLUMNS = ("paired_seeds", *(c for f in dataclasses.fields(stats.Paired)
                                     for c in ((f"{f.name}_low", f"{f.name}_high") if f.name.endswith("_ci") else (f.name,))),
                  "p_holm", "p_verdict", "verdict")


def gate_values(runs: pd.DataFrame, spec) -> tuple[dict[str, float], bool | None]:
    """An arm's gate: each gate column's median over its confirmation seeds (a run that diverged or
    left the column undefined counts as the worst value) and whether the medians pass (None: no gate)."""
    gate = DATASETS.get(spec.dataset).gate
    if gate is None:
        return {}, None
    med = {c.column: float(np.median(records.scores(runs, c.column, c.direction))) if c.column in runs and len(runs)
           else math.nan for c in gate.checks}
    return med, gate.passes(med)


def _at_ceiling(values: np.ndarray, spec) -> bool:
    """Every baseline seed at the best value the study metric can take (no arm can be shown better)."""
    ceiling = DATASETS.get(spec.dataset).ceilings.get(spec.metric)
    return ceiling is not None and len(values) > 0 and bool(np.all(values == ceiling))


def table(df: pd.DataFrame, spec, arms: dict[str, int]) -> pd.DataFrame:
    """Per arm: its family (model, objective), its confirmed config, the median over confirmation seeds
    (divergences = worst) with its CI, the divergence rate, its quality gate, and against the baseline
    arm of its own family, paired by seed: the two-sided signed-rank p with Holm over every tested arm,
    the Hodges–Lehmann estimate (the test's estimand) with its exact CI, probability of improvement,
    difference of medians, TOST against `confirm.margin`, the seeds 80 % power would need, a verdict."""
    m = seed_matrix(df, spec, arms)
    if m.empty:
        return pd.DataFrame()
    c, metric, direction = spec.confirm, spec.metric, spec.direction
    runs = records.confirm_rows(df)
    gates: dict[str, bool | None] = {}
    rows = []
    for arm in m.columns:
        mine = runs[(runs["confirm_arm"] == arm) & (runs["confirm_of"] == arms[arm])]
        med, lo, hi = stats.median_ci(m[arm].dropna().to_numpy(), direction)
        first = df[df["trial"] == arms[arm]].iloc[0]
        gate_med, gates[arm] = gate_values(mine, spec)
        row = {"arm": arm, "baseline": baseline_label(arm, spec) or "", "config_trial": arms[arm],
               **first[records.CONFIG_KEYS].to_dict(),
               "seeds": int(m[arm].notna().sum()), "diverged": float((mine["status"] == "diverged").mean()),
               "median": med, "median_ci_low": lo, "median_ci_high": hi,
               "mean_completed": float(mine.loc[mine["status"] == "completed", metric].mean()),
               "gate": {None: "none", True: "passed", False: "did not train"}[gates[arm]], "baseline_at_ceiling": False,
               **{f"gate_{k}": v for k, v in gate_med.items()}}
        rows.append(row)
    for row in rows:
        base = row["baseline"]
        if row["arm"] == base or base not in m or gates[row["arm"]] is False or gates.get(base) is False:
            continue
        pair = m[[row["arm"], base]].dropna()
        row.update({"paired_seeds": len(pair), "baseline_at_ceiling": _at_ceiling(pair[base].to_numpy(), spec),
                    **stats.paired(pair[row["arm"]], pair[base], direction, c.margin).row()})
    out = pd.DataFrame(rows)
    for col in PAIRED_COLUMNS:  # the same columns whether or not anything was tested (gated arms are not)
        if col not in out:
            out[col] = math.nan
    if out["p"].notna().any():
        tested = out["p"].notna()
        out.loc[tested, "p_holm"] = stats.holm(out.loc[tested, "p"])
        if c.margin:
            out.loc[tested, "p_equivalent_holm"] = stats.holm(out.loc[tested, "p_equivalent"])
    level = stats.look_level(c.stages)
    verdicts = [_verdict(r, c, gates, level) for _, r in out.iterrows()]
    out["verdict"] = [v for v, _ in verdicts]
    out["p_verdict"] = [p for _, p in verdicts]
    out["level"] = level  # the nominal level each look is held to (Pocock; α itself for a fixed design)
    out["open"] = [v.startswith("inconclusive") and s < c.seeds * c.stages and p <= stats.FUTILITY
                   for v, s, p in zip(out["verdict"], out["seeds"], out["p"])]  # more seeds owed at the next look
    sign = 1 if direction == "minimize" else -1  # ties of the median: the better mean of completed seeds
    out = out.assign(_k=sign * out["median"], _m=sign * out["mean_completed"]).sort_values(
        ["_k", "_m", "arm"], na_position="last").drop(columns=["_k", "_m"])
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def _num(v: float, fmt: str = "{:.4g}") -> str:
    """A number in a verdict's words: ±∞ (a bound with too few seeds, or one that falls on divergences)
    as the sign, never the text "inf"; NaN as —."""
    if v != v:
        return "—"
    return ("∞" if v > 0 else "−∞") if math.isinf(v) else fmt.format(v + 0.0)  # + 0.0: −0 prints as 0


def _verdict(r: pd.Series, c, gates: dict[str, bool | None], level: float = stats.ALPHA) -> tuple[str, float]:
    """(verdict, the p it rests on). A decisive verdict rests on Holm's two-sided p below the design's
    per-look level and its direction on the smaller one-sided p; the evidence names both."""
    arm, base = r["arm"], r["baseline"]
    if arm == base:
        return ("baseline" if gates.get(arm) is not False
                else "baseline did not train at this budget: no verdict for its family"), math.nan
    if gates.get(arm) is False:
        return "did not train at this budget", math.nan
    if not base:
        return f"untested (no {c.baseline!r} arm in its family)", math.nan
    if gates.get(base) is False:
        return f"no verdict: baseline {base} did not train at this budget", math.nan
    if "p_holm" not in r or pd.isna(r.get("p_holm")):
        return f"untested (no baseline {base} runs)", math.nan
    better = r["p_better"] < r["p_worse"]
    one_sided = r["p_better"] if better else r["p_worse"]
    effect = (f"Hodges–Lehmann Δ {_num(r['hodges_lehmann'], '{:+.4g}')} [{_num(r['hodges_lehmann_ci_low'])}, "
              f"{_num(r['hodges_lehmann_ci_high'])}]")
    if r["p_holm"] < level:
        return (f"{'better' if better else 'worse'} than {base} (p_holm {r['p_holm']:.3g}, one-sided p "
                f"{one_sided:.3g}; {effect})"), float(r["p_holm"])
    if c.margin and r.get("p_equivalent_holm", 1.0) < level:
        return (f"equivalent to {base} (±{c.margin:g}; TOST p_holm {r['p_equivalent_holm']:.3g})",
                float(r["p_equivalent_holm"]))
    if r["baseline_at_ceiling"] is True:
        return (f"untestable at this budget: every {base} seed is at the metric's ceiling, so no arm can "
                f"be shown better (p_holm {r['p_holm']:.3g})"), float(r["p_holm"])
    return (f"inconclusive (p_holm {r['p_holm']:.3g} at level {level:.3g}; {effect}): "
            f"{stats.describe_needed(r['seeds_needed'], int(r['paired_seeds']))}"), float(r["p_holm"])
