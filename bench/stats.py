"""The statistics a report states: seed confidence intervals and regularizer-vs-baseline tests.

Everything here is scipy's own computation (bootstrap, Mann-Whitney U) plus the two formulas scipy
does not ship: Holm's step-down correction and the common-language effect size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000


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


@dataclass
class Comparison:
    u: float
    p: float
    better: float  # P(a trial of `a` beats a trial of `b`), ties counted half (common-language effect size)
    n_a: int
    n_b: int


def compare(a, b, direction: str = "minimize") -> Comparison:
    """Two-sided Mann-Whitney U of `a` against `b` (scipy), with the probability that a random value
    of `a` is better than a random value of `b` in the metric's direction. Diverged trials should be
    passed as the worst value (±inf), so instability counts against a regularizer."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    res = stats.mannwhitneyu(a, b, alternative="two-sided")
    frac_a_greater = res.statistic / (len(a) * len(b))  # U₁/(n₁n₂): P(a > b) + ½P(a = b)
    return Comparison(u=float(res.statistic), p=float(res.pvalue),
                      better=float(1 - frac_a_greater if direction == "minimize" else frac_a_greater),
                      n_a=len(a), n_b=len(b))
