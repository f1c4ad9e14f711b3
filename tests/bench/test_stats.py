"""bench.stats against definitions computed by hand or by brute-force enumeration (not by scipy)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench import stats
from helpers import ROOT

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

    path = ROOT / "benchmarks" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration", path)
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    res = cal.main(["--sims", "200", "--out", str(tmp_path / "cal.json")])
    assert json.loads((tmp_path / "cal.json").read_text())["simulations"] == 200
    for name, v in res["false_positive_rate"].items():
        if name not in res["not_the_tests_null"]:
            assert 0 <= v["max"] <= 0.1, name  # 200 draws: SE ≈ 0.015 at α = 0.05
    assert res["decisive_claim_verdict"]["max"] <= 0.1
    assert res["power"]["signed_rank_two_sided"]["shift=1.5sd,n=20,divergence=0.0"] > 0.9
    assert res["power"]["signed_rank_two_sided"]["shift=0.5sd,n=6,divergence=0.0"] < 0.3
    committed = json.loads((path.parent / "results" / "calibration.json").read_text())
    assert committed["simulations"] >= 2000
    assert {"signed_rank_two_sided", "signed_rank_one_sided", "holm_4_arms", "tost_equivalence",
            "non_inferiority", "superiority_by_margin"} <= set(committed["false_positive_rate"])
    assert {"skewed_equal_pseudomedian", "equal_medians_unequal_divergence"} <= set(committed["false_positive_rate"])
    relied = {k: v for k, v in committed["false_positive_rate"].items() if k not in committed["not_the_tests_null"]}
    assert all(v["max"] <= 0.06 for v in relied.values()) and committed["max_rate_the_reports_rely_on"] <= 0.06
    assert committed["decisive_claim_verdict"]["max"] <= 0.06  # either way, under the null
    assert committed["power"]["signed_rank_two_sided"] and committed["power"]["holm"]["by_scenario"]
    # the default confirmation design (spec.Confirm) is the one the calibration chose
    from bench.spec import Confirm

    default = committed["sequential_confirmation"]["designs"][f"sequential-{Confirm().stages}x{Confirm().seeds}"]
    assert default["max_null_rate"] <= 0.06 and default["power_1sd"] >= 0.8
    assert default["trainings_under_null"] < committed["sequential_confirmation"]["designs"]["fixed-30"][
        "trainings_under_null"]


# --- pinned against scipy and hand cases (each found by a mutant of bench/stats.py that survived) ----

def _scipy_percentile(data, statistic, paired=False, n_resamples=stats.N_RESAMPLES, confidence=0.95):
    """scipy.stats.bootstrap exactly as the reports promise: percentile method, rng seeded with 0."""
    from scipy import stats as sps

    res = sps.bootstrap(data, statistic, paired=paired, vectorized=False, confidence_level=confidence,
                        n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(0))
    return res.confidence_interval.low, res.confidence_interval.high


def test_bootstrap_ci_is_scipys_percentile_bootstrap_at_seed_0():
    x = [3.1, 2.4, 5.0, 4.2, 3.3, 2.9]
    assert stats.bootstrap_ci(x) == pytest.approx(_scipy_percentile((np.array(x),), np.mean), rel=1e-12)
    assert stats.bootstrap_ci(x, confidence=0.8) == pytest.approx(
        _scipy_percentile((np.array(x),), np.mean, confidence=0.8), rel=1e-12)
    # None and ±∞ are not values: the CI is that of the finite ones
    assert stats.bootstrap_ci([3.1, None, 2.4, INF, 5.0]) == stats.bootstrap_ci([3.1, 2.4, 5.0])
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)  # no spread, no width (scipy would give NaN)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([1.0, None]))


def test_holm_caps_at_one():
    assert stats.holm([0.6, 0.9]) == [1.0, 1.0]  # 0.6·2 = 1.2 → 1


def test_improvement_for_a_maximized_metric():
    # maximize: a better arm has the larger value; a diverged arm (−∞) is its largest loss
    assert stats.improvement([3.0, 1.0, -INF, -INF], [1.0, 3.0, 2.0, -INF], "maximize").tolist() == \
        [2.0, -2.0, -INF, 0.0]


def test_finite_stand_in_is_twice_the_largest_magnitude_plus_one():
    assert stats.finite_stand_in([1.0, -3.0, INF, -INF]).tolist() == [1.0, -3.0, 7.0, -7.0]
    assert stats.finite_stand_in([INF, -INF]).tolist() == [1.0, -1.0]  # nothing finite: ±1


def test_signed_rank_one_seed_and_all_equal_improvements():
    assert stats.signed_rank_p([3.0], "greater") == 0.5  # one positive difference: half the 2 sign patterns
    assert stats.signed_rank_p([1.0] * 6, "greater") == pytest.approx(1 / 64)
    assert stats.signed_rank_p([0.0, 0.0, 0.0], "greater") == 1.0
    assert stats.signed_rank_p([], "less") == 1.0


def test_probability_of_improvement_counts_ties_half():
    assert stats.probability_of_improvement([0.0, 0.0, 1.0]) == pytest.approx(2 / 3)
    assert math.isnan(stats.probability_of_improvement([]))


def test_median_difference_and_median_ci_are_scipys_bootstraps_at_seed_0():
    a, b = np.array([1.0, 2.5, 3.0, 7.0, 4.0]), np.array([2.0, 2.0, 5.0, 6.0, 4.5])

    def diff(x, y):
        return float(np.median(x) - np.median(y))

    lo, hi = _scipy_percentile((a, b), diff, paired=True)  # pairs resampled together, not apart
    assert stats.median_difference(a, b, "minimize") == pytest.approx((-1.5, lo, hi), rel=1e-12)  # 3 − 4.5
    lo, hi = _scipy_percentile((a,), lambda x: float(np.median(x)))
    assert stats.median_ci(a, "minimize") == pytest.approx((3.0, lo, hi), rel=1e-12)
    # two seeds already give an interval
    lo, hi = _scipy_percentile((np.array([1.0, 3.0]),), lambda x: float(np.median(x)))
    assert stats.median_ci([1.0, 3.0], "minimize") == pytest.approx((2.0, lo, hi))
    lo, hi = _scipy_percentile((np.array([1.0, 3.0]), np.array([2.0, 2.5])), diff, paired=True)
    assert stats.median_difference([1.0, 3.0], [2.0, 2.5], "minimize") == pytest.approx((-0.25, lo, hi))


def test_median_difference_edge_cases():
    # every resampled pair gives the same difference: scipy calls it degenerate; the CI is the point
    assert stats.median_difference([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], "minimize") == (-1.0, -1.0, -1.0)
    # negative data: the span that tells stand-ins from values is the data's range, not a sum
    assert stats.median_difference([-100.0, -99.0, -98.0], [-99.0, -98.0, -97.0], "minimize")[0] == -1.0
    # one finite value in all is enough to place the stand-in: both medians are divergences here
    assert stats.median_difference([1.0, INF, INF], [INF, INF, 2.0], "minimize")[0] == 0.0
    assert stats.median_difference([1.0, INF], [INF, INF], "minimize")[0] == -INF  # a single finite value
    # maximize: divergences (−∞) are the lowest values; a median on them is −∞, wherever the data lie
    assert stats.median_difference([0.0, -INF, -INF], [50.0, 50.0, 50.0], "maximize")[0] == -INF
    assert stats.median_difference([0.0, 100.0, -INF], [50.0, 50.0, 50.0], "maximize")[0] == -50.0
    assert stats.median_difference([5.0, -INF, -INF], [4.0, 4.0, 4.0], "maximize")[0] == -INF


def test_median_ci_edge_cases():
    assert stats.median_ci([INF, INF], "minimize") == (INF, INF, INF)  # every seed diverged
    assert stats.median_ci([-INF], "maximize") == (-INF, -INF, -INF)
    assert all(math.isnan(v) for v in stats.median_ci([], "minimize"))
    med, lo, hi = stats.median_ci([3.0], "minimize")  # one seed: a median, no interval
    assert med == 3.0 and math.isnan(lo) and math.isnan(hi)


def test_noether_pairs_are_distinct_seeds_and_sums_are_compared_with_zero():
    # d = [0.2, 0.3, 2.0]: the three pair sums 0.5, 2.2, 2.3 are all > 0 → p′ = 1 (not the 5/6 with
    # each seed paired with itself, nor 2/3 counting only sums above 1)
    z = 1.959963984540054 + 0.8416212335729143
    assert stats.seeds_for_power([0.2, 0.3, 2.0]) == math.ceil(z ** 2 / (3 * 0.5 ** 2)) == 11


def test_tost_refuses_a_margin_that_is_not_positive_saying_so():
    with pytest.raises(ValueError, match="margin must be > 0, got -1"):
        stats.equivalence_p([0.1, 0.2], -1.0)


def test_paired_reports_each_statistic_of_its_parts():
    from scipy import stats as sps

    a = np.array([3.0, 5.5, 2.0, 4.0, 6.5, 1.0, 3.5, 2.5])
    b = np.array([4.0, 5.0, 3.5, 4.6, 8.0, 2.2, 3.8, 2.4])
    r = stats.paired(a, b, "minimize", margin=0.5)
    d = b - a
    assert r.n == 8
    assert r.p == pytest.approx(sps.wilcoxon(d, method="exact").pvalue)  # no ties: scipy's exact test
    assert r.p_better == pytest.approx(sps.wilcoxon(d, alternative="greater", method="exact").pvalue)
    assert r.prob_improvement == pytest.approx(np.mean(d > 0))
    assert r.prob_improvement_ci == pytest.approx(
        _scipy_percentile((np.sign(d),), stats.probability_of_improvement), rel=1e-12)
    assert (r.median_diff, *r.median_diff_ci) == stats.median_difference(a, b, "minimize", seed=0)
    assert r.seeds_needed == stats.seeds_for_power(d)
    assert r.p_equivalent == stats.equivalence_p(d, 0.5)
    assert math.isnan(stats.paired(a, b, "minimize").p_equivalent)  # no margin, no TOST
    row = r.row()
    assert row["median_diff_ci_low"] == r.median_diff_ci[0] and row["median_diff_ci_high"] == r.median_diff_ci[1]
    assert row["n"] == 8 and "median_diff_ci" not in row and row["p_equivalent"] == r.p_equivalent
    with pytest.raises(ValueError, match="one value per seed on both sides"):
        stats.paired(a, b[:3], "minimize")


def test_claim_verdict_needs_p_below_half_alpha_per_direction():
    """Each direction at α/2: a decisive verdict either way has probability ≤ α under the null."""
    assert stats.claim_verdict(0.025, 0.9) == "inconclusive" and stats.claim_verdict(0.024, 0.9) == "reproduced"
    assert stats.claim_verdict(0.9, 0.025) == "inconclusive" and stats.claim_verdict(0.9, 0.024) == "not reproduced"
    assert stats.claim_verdict(0.9, 0.9, p_equivalent=0.05) == "inconclusive"


def test_describe_needed_in_words():
    assert stats.describe_needed(math.nan, 3) == "too few seeds to estimate the effect"
    assert stats.describe_needed(INF, 10) == "no effect seen: no number of seeds would make it significant"
    assert stats.describe_needed(23.0, 10) == "≈ 23 seeds would give 80 % power at this effect (have 10)"


def test_survival_without_any_divergence():
    t, s = stats.survival([100, 300], [False, False])
    assert t.tolist() == [0.0, 300.0] and s.tolist() == [1.0, 1.0]
    t, s = stats.survival([], [])
    assert t.tolist() == [0.0, 0.0] and s.tolist() == [1.0, 1.0]


def test_expected_best_has_one_value_per_n():
    assert stats.expected_best([1.0, 2.0], 4, "minimize").shape == (4,)


def test_expected_best_band_is_scipys_bootstrap_and_degenerate_cases_are_the_curve():
    vals = np.array([3.0, 1.0, 4.0, 1.5, 9.0])
    lo, hi = stats.expected_best_band(vals, 3, "minimize")
    ref_lo, ref_hi = _scipy_percentile((vals,), lambda x: stats.expected_best(x, 3, "minimize"), n_resamples=500)
    assert lo.tolist() == pytest.approx(ref_lo.tolist(), rel=1e-12) and hi.tolist() == pytest.approx(ref_hi.tolist(), rel=1e-12)
    two = np.array([1.0, 5.0])  # two distinct values already have a band
    lo, hi = stats.expected_best_band(two, 2, "maximize")
    ref_lo, ref_hi = _scipy_percentile((two,), lambda x: stats.expected_best(x, 2, "maximize"), n_resamples=500)
    assert lo.tolist() == pytest.approx(ref_lo.tolist()) and hi.tolist() == pytest.approx(ref_hi.tolist())
    for same in ([2.0], [2.0, 2.0, 2.0]):
        lo, hi = stats.expected_best_band(same, 3, "maximize")
        assert lo.tolist() == hi.tolist() == [2.0, 2.0, 2.0]


def test_the_bootstraps_are_scipys_at_seed_0_on_continuous_data():
    """Continuous data (many distinct resample statistics), so a different seed, resample count or
    interval method moves the interval (on a few discrete values it often would not)."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.0, 1.0, 25), rng.normal(0.4, 1.0, 25)
    assert stats._bootstrap_one(np.mean, a, 0) == pytest.approx(_scipy_percentile((a,), np.mean), rel=1e-12)
    diff = lambda x, y: float(np.mean(x) - np.mean(y))  # noqa: E731
    assert stats._paired_bootstrap(diff, a, b, 0) == pytest.approx(_scipy_percentile((a, b), diff, paired=True),
                                                                     rel=1e-12)
    med = lambda x: float(np.median(x))  # noqa: E731
    mdiff = lambda x, y: float(np.median(x) - np.median(y))  # noqa: E731
    assert stats.median_ci(a, "minimize")[1:] == pytest.approx(_scipy_percentile((a,), med), rel=1e-12)
    assert stats.median_difference(a, b, "minimize")[1:] == pytest.approx(
        _scipy_percentile((a, b), mdiff, paired=True), rel=1e-12)
    r = stats.paired(a, b, "minimize")  # paired passes its seed (0) on to both bootstraps
    assert r.median_diff_ci == stats.median_difference(a, b, "minimize", seed=0)[1:]
    assert r.prob_improvement_ci == pytest.approx(
        _scipy_percentile((np.sign(b - a),), stats.probability_of_improvement), rel=1e-12)


