"""bench.stats against definitions computed by hand or by brute-force enumeration (not by scipy)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench import stats

INF = math.inf


def brute_signed_rank(d, alternative: str) -> float:
    """The exact permutation p of the signed-rank sum by enumerating every sign flip, zeros split
    (each zero adds half its rank to T⁺), average ranks for tied |d| — from the definition."""
    d = np.asarray(d, dtype=float)
    a = np.abs(d)
    ranks = np.array([np.mean([k + 1 for k, y in enumerate(np.sort(a)) if y == x]) for x in a])

    def t_plus(signs):
        return sum(r * (0.5 if x == 0 else (1.0 if s * x > 0 else 0.0)) for r, x, s in zip(ranks, d, signs))

    obs = t_plus([1] * len(d))
    dist = [t_plus(s) for s in itertools.product([1, -1], repeat=len(d))]
    greater = np.mean([t >= obs - 1e-12 for t in dist])
    less = np.mean([t <= obs + 1e-12 for t in dist])
    return {"greater": greater, "less": less, "two-sided": min(1.0, 2 * min(greater, less))}[alternative]


@pytest.mark.parametrize("d", [[1.0, 2, 3], [3.0, -1, 2, 2, 0, 5, -4], [0.5, 0, 0, 1.5, -2, 3, 3, 1],
                               [1.0, 2, -INF], [INF, INF, 2, -1, 0, 3]])
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_signed_rank_p_is_the_exact_sign_flip_distribution(d, alternative):
    assert stats.signed_rank_p(d, alternative) == pytest.approx(brute_signed_rank(
        stats.finite_stand_in(np.asarray(d)), alternative))


@pytest.mark.parametrize("seed", range(6))
def test_signed_rank_p_equals_scipys_permutation_wilcoxon(seed):
    """The reference: scipy.stats.wilcoxon with its exact permutation method (zeros split)."""
    from scipy import stats as sps

    rng = np.random.default_rng(seed)
    d = np.round(rng.normal(0.3, 1, 9), 1)  # rounding makes ties and zeros
    d[rng.random(9) < 0.2] = 0.0
    for alt in ("two-sided", "greater", "less"):
        ref = sps.wilcoxon(d, zero_method="zsplit", alternative=alt,
                           method=sps.PermutationMethod(n_resamples=2 ** 9)).pvalue
        assert stats.signed_rank_p(d, alt) == pytest.approx(ref, rel=1e-9)


def test_signed_rank_hand_cases():
    # all three improvements positive: T⁺ = 6 is the maximum of 8 equally likely sign patterns
    assert stats.signed_rank_p([1.0, 2, 3], "greater") == pytest.approx(1 / 8)
    assert stats.signed_rank_p([1.0, 2, 3]) == pytest.approx(2 / 8)
    # a divergence of the arm (−∞) is its largest loss: ranks 1, 2, 3 with T⁺ = 3; T⁺ ≥ 3 in 5 of 8
    assert stats.signed_rank_p([1.0, 2, -INF], "greater") == pytest.approx(5 / 8)
    assert stats.signed_rank_p([0.0, 0.0]) == 1.0  # both diverged on every seed: no evidence


def test_divergence_is_the_worst_value_never_dropped():
    v = stats.scored([1.0, None, 3.0, math.nan, 2.0], [True, True, False, True, True], "minimize")
    assert v.tolist() == [1.0, INF, INF, INF, 2.0]
    assert stats.scored([1.0, 5.0], [True, False], "maximize").tolist() == [1.0, -INF]
    d = stats.improvement([INF, 1.0, INF, 2.0], [INF, INF, 1.0, 3.0], "minimize")
    assert d.tolist() == [0.0, INF, -INF, 1.0]  # both diverged: a tie, kept
    # an arm that diverges on every seed where the baseline runs is significantly worse
    a, b = [INF] * 8, [5.0, 6, 7, 5, 6, 7, 5, 6]
    r = stats.paired(a, b, "minimize")
    assert r.p_worse == pytest.approx(1 / 256) and r.p_better == 1.0 and r.prob_improvement == 0.0
    assert r.median_diff == INF  # the arm's median is a divergence


def test_holm_matches_the_step_down_formula():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone: 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.2]) == [0.2]


def test_effect_sizes_hand_cases():
    assert stats.probability_of_improvement([1.0, 0, -1, 2]) == pytest.approx(0.625)
    md, lo, hi = stats.median_difference([1.0, 2, 3], [2.0, 4, 6], "minimize")
    assert md == pytest.approx(-2.0) and lo <= md <= hi
    assert stats.median_difference([1.0, INF, INF], [2.0, 4, 6], "minimize")[0] == INF
    med, lo, hi = stats.median_ci([1.0, 2.0, INF, INF, INF], "minimize")
    assert med == INF and lo <= 2.0 and hi == INF
    assert stats.median_ci([4.0, 2.0, 3.0], "maximize")[0] == 3.0


def test_noether_seeds_for_power_hand_case():
    # d = [1, 1, 1, −1]: of the 6 pair sums three are 2 (> 0) and three are 0 (ties, half): p′ = 0.75
    z = 1.959963984540054 + 0.8416212335729143
    assert stats.seeds_for_power([1.0, 1, 1, -1]) == math.ceil(z ** 2 / (3 * 0.25 ** 2)) == 42
    assert stats.seeds_for_power([1.0, -1.0]) == INF  # no effect seen
    assert math.isnan(stats.seeds_for_power([1.0]))


def test_tost_hand_case():
    # six differences all inside ±1: each one-sided test sees all six shifted values on its side, p = 1/64
    d = [0.1, -0.1, 0.2, 0.0, 0.05, -0.3]
    assert stats.equivalence_p(d, 1.0) == pytest.approx(1 / 64)
    assert stats.equivalence_p(d, 0.01) > 0.05  # a margin narrower than the spread shows nothing
    with pytest.raises(ValueError):
        stats.equivalence_p(d, 0.0)


def test_claim_verdicts():
    assert stats.claim_verdict(0.01, 0.9) == "reproduced"
    assert stats.claim_verdict(0.9, 0.01) == "not reproduced"
    assert stats.claim_verdict(0.5, 0.5, p_equivalent=0.01) == "not reproduced"
    assert stats.claim_verdict(0.5, 0.5, p_equivalent=0.2) == "inconclusive"


def test_kaplan_meier_hand_computed_censored_sample():
    # steps 10 (diverged), 20 (censored), 20 (diverged), 30 (diverged), 40 (censored):
    # S(10) = 4/5; at 20 four are at risk, one event: 0.8·3/4 = 0.6; at 30 two at risk: 0.6·1/2 = 0.3
    t, s = stats.survival([10, 20, 20, 30, 40], [True, False, True, True, False])
    assert t.tolist() == [0, 10, 20, 30, 40]
    assert s.tolist() == pytest.approx([1.0, 0.8, 0.6, 0.3, 0.3])
    t, s = stats.survival([100, 100], [False, False])
    assert s.tolist() == [1.0, 1.0]


def test_expected_best_is_the_expectation_over_all_draws():
    v = [1.0, 2.0, 3.0]
    assert stats.expected_best(v, 2, "maximize")[1] == pytest.approx(22 / 9)  # 1·1/9 + 2·3/9 + 3·5/9
    vals = [3.0, 1.0, 4.0, 1.5, 9.0]
    for direction, best in (("maximize", max), ("minimize", min)):
        curve = stats.expected_best(vals, 3, direction)
        for n in (1, 2, 3):
            draws = list(itertools.product(vals, repeat=n))
            assert curve[n - 1] == pytest.approx(np.mean([best(x) for x in draws]))
    lo, hi = stats.expected_best_band(vals, 3, "minimize")
    assert (lo <= stats.expected_best(vals, 3, "minimize") + 1e-9).all() and (hi >= lo).all()


def test_a_known_effect_is_detected_and_a_null_is_not():
    """A simulated confirmation (fixed seeds): one arm better by 1.5 σ, one equal to the baseline,
    10 % divergences everywhere; only the better arm survives Holm (calibration.py measures how often)."""
    rng = np.random.default_rng(1)
    n = 15
    base = rng.normal(10, 1, n)
    better = base - 1.5 + rng.normal(0, 0.5, n)
    null = base + rng.normal(0, 1, n)
    arms = {}
    for name, v in (("better", better), ("null", null), ("none", base)):
        arms[name] = stats.scored(v, rng.random(n) > 0.15, "minimize")
    res = {k: stats.paired(arms[k], arms["none"], "minimize") for k in ("better", "null")}
    p_holm = dict(zip(res, stats.holm([r.p for r in res.values()])))
    assert p_holm["better"] < 0.05 and res["better"].p_better < res["better"].p_worse
    assert p_holm["null"] > 0.05


def test_calibration_small_mode_and_the_committed_rates(tmp_path):
    """benchmarks/calibration.py at 200 simulations (fixed seed, deterministic): every test's
    false-positive rate near α and real power at a large effect; the committed full run (4,000
    simulations) holds every reported test at ≤ 0.06."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration", path)
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    res = cal.main(["--sims", "200", "--out", str(tmp_path / "cal.json")])
    assert json.loads((tmp_path / "cal.json").read_text())["simulations"] == 200
    for name, v in res["false_positive_rate"].items():
        assert 0 <= v["max"] <= 0.1, name  # 200 draws: SE ≈ 0.015 at α = 0.05
    assert res["power"]["signed_rank_two_sided"]["shift=1.5sd,n=20,divergence=0.0"] > 0.9
    assert res["power"]["signed_rank_two_sided"]["shift=0.5sd,n=6,divergence=0.0"] < 0.3
    committed = json.loads((path.parent / "results" / "calibration.json").read_text())
    assert committed["simulations"] >= 2000
    assert {"signed_rank_two_sided", "signed_rank_one_sided", "holm_4_arms", "tost_equivalence",
            "non_inferiority", "superiority_by_margin"} <= set(committed["false_positive_rate"])
    assert all(v["max"] <= 0.06 for v in committed["false_positive_rate"].values())
    assert committed["power"]["signed_rank_two_sided"]
