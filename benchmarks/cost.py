"""The cost of an answer (issue 31.5): for each study, `bench run` from an empty runs folder, one process
(`--jobs 1`, the layout before `--jobs` existed) and `--jobs auto`, measured side by side in this process
on this machine — trainings, CPU seconds of the run's processes, wall seconds — next to what `--plan`
predicted. Run it on a quiet machine: its ratios (auto over one process; measured over predicted) are the
result, written to benchmarks/results/cost-<hardware>.json.

    python benchmarks/cost.py                                  # smoke, ring_seeds, mnist_reg (hours on 2 cores)
    python benchmarks/cost.py --studies smoke --out /tmp/c.json
    python benchmarks/cost.py --studies mnist_reg --confirm-seeds 10 --modes auto   # a stated budget, its own key

Resumable by study: a study already in the output file is kept (its two runs were measured side by side)
unless --again names it (--replan prices the kept ones again with today's `--plan`, keeping what was
measured; `--again S --modes auto` measures only that layout again, after a change that touches only it,
and keeps the other run, each run saying when and at which commit it was measured); the file says which of
the default studies are still missing ("partial").
Each measurement records the 1-minute load average before it, so a busy machine shows, and the confirmation
seeds each arm trained: the sequential design's looks depend on the data (mnist_reg trained 120 or 180
times), so each run is set against `--plan` priced for the looks it made, beside the first look's plan, and a
run that looked again says when its first look ended (`first_look_done_s`).
"""

from __future__ import annotations

import argparse
import datetime
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
MODE_NAMES = {"one": "one process (--jobs 1)", "auto": "--jobs auto"}  # --modes picks among them
DEFAULT_STUDIES = ("smoke", "ring_seeds", "mnist_reg")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def predicted_seconds(study: str, confirmed: dict[str, int] | None = None) -> tuple[float, float]:
    """`bench run --plan --jobs auto`'s estimates of the whole run, in seconds: one process, and --jobs auto;
    at the first look, or (confirmed: arm → confirmation seeds a run trained) for the looks a run made."""
    from bench import api

    table = api.plan(study, jobs="auto", confirmed=confirmed)
    return float(table["estimated s"].sum()), float(table["with --jobs s"].sum())