def test_constant_improvements_have_a_point_interval():
    r = stats.paired([INF] * 8, [5.0, 6, 7, 5, 6, 7, 5, 6], "minimize")
    assert r.prob_improvement_ci == (0.0, 0.0)  # every seed lost: no spread


def test_median_ci_of_nothing_is_three_nans():
    out = stats.median_ci([], "maximize")
    assert len(out) == 3 and all(math.isnan(v) for v in out)


def test_noether_does_not_pair_a_seed_with_itself():
    # d = [−0.1, 0.5, 0.6]: pair sums 0.4, 0.5, 1.1 → p′ = 1 → 11 seeds; with each seed also paired with
    # itself (−0.2, 1.0, 1.2) p′ would be 5/6 → 24
    z = 1.959963984540054 + 0.8416212335729143
    assert stats.seeds_for_power([-0.1, 0.5, 0.6]) == math.ceil(z ** 2 / (3 * 0.5 ** 2)) == 11


def test_survival_reads_0_1_flags_as_booleans():
    a = stats.survival([10, 20, 30], [1, 0, 1])
    b = stats.survival([10, 20, 30], [True, False, True])
    assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()


def test_median_and_improvement_intervals_follow_the_seed_on_many_samples():
    """Seed 0 everywhere: on discrete statistics one other seed may land on the same interval by
    chance, never on ten samples in a row."""
    from scipy import stats as sps

    rng = np.random.default_rng(11)
    med = lambda x: float(np.median(x))  # noqa: E731
    for _ in range(10):
        a, b = rng.normal(0.0, 1.0, 40), rng.normal(0.0, 1.0, 40)
        assert stats.median_ci(a, "minimize")[1:] == pytest.approx(_scipy_percentile((a,), med), rel=1e-12)
        ref = sps.bootstrap((np.sign(b - a),), stats.probability_of_improvement, vectorized=False,
                            method="percentile", n_resamples=stats.N_RESAMPLES, rng=np.random.default_rng(0))
        assert stats.paired(a, b, "minimize").prob_improvement_ci == pytest.approx(
            (ref.confidence_interval.low, ref.confidence_interval.high), rel=1e-12)
