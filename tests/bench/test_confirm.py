"""The confirmation table on known per-seed values (issue 29/34): arms within one family, pairing by
seed, the verdict's direction, divergences as the worst value, the quality gate, ceilings, and the
Hodges–Lehmann effect checked against scipy's exact signed-rank test inverted by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench import arms as arms_mod
from bench import confirm, stats
from bench.spec import StudySpec

SEEDS = 20


def _spec(dataset="mnist", models=("gan", "vae"), regs=("none", "l2", "r1"), metric="domain_fid", **extra) -> StudySpec:
    return StudySpec.model_validate({"name": "t", "dataset": dataset, "metric": metric, "n_trials": 2,
                                     "space": {"models": list(models), "regularizers": list(regs)}, **extra})


def _frame(values: dict[str, list], metric="domain_fid", gate_cols=None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Confirmation rows for arms {label: per-seed values (None = diverged)}, plus one search row per arm."""
    rows, plan = [], {}
    for k, (label, vals) in enumerate(values.items()):
        parts = label.split("/")
        model, reg = parts[0], parts[-1]
        objective = parts[1] if len(parts) == 3 else ""
        base = {"model": model, "objective": objective, "regularizer": reg, "lam": 0.1, "lr": 1e-3,
                "config_id": label, "seed_rerun_of": None}
        trial = 1000 * (k + 1)
        plan[label] = trial
        rows.append({**base, "trial": trial, "status": "completed", metric: 1.0, "confirm_arm": None,
                     "confirm_of": None, "confirm_seed": None, **(gate_cols or {})})
        for i, v in enumerate(vals):
            rows.append({**base, "trial": trial + 1 + i, "status": "completed" if v is not None else "diverged",
                         metric: v, "confirm_arm": label, "confirm_of": trial, "confirm_seed": i,
                         **(gate_cols or {})})
    return pd.DataFrame(rows), plan


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(classes=10.0)  # MNIST's gate: domain FID ≤ 163.8 and ≥ 9 classes


BASE = [40.0 + 2.0 * i for i in range(SEEDS)]  # the baseline's per-seed domain FID, increasing with the seed


def _table(values: dict[str, list], spec=None) -> pd.DataFrame:
    df, plan = _frame(values)
    return confirm.table(_ok(df), spec or _spec(), plan).set_index("arm")


def test_arms_never_span_model_families():
    spec = _spec()
    labels = [a.label for a in arms_mod.arms(spec)]
    assert labels == ["gan/ns/none", "gan/ns/l2", "gan/ns/r1", "vae/none", "vae/l2"]  # r1 is a GAN penalty
    assert arms_mod.baseline_label("vae/l2", spec) == "vae/none"
    assert arms_mod.baseline_label("gan/ns/l2", spec) == "gan/ns/none"
    # the VAE's l2 is far better than the GAN's none, and tested only against the VAE's none
    t = _table({"gan/ns/none": BASE, "gan/ns/l2": [v + 0.5 for v in BASE],
                "vae/none": [v + 50 for v in BASE], "vae/l2": [v + 40 for v in BASE]})
    assert t.loc["vae/l2", "baseline"] == "vae/none" and t.loc["vae/l2", "verdict"].startswith("better than vae/none")
    assert t.loc["gan/ns/l2", "verdict"].startswith("worse than gan/ns/none")
    assert t.loc["vae/l2", "hodges_lehmann"] == pytest.approx(-10.0)
    assert list(t.loc["vae/l2", ["model", "objective", "regularizer"]]) == ["vae", "", "l2"]


def test_verdict_direction_pairing_and_divergence_on_known_values():
    """Clearly better, clearly worse, null, paired-only and diverging arms against one baseline."""
    shifted = BASE[1:] + BASE[:1]  # seed i gets the baseline's seed i+1: worse by 2 on 19 seeds, better on one
    spec = _spec(regs=("none", "l1", "l2", "r1", "gp", "feature_norm"), models=("gan",))
    t = _table({"gan/ns/none": BASE,
                "gan/ns/l1": [v - 3 for v in BASE],  # better on every seed
                "gan/ns/l2": [v + 3 for v in BASE],  # worse on every seed
                "gan/ns/r1": list(BASE),  # the same values: no effect
                "gan/ns/gp": shifted,  # a permutation of the baseline: only pairing by seed sees it worse
                "gan/ns/feature_norm": [None if i % 3 == 0 else v - 3 for i, v in enumerate(BASE)]}, spec)
    assert t.loc["gan/ns/l1", "verdict"].startswith("better than gan/ns/none")
    assert t.loc["gan/ns/l1", "p_better"] < 1e-5 < 0.5 < t.loc["gan/ns/l1", "p_worse"]
    assert t.loc["gan/ns/l1", "p_verdict"] == t.loc["gan/ns/l1", "p_holm"] < 0.05
    assert t.loc["gan/ns/l2", "verdict"].startswith("worse than gan/ns/none")
    assert f"one-sided p {t.loc['gan/ns/l2', 'p_worse']:.3g}" in t.loc["gan/ns/l2", "verdict"]
    assert t.loc["gan/ns/r1", "verdict"].startswith("inconclusive") and t.loc["gan/ns/r1", "p"] == 1.0
    assert t.loc["gan/ns/gp", "verdict"].startswith("worse than"), "pairs by seed, not by rank"
    assert t.loc["gan/ns/gp", "p"] == pytest.approx(stats.signed_rank_p(stats.improvement(shifted, BASE, "minimize")))
    # 7 of 20 seeds diverged (the worst value): better by 3 on the 13 that ran — dropped, they would make
    # it significantly better; counted as the worst value, the signed-rank sum leans the other way
    fn = t.loc["gan/ns/feature_norm"]
    assert fn["diverged"] == 7 / 20 and fn["gate"] == "passed" and fn["verdict"].startswith("inconclusive")
    assert fn["p_worse"] < fn["p_better"] and fn["hodges_lehmann_ci_high"] == math.inf
    # Holm over the five tested arms
    tested = t.drop(index="gan/ns/none")
    assert list(tested["p_holm"]) == pytest.approx(stats.holm(tested["p"]))


