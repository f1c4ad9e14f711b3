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
Non-exchangeable nulls (issue 29): the arms differ in shape but not in what the test is about —
- skewed_equal_pseudomedian: the arm's noise is a centred exponential with twice the baseline's
  spread, shifted so that the paired differences' pseudo-median (the Hodges–Lehmann estimand) is 0;
- equal_medians_unequal_divergence: the arm diverges on 20 % of seeds and is better where it runs,
  so that its median (divergences the worst value) equals the baseline's. Not the test's null (the
  pseudo-median of the differences is not 0): reported so a reader sees what "equal medians" gives.
decisive_claim_verdict: a paper claim's verdict is decisive either way (reproduced or not) under the
null, with each direction at α/2 as bench.stats.claim_verdict does. holm_power: the power to find one
arm better by 1 s.d. among m arms (the others null) with Holm over all m, as a confirmation table
tests them. sequential_confirmation: the default design (spec.Confirm: 4 looks of 10 seeds) chosen as the
cheapest with power ≥ 0.8 at 1 s.d. under Holm over 4 arms and a family-wise null rate ≤ 0.06.

racing: seed racing in search (bench.racing) — per WilcoxonPruner threshold and race length, over scenarios of
how far an arm's configs spread (in seed s.d.), the share of seed-runs saved against a full race and the
false-prune rate (the config a full race would pick, pruned); the default threshold is the largest with
false prunes ≤ 0.05 everywhere.

    python benchmarks/calibration.py --only racing --sims 300    # the racing section (its own run), updated in place
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


def _pseudomedian(draw_d, rng: np.random.Generator, n: int = 400_000) -> float:
    """The population pseudo-median of D (median of (D + D′)/2 over independent pairs), by simulation."""
    return float(np.median((draw_d(rng, n) + draw_d(rng, n)) / 2))


def _skewed_d(rng: np.random.Generator, n: int) -> np.ndarray:
    """Arm − baseline without the shared seed effect: 2·(Exp(1) − 1) − N(0, 1)."""
    return 2.0 * (rng.exponential(1.0, n) - 1.0) - rng.normal(0, 1, n)


def nonexchangeable_nulls(sims: int, seed: int) -> dict:
    """Two-sided rejection rate of the confirmation's test under the non-exchangeable nulls (module doc)."""
    rng = np.random.default_rng(seed + 3)
    centre = _pseudomedian(_skewed_d, np.random.default_rng(seed + 4))
    mu = sps.norm.ppf(1 - 0.5 / 0.8)  # arm ~ N(mu, 1) on 80 % of seeds: P(arm ≤ 0) = 0.8 Φ(−mu) = ½
    out: dict[str, dict[str, float]] = {"skewed_equal_pseudomedian": {}, "equal_medians_unequal_divergence": {}}
    for n in SEEDS:
        hits_skew = hits_div = 0
        for _ in range(sims):
            s = rng.normal(0, 1, n)
            b = 10 + s + rng.normal(0, 1, n)
            a = b + _skewed_d(rng, n) - centre  # minimized; d's pseudo-median is 0
            hits_skew += stats.signed_rank_p(improvement(a, b)) < ALPHA
            b2 = 10 + rng.normal(0, 1, n)
            a2 = 10 + mu + rng.normal(0, 1, n)
            a2[rng.random(n) < 0.2] = math.inf
            hits_div += stats.signed_rank_p(improvement(a2, b2)) < ALPHA
        out["skewed_equal_pseudomedian"][f"n={n}"] = hits_skew / sims
        out["equal_medians_unequal_divergence"][f"n={n}"] = hits_div / sims
    return {k: {"max": max(v.values()), "by_scenario": v} for k, v in out.items()}


def decisive_claim_rate(sims: int, seed: int) -> dict:
    """P(a paper claim gets a decisive verdict, either way) under the null, one claim, no divergence."""
    rng = np.random.default_rng(seed + 5)
    out = {}
    for n, noise in itertools.product(SEEDS, NOISES):
        hits = 0
        for _ in range(sims):
            d = improvement(*draw(rng, n, 0.0, noise, 0.0))
            v = stats.claim_verdict(stats.signed_rank_p(d, "greater"), stats.signed_rank_p(d, "less"))
            hits += v != "inconclusive"
        out[f"n={n},{noise}"] = hits / sims
    return {"max": max(out.values()), "by_scenario": out}


HOLM_SEEDS = (10, 15, 20, 25, 30)
HOLM_FAMILIES = (4, 8)  # ring_seeds' four arms; mnist_reg's eight (six GAN, four VAE arms less two baselines)


