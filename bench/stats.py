"""The statistics a report states: seed CIs, paired tests of arms on confirmation seeds, effect sizes,
equivalence, the seeds a test would need, time-to-divergence survival and expected best-of-n.

House rules (docs/statistics.md): only confirmation runs — every arm's best config re-trained on the
same fresh seeds — enter a test, paired by seed; a diverged, pruned or undefined run is the worst
value, never dropped. scipy does the computing (ranks, bootstrap, ecdf on censored data); written here are only what
scipy does not ship, or ships too slowly: the signed-rank test's exact null distribution, Holm's step-down,
the paired probability of improvement, Noether's sample size for the signed-rank test, Dodge et
al.'s expected maximum, and the rank-preserving stand-in for ±∞ that lets scipy see divergences.
Each is tested against a hand-computed case or a brute-force enumeration (tests/bench/test_stats.py), and
the tests' size and power are measured by simulation (benchmarks/calibration.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Literal

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
ALPHA = 0.05
POWER = 0.8


def bootstrap_ci(values, confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean (scipy.stats.bootstrap); (nan, nan) with fewer than two
    values — one seed says nothing about the spread, so no interval is invented for it. The
    percentile method (not BCa) because BCa is undefined when all values are equal."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=N_RESAMPLES,
                          method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control, valid under any dependence):
    the i-th smallest p is multiplied by (m − i), then made monotone and capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p) - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted.tolist()


# --- divergence as the worst value ---------------------------------------------------------------

def worst(direction: str) -> float:
    """The value a diverged, pruned or undefined run takes: worse than every number."""
    return math.inf if direction == "minimize" else -math.inf


def scored(values, ok, direction: str) -> np.ndarray:
    """Run values with every run that is not `ok` (or has no finite value) set to the worst value."""
    v = np.asarray([x if x is not None else math.nan for x in values], dtype=float)
    good = np.asarray(ok, dtype=bool) & np.isfinite(v)
    return np.where(good, v, worst(direction))


def improvement(a, b, direction: str) -> np.ndarray:
    """Per seed, how much better arm a is than baseline b in the metric's direction (> 0: a better);
    +∞ where only b diverged, −∞ where only a did, 0 where both did (a tie, kept, never dropped)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    sign = 1.0 if direction == "minimize" else -1.0
    with np.errstate(invalid="ignore"):
        d = sign * (b - a)
    return np.where(np.isinf(a) & np.isinf(b) & (a == b), 0.0, d)


def finite_stand_in(x: np.ndarray) -> np.ndarray:
    """±∞ replaced by ±(2·max finite |x| + 1): larger in magnitude than every finite value and tied
    among themselves, so every statistic built on ranks and signs (signed-rank, Walsh averages, sign
    counts) is unchanged, and scipy, which refuses infinities, can compute it."""
    x = np.asarray(x, dtype=float)
    finite = np.abs(x[np.isfinite(x)])
    big = 2.0 * (finite.max() if finite.size else 0.0) + 1.0
    return np.where(np.isposinf(x), big, np.where(np.isneginf(x), -big, x))


# --- the paired test ----------------------------------------------------------------------------

def signed_rank_p(d, alternative: Literal["two-sided", "greater", "less"] = "two-sided") -> float:
    """Wilcoxon signed-rank test of paired improvements `d` (±∞ allowed): the exact permutation p
    over all 2ⁿ sign flips, so ties, zeros and small n are handled exactly and the size holds.
    Zeros (both runs of a seed equally good, or both diverged) are kept: they take part in the
    ranking and add half their rank to each side (scipy's zero_method="zsplit"), a constant under
    every flip. 1.0 when every difference is zero (no evidence either way).

    Why not scipy's wilcoxon(method=PermutationMethod()), which gives the same p (tested)? It
    enumerates the flips one by one: 6 s for 16 seeds, and a Monte-Carlo p beyond. Here the null
    distribution of T⁺ is the distribution of a random subset sum of the (doubled, so integer) ranks,
    built by one convolution per seed: exact at any n, in microseconds."""
    d = finite_stand_in(d)
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    doubled = np.rint(2 * stats.rankdata(np.abs(d))).astype(np.int64)  # midranks are multiples of ½
    w = doubled[d != 0]
    t_obs = int(doubled[d > 0].sum())
    dist = np.zeros(int(w.sum()) + 1)
    dist[0] = 1.0
    for x in w:  # each non-zero difference adds its rank to T⁺ with probability ½
        shifted = np.zeros_like(dist)
        shifted[x:] = dist[:-x]
        dist = 0.5 * (dist + shifted)
    greater, less = float(dist[t_obs:].sum()), float(dist[:t_obs + 1].sum())
    p = {"greater": greater, "less": less, "two-sided": 2 * min(greater, less)}[alternative]
    return min(1.0, p)