def test_a_maximized_metric_flips_the_direction():
    spec = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "gp", "r1"), metric="reverse_kl")
    spec_max = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "gp", "r1"), metric="modes_captured")
    base = [3.0 + 0.1 * i for i in range(SEEDS)]
    for s, better in ((spec, "gp"), (spec_max, "r1")):
        df, plan = _frame({"mlp2d_small/ns/none": base, "mlp2d_small/ns/gp": [v - 1 for v in base],
                           "mlp2d_small/ns/r1": [v + 1 for v in base]}, metric=s.metric)
        t = confirm.table(df.assign(high_quality=0.9), s, plan).set_index("arm")
        assert t.loc[f"mlp2d_small/ns/{better}", "verdict"].startswith("better"), s.metric
        other = "r1" if better == "gp" else "gp"
        assert t.loc[f"mlp2d_small/ns/{other}", "verdict"].startswith("worse"), s.metric


def test_an_arm_below_the_gate_did_not_train_and_a_gated_baseline_gives_no_verdict():
    t = _table({"gan/ns/none": BASE, "gan/ns/l2": [v + 300 for v in BASE],  # FID ≈ 350: above 163.8
                "vae/none": [v + 300 for v in BASE], "vae/l2": [v - 10 for v in BASE]})
    assert t.loc["gan/ns/l2", "gate"] == "did not train" and t.loc["gan/ns/l2", "verdict"] == "did not train at this budget"
    assert pd.isna(t.loc["gan/ns/l2", "p"])  # never tested, never in Holm's family
    assert t.loc["vae/none", "verdict"].startswith("baseline did not train")
    assert t.loc["vae/l2", "gate"] == "passed" and t.loc["vae/l2", "verdict"].startswith("no verdict: baseline vae/none")
    assert pd.isna(t.loc["vae/l2", "p"])  # never tested against a baseline that did not train: not in Holm's family
    assert t.loc["gan/ns/none", "gate_domain_fid"] == pytest.approx(np.median(BASE))
    # the class check: 10 classes pass, 8 do not
    df, plan = _frame({"gan/ns/none": BASE, "gan/ns/l2": BASE})
    t2 = confirm.table(df.assign(classes=np.where(df["regularizer"] == "l2", 8.0, 10.0)), _spec(), plan).set_index("arm")
    assert t2.loc["gan/ns/l2", "gate"] == "did not train"


def test_a_claim_against_a_baseline_at_the_ceiling_is_untestable():
    spec = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "gp", "r1"), metric="modes_captured")
    df, plan = _frame({"mlp2d_small/ns/none": [8.0] * SEEDS, "mlp2d_small/ns/gp": [8.0] * SEEDS,
                       "mlp2d_small/ns/r1": [6.0] * SEEDS}, metric="modes_captured")
    t = confirm.table(df.assign(high_quality=0.9), spec, plan).set_index("arm")
    assert t.loc["mlp2d_small/ns/gp", "verdict"].startswith("untestable at this budget")
    assert t.loc["mlp2d_small/ns/r1", "verdict"].startswith("worse than")  # worse is still testable


# --- Hodges–Lehmann ------------------------------------------------------------------------------

def test_hodges_lehmann_on_a_hand_computed_case():
    # Walsh averages of (1, 2, 3): 1, 1.5, 2, 2, 2.5, 3 → median 2; 3 pairs cannot reach 95 %: unbounded
    assert stats.hodges_lehmann([1.0, 2.0, 3.0]) == (2.0, -math.inf, math.inf)
    # (−1, 4, 6, 10): averages −1, 1.5, 2.5, 4.5, 4, 5, 7, 6, 8, 10 → median (4.5 + 5)/2
    assert stats.hodges_lehmann([-1.0, 4.0, 6.0, 10.0])[0] == pytest.approx(4.75)