def holm_power(sims: int, seed: int, shift: float = 1.0) -> dict:
    """Power to call one arm (better by `shift` s.d.) better, with m − 1 null arms beside it and Holm over
    all m, normal noise, every arm against the baseline on the same seeds."""
    rng = np.random.default_rng(seed + 6)
    out = {}
    for m, n in itertools.product(HOLM_FAMILIES, HOLM_SEEDS):
        hits = 0
        for _ in range(sims):
            runs = 10 + rng.normal(0, 1, n) + rng.normal(0, 1, (m + 1, n))
            runs[0] -= shift
            ds = [improvement(runs[k], runs[m]) for k in range(m)]
            ps = stats.holm([stats.signed_rank_p(d) for d in ds])
            hits += ps[0] < ALPHA and stats.signed_rank_p(ds[0], "greater") < stats.signed_rank_p(ds[0], "less")
        out[f"m={m},n={n}"] = hits / sims
    smallest = next((n for n in HOLM_SEEDS if out[f"m=4,n={n}"] >= stats.POWER), None)
    return {"shift_sd": shift, "by_scenario": out, "smallest_seeds_for_0.8_at_m=4": smallest}


def _sequential_once(runs: np.ndarray, stage: int, stages: int, level: float) -> tuple[list[bool], int]:
    """One confirmation of m arms (rows 0..m−1) against the baseline (row m) as bench.confirm.targets runs
    it: looks after every `stage` seeds; an arm stops once Holm's p over every arm's current p is below
    `level`, or (futility) once its own two-sided p exceeds stats.FUTILITY; the others (and the baseline)
    get `stage` more seeds, up to `stages` looks. Returns which
    arms were called significant and how many trainings it spent."""
    m = runs.shape[0] - 1
    n = [stage] * m
    decided = [False] * m
    for look in range(1, stages + 1):
        ps = [stats.signed_rank_p(improvement(runs[k, :n[k]], runs[m, :n[k]])) for k in range(m)]
        holm = stats.holm(ps)
        decided = [d or h < level for d, h in zip(decided, holm)]
        stopped = [d or p > stats.FUTILITY for d, p in zip(decided, ps)]  # non-binding futility (bench.confirm)
        if look == stages or all(stopped):
            break
        n = [x if st else x + stage for x, st in zip(n, stopped)]
    return decided, sum(n) + max(n)


def sequential(sims: int, seed: int, m: int = 4, stage: int = 10) -> dict:
    """Family-wise false-positive rate under the null and power at 1 s.d. (one arm better, m − 1 null)
    of the sequential designs (3 or 4 looks at Pocock's level, futility at p > stats.FUTILITY) against fixed
    designs of 10, 20 and 30 seeds,
    with the trainings each spends per confirmation."""
    rng = np.random.default_rng(seed + 7)
    designs = {"fixed-10": (10, 1), "fixed-20": (20, 1), "fixed-30": (30, 1), "sequential-3x10": (stage, 3),
               "sequential-4x10": (stage, 4)}  # the default (spec.Confirm: seeds 10, stages 4)
    out: dict = {}
    for name, (size, looks) in designs.items():
        level = stats.look_level(looks)
        for noise, p_div in (("normal", 0.0), ("heavy", 0.0), ("coarse", 0.15), ("normal", 0.3)):
            fp = spent = 0
            for _ in range(sims):
                n = size * looks
                runs = 10 + rng.normal(0, 1, n) + (rng.standard_t(3, (m + 1, n)) / math.sqrt(3) if noise == "heavy"
                                                   else rng.normal(0, 1, (m + 1, n)))
                if noise == "coarse":
                    runs = np.round(runs)
                runs[rng.random((m + 1, n)) < p_div] = math.inf
                dec, cost = _sequential_once(runs, size, looks, level)
                fp += any(dec)
                spent += cost
            out.setdefault(name, {})[f"null,{noise},divergence={p_div}"] = fp / sims
            out[name].setdefault("trainings_under_null", spent / sims)
        hits = spent = 0
        for _ in range(sims):
            n = size * looks
            runs = 10 + rng.normal(0, 1, n) + rng.normal(0, 1, (m + 1, n))
            runs[0] -= 1.0
            dec, cost = _sequential_once(runs, size, looks, level)
            hits += dec[0]
            spent += cost
        out[name]["power_1sd"] = hits / sims
        out[name]["trainings_at_1sd"] = spent / sims
    for v in out.values():
        v["max_null_rate"] = max(x for k, x in v.items() if k.startswith("null"))
    return {"arms": m, "designs": out}


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


