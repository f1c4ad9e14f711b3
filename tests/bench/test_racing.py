"""Seed racing (bench.racing): Optuna's WilcoxonPruner, per arm, prunes a clearly worse config at the seed a
hand count of the exact signed-rank p says and never a tied one; a raced study records each trial's seeds
and its median; the spec refuses what racing excludes; the calibration's small mode runs."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import optuna
import pandas as pd
import pytest

from bench import racing
from bench.arms import ARM_ATTR
from helpers import ROOT, study_toml

BEST = [10.0, 12.0, 11.0, 13.0, 9.0, 12.5, 10.5, 11.5]  # the best config's value on race seeds 0..7 (minimized)


def _study(p: float = 0.1) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        pruner = racing.ArmWilcoxonPruner(p_threshold=p)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    t = study.ask()
    t.set_user_attr(ARM_ATTR, "gan/ns/r1")
    for k, v in enumerate(BEST):
        t.report(v, k)
    t.set_user_attr(racing.RACE_ATTR, BEST)
    study.tell(t, racing.race_summary(BEST))
    return study


def _race(study: optuna.Study, values, arm: str = "gan/ns/r1") -> int:
    """Seeds a trial runs before the pruner stops it (len(values): never stopped)."""
    t = study.ask()
    t.set_user_attr(ARM_ATTR, arm)
    for k, v in enumerate(values):
        t.report(racing.race_value(v, math.isfinite(v), "minimize"), k)
        if k + 1 < len(values) and t.should_prune():
            return k + 1
    return len(values)


def test_a_clearly_worse_config_is_pruned_where_the_exact_p_says():
    """Every seed worse: the one-sided exact signed-rank p with n pairs is 2⁻ⁿ — 0.125 at 3 (not below 0.1),
    0.0625 at 4 — so at p_threshold 0.1 the race stops after the 4th seed, at 0.15 after the 3rd."""
    worse = [v + 5 for v in BEST]
    assert _race(_study(0.1), worse) == 4
    assert _race(_study(0.15), worse) == 3
    assert _race(_study(0.05), worse) == 5  # 2⁻⁵ = 0.03125


def test_a_tied_config_is_never_pruned_and_neither_is_one_better_on_average():
    assert _race(_study(0.2), BEST) == len(BEST)  # every difference 0
    tied = [v + (0.5 if k % 2 else -0.5) for k, v in enumerate(BEST)]  # half the seeds better, half worse
    assert _race(_study(0.2), tied) == len(BEST)


def test_divergence_enters_as_the_finite_worst_and_is_raced_out():
    """WilcoxonPruner never prunes on inf/NaN: a config diverging on every seed would race to the end."""
    assert racing.race_value(math.inf, False, "minimize") == racing.RACE_WORST
    assert racing.race_value(0.3, False, "maximize") == -racing.RACE_WORST  # not completed: the worst
    assert racing.race_value(None, True, "minimize") == racing.RACE_WORST  # undefined metric: the worst
    assert _race(_study(0.1), [math.inf] * 8) == 4
    assert racing.race_summary([1.0, racing.RACE_WORST, 3.0]) == 3.0  # the median: the diverged seed counts


def test_the_pruner_compares_a_trial_with_its_own_arms_best():
    """A clearly worse trial of another arm, whose arm has no complete trial yet, is never pruned."""
    worse = [v + 5 for v in BEST]
    assert _race(_study(0.1), worse, arm="gan/ns/none") == len(BEST)


def test_a_raced_study_records_every_seed_and_ranks_by_the_median(tmp_path):
    from bench import api
    from bench.storage import all_trials

    spec = tmp_path / "race.toml"
    spec.write_text(study_toml("ring", name="race", steps=30, regularizers=("none", "r1"),
                               top='pruner = "wilcoxon"\n[search]\nper_arm = 3\nseeds_per_trial = 3\n'))
    assert "6 search trials + 12 more race seeds at most (seed racing)" in api.describe_run(
        api.load_spec(spec), api.options(api.load_spec(spec), runs_dir=tmp_path / "runs"))["work"]
    rec = api.run_study(spec, runs_dir=tmp_path / "runs", inception=False)
    search = [t for t in all_trials(rec.study) if racing.RACE_ATTR in t.user_attrs]
    assert len(search) == 6  # 3 configs × 2 arms, every one raced
    for t in search:
        vals = t.user_attrs[racing.RACE_ATTR]
        assert 1 <= len(vals) <= 3 and sorted(t.intermediate_values) == list(range(len(vals)))
        raw = t.user_attrs["race_metric"]  # the seeds' own values: null where a run did not complete, never 1e9
        assert len(raw) == len(vals) and all((v is None) == (abs(w) == racing.RACE_WORST) for v, w in zip(raw, vals))
        assert all(v == w for v, w in zip(raw, vals) if v is not None)
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert len(vals) == 3 and t.value == pytest.approx(float(np.median(vals)))
            assert t.user_attrs["metrics"]["modes_captured"] == pytest.approx(t.value)
        assert t.user_attrs["config"]["seed"] == racing.race_seed(0, 0)  # every trial races on the same seeds
    frame = pd.read_csv(tmp_path / "runs" / "race" / "trials.csv")
    assert len(frame) == 6


@pytest.mark.parametrize("lines, why", [
    ('pruner = "wilcoxon"\n[search]\nseeds_per_trial = 2\n', "seeds_per_trial ≥ 3"),
    ('pruner = "median"\n[search]\nseeds_per_trial = 4\n', "reads values per training step"),
    ('[search]\nseeds_per_trial = 4\n[seeds]\nper_config = 2\n', "both add seeds"),
])
def test_the_spec_refuses_what_racing_excludes(tmp_path, lines, why):
    from bench import api
    from stabgen.errors import StabgenError

    spec = tmp_path / "bad.toml"
    spec.write_text(study_toml("ring", name="bad", top=lines))
    with pytest.raises(StabgenError, match=why):
        api.load_spec(spec)


def _calibration():
    path = ROOT / "benchmarks" / "calibration.py"
    mod = importlib.util.spec_from_file_location("calibration", path)
    cal = importlib.util.module_from_spec(mod)
    mod.loader.exec_module(cal)
    return cal, json.loads((path.parent / "results" / "calibration.json").read_text())


def test_racing_calibration_small_mode_and_the_committed_thresholds():
    """The small mode runs (deterministic); the committed full run chose each race length's default threshold
    (bench.racing.calibrated_p): the largest whose false-prune rate is ≤ 0.05 in every scenario (at 5 seeds a
    smaller one), saving seed-runs; and no scenario saved more than race_ceiling allows."""
    cal, committed = _calibration()
    small = cal.racing(sims=4, seed=0, configs=4, seeds=(5,))
    assert small == cal.racing(sims=4, seed=0, configs=4, seeds=(5,))
    row = small["by_design"]["seeds_per_trial=5"]["p=0.1"]
    assert 0 <= row["min_saved"] <= 1 and 0 <= row["max_false_prune"] <= 1
    full = committed["racing"]
    for design, by_p in full["by_design"].items():
        seeds = int(design.split("=")[1])
        p = racing.calibrated_p(seeds)
        assert full["calibrated_p"][design] == p
        assert by_p[f"p={p}"]["max_false_prune"] <= 0.05 and by_p[f"p={p}"]["min_saved"] > 0
        largest = full["largest_p_with_false_prune_le_0.05"][design]
        assert p == largest or (seeds < racing.LONG_RACE and p < largest)
        for q, row in by_p.items():
            ceiling = cal.race_ceiling(full["configs_per_arm"], seeds, float(q[2:]))
            assert row["ceiling"] == round(ceiling, 4)
            assert all(v["saved"] <= ceiling + 0.02 for v in row["scenarios"].values()), (design, q)


def test_the_racing_ceiling_by_hand():
    """WilcoxonPruner's exact one-sided p with n pairs all one way is 2⁻ⁿ, and it prunes below the threshold:
    p = 0.1 first at 4 seeds (1/16), 0.15 at 3 (1/8), 0.05 at 5 (1/32). Of 10 configs in random order
    H₁₀ = 2.929 on average beat every earlier one: 8 seeds, p = 0.1 → (10 − 2.929)/10 × (1 − 4/8) = 0.3536."""
    cal, _ = _calibration()
    assert [cal.earliest_prune(p) for p in (0.05, 0.1, 0.15, 0.2)] == [5, 4, 3, 3]
    assert cal.race_ceiling(10, 8, 0.1) == pytest.approx((10 - 7381 / 2520) / 10 * 0.5)
    assert cal.race_ceiling(10, 5, 0.05) == 0.0 and cal.race_ceiling(1, 16, 0.1) == 0.0


def test_a_spec_gets_the_threshold_calibrated_for_its_race_length_unless_it_sets_one():
    """Up to 8 seeds 0.1 (every spec's default before, so a stored spec resumes unchanged), longer races 0.05;
    a threshold the spec sets stands."""
    from bench.spec import Search

    assert Search().race_p == Search(seeds_per_trial=8).race_p == 0.1
    assert Search(seeds_per_trial=12).race_p == Search(seeds_per_trial=16).race_p == 0.05
    assert Search(seeds_per_trial=16, race_p=0.2).race_p == 0.2
    assert Search.model_validate(Search(seeds_per_trial=16).model_dump()).race_p == 0.05