@pytest.mark.parametrize("n", [6, 8, 10, 13])
def test_hodges_lehmann_ci_inverts_scipys_exact_signed_rank_test(n):
    """The exact CI is the set of shifts δ that scipy's exact two-sided test of d − δ does not reject at
    5 % (checked between consecutive Walsh averages, where the test's statistic is constant)."""
    d = np.random.default_rng(n).normal(1.0, 2.0, n)
    est, lo, hi = stats.hodges_lehmann(d)
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2)
    mids = (walsh[:-1] + walsh[1:]) / 2
    kept = [m for m in mids if sps.wilcoxon(d - m, method="exact").pvalue > 0.05]
    assert lo == pytest.approx(max(w for w in walsh if w < min(kept))) and lo < min(kept)
    assert hi == pytest.approx(min(w for w in walsh if w > max(kept))) and hi > max(kept)
    assert est == pytest.approx(np.median(walsh))


def test_hodges_lehmann_keeps_divergences_as_infinite():
    est, lo, hi = stats.hodges_lehmann([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, math.inf, math.inf])
    assert math.isfinite(est) and hi == math.inf
    assert stats.hodges_lehmann([math.inf] * 8)[0] == math.inf


def test_signed_rank_null_is_the_enumerated_distribution():
    import itertools

    n = 7
    sums = [sum(r for r, s in zip(range(1, n + 1), signs) if s) for signs in itertools.product((0, 1), repeat=n)]
    expect = np.bincount(sums, minlength=n * (n + 1) // 2 + 1) / 2 ** n
    assert np.allclose(stats.signed_rank_null(n), expect)


def test_sequential_confirmation_spends_seeds_only_where_the_answer_is_open():
    """confirm.stages = 3 of 10 seeds: after the first look a decided arm, a gated arm and a futile arm
    (own p > stats.FUTILITY) stop; the open arm and its baseline get 10 more seeds; at the cap of 30
    nothing more is owed."""
    spec = _spec(models=("gan",), regs=("none", "l1", "l2", "r1", "gp"), confirm={"seeds": 10, "stages": 3})
    lean = [0.3, -0.2, 0.5, -0.4, 0.6, -0.1, 0.4, -0.3, 0.7, 0.05] * 3  # p 0.26 at 10 seeds: still open
    even = [0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.4, -0.3, 0.05, -0.05] * 3  # p 1.0 at 10 seeds: futile
    base = BASE + BASE[:10]
    values = {"gan/ns/none": base, "gan/ns/l1": [v - 3 for v in base],
              "gan/ns/l2": [v + 300 for v in base],  # does not train: gated
              "gan/ns/r1": [v + e for v, e in zip(base, lean)], "gan/ns/gp": [v + e for v, e in zip(base, even)]}
    df, plan = _frame({k: v[:10] for k, v in values.items()})
    assert confirm.targets(_ok(df), spec, plan) == {"gan/ns/none": 20, "gan/ns/l1": 10, "gan/ns/l2": 10,
                                                    "gan/ns/r1": 20, "gan/ns/gp": 10}
    t = confirm.table(_ok(df), spec, plan).set_index("arm")
    assert t.loc["gan/ns/l1", "level"] == stats.POCOCK[3] and t.loc["gan/ns/l1", "verdict"].startswith("better")
    assert bool(t.loc["gan/ns/r1", "open"]) and not t.loc["gan/ns/l1", "open"] and not t.loc["gan/ns/l2", "open"]
    assert not t.loc["gan/ns/gp", "open"] and t.loc["gan/ns/gp", "verdict"].startswith("inconclusive")
    assert f"at level {stats.POCOCK[3]:.3g};" in t.loc["gan/ns/gp", "verdict"]  # Pocock's per-look level, not α
    stopped = ("gan/ns/l1", "gan/ns/l2", "gan/ns/gp")
    df, plan = _frame({k: (v[:10] if k in stopped else v) for k, v in values.items()})
    assert confirm.targets(_ok(df), spec, plan) == {"gan/ns/none": 30, "gan/ns/l1": 10, "gan/ns/l2": 10,
                                                    "gan/ns/r1": 30, "gan/ns/gp": 10}  # the cap: no fourth stage
    # a fixed design owes its seeds and nothing more
    fixed = _spec(models=("gan",), regs=("none", "l1", "l2", "r1", "gp"), confirm={"seeds": 10, "stages": 1})
    assert set(confirm.targets(_ok(df), fixed, plan).values()) == {10}


def test_the_report_prints_the_tests_estimand_and_never_pools_families():
    """display_confirm shows each arm's family and baseline and the Hodges–Lehmann effect (4.75 here,
    where the difference of medians is 2.5); the search table is per arm, GAN and VAE apart."""
    from bench import render, report
    from bench.report import StudyRecord

    extra = [0.0] * 10 + [float(k) for k in range(5, 15)]
    df, plan = _frame({"gan/ns/none": BASE, "gan/ns/l2": [v + e for v, e in zip(BASE, extra)],
                       "vae/none": BASE, "vae/l2": BASE})
    spec = _spec()
    rec = StudyRecord(None, spec, "", _ok(df))
    t = confirm.table(rec.trials, spec, plan)
    row = t.set_index("arm").loc["gan/ns/l2"]
    assert row["hodges_lehmann"] == pytest.approx(4.75) and row["median_diff"] == pytest.approx(2.5)
    shown = render.display_confirm(t, rec).set_index("arm")
    assert shown.loc["gan/ns/l2", "HL Δ (arm − baseline)"].startswith("4.75 [")
    assert list(shown.loc["vae/l2", ["model", "objective", "regularizer", "baseline"]]) == ["vae", "—", "l2", "vae/none"]
    assert sorted(report.regularizer_table(rec)["arm"]) == sorted(plan)


def test_the_confirmation_replay_runs_and_its_committed_numbers(tmp_path, monkeypatch):
    """benchmarks/replay_confirmation.py (issue 31.4): the designs replayed by bench.confirm itself on the
    committed per-seed data; a fixed design spends exactly its seeds per arm, the sequential one at least that."""
    import importlib.util
    import json

    from helpers import ROOT

    path = ROOT / "benchmarks" / "replay_confirmation.py"
    mod = importlib.util.spec_from_file_location("replay_confirmation", path)
    replay = importlib.util.module_from_spec(mod)
    mod.loader.exec_module(replay)
    assert replay.STUDIES == ("mnist_reg", "ring_seeds")
    monkeypatch.setattr(replay, "STUDIES", ("ring_seeds",))  # one study, one replicate: seconds
    res = replay.main(["--sims", "1", "--out", str(tmp_path / "r.json")])["studies"]["ring_seeds"]
    d, arms = res["designs"], res["arms"]
    assert d["fixed-10"]["trainings"] == 10 * arms and d["fixed-20"]["trainings"] == 20 * arms
    assert 10 * arms <= d["sequential-4x10"]["trainings"] <= 40 * arms
    committed = json.loads((path.parent / "results" / "replay-confirmation.json").read_text())
    assert set(committed["studies"]) == {"mnist_reg", "ring_seeds"} and committed["replicates"] >= 100
    for study in committed["studies"].values():
        assert set(study["designs"]) == {"fixed-10", "fixed-20", "sequential-4x10"}


# --- the verdict's words and the table's wiring, pinned exactly (mutation run on bench/confirm.py) -------

def _row(**kw) -> pd.Series:
    """A tested row as confirm.table hands it to _verdict (p's and the Hodges–Lehmann effect set by hand)."""
    base = {"arm": "gan/ns/r1", "baseline": "gan/ns/none", "p_better": 0.001, "p_worse": 0.999, "p_holm": 0.004,
            "hodges_lehmann": -2.5, "hodges_lehmann_ci_low": -4.0, "hodges_lehmann_ci_high": -1.25,
            "baseline_at_ceiling": False, "seeds_needed": 31.7, "paired_seeds": 10}
    return pd.Series({**base, **kw})


def test_each_verdict_in_its_exact_words():
    c = _spec(confirm={"seeds": 10, "margin": 3.0}).confirm
    ok = {"gan/ns/r1": True, "gan/ns/none": True}
    v = confirm._verdict
    assert v(_row(arm="gan/ns/none"), c, ok) == ("baseline", pytest.approx(math.nan, nan_ok=True))
    assert v(_row(arm="gan/ns/none"), c, {"gan/ns/none": False})[0] == (
        "baseline did not train at this budget: no verdict for its family")
    assert v(_row(), c, {"gan/ns/r1": False, "gan/ns/none": True})[0] == "did not train at this budget"
    assert v(_row(baseline=""), c, ok)[0] == "untested (no 'none' arm in its family)"
    assert v(_row(), c, {"gan/ns/r1": True, "gan/ns/none": False})[0] == (
        "no verdict: baseline gan/ns/none did not train at this budget")
    assert v(_row(p_holm=math.nan), c, ok)[0] == "untested (no baseline gan/ns/none runs)"
    assert v(_row().drop("p_holm"), c, ok)[0] == "untested (no baseline gan/ns/none runs)"
    # decisive: the direction from the smaller one-sided p, the evidence quotes that p and the effect
    assert v(_row(), c, ok) == ("better than gan/ns/none (p_holm 0.004, one-sided p 0.001; Hodges–Lehmann Δ -2.5 "
                                "[-4, -1.25])", 0.004)
    worse = _row(p_better=0.998, p_worse=0.002, hodges_lehmann=2.0, hodges_lehmann_ci_low=1.0,
                 hodges_lehmann_ci_high=math.inf)
    assert v(worse, c, ok) == ("worse than gan/ns/none (p_holm 0.004, one-sided p 0.002; Hodges–Lehmann Δ +2 "
                               "[1, ∞])", 0.004)
    tiny = _row(hodges_lehmann=2e-5, hodges_lehmann_ci_low=1e-5, hodges_lehmann_ci_high=3e-5)
    assert "Hodges–Lehmann Δ +2e-05 [1e-05, 3e-05])" in v(tiny, c, ok)[0]  # lower-case exponents
    # the level is strict: p_holm at the level is not significant; equivalence needs a margin and its own p
    at_level = _row(p_holm=0.05, p_better=0.025, p_worse=0.98)
    assert v(at_level, c, ok, level=0.05)[0].startswith("inconclusive (p_holm 0.05 at level 0.05; Hodges–Lehmann Δ "
                                                        "-2.5 [-4, -1.25]): ≈ 31 seeds would give 80 % power at this "
                                                        "effect (have 10)")
    assert v(at_level, c, ok, level=0.05)[1] == 0.05
    assert v(_row(p_holm=0.3, p_equivalent_holm=0.01), c, ok) == ("equivalent to gan/ns/none (±3; TOST p_holm 0.01)",
                                                                   0.01)
    assert v(_row(p_holm=0.3, p_equivalent_holm=0.05), c, ok, level=0.05)[0].startswith("inconclusive")
    assert v(_row(p_holm=0.3), c, ok)[0].startswith("inconclusive")  # a margin but no TOST p: not equivalent
    no_margin = _spec(confirm={"seeds": 10}).confirm
    assert v(_row(p_holm=0.3, p_equivalent_holm=0.01), no_margin, ok)[0].startswith("inconclusive")
    assert v(_row(p_holm=0.3, baseline_at_ceiling=True), c, ok) == (
        "untestable at this budget: every gan/ns/none seed is at the metric's ceiling, so no arm can be shown "
        "better (p_holm 0.3)", 0.3)


def test_numbers_in_a_verdicts_words():
    assert confirm._num(math.nan) == "—" and confirm._num(math.inf) == "∞" and confirm._num(-math.inf) == "−∞"
    assert confirm._num(-0.0) == "0" and confirm._num(1.23456) == "1.235" and confirm._num(2.0, "{:+.4g}") == "+2"


def test_the_ceiling_needs_every_baseline_seed_at_it():
    ring = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "r1"), metric="modes_captured")
    assert confirm._at_ceiling(np.array([8.0, 8.0]), ring) and confirm._at_ceiling(np.array([8.0]), ring)
    assert not confirm._at_ceiling(np.array([8.0, 7.0]), ring) and not confirm._at_ceiling(np.array([]), ring)
    no_ceiling = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "r1"), metric="reverse_kl")
    assert not confirm._at_ceiling(np.array([8.0, 8.0]), no_ceiling)


