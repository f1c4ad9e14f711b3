"""Seed racing in search (`[search] seeds_per_trial = S`, `pruner = "wilcoxon"`): a search trial trains
its configuration on up to S seeds, one after another, and Optuna's WilcoxonPruner stops it once its
per-seed values are clearly worse than the best configuration's on the same seeds.

- Every trial races on the same seeds (race seed k = spec.seed + RACE_SEEDS + k), so the pruner's pairs
  are paired like a confirmation's: seed k's data order and initialisation are common to both configs.
  Race seeds are never confirmation seeds (bench.space.CONFIRM_SEEDS): search values stay out of tests.
- A seed whose run did not complete (diverged, undefined metric) enters at a finite worst value:
  WilcoxonPruner never prunes on inf/NaN (it would keep racing an unstable config to the end).
- A trial's value is the median over the seeds it ran (rank-based, like the confirmation's effect, so a
  diverged seed counts as the worst and is never dropped); a raced-out trial is PRUNED and is never a
  candidate for confirmation.
- Against whom: the best *complete* trial of the trial's own arm (bench.arms), not the study's best —
  the per-arm search compares configurations within an arm. A small subclass of Optuna's pruner.
The threshold (spec: `[search] race_p`, default RACE_P) comes from benchmarks/calibration.py's racing
simulation: the share of seed-runs saved and how often the configuration a full race would pick is pruned.
"""

from __future__ import annotations

import math
import statistics

import optuna

RACE_SEEDS = 500_000_000  # race seed k: spec.seed + RACE_SEEDS + k (below CONFIRM_SEEDS, above every re-run seed)
RACE_WORST = 1e9  # a race value for a seed that did not complete: beyond every metric's finite range
RACE_P = 0.1  # WilcoxonPruner's p threshold for races of up to LONG_RACE seeds, chosen by benchmarks/calibration.py
LONG_RACE, RACE_P_LONG = 8, 0.05  # … and for longer ones: every test of a longer race is a chance to prune wrongly


def calibrated_p(seeds_per_trial: int) -> float:
    """The race threshold a spec gets unless it sets `race_p`: the largest threshold whose false-prune rate
    stayed ≤ 5 % in every scenario of benchmarks/calibration.py's racing simulation for that race length
    (5 seeds: 0.15, 8: 0.1, 12 and 16: 0.05; 0.1 up to 8 seeds keeps the one default every spec before had;
    past 16 seeds, 16's, not calibrated)."""
    return RACE_P if seeds_per_trial <= LONG_RACE else RACE_P_LONG
RACE_ATTR = "race_values"  # user attr: the trial's value on each race seed it ran, in seed order


def race_seed(base_seed: int, k: int) -> int:
    return base_seed + RACE_SEEDS + k


def race_value(value: float | None, completed: bool, direction: str) -> float:
    """What a seed's run reports to the pruner: its metric, or the finite worst if it did not complete
    or its metric is undefined (WilcoxonPruner refuses to prune on inf/NaN)."""
    if not completed or value is None or not math.isfinite(value):
        return RACE_WORST if direction == "minimize" else -RACE_WORST
    return float(value)


def race_summary(values: list[float]) -> float:
    """The trial's value: the median of its race values (a worst-valued seed counts, never dropped)."""
    return float(statistics.median(values))


class _ArmBest:
    """A study as the pruner sees it for one trial: its best trial is the best complete trial of that
    trial's arm (every other attribute the study's own)."""

    def __init__(self, study: optuna.Study, arm: str | None) -> None:
        self._study, self._arm = study, arm

    def __getattr__(self, name: str):
        return getattr(self._study, name)

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial:
        from bench.arms import ARM_ATTR

        done = [t for t in self._study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.user_attrs.get(ARM_ATTR) == self._arm and RACE_ATTR in t.user_attrs]
        if not done:
            raise ValueError("no complete trial in this arm yet")  # what Study.best_trial raises: no pruning
        pick = min if self._study.direction == optuna.study.StudyDirection.MINIMIZE else max
        return pick(done, key=lambda t: t.value)


class ArmWilcoxonPruner(optuna.pruners.WilcoxonPruner):
    """Optuna's WilcoxonPruner against the best complete trial of the trial's own arm."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        from bench.arms import ARM_ATTR

        return super().prune(_ArmBest(study, trial.user_attrs.get(ARM_ATTR)), trial)
