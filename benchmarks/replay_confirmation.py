"""Trainings per verdict of the confirmation designs, replayed on the committed studies' per-seed data
(no new training): fixed 10 seeds, fixed 20 seeds, and the sequential default (4 looks of 10 seeds at
Pocock's level, futility at p > 0.5: bench.spec.Confirm, bench.confirm.targets).

Each replicate draws confirmation seeds with replacement from a committed study's confirmation seeds —
the same draw for every arm, so the pairing by seed is kept — and runs bench.confirm itself on them:
`targets` says which arms get more seeds at each look, `table` gives the verdicts. A verdict is decisive
when it is "better", "worse" or "equivalent"; gated arms ("did not train") and baselines spend their
trainings but carry none. Reported per study and design: trainings, decisive verdicts, trainings per
decisive verdict, and how often each arm's replayed verdict agrees with the committed one.

    python benchmarks/replay_confirmation.py                        # 100 replicates → results/replay-confirmation.json
    python benchmarks/replay_confirmation.py --sims 5 --out /tmp/r.json   # the small mode the tests run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench import api, confirm

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ("mnist_reg", "ring_seeds")  # committed reports with per-seed confirmation runs (reports/STUDY/trials.csv)
DESIGNS = {"fixed-10": (10, 1), "fixed-20": (20, 1), "sequential-4x10": (10, 4)}
DECISIVE = ("better", "worse", "equivalent")


def _resampled(conf: pd.DataFrame, draw: np.ndarray) -> pd.DataFrame:
    """Confirmation rows for new seeds 0..len(draw)−1: new seed j is committed seed draw[j], for every arm."""
    by_seed = {s: g for s, g in conf.groupby("confirm_seed")}
    return pd.concat([by_seed[s].assign(confirm_seed=j) for j, s in enumerate(draw)], ignore_index=True)


def replay_once(df: pd.DataFrame, spec, arms: dict[str, int], pool: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """One confirmation as `bench run` performs it on the seeds of `pool`: the looks that bench.confirm.targets
    asks for, then the table. Returns the trainings spent and the final table."""
    search = df[df["confirm_arm"].isna()]
    have = {a: spec.confirm.seeds for a in arms}
    while True:
        runs = pd.concat([pool[(pool["confirm_arm"] == a) & (pool["confirm_seed"] < n)] for a, n in have.items()])
        frame = pd.concat([search, runs], ignore_index=True)
        want = confirm.targets(frame, spec, arms)
        if all(want[a] <= have[a] for a in arms):
            return sum(have.values()), confirm.table(frame, spec, arms)
        have = {a: max(have[a], want[a]) for a in arms}


def replay_study(name: str, sims: int, rng: np.random.Generator) -> dict:
    df = pd.read_csv(ROOT / "reports" / name / "trials.csv")
    base = api.load_spec(name)
    conf = df[df["confirm_arm"].notna()]
    arms = {a: int(g["confirm_of"].iloc[0]) for a, g in conf.groupby("confirm_arm")}
    committed = dict(confirm.table(df, base, arms)[["arm", "verdict"]].itertuples(index=False))
    seeds = np.array(sorted(conf["confirm_seed"].unique()))
    out = {"committed_seeds": int(len(seeds)), "arms": len(arms), "designs": {}}
    for design, (n, looks) in DESIGNS.items():
        spec = base.model_copy(update={"confirm": base.confirm.model_copy(update={"seeds": n, "stages": looks})})
        spent = decisive = 0
        agree = {a: 0 for a in arms}
        for _ in range(sims):
            cost, tab = replay_once(df, spec, arms, _resampled(conf, rng.choice(seeds, size=n * looks)))
            spent += cost
            verdicts = dict(zip(tab["arm"], tab["verdict"]))
            decisive += sum(v.startswith(DECISIVE) for v in verdicts.values())
            for a in arms:
                agree[a] += verdicts[a].split(" ")[0] == committed[a].split(" ")[0]
        out["designs"][design] = {
            "trainings": spent / sims, "decisive_verdicts": decisive / sims,
            "trainings_per_decisive_verdict": (spent / decisive) if decisive else None,
            "agrees_with_committed": {a: agree[a] / sims for a in arms}}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "replay-confirmation.json")
    args = ap.parse_args(argv)
    if args.sims < 1:
        ap.error(f"--sims must be a positive number of replicates, got {args.sims}")
    t0, rng = time.perf_counter(), np.random.default_rng(args.seed)
    res = {"replicates": args.sims, "seed": args.seed,
           "studies": {name: replay_study(name, args.sims, rng) for name in STUDIES}}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{'study':12s} {'design':16s} trainings  decisive  per decisive verdict")
    for name, r in res["studies"].items():
        for design, d in r["designs"].items():
            per = d["trainings_per_decisive_verdict"]
            print(f"{name:12s} {design:16s} {d['trainings']:9.1f} {d['decisive_verdicts']:9.2f}  "
                  f"{'—' if per is None else f'{per:.1f}'}")
    print(f"wrote {args.out} ({res['seconds']} s)")
    return res


if __name__ == "__main__":
    main()