def test_the_gate_is_the_median_with_divergences_worst():
    ring = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "r1"), metric="reverse_kl")
    runs = pd.DataFrame({"status": ["completed", "completed", "diverged"], "high_quality": [0.6, 0.7, 0.9]})
    assert confirm.gate_values(runs, ring) == ({"high_quality": 0.6}, True)  # the diverged 0.9 counts as worst
    assert confirm.gate_values(runs.assign(high_quality=[0.6, 0.3, 0.9]), ring) == ({"high_quality": 0.3}, False)
    mnist = _spec()  # a minimized gate column: a diverged run is +∞ there
    fid = pd.DataFrame({"status": ["completed", "completed", "diverged"], "domain_fid": [100.0, 120.0, 50.0],
                        "classes": [10.0, 10.0, 10.0]})
    assert confirm.gate_values(fid, mnist) == ({"domain_fid": 120.0, "classes": 10.0}, True)
    empty = confirm.gate_values(runs.iloc[:0], ring)[0]
    assert math.isnan(empty["high_quality"])
    assert math.isnan(confirm.gate_values(runs.drop(columns="high_quality"), ring)[0]["high_quality"])
    assert confirm.gate_values(runs, _spec(dataset="stacked-mnist", models=("gan",), regs=("none",),
                                            metric="stacked_kl")) == ({}, None)  # a dataset with no gate


