"""Calibration by simulation of every test the reports use (no training): their false-positive
rate under the null and their power at stated effects and seed counts.

Each simulated seed draws a shared seed effect (what pairing removes) plus per-run noise for the
two arms; runs diverge independently (value = the worst, as in the reports); three noise shapes —
normal, heavy-tailed (t, 3 d.o.f.) and coarse (rounded to integers: ties, like modes captured).
Tests, as bench.stats and bench.papers use them:
- signed_rank_two_sided: an arm vs the baseline in confirm.csv (reject: p < α);
- signed_rank_one_sided: a paper claim "reproduced" (claims_vs_baseline, one arm);
- holm_4_arms: four null arms and one baseline on the same seeds, Holm (family-wise error: any rejection);
- tost_equivalence: "equivalent" declared when the true difference is the margin (H₀'s boundary);
- non_inferiority: Lucic's "NS not worse than a loss by the margin" at the boundary;
- superiority_by_margin: Lucic's "a loss better than NS by more than the margin" at the boundary.
The margin tests are calibrated at their boundary (true gain = margin on every seed), which exists only
without divergences and rounding (a seed where both runs diverge is a tie, gain 0).
Power: the two-sided test at shifts of 0.5, 1 and 1.5 noise s.d. with 6, 10 and 20 seeds, with and
without divergences; and at the seed count Noether's formula (stats.seeds_for_power) asks for.

    python benchmarks/calibration.py                 # 4,000 simulations each → benchmarks/results/calibration.json
    python benchmarks/calibration.py --sims 200 --out /tmp/cal.json   # the small mode the tests run
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

from bench import stats

ALPHA = stats.ALPHA
SEEDS = (6, 10, 20)  # 5 seeds cannot reject at all: the smallest two-sided exact p is 2/2⁵ = 0.0625
NOISES = ("normal", "heavy", "coarse")
DIVERGENCE = (0.0, 0.15, 0.3)
MARGIN = 1.0


def draw(rng: np.random.Generator, n: int, shift: float, noise: str, p_div: float) -> tuple[np.ndarray, np.ndarray]:
    """(arm, baseline) per seed, minimized; the arm is better by `shift`; diverged runs = +∞."""
    seed_effect = rng.normal(0, 1, n)
    if noise == "heavy":
        e = rng.standard_t(3, (2, n)) / math.sqrt(3)  # unit variance
    else:
        e = rng.normal(0, 1, (2, n))
    a, b = 10 + seed_effect + e[0] - shift, 10 + seed_effect + e[1]
    if noise == "coarse":
        a, b = np.round(a), np.round(b)
    a[rng.random(n) < p_div] = math.inf
    b[rng.random(n) < p_div] = math.inf
    return a, b


def improvement(a, b):
    return stats.improvement(a, b, "minimize")


def null_rates(sims: int, seed: int) -> dict:
    """False-positive rate of each test in every scenario, and the worst scenario per test."""
    rng = np.random.default_rng(seed)
    per: dict[str, dict[str, float]] = {k: {} for k in ("signed_rank_two_sided", "signed_rank_one_sided",
                                                         "holm_4_arms", "tost_equivalence", "non_inferiority",
                                                         "superiority_by_margin")}
    for n, noise, p_div in itertools.product(SEEDS, NOISES, DIVERGENCE):
        key = f"n={n},{noise},divergence={p_div}"
        hits = dict.fromkeys(per, 0)
        boundary = p_div == 0 and noise != "coarse"  # see below
        for _ in range(sims):
            a, b = draw(rng, n, 0.0, noise, p_div)
            d = improvement(a, b)
            hits["signed_rank_two_sided"] += stats.signed_rank_p(d) < ALPHA
            hits["signed_rank_one_sided"] += stats.signed_rank_p(d, "greater") < ALPHA
            hits["holm_4_arms"] += _holm_family(rng, n, noise, p_div)
            if boundary:  # the margin hypotheses at their boundary: the true gain is exactly MARGIN on every
                # seed — defined only without divergences (a seed where both diverge is a tie, gain 0) and
                # without rounding (which moves the difference off the margin)
                d_m = improvement(*draw(rng, n, MARGIN, noise, 0.0))
                hits["tost_equivalence"] += stats.equivalence_p(d_m, MARGIN) < ALPHA
                hits["non_inferiority"] += stats.signed_rank_p(d_m - MARGIN, "less") < ALPHA
                hits["superiority_by_margin"] += stats.signed_rank_p(d_m - MARGIN, "greater") < ALPHA
        for k in per:
            if boundary or k not in ("tost_equivalence", "non_inferiority", "superiority_by_margin"):
                per[k][key] = hits[k] / sims
    return {k: {"max": max(v.values()), "by_scenario": v} for k, v in per.items()}


def _holm_family(rng: np.random.Generator, n: int, noise: str, p_div: float) -> bool:
    """One confirmation under the null: four arms and the baseline on the same seeds (one shared seed
    effect), each arm tested against the baseline, Holm over the four; True if any is rejected."""
    s = rng.normal(0, 1, n)
    e = rng.standard_t(3, (5, n)) / math.sqrt(3) if noise == "heavy" else rng.normal(0, 1, (5, n))
    runs = 10 + s + e
    if noise == "coarse":
        runs = np.round(runs)
    runs[rng.random((5, n)) < p_div] = math.inf
    ps = [stats.signed_rank_p(improvement(runs[k], runs[4])) for k in range(4)]
    return min(stats.holm(ps)) < ALPHA


def power(sims: int, seed: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    out = {}
    for shift, n, p_div in itertools.product((0.5, 1.0, 1.5), SEEDS, (0.0, 0.15)):
        rej = sum(stats.signed_rank_p(improvement(*draw(rng, n, shift, "normal", p_div))) < ALPHA for _ in range(sims))
        out[f"shift={shift}sd,n={n},divergence={p_div}"] = rej / sims
    return out


def noether_check(sims: int, seed: int) -> dict:
    """Power at the seed count Noether's formula asks for (target 0.8), normal noise, no divergence:
    D ~ N(δ, 2), so p′ = P(D + D′ > 0) = Φ(δ); the formula is an approximation, the simulation says how good."""
    rng = np.random.default_rng(seed + 2)
    out = {}
    for shift in (0.5, 0.75, 1.0):
        p1 = float(sps.norm.cdf(shift))
        z = sps.norm.ppf(1 - ALPHA / 2) + sps.norm.ppf(stats.POWER)
        n = math.ceil(z ** 2 / (3 * (p1 - 0.5) ** 2))
        rej = sum(stats.signed_rank_p(improvement(*draw(rng, n, shift, "normal", 0.0))) < ALPHA for _ in range(sims))
        out[f"shift={shift}sd"] = {"seeds": n, "simulated_power": rej / sims}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calibration.json")
    args = ap.parse_args(argv)
    if args.sims < 1:
        ap.error(f"--sims must be a positive number of simulations, got {args.sims}")  # one line, exit 2
    t0 = time.perf_counter()
    fpr = null_rates(args.sims, args.seed)
    res = {"alpha": ALPHA, "simulations": args.sims, "seed": args.seed,
           "false_positive_rate": fpr, "power": {"signed_rank_two_sided": power(args.sims, args.seed)},
           "noether": noether_check(args.sims, args.seed),
           "monte_carlo_se_at_alpha": math.sqrt(ALPHA * (1 - ALPHA) / args.sims),
           "seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{'test':32s} max false-positive rate over scenarios (α = {ALPHA}, {args.sims} simulations)")
    for k, v in fpr.items():
        print(f"{k:32s} {v['max']:.4f}")
    print("power of the two-sided paired test (normal noise):")
    for k, v in res["power"]["signed_rank_two_sided"].items():
        print(f"  {k:36s} {v:.3f}")
    for k, v in res["noether"].items():
        print(f"  Noether {k}: {v['seeds']} seeds → simulated power {v['simulated_power']:.3f}")
    print(f"wrote {args.out} ({res['seconds']} s)")
    return res


if __name__ == "__main__":
    main()