def signed_rank_null(n: int) -> np.ndarray:
    """P(T⁺ = t), t = 0 … n(n+1)/2, for n untied non-zero differences (ranks 1..n): one convolution per rank."""
    dist = np.zeros(n * (n + 1) // 2 + 1)
    dist[0] = 1.0
    for r in range(1, n + 1):
        shifted = np.zeros_like(dist)
        shifted[r:] = dist[:-r]
        dist = 0.5 * (dist + shifted)
    return dist


def hodges_lehmann(d, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """The estimate the signed-rank test is about: the pseudo-median of paired differences `d` (the
    median of the Walsh averages (dᵢ + dⱼ)/2, i ≤ j; Hodges & Lehmann 1963), with its exact CI from
    inverting the test (Walsh averages W₍c+1₎ … W₍M−c₎, c the largest t with P(T⁺ ≤ t) ≤ α/2 under
    the untied null; Hollander & Wolfe, Nonparametric Statistical Methods, §3.3). With too few pairs
    for that confidence the interval is (−∞, ∞). ±∞ (a divergence on one side) is kept: it enters as a
    stand-in beyond every finite value, and an average that only the stand-in can produce is ±∞.
    Why here: scipy ships neither; tests/bench/test_stats.py inverts scipy's exact wilcoxon to check it."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan, math.nan, math.nan
    finite = np.abs(d[np.isfinite(d)])
    m = float(finite.max()) if finite.size else 0.0
    big = 3.0 * m + 1.0  # (big − m)/2 > m: an average with one stand-in lies beyond every finite average
    x = np.where(np.isposinf(d), big, np.where(np.isneginf(d), -big, d))
    i, j = np.triu_indices(n)
    walsh = np.sort((x[i] + x[j]) / 2)

    def back(v: float) -> float:
        return v if abs(v) <= m else math.copysign(math.inf, v)

    cdf = np.cumsum(signed_rank_null(n))
    below = np.nonzero(cdf <= (1 - confidence) / 2 + 1e-12)[0]
    if below.size == 0:
        lo, hi = -math.inf, math.inf
    else:
        c = int(below[-1])  # T⁺ ≤ c rejects: the interval drops the c smallest and c largest averages
        lo, hi = back(float(walsh[c])), back(float(walsh[len(walsh) - 1 - c]))
    return back(float(np.median(walsh))), lo, hi


def probability_of_improvement(d) -> float:
    """P(the arm beats the baseline on a seed), ties half: the paired form of rliable's
    probability of improvement."""
    d = np.asarray(d, dtype=float)
    return float(np.mean((d > 0) + 0.5 * (d == 0))) if len(d) else math.nan


def _bootstrap_one(statistic, x: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile bootstrap over seeds of a one-sample statistic (scipy)."""
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        v = statistic(x)
        return v, v
    res = stats.bootstrap((x,), statistic, vectorized=False, confidence_level=CONFIDENCE,
                          n_resamples=N_RESAMPLES, method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _paired_bootstrap(statistic, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile bootstrap over seeds, resampling (a_i, b_i) pairs together (scipy, paired=True)."""
    if len(a) < 2:
        return math.nan, math.nan
    point = statistic(a, b)
    res = stats.bootstrap((a, b), statistic, paired=True, vectorized=False, confidence_level=CONFIDENCE,
                          n_resamples=N_RESAMPLES, method="percentile", rng=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isnan(lo) or math.isnan(hi):  # every resample gave the same value (scipy: degenerate)
        return point, point
    return lo, hi


def _far_worst(finite: np.ndarray, direction: str) -> tuple[float, float]:
    """(span, stand-in): a finite value 10 spans beyond the data on the worse side, for order statistics
    that must see divergences as the worst values; anything further than one span out came from it."""
    span = float(finite.max() - finite.min()) + 1.0
    return span, float(finite.max() + 10 * span if direction == "minimize" else finite.min() - 10 * span)


def median_difference(a, b, direction: str, seed: int = 0) -> tuple[float, float, float]:
    """median(a) − median(b) in the metric's units with its paired percentile-bootstrap CI. Runs that
    diverged are the worst value: a median that falls on them is ±∞ ("most seeds diverged"), and so
    is a CI bound that needs them — computed on a finite stand-in placed far beyond the data (the
    median is an order statistic, so the stand-in changes which value is picked, never a finite one)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.concatenate([a, b])
    fin = both[np.isfinite(both)]
    if fin.size == 0:
        return math.nan, math.nan, math.nan
    span, far = _far_worst(fin, direction)
    sa, sb = np.where(np.isfinite(a), a, far), np.where(np.isfinite(b), b, far)

    def diff(x, y):
        return float(np.median(x) - np.median(y))

    def back(v: float) -> float:  # a value that only the stand-in can produce is ±∞
        return v if abs(v) <= span else math.copysign(math.inf, v)

    lo, hi = _paired_bootstrap(diff, sa, sb, seed)
    return back(diff(sa, sb)), back(lo), back(hi)


def median_ci(values, direction: str, seed: int = 0) -> tuple[float, float, float]:
    """The median of runs (divergences = the worst value, ±∞) with a percentile-bootstrap CI over
    seeds; a median or bound that falls on divergences is ±∞ (same stand-in as median_difference)."""
    v = np.asarray(values, dtype=float)
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return (worst(direction),) * 3 if v.size else (math.nan,) * 3
    span, far = _far_worst(fin, direction)
    sv = np.where(np.isfinite(v), v, far)

    def back(x: float) -> float:  # NaN (one seed: no interval) stays NaN
        return x if math.isnan(x) or fin.min() - span <= x <= fin.max() + span else worst(direction)

    lo, hi = _bootstrap_one(lambda x: float(np.median(x)), sv, seed)
    return back(float(np.median(sv))), back(lo), back(hi)


def seeds_for_power(d, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds a two-sided signed-rank test at `alpha` needs for `power` against the effect seen in
    `d`: Noether (1987, JASA 82:645) n = (z₁₋α/₂ + z_power)² / (3 (p′ − ½)²), p′ = P(D + D′ > 0)
    estimated over pairs of distinct seeds (ties half). ∞ when the observed effect is nil; NaN with
    fewer than two seeds. Checked against simulated power in benchmarks/calibration.py."""
    d = finite_stand_in(d)
    if len(d) < 2:
        return math.nan
    i, j = np.triu_indices(len(d), k=1)
    s = d[i] + d[j]
    p1 = float(np.mean((s > 0) + 0.5 * (s == 0)))
    if p1 == 0.5:
        return math.inf
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(math.ceil(z ** 2 / (3 * (p1 - 0.5) ** 2)))


def equivalence_p(d, margin: float) -> float:
    """TOST (Schuirmann 1987) with signed-rank tests: H₀ |effect| ≥ margin (metric units) against
    H₁ −margin < effect < margin; p = max of the two one-sided p-values. Small p: equivalence shown."""
    d = np.asarray(d, dtype=float)
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be > 0, got {margin}")
    return max(signed_rank_p(d + margin, "greater"), signed_rank_p(d - margin, "less"))


@dataclass
class Paired:
    """An arm against the baseline on the same seeds (values with divergences as the worst value)."""

    n: int
    p: float  # two-sided
    p_better: float  # one-sided: the arm is better
    p_worse: float  # one-sided: the arm is worse
    prob_improvement: float
    prob_improvement_ci: tuple[float, float]
    median_diff: float  # median(arm) − median(baseline), metric units (descriptive; not what the test is about)
    median_diff_ci: tuple[float, float]
    hodges_lehmann: float  # pseudo-median of arm − baseline per seed (metric units): the signed-rank test's estimand
    hodges_lehmann_ci: tuple[float, float]  # its exact CI (test inversion)
    seeds_needed: float  # for POWER at ALPHA against this effect (Noether)
    p_equivalent: float = math.nan  # TOST against the margin, where one is given

    def row(self) -> dict:
        """Flat, each CI beside its statistic (a CSV row)."""
        out = {}
        for k, v in asdict(self).items():
            if k.endswith("_ci"):
                out[f"{k}_low"], out[f"{k}_high"] = v
            else:
                out[k] = v
        return out


def paired(a, b, direction: str, margin: float | None = None, seed: int = 0) -> Paired:
    """Every number the reports state for one arm against the baseline, paired by seed. `a` and `b`
    are aligned by seed and already `scored` (divergences = worst)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need one value per seed on both sides, got {a.shape} and {b.shape}")
    d = improvement(a, b, direction)
    signs = np.sign(finite_stand_in(d))  # P(improvement) depends on the signs alone
    pi_ci = _bootstrap_one(probability_of_improvement, signs, seed)
    md, md_lo, md_hi = median_difference(a, b, direction, seed)
    sign = 1.0 if direction == "minimize" else -1.0
    hl, hl_lo, hl_hi = hodges_lehmann(-sign * d)  # arm − baseline: improvement d = sign·(b − a)
    return Paired(n=len(d), p=signed_rank_p(d), p_better=signed_rank_p(d, "greater"),
                  p_worse=signed_rank_p(d, "less"), prob_improvement=probability_of_improvement(d),
                  prob_improvement_ci=pi_ci, median_diff=md, median_diff_ci=(md_lo, md_hi),
                  hodges_lehmann=hl, hodges_lehmann_ci=(hl_lo, hl_hi),
                  seeds_needed=seeds_for_power(d),
                  p_equivalent=equivalence_p(d, margin) if margin else math.nan)


# Pocock's (1977) constant nominal two-sided level per look that spends α = 0.05 over K equally spaced
# looks (Jennison & Turnbull, Group Sequential Methods, table 2.1). Derived for normal statistics with
# independent increments; benchmarks/calibration.py measures it with the signed-rank test and Holm.
POCOCK = {1: 0.05, 2: 0.0294, 3: 0.0221, 4: 0.0182, 5: 0.0158}
# futility: an arm whose own two-sided p exceeds this at a look gets no more seeds. Non-binding (stopping
# early can only lower the false-positive rate); its cost in power is measured in calibration.json
FUTILITY = 0.5


def look_level(stages: int, alpha: float = ALPHA) -> float:
    """The nominal level at each look of a `stages`-look sequential design (α = 0.05 only)."""
    if alpha != 0.05:
        raise ValueError(f"Pocock's levels here are for α = 0.05, got {alpha}")
    return POCOCK[stages]


Verdict = Literal["reproduced", "not reproduced", "inconclusive"]


def claim_verdict(p_claimed: float, p_opposite: float, p_equivalent: float = math.nan,
                  alpha: float = ALPHA) -> Verdict:
    """The house rule: reproduced = significant in the claimed direction; not reproduced =
    significant the other way, or equivalence shown; otherwise inconclusive. p-values already
    corrected for the family (Holm) where the claim is one of several. Each direction is tested at
    α/2, so a decisive verdict either way has probability ≤ α under the null (at α per side it would
    be ≈ 2α: benchmarks/results/calibration.json, decisive_claim_verdict)."""
    if p_claimed < alpha / 2:
        return "reproduced"
    if p_opposite < alpha / 2 or p_equivalent < alpha:
        return "not reproduced"
    return "inconclusive"


def describe_needed(n_needed: float, n_have: int) -> str:
    """What would settle an inconclusive comparison, in words."""
    if math.isnan(n_needed):
        return "too few seeds to estimate the effect"
    if math.isinf(n_needed):
        return "no effect seen: no number of seeds would make it significant"
    return f"≈ {int(n_needed)} seeds would give 80 % power at this effect (have {n_have})"


# --- survival and expected best ------------------------------------------------------------------

def survival(durations, diverged) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate of P(no divergence by step t): a diverged run is an event at its step,
    every other run is right-censored at the steps it ran (scipy.stats.ecdf on CensoredData).
    Returns (steps, survival probability just after each step), starting at (0, 1)."""
    t = np.asarray(durations, dtype=float)
    e = np.asarray(diverged, dtype=bool)
    if not e.any():  # no event: the estimate is 1 throughout (scipy needs one uncensored point)
        return np.array([0.0, float(t.max()) if t.size else 0.0]), np.array([1.0, 1.0])
    sf = stats.ecdf(stats.CensoredData(uncensored=t[e], right=t[~e])).sf
    return np.concatenate([[0.0], sf.quantiles]), np.concatenate([[1.0], sf.probabilities])


def expected_best(values, n_max: int, direction: str) -> np.ndarray:
    """Expected best value after n = 1..n_max trials drawn with replacement from `values` (Dodge et
    al. 2019, "Show your work", eq. 1): E[max of n] = Σᵢ v₍ᵢ₎ ((i/N)ⁿ − ((i−1)/N)ⁿ), v sorted from
    worst to best. Values must be finite (callers put divergences at the study's worst value)."""
    v = np.sort(np.asarray(values, dtype=float))
    if direction == "minimize":
        v = v[::-1]  # worst (largest) first
    N = len(v)
    i = np.arange(1, N + 1)
    n = np.arange(1, n_max + 1)[:, None]
    weights = (i / N) ** n - ((i - 1) / N) ** n
    return weights @ v


def expected_best_band(values, n_max: int, direction: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 95 % percentile-bootstrap band (resampling the trials) around `expected_best`."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.all(v == v[0]):
        curve = expected_best(v, n_max, direction)
        return curve, curve
    res = stats.bootstrap((v,), lambda x: expected_best(x, n_max, direction), vectorized=False,
                          confidence_level=CONFIDENCE, n_resamples=500, method="percentile",
                          rng=np.random.default_rng(seed))
    return np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