def test_the_table_ranks_counts_and_pairs_what_it_should():
    """Ranking by median (ties: the better mean of completed seeds), a maximized metric ranked the other
    way, each arm's own runs only, the margin reaching TOST, and a config that is not the arm's plan left out."""
    df, plan = _frame({"gan/ns/none": BASE, "gan/ns/l2": [v + 1 for v in BASE],
                       "gan/ns/r1": [None if i < 3 else v - 1 for i, v in enumerate(BASE)]})
    # runs labelled l2 of a config that is not l2's in the plan (here: the baseline's), listed first: never counted
    stray = df[df["confirm_arm"] == "gan/ns/l2"].assign(confirm_of=plan["gan/ns/none"],
                                                         trial=lambda d: d["trial"] + 500, domain_fid=1e6)
    df = pd.concat([stray, df], ignore_index=True)
    spec = _spec(models=("gan",), confirm={"seeds": 20, "stages": 1, "margin": 50.0})
    t = confirm.table(_ok(df), spec, plan)
    assert list(t["rank"]) == [1, 2, 3] and list(t.columns[:2]) == ["rank", "arm"] and list(t.index) == [0, 1, 2]
    t = t.set_index("arm")
    assert t.loc["gan/ns/l2", "seeds"] == SEEDS and t.loc["gan/ns/l2", "median"] == pytest.approx(np.median(BASE) + 1)
    assert t.loc["gan/ns/l2", "mean_completed"] == pytest.approx(np.mean(BASE) + 1)  # the stray 1e6 is not its run
    r1 = t.loc["gan/ns/r1"]
    assert r1["mean_completed"] == pytest.approx(np.mean(BASE[3:]) - 1) and r1["diverged"] == 3 / SEEDS
    assert t.loc["gan/ns/none", "baseline"] == "gan/ns/none" and t.loc["gan/ns/none", "gate"] == "passed"
    assert t.loc["gan/ns/none", "baseline_at_ceiling"] == False  # noqa: E712 — the column of an untested row
    assert not t.loc["gan/ns/l2", "baseline_at_ceiling"] and "p_equivalent_holm" in t
    assert t.loc["gan/ns/l2", "verdict"].startswith("worse than gan/ns/none")
    # the margin (50) reached stats.paired's TOST, and Holm over the tested arms' TOST p's
    assert t.loc["gan/ns/l2", "p_equivalent"] < 0.05 and t.loc["gan/ns/l2", "p_equivalent_holm"] < 0.05
    tested = t.drop(index="gan/ns/none")
    assert list(tested["p_equivalent_holm"]) == pytest.approx(stats.holm(tested["p_equivalent"]))
    # ties of the median go to the better mean of completed seeds; a maximized metric ranks high first
    tie, plan2 = _frame({"gan/ns/none": [10.0, 20.0, 30.0], "gan/ns/r1": [5.0, 20.0, 31.0]})
    order = list(confirm.table(_ok(tie), _spec(models=("gan",)), plan2)["arm"])
    assert order == ["gan/ns/r1", "gan/ns/none"]  # same median 20; r1's mean 18.7 < 20 (not the names' order)
    ring = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "r1"), metric="modes_captured")
    ring = _spec(dataset="ring", models=("mlp2d_small",), regs=("none", "r1", "gp"), metric="modes_captured")
    up, plan3 = _frame({"mlp2d_small/ns/none": [5.0, 6.0, 7.0], "mlp2d_small/ns/r1": [4.0, 6.0, 8.5],
                        "mlp2d_small/ns/gp": [6.5, 7.0, 7.5]}, metric="modes_captured")
    ranked = confirm.table(up.assign(high_quality=0.9), ring, plan3)
    # gp's median 7 first; none and r1 tie at 6, r1's mean 6.17 beats none's 6 (maximized)
    assert list(ranked["arm"]) == ["mlp2d_small/ns/gp", "mlp2d_small/ns/r1", "mlp2d_small/ns/none"]
    # the median ranks first, the mean only breaks its ties (l2: median 9, mean 9; r1: median 10, mean 7)
    mm, plan6 = _frame({"gan/ns/none": [50.0, 50.0, 50.0], "gan/ns/l2": [9.0, 9.0, 9.0], "gan/ns/r1": [1.0, 10.0, 10.0]})
    assert list(confirm.table(_ok(mm), _spec(models=("gan",)), plan6)["arm"]) == ["gan/ns/l2", "gan/ns/r1", "gan/ns/none"]
    # an arm whose every seed diverged sits at the worst value of a maximized metric: −∞, ranked last
    dead, plan7 = _frame({"mlp2d_small/ns/none": [5.0, 6.0, 7.0], "mlp2d_small/ns/r1": [None, None, None]},
                         metric="modes_captured")
    t7 = confirm.table(dead.assign(high_quality=0.9), ring, plan7).set_index("arm")
    assert t7.loc["mlp2d_small/ns/r1", ["median", "median_ci_low", "median_ci_high"]].tolist() == [-math.inf] * 3
    assert t7.loc["mlp2d_small/ns/r1", "rank"] == 2
    dead_min, plan8 = _frame({"gan/ns/none": BASE[:3], "gan/ns/r1": [None, None, None]})  # minimized: +∞
    t8 = confirm.table(_ok(dead_min), _spec(models=("gan",)), plan8).set_index("arm")
    assert t8.loc["gan/ns/r1", ["median", "median_ci_low", "median_ci_high"]].tolist() == [math.inf] * 3
    # arms the spec has no family for (a record whose spec changed): nothing tested, p columns still
    # numbers (NaN), one schema
    alone, plan4 = _frame({"gan/ns/l2": BASE, "gan/ns/r1": BASE})
    t4 = confirm.table(_ok(alone), _spec(models=("vae",), regs=("none", "l2")), plan4).set_index("arm")
    assert list(t4["baseline"]) == ["", ""] and set(t4["verdict"]) == {"untested (no 'none' arm in its family)"}
    assert t4["p"].dtype == float and t4["p_holm"].isna().all() and t4["hodges_lehmann"].dtype == float
    # a dataset without a gate: "none" in the gate column
    st = _spec(dataset="stacked-mnist", models=("gan",), regs=("none", "r1"), metric="stacked_kl")
    sdf, plan5 = _frame({"gan/ns/none": BASE, "gan/ns/r1": BASE}, metric="stacked_kl")
    assert set(confirm.table(sdf, st, plan5)["gate"]) == {"none"}


