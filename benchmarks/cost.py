"""The cost of an answer (issue 31.5): for each study, `bench run` from an empty runs folder, one process
(`--jobs 1`, the layout before `--jobs` existed) and `--jobs auto`, measured side by side in this process
on this machine — trainings, CPU seconds of the run's processes, wall seconds — next to what `--plan`
predicted. Run it on a quiet machine: its ratios (auto over one process; measured over predicted) are the
result, written to benchmarks/results/cost-<hardware>.json.

    python benchmarks/cost.py                                  # smoke, ring_seeds, mnist_reg (hours on 2 cores)
    python benchmarks/cost.py --studies smoke --out /tmp/c.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = [sys.executable, "-m", "bench.cli"]
MODES = {"one process (--jobs 1)": "1", "--jobs auto": "auto"}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def predicted_seconds(study: str) -> float:
    """`bench run --plan`'s estimate of the whole run (one process), in seconds."""
    from bench import api

    return float(api.plan(study)["estimated s"].sum())


def measure(study: str, jobs: str) -> dict:
    """One whole `bench run` (search, confirmation, Inception, report) from an empty runs folder."""
    import optuna

    from bench.storage import all_trials

    with tempfile.TemporaryDirectory(prefix="stabgen-cost-") as d:
        cpu0, t0 = _children_cpu(), time.perf_counter()
        r = subprocess.run([*BENCH, "run", "--study", study, "--runs-dir", d, "--jobs", jobs, "--quiet"],
                           capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        if r.returncode != 0:
            raise SystemExit(f"bench run --study {study} --jobs {jobs} failed: {r.stderr.strip().splitlines()[-1:]}")
        st = optuna.load_study(study_name=study, storage=f"sqlite:///{d}/{study}/study.db")
        done = [t for t in all_trials(st) if t.state.is_finished() and t.state.name != "FAIL"]
        trainings = sum(len(t.user_attrs.get("race_values", ())) or 1 for t in done)
    return {"trainings": trainings, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> dict:
    from stabgen.hardware import describe, slug

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", nargs="+", default=["smoke", "ring_seeds", "mnist_reg"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    hw = describe("cpu")
    out = args.out or Path(__file__).parent / "results" / f"cost-{slug(hw)}.json"
    res = {"hardware": hw, "cores": os.cpu_count(), "studies": {}}
    for study in args.studies:
        row = {"plan_one_process_s": round(predicted_seconds(study), 1)}
        for mode, jobs in MODES.items():
            row[mode] = measure(study, jobs)
        one, auto = row["one process (--jobs 1)"], row["--jobs auto"]
        row["auto_speedup_wall"] = round(one["wall_s"] / auto["wall_s"], 2)
        row["plan_over_measured_one_process"] = round(row["plan_one_process_s"] / one["wall_s"], 2)
        res["studies"][study] = row
        print(f"{study:12s} one process {one['wall_s']:8.0f} s wall, {one['cpu_s']:8.0f} s CPU, {one['trainings']} "
              f"trainings · --jobs auto {auto['wall_s']:8.0f} s wall ({row['auto_speedup_wall']}×) · --plan "
              f"{row['plan_one_process_s']:.0f} s ({row['plan_over_measured_one_process']}× the one-process run)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