# --- seed racing (bench.racing) -------------------------------------------------------------------------
RACE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2)
RACE_SCENARIOS = {  # spread of the configs' true values (noise s.d.), shared seed effect s.d., noise, divergence
    "spread=0.5sd": (0.5, 1.0, "normal", 0.0), "spread=1sd": (1.0, 1.0, "normal", 0.0),
    "spread=2sd": (2.0, 1.0, "normal", 0.0),
    # mnist_reg's committed search: within an arm, its configs' FIDs spread a median ≈ 10× the seed s.d. of
    # the arm's confirmation runs (0.3× to 55×); the ring's 0.1× to 1× (reports/*/trials.csv)
    "spread=8sd": (8.0, 1.0, "normal", 0.0), "spread=1sd,heavy": (1.0, 1.0, "heavy", 0.0),
    "spread=1sd,divergence=0.1": (1.0, 1.0, "normal", 0.1), "spread=1sd,unpaired": (1.0, 0.0, "normal", 0.0)}


def _race_values(rng: np.random.Generator, configs: int, seeds: int, scenario: tuple) -> np.ndarray:
    """configs × seeds values (minimized): a config's true value + the race seed's shared effect + noise."""
    spread, shared, noise, p_div = scenario
    mu = rng.normal(0, spread, (configs, 1))
    e = rng.standard_t(3, (configs, seeds)) / math.sqrt(3) if noise == "heavy" else rng.normal(0, 1, (configs, seeds))
    x = 10 + mu + shared * rng.normal(0, 1, (1, seeds)) + e
    x[rng.random((configs, seeds)) < p_div] = math.inf
    return x


def race_once(values: np.ndarray, p: float) -> tuple[int, list[bool]]:
    """One arm's search raced as bench.search runs it: trial c reports its seed-k value (bench.racing.race_value)
    at step k, in order, and stops when bench.racing.ArmWilcoxonPruner says so. Returns the seed-runs spent and
    which trials completed. An in-memory Optuna study, so the pruner under test is the one `bench run` uses."""
    import warnings

    import optuna

    from bench import racing
    from bench.arms import ARM_ATTR

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per in-memory study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning, and the pruner's warnings about worst values
        study = optuna.create_study(direction="minimize", pruner=racing.ArmWilcoxonPruner(p_threshold=p))
        spent, complete = 0, []
        for row in values:
            trial = study.ask()
            trial.set_user_attr(ARM_ATTR, "arm")
            got = []
            for k, v in enumerate(row):
                got.append(racing.race_value(v, math.isfinite(v), "minimize"))
                spent += 1
                trial.report(got[-1], k)
                if k < len(row) - 1 and trial.should_prune():
                    break
            if len(got) == len(row):
                trial.set_user_attr(racing.RACE_ATTR, got)
                study.tell(trial, racing.race_summary(got))
            else:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            complete.append(len(got) == len(row))
    return spent, complete


def earliest_prune(p: float) -> int:
    """The fewest race seeds after which WilcoxonPruner can prune at threshold p: its test is one-sided and
    exact, so n seeds all worse than the best give p = 2⁻ⁿ, and it prunes when p < threshold (p = 0.1: 4)."""
    return next(n for n in range(2, 64) if 2.0 ** -n < p)


def race_ceiling(configs: int, seeds: int, p: float) -> float:
    """The most a race of `configs` trials on up to `seeds` seeds can save, when no trial that beats every
    earlier one is pruned (each such trial is then the best, so it runs in full): on average H_K of K trials
    in random order do (the first among them), and every other one stops at earliest_prune(p) seeds or later.
    Why it bounds the issue's goal: 10 configs, 8 seeds, p = 0.1 → (10 − 2.93)/10 × (1 − 4/8) = 35 %."""
    records = sum(1 / k for k in range(1, configs + 1))
    return (configs - records) / configs * max(0.0, 1 - earliest_prune(p) / seeds)


def racing(sims: int, seed: int, configs: int = 10, seeds: tuple[int, ...] = (5, 8, 12, 16)) -> dict:
    """Seed racing (bench.racing) per threshold, race length and scenario: the share of seed-runs saved
    against a full race, and the false-prune rate — how often the configuration a full race picks (the
    best median over every seed: the one confirmation would re-train) is pruned — beside the most a race
    can save (race_ceiling). A spec's default threshold for its race length (bench.racing.calibrated_p) is
    the largest with a false-prune rate ≤ 0.05 in every scenario (at 5 seeds, 0.1 below that)."""
    from bench import racing as r

    out: dict = {}
    for n_seeds in seeds:
        for p in RACE_THRESHOLDS:
            rows = {}
            for name, scenario in RACE_SCENARIOS.items():
                rng = np.random.default_rng(seed + 11)  # common random numbers across thresholds
                saved = false = 0.0
                for _ in range(sims):
                    values = _race_values(rng, configs, n_seeds, scenario)
                    full = [r.race_summary([r.race_value(v, math.isfinite(v), "minimize") for v in row]) for row in values]
                    spent, complete = race_once(values, p)
                    saved += 1 - spent / values.size
                    false += not complete[int(np.argmin(full))]
                rows[name] = {"saved": round(saved / sims, 4), "false_prune": round(false / sims, 4)}
            out.setdefault(f"seeds_per_trial={n_seeds}", {})[f"p={p}"] = {
                "scenarios": rows, "min_saved": min(v["saved"] for v in rows.values()),
                "max_false_prune": max(v["false_prune"] for v in rows.values()),
                "ceiling": round(race_ceiling(configs, n_seeds, p), 4)}
    ok = {k: [float(pk[2:]) for pk, v in by_p.items() if v["max_false_prune"] <= 0.05] for k, by_p in out.items()}
    return {"configs_per_arm": configs, "simulations": sims, "by_design": out,
            "largest_p_with_false_prune_le_0.05": {k: (max(v) if v else None) for k, v in ok.items()},
            "calibrated_p": {k: r.calibrated_p(int(k.split("=")[1])) for k in out}}


