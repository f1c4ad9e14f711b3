"""stabgen beside other work on the CPU: how steady `--plan`'s prices are, and what OpenMP's wait policy does to
a one-process run's step. Run it on an otherwise idle machine; the loads are its own.

1. OpenMP's wait policy (`--only omp`). A study's training step at every torch thread, timed with libgomp's
   default policy (its threads spin, waiting for each other at every parallel op) and with
   OMP_WAIT_POLICY=PASSIVE (they sleep), quiet and beside one busy process. Why: beside other work a
   spinning thread holds the core that the thread it waits for needs (beside an Optuna process, the ring's
   2-thread step once took 284 ms against 5 ms with PASSIVE, 2026-12-08); quiet, a sleeping thread pays
   its wake-up at every op. `bench` leaves the policy to the environment: its default layout, --jobs auto,
   trains in one-thread processes, which wait for no other thread. Each timing is a fresh subprocess
   (libgomp reads the variable when torch loads).
2. The plan's step probes (`--only plan`): bench.papers.plan._step_seconds, what every plan row is priced
   from, repeated quiet and beside a load, by the old rule (the fastest of 3 runs) and today's (3 to 8,
   until the two fastest of each kind agree within 5 %), with the share of the CPUs the load took as the
   plan measures it (stabgen.hardware.BusyElsewhere). Loads, each one other process on one core: bursts
   (busy a random 0.05–0.4 s, then idle as long: an editor, a test run) and steady (a second training).
   A steady load slows every run alike, which no fastest-of rule can see: the plan's busy-CPU line says it.

Printed: ratios against the quiet machine or the default policy, in the same run.

    python benchmarks/under_load.py --studies ring_seeds mnist_reg
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.papers import plan as pp
from bench.plan import arm_config
from bench.arms import arms
from bench.spec import load
from stabgen.hardware import BusyElsewhere, describe, slug

POLICIES = {"default (spin)": None, "PASSIVE": "PASSIVE"}
PROBE = """
import sys, torch
from bench.arms import arms
from bench.papers import plan as pp
from bench.plan import arm_config
from bench.spec import load
spec = load(sys.argv[1])
print(1000 * pp._step_seconds(arm_config(spec, arms(spec)[0]), "cpu", None, max_repeats=3))
"""


def step_ms(study: str, policy: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | ({"OMP_WAIT_POLICY": policy} if policy else {})
    r = subprocess.run([sys.executable, "-c", PROBE, study], env=env, capture_output=True, text=True, check=True)
    return round(float(r.stdout.strip().splitlines()[-1]), 3)


RULES = {"fastest of 3": 3, f"3 to {pp.MAX_REPEATS}, until settled": pp.MAX_REPEATS}


def _load(kind: str, stop) -> None:
    rng = random.Random(0)
    while not stop.is_set():
        busy = rng.uniform(0.05, 0.4) if kind == "bursts" else 1.0
        end = time.perf_counter() + busy
        while time.perf_counter() < end:
            pass
        if kind == "bursts":
            time.sleep(busy)


def prices(study: str, kind: str | None, pricings: int) -> dict:
    """`pricings` step prices (ms per step) of the study's first arm by each rule, beside a load of `kind`."""
    spec = load(study)
    cfg = arm_config(spec, arms(spec)[0])
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_load, args=(kind, stop), daemon=True) if kind else None
    if proc:
        proc.start()
        time.sleep(1.0)
    out: dict = {}
    try:
        with BusyElsewhere() as busy:
            for rule, most in RULES.items():
                out[rule] = [round(1000 * pp._step_seconds(cfg, "cpu", None, max_repeats=most), 3)
                             for _ in range(pricings)]
    finally:
        if proc:
            stop.set()
            proc.join()
    out["busy elsewhere"] = round(busy.share, 3) if busy.share is not None else None
    return out


def omp(study: str, repeats: int) -> dict:
    rows: dict = {}
    for kind in ("quiet", "one busy process"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if kind != "quiet" else None
        try:
            rows[kind] = {name: sorted(step_ms(study, p) for _ in range(repeats)) for name, p in POLICIES.items()}
        finally:
            if busy:
                busy.kill()
                busy.wait()
    for kind, got in rows.items():
        mid = {name: v[len(v) // 2] for name, v in got.items()}
        got["default ÷ PASSIVE (median)"] = round(mid["default (spin)"] / mid["PASSIVE"], 2)
    print(f"{study}, ms per step at {describe('cpu').split(', ')[-1]}:")
    for kind, got in rows.items():
        print(f"  {kind:17s} " + " · ".join(f"{n}: {v}" for n, v in got.items()))
    return rows


def plan_probes(study: str, pricings: int) -> dict:
    by_load = {name: prices(study, kind, pricings) for name, kind in
               (("quiet", None), ("bursts", "bursts"), ("steady", "steady"))}
    quiet = {rule: statistics.median(by_load["quiet"][rule]) for rule in RULES}
    rows = {}
    for name, got in by_load.items():
        rows[name] = {"busy elsewhere": got["busy elsewhere"],
                      **{rule: {"ms per step": got[rule],
                                "median ÷ quiet": round(statistics.median(got[rule]) / quiet[rule], 3),
                                "max ÷ min": round(max(got[rule]) / min(got[rule]), 3)} for rule in RULES}}
    print(f"{study}: --plan's step probe ({pricings} pricings per rule and load):")
    for name, row in rows.items():
        cells = " · ".join(f"{rule}: {v['median ÷ quiet']:.2f}× quiet, spread {v['max ÷ min']:.2f}"
                           for rule, v in row.items() if rule != "busy elsewhere")
        print(f"  {name:7s} (others used {row['busy elsewhere']:.0%} of the CPUs)  {cells}")
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", nargs="+", default=["ring_seeds", "mnist_reg"])
    ap.add_argument("--only", choices=["omp", "plan"], help="one part (the other is kept from --out)")
    ap.add_argument("--repeats", type=int, default=3, help="wait policy: timings per study, policy and load (median)")
    ap.add_argument("--pricings", type=int, default=5, help="plan: step prices per study, rule and load")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / f"under-load-{slug(describe('cpu'))}.json")
    args = ap.parse_args(argv)
    for name in ("repeats", "pricings"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be a positive count, got {getattr(args, name)}")
    t0 = time.perf_counter()
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    res |= {"hardware": describe("cpu"), "date": datetime.date.today().isoformat()}
    if args.only in (None, "omp"):
        res["omp_wait_policy"] = {s: omp(s, args.repeats) for s in args.studies}
    if args.only in (None, "plan"):
        res["plan_probes"] = {s: plan_probes(s, args.pricings) for s in args.studies}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} ({res['seconds']} s)")
    return res


if __name__ == "__main__":
    main()