def _search(rows: list[tuple]) -> pd.DataFrame:
    """Search rows (trial, config_id, regularizer, value or None = diverged, seed_rerun_of) of GAN/NS arms."""
    return pd.DataFrame([{"trial": t, "config_id": cid, "model": "gan", "objective": "ns", "regularizer": reg,
                          "lam": 0.1, "lr": 1e-3, "status": "completed" if v is not None else "diverged",
                          "domain_fid": v, "confirm_arm": None, "confirm_of": None, "confirm_seed": None,
                          "seed_rerun_of": rerun} for t, cid, reg, v, rerun in rows])


SEARCH = _search([
    (1, "A", "r1", 10.0, None), (2, "A", "r1", 20.0, 1), (3, "A", "r1", 21.0, 1),  # median 20, mean 17
    (4, "B", "r1", 20.0, None), (5, "B", "r1", 20.0, 4), (6, "B", "r1", 20.0, 4),  # median 20, mean 20
    (7, "C", "none", 5.0, None), (8, "C", "none", None, 7),  # 5 and a divergence: median at the worst
    (9, "D", "none", 8.0, None),
    (20, "E", "l2", 7.0, None), (10, "F", "l2", 7.0, None),  # a tie in everything: the earlier trial
    (41, "P", "gp", None, None), (42, "P", "gp", None, 41),  # every seed diverged: no mean at all …
    (40, "Q", "gp", 5.0, None), (43, "Q", "gp", None, 40), (44, "Q", "gp", None, 40)])  # … loses to a mean of 5