def measure(study: str, jobs: str, extra: tuple[str, ...] = ()) -> dict:
    """One whole `bench run` (search, confirmation, Inception, report) from an empty runs folder (`extra`:
    more options of bench run, e.g. a fixed confirmation's --confirm-seeds 10)."""
    import optuna

    from bench.space import CONFIRM
    from bench.storage import all_trials

    with tempfile.TemporaryDirectory(prefix="stabgen-cost-") as d:
        load, commit = os.getloadavg()[0], _commit()  # the code the run starts with
        start = datetime.datetime.now()  # optuna stamps trials in local naive time
        cpu0, t0 = _children_cpu(), time.perf_counter()
        r = subprocess.run([*BENCH, "run", "--study", study, "--runs-dir", d, "--jobs", jobs, "--quiet", *extra],
                           capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        if r.returncode != 0:
            raise SystemExit(f"bench run --study {study} --jobs {jobs} failed: {r.stderr.strip().splitlines()[-1:]}")
        st = optuna.load_study(study_name=study, storage=f"sqlite:///{d}/{study}/study.db")
        done = [t for t in all_trials(st) if t.state.is_finished() and t.state.name != "FAIL"]
        trainings = sum(len(t.user_attrs.get("race_values", ())) or 1 for t in done)
        confirmed: dict[str, int] = {}
        for t in done:
            if CONFIRM in t.user_attrs:
                confirmed[t.user_attrs[CONFIRM]] = confirmed.get(t.user_attrs[CONFIRM], 0) + 1
        # where the wall time went, from the trials' stamps: start-up before the first training, the search,
        # the confirmation, and what follows the last training (Inception scoring, the report)
        first = min((t.datetime_start for t in done if t.datetime_start), default=None)
        ends = {k: max((t.datetime_complete for t in done if (CONFIRM in t.user_attrs) == k and t.datetime_complete),
                       default=None) for k in (False, True)}
        marks = [start, first, ends[False], ends[True] or ends[False]]
        phases = None if None in marks else dict(zip(
            ("start-up", "search", "confirmation"), (round((b - a).total_seconds(), 1) for a, b in zip(marks, marks[1:]))))
        if phases:
            phases["after the last training"] = round(wall - sum(phases.values()), 1)
        # the sequential design's first look (every arm's first `seeds`, the fewest any arm trained): when it
        # ended, so a run that looked again also says what a fixed confirmation of that many seeds would cost
        look = min(confirmed.values(), default=0)
        ends_look = [t.datetime_complete for t in done if CONFIRM in t.user_attrs and t.datetime_complete
                     and t.user_attrs.get("confirm_seed", 0) < look]
        first_look = round((max(ends_look) - start).total_seconds(), 1) if ends_look and look < max(confirmed.values()) else None
    return {"trainings": trainings, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "load_before": round(load, 2),
            "confirmed": dict(sorted(confirmed.items())), "phases_s": phases, "measured_at": time.strftime("%Y-%m-%d %H:%M"),
            "commit": commit} | ({"first_look_done_s": first_look} if first_look is not None else {})


def _commit() -> str:
    """The checkout's commit (with "+changes" when its tracked files outside benchmarks/results/ differ from it —
    this script's own output there changes after the first study): what a run measured."""
    root = Path(__file__).resolve().parents[1]
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()  # noqa: E731
    head = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    return head + ("+changes" if changed else "") if head else "unknown"


def main(argv: list[str] | None = None) -> dict:
    from stabgen.hardware import describe, slug

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", nargs="+", default=list(DEFAULT_STUDIES))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--again", nargs="*", default=[], help="measure these studies again although the file has them")
    ap.add_argument("--modes", nargs="+", choices=list(MODE_NAMES), default=list(MODE_NAMES),
                    help="with --again: measure only these layouts again, keeping the file's other run")
    ap.add_argument("--confirm-seeds", type=int, default=None,
                    help="run each study with a fixed confirmation of N seeds (bench run --confirm-seeds N), "
                         "kept under its own key, 'STUDY --confirm-seeds N': the budget stated, not the spec's looks")
    ap.add_argument("--replan", action="store_true",
                    help="price the kept studies again with today's --plan (their measured runs stay as they are)")
    args = ap.parse_args(argv)
    hw = describe("cpu")
    out = args.out or Path(__file__).parent / "results" / f"cost-{slug(hw)}.json"
    res = json.loads(out.read_text()) if out.is_file() else {}
    res.update({"hardware": hw, "cores": os.cpu_count(), "studies": res.get("studies", {})})
    extra = ("--confirm-seeds", str(args.confirm_seeds)) if args.confirm_seeds else ()
    for study in args.studies:
        key = " ".join((study, *extra))  # where the file keeps this study's runs (with their budget)
        kept = key in res["studies"] and study not in args.again
        if kept and not args.replan:
            print(f"{study:12s} kept from {out.name} (--again {study} measures it again, --replan prices it again)")
            continue
        one_s, auto_s = predicted_seconds(study)
        row = res["studies"][key] if kept else {}
        row.update({"plan_one_process_s": round(one_s, 1), "plan_jobs_auto_s": round(auto_s, 1),
                    "planned_at": time.strftime("%Y-%m-%d %H:%M")})
        modes_now = list(MODES)  # the runs priced now: --replan prices every kept run again
        if not kept:
            old = res["studies"].get(key, {})
            both = all(MODE_NAMES[m] in old for m in MODE_NAMES) or extra  # a stated budget: the layouts asked
            modes = [MODE_NAMES[m] for m in args.modes] if both else list(MODES)
            # a kept run carries its own time (older files stamped only the row)
            row = {k: {"measured_at": old.get("measured_at", "unknown")} | v for k, v in old.items()
                   if k in MODES and k not in modes} | row
            modes_now = modes
            names = {"one process (--jobs 1)": "one_process", "--jobs auto": "jobs_auto"}
            row |= {f: old[f] for k, n in names.items() if k in row for f in
                    (f"plan_of_the_work_that_ran_{n}_s", f"plan_over_measured_{n}") if f in old}  # a kept run's pricing
            for mode in modes:
                row[mode] = measure(study, MODES[mode], extra)
            row["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
            kept_runs = [k for k in MODES if k not in modes and k in row]
            if kept_runs:
                kept_at = ", ".join(f"{k} from {row[k]['measured_at']}" for k in kept_runs)
                row["note"] = f"measured again: {', '.join(modes)} (kept: {kept_at}; each run says when and at which commit)"
            elif len(modes) < len(MODES):
                row["note"] = f"measured: {', '.join(modes)} only (bench run {' '.join(extra)}: a stated budget)"
        # the sequential design's looks depend on the data: each run against the plan of the looks it made
        # (runs measured before the counts were kept: against the first look's plan)
        for mode, name, column in (("one process (--jobs 1)", "one_process", 0), ("--jobs auto", "jobs_auto", 1)):
            if mode not in row:  # a stated budget measured in one layout only
                continue
            if f"plan_over_measured_{name}" in row and mode not in modes_now:
                continue  # a kept run keeps the pricing made beside it: priced again later, the probes' noise moved it
            run = row[mode]
            ran = predicted_seconds(study, run["confirmed"])[column] if "confirmed" in run else row[f"plan_{name}_s"]
            row[f"plan_of_the_work_that_ran_{name}_s"] = round(ran, 1)
            row[f"plan_over_measured_{name}"] = round(ran / run["wall_s"], 2)
        if all(m in row for m in MODES):
            row["auto_speedup_wall"] = round(row["one process (--jobs 1)"]["wall_s"] / row["--jobs auto"]["wall_s"], 2)
        res["studies"][key] = {k: row[k] for k in sorted(row, key=lambda k: k in MODES)}  # runs last
        _write(res, out)
        print(f"{key}: " + " · ".join(f"{m} {row[m]['wall_s']:.0f} s wall, {row[m]['cpu_s']:.0f} s CPU, "
                                      f"{row[m]['trainings']} trainings, --plan of the work that ran "
                                      f"{row[f'plan_over_measured_{n}']}× it" for m, n in
                                      (("one process (--jobs 1)", "one_process"), ("--jobs auto", "jobs_auto")) if m in row))
    _write(res, out)
    print(f"wrote {out}" + (f" (partial: not yet {', '.join(res['missing'])})" if res["missing"] else ""))
    return res


def _write(res: dict, out: Path) -> None:
    """The file after every study (an interrupted run keeps what it measured), saying what is missing."""
    res["missing"] = [s for s in DEFAULT_STUDIES if s not in res["studies"]]
    res["status"] = "partial" if res["missing"] else "complete"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