def _print_racing(res: dict) -> None:
    print(f"seed racing ({res['configs_per_arm']} configs per arm, {res['simulations']} simulations): "
          "share of seed-runs saved (min over scenarios) · false prunes (max)")
    for design, by_p in res["by_design"].items():
        for p, v in by_p.items():
            print(f"  {design:20s} {p:7s} saved ≥ {v['min_saved']:.3f} (ceiling {v['ceiling']:.3f}) · "
                  f"false prunes ≤ {v['max_false_prune']:.3f}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calibration.json")
    ap.add_argument("--only", choices=["racing"], help="run one section and update it in --out (kept otherwise)")
    args = ap.parse_args(argv)
    if args.sims < 1:
        ap.error(f"--sims must be a positive number of simulations, got {args.sims}")  # one line, exit 2
    t0 = time.perf_counter()
    if args.only == "racing":
        res = json.loads(args.out.read_text()) if args.out.exists() else {}
        res["racing"] = racing(args.sims, args.seed)
        res["racing"]["seconds"] = round(time.perf_counter() - t0, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
        _print_racing(res["racing"])
        print(f"wrote {args.out} ({res['racing']['seconds']} s)")
        return res
    fpr = null_rates(args.sims, args.seed)
    fpr.update(nonexchangeable_nulls(args.sims, args.seed))
    relied = {k: v for k, v in fpr.items() if k != "equal_medians_unequal_divergence"}
    res = {"alpha": ALPHA, "simulations": args.sims, "seed": args.seed,
           "false_positive_rate": fpr,
           "not_the_tests_null": ["equal_medians_unequal_divergence"],
           "max_rate_the_reports_rely_on": max(v["max"] for v in relied.values()),
           "decisive_claim_verdict": decisive_claim_rate(args.sims, args.seed),
           "sequential_confirmation": sequential(max(200, args.sims // 2), args.seed),
           "power": {"signed_rank_two_sided": power(args.sims, args.seed),
                     "holm": holm_power(max(200, args.sims // 4), args.seed)},
           "noether": noether_check(args.sims, args.seed),
           "monte_carlo_se_at_alpha": math.sqrt(ALPHA * (1 - ALPHA) / args.sims),
           "seconds": round(time.perf_counter() - t0, 1)}
    if args.out.exists() and "racing" in (old := json.loads(args.out.read_text())):
        res["racing"] = old["racing"]  # its own run (--only racing): Optuna studies, ~10× slower per simulation
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{'test':32s} max false-positive rate over scenarios (α = {ALPHA}, {args.sims} simulations)")
    for k, v in fpr.items():
        print(f"{k:32s} {v['max']:.4f}")
    print("power of the two-sided paired test (normal noise):")
    for k, v in res["power"]["signed_rank_two_sided"].items():
        print(f"  {k:36s} {v:.3f}")
    print(f"decisive claim verdict (either way) under the null: max {res['decisive_claim_verdict']['max']:.4f}")
    h = res["power"]["holm"]
    print(f"power with Holm, one arm better by {h['shift_sd']} s.d.:")
    for k, v in h["by_scenario"].items():
        print(f"  {k:20s} {v:.3f}")
    print(f"  smallest seed count with power ≥ 0.8 at m = 4: {h['smallest_seeds_for_0.8_at_m=4']}")
    print("confirmation designs (4 arms + baseline; Holm; family-wise null rate, power at 1 s.d., trainings):")
    for k, v in res["sequential_confirmation"]["designs"].items():
        print(f"  {k:16s} null ≤ {v['max_null_rate']:.3f} · power {v['power_1sd']:.3f} · "
              f"{v['trainings_under_null']:.0f} trainings (null), {v['trainings_at_1sd']:.0f} (1 s.d.)")
    for k, v in res["noether"].items():
        print(f"  Noether {k}: {v['seeds']} seeds → simulated power {v['simulated_power']:.3f}")
    if "racing" in res:
        _print_racing(res["racing"])
    print(f"wrote {args.out} ({res['seconds']} s)")
    return res


if __name__ == "__main__":
    main()