def test_the_best_config_of_each_arm_by_median_then_mean_then_the_earlier_trial():
    confirmed = pd.concat([SEARCH, _search([(30, "G", "r1", 0.0, None)]).assign(confirm_arm="gan/ns/r1",
                                                                                confirm_of=1, confirm_seed=0)])
    assert confirm.select(confirmed, "regularizer", "domain_fid", "minimize") == {
        "gan/ns/r1": 1, "gan/ns/none": 9, "gan/ns/l2": 10, "gan/ns/gp": 40}  # the confirmation run's 0.0 is no search value
    assert confirm.select(SEARCH, "regularizer", "domain_fid", "maximize") == {
        "gan/ns/r1": 4, "gan/ns/none": 9, "gan/ns/l2": 10, "gan/ns/gp": 40}  # B's better mean; divergence still worst
    assert confirm.select(SEARCH, "model", "domain_fid", "minimize") == {"gan": 10}  # one arm per model: l2's 7
    assert confirm.select(SEARCH.iloc[:0], "regularizer", "domain_fid", "minimize") == {}
    assert confirm.search_counts(SEARCH, "regularizer") == {"gan/ns/gp": 2, "gan/ns/l2": 2, "gan/ns/none": 2,
                                                             "gan/ns/r1": 2}
    assert confirm.search_counts(SEARCH, "model") == {"gan": 8} and confirm.search_counts(SEARCH.iloc[:0], "model") == {}
    assert confirm.search_counts(SEARCH.drop(columns="seed_rerun_of"), "model") == {"gan": 16}


