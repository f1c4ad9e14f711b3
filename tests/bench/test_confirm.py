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