def test_the_plan_is_made_once_per_search_state_and_owes_only_what_is_missing(monkeypatch, caplog):
    import optuna

    from bench import records
    from bench.space import CONFIRM

    spec = _spec(models=("gan",), regs=("none", "l2", "r1", "gp"), confirm={"seeds": 3, "stages": 1})
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    dist = {"lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)}
    for number in range(45):  # trials 0…44: the search configs' first trials carry their own lr
        study.add_trial(optuna.trial.create_trial(params={"lr": 1e-4 * (number + 1)}, distributions=dist, value=1.0))
    done = {CONFIRM: "gan/ns/none", "confirm_of": 9}
    study.add_trial(optuna.trial.create_trial(params={"lr": 1e-3}, distributions=dist, value=8.0,
                                              user_attrs={**done, "confirm_seed": 0}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={**done, "confirm_seed": 1}))
    frame = SEARCH.copy()
    monkeypatch.setattr(records, "trials_frame", lambda s: frame if s is study else pytest.fail("not the study's frame"))
    p = confirm.plan(study, spec)
    assert p == {"arm": "regularizer", "arms": {"gan/ns/r1": 1, "gan/ns/none": 9, "gan/ns/l2": 10, "gan/ns/gp": 40},
                 "based_on": 16,
                 "protocol": confirm.PROTOCOL} == study.user_attrs[confirm.PLAN_ATTR]
    assert "arms unequal" not in caplog.text  # 2 search trials each (seed re-runs not counted)
    owed = confirm.pending(study, spec)  # none's seed 0 ran; its failed seed 1 is owed again
    want = [(arm, src, i) for arm, src in p["arms"].items() for i in range(3) if (arm, i) != ("gan/ns/none", 0)]
    assert [(a[CONFIRM], a["confirm_of"], a["confirm_seed"]) for _, a in owed] == want
    assert all(params == {"lr": pytest.approx(1e-4 * (a["confirm_of"] + 1))} for params, a in owed)
    # a stored plan of the same search stands, even if the search would now choose otherwise …
    frame.loc[frame["trial"] == 9, "status"] = "diverged"  # chosen afresh, none's best would now be C (trial 7)
    assert confirm.plan(study, spec)["arms"]["gan/ns/none"] == 9
    # … but a grown search, another arm kind or another protocol chooses again
    frame = pd.concat([frame, _search([(11, "H", "none", 1.0, None)])], ignore_index=True)
    assert confirm.plan(study, spec) == {"arm": "regularizer", "arms": {"gan/ns/r1": 1, "gan/ns/none": 11,
                                                                         "gan/ns/l2": 10, "gan/ns/gp": 40},
                                         "based_on": 17, "protocol": confirm.PROTOCOL}
    assert ("arms unequal in search trials before confirmation: gan/ns/gp 2, gan/ns/l2 2, gan/ns/none 3, "
            "gan/ns/r1 2") in caplog.text
    by_model = _spec(models=("gan",), regs=("none", "l2", "r1", "gp"), confirm={"seeds": 3, "arm": "model"})
    assert confirm.plan(study, by_model) == {"arm": "model", "arms": {"gan": 11}, "based_on": 17,
                                             "protocol": confirm.PROTOCOL}
    assert confirm.plan(study, spec)["arm"] == "regularizer"  # and back
    frame.loc[frame["trial"] == 11, "status"] = "diverged"  # would change none's choice: only a new protocol re-plans
    study.set_user_attr(confirm.PLAN_ATTR, {**study.user_attrs[confirm.PLAN_ATTR], "protocol": confirm.PROTOCOL - 1})
    assert confirm.plan(study, spec)["protocol"] == confirm.PROTOCOL
    assert study.user_attrs[confirm.PLAN_ATTR]["arms"]["gan/ns/none"] == 7
    one = _spec(models=("gan",), regs=("none", "l2", "r1", "gp"), confirm={"seeds": 1, "stages": 1})
    owed_one = confirm.pending(study, one)  # one seed per arm; none's run was of trial 9, its new config is 7
    assert [(a[CONFIRM], a["confirm_of"], a["confirm_seed"]) for _, a in owed_one] == [
        ("gan/ns/r1", 1, 0), ("gan/ns/none", 7, 0), ("gan/ns/l2", 10, 0), ("gan/ns/gp", 40, 0)]
    fresh = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    assert confirm.pending(fresh, _spec(models=("gan",), regs=("none", "r1"), confirm={"seeds": 0})) == []
    assert confirm.PLAN_ATTR not in fresh.user_attrs  # no confirmation: no plan made


def test_targets_before_every_arm_has_run_and_never_fewer_seeds_for_a_baseline():
    """An arm with no confirmation run yet: the first stage for all (one seed a stage here); an open arm
    asks its baseline for its own count + a stage, never below what the baseline already has."""
    spec = _spec(models=("gan",), regs=("none", "l1", "r1"), confirm={"seeds": 1, "stages": 4})
    df, plan = _frame({"gan/ns/none": BASE[:1], "gan/ns/l1": BASE[:1]})
    plan["gan/ns/r1"] = 99_000  # planned, not run yet
    assert confirm.targets(_ok(df), spec, plan) == {"gan/ns/none": 1, "gan/ns/l1": 1, "gan/ns/r1": 1}
    spec = _spec(models=("gan",), regs=("none", "l1"), confirm={"seeds": 10, "stages": 4})
    lean = [0.3, -0.2, 0.5, -0.4, 0.6, -0.1, 0.4, -0.3, 0.7, 0.05]  # p 0.26: open
    df, plan = _frame({"gan/ns/none": BASE + BASE[:10], "gan/ns/l1": [v + e for v, e in zip(BASE, lean)]})
    assert confirm.targets(_ok(df), spec, plan) == {"gan/ns/none": 30, "gan/ns/l1": 20}


def test_an_arm_at_the_futility_bound_is_still_open():
    """Two-sided p exactly stats.FUTILITY (0.5) keeps the arm open: the bound is inclusive."""
    d = [-1.0, 2.0, -2.0, -3.0, -3.0, -5.0, 2.0, 1.0, 2.0, 1.0]  # exact two-sided signed-rank p = 0.5
    assert stats.signed_rank_p(np.array(d)) == stats.FUTILITY == 0.5
    spec = _spec(models=("gan",), regs=("none", "l1"), confirm={"seeds": 10, "stages": 3})
    df, plan = _frame({"gan/ns/none": BASE[:10], "gan/ns/l1": [b + x for b, x in zip(BASE[:10], d)]})
    t = confirm.table(_ok(df), spec, plan).set_index("arm")
    assert t.loc["gan/ns/l1", "p"] == 0.5 and bool(t.loc["gan/ns/l1", "open"])
    assert confirm.targets(_ok(df), spec, plan) == {"gan/ns/none": 20, "gan/ns/l1": 20}
