"""`--jobs N|auto`: every core busy. `bench run` starts N − 1 local worker processes beside itself, each
with its share of the torch threads, sharing the study through its storage exactly as `bench worker`s
do (trials numbered under the storage's lock, heartbeats, a killed worker's trial retried), so search,
seed re-runs and confirmation all spread over them.

Why processes, not threads or one big population: on a 2-core CPU two 1-thread processes trained the
seed MLP GAN 1.7× faster than one 2-thread process (issue 31), while the population gave 0.5–1.0×.
`auto` measures it for the study's model on this machine — a few timed steps in one process with every
thread against one 1-thread process per core running at once, and the same processes each training a
population of 8, 16 and 32 members — and keeps the answer in stabgen's cache, keyed by the hardware and
the model (`--jobs N` overrides it). The fastest population size (1: solo runs) is what each worker
trains the queued seed re-runs and confirmation runs in (bench.search.owed_population): the 2D ring's
small nets gain from populations at one thread, the MNIST MLPs barely. On a GPU `auto` is one process
(its populations fill the device).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import time
from dataclasses import replace
from typing import Iterator, NamedTuple

import torch

from stabgen import settings
from stabgen.errors import StabgenError
from stabgen.hardware import cpu_name

log = logging.getLogger(__name__)
CACHE = "jobs.json"
WINDOW = 3.0  # seconds each layout is timed
WARMUP = 5  # steps each timed process trains before its window opens (allocations, first-call overheads)
REPEATS = 2  # times each layout is timed, alternating
POPULATIONS = (8, 16, 32)  # the population sizes each one-thread process is timed at (once each)


class Layout(NamedTuple):
    """--jobs resolved and priced: processes, torch threads each, their summed steps/s where measured, and the
    population size a worker trains queued runs in where measured (None: bench.storage's default)."""
    processes: int
    threads: int
    rate: float | None
    population: int | None = None


def cores() -> int:
    """The cores this process may use (taskset, a batch system's cgroup); macOS has no affinity call."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


ENV = "STABGEN_JOBS"  # the CLI's --jobs when the command line leaves it out (bench.cli; else auto)


def parse(jobs: str | int | None) -> int | str:
    """--jobs as given: a positive integer or "auto". None — a Python caller that did not ask — is 1: the
    CLI's default is auto (bench.cli), but the API's is one process, because worker processes are spawned
    and a spawned process re-imports the caller's script, which must then guard its run with
    `if __name__ == "__main__":` (Python's multiprocessing rule) — a script needs to ask for that."""
    if jobs is None:
        return 1
    if isinstance(jobs, str) and jobs.strip().lower() == "auto":
        return "auto"
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        raise StabgenError(f"--jobs (or ${ENV}) must be a positive integer or 'auto', got {jobs!r}") from None
    if not 1 <= n <= 256:
        raise StabgenError(f"--jobs (or ${ENV}) must be in 1..256 (or 'auto'), got {n}")
    return n


def layout(jobs: int | str, spec, device: str, data_dir: str | None = None) -> tuple[int, int]:
    """(processes, torch threads per process) for --jobs on this device and study."""
    n = cores()
    if jobs != "auto":
        return int(jobs), max(1, n // int(jobs))
    if not device.startswith("cpu") or n == 1:
        return 1, n
    m = rates(spec, device, n, data_dir)
    best = "processes" if m["processes"] > m["threads"] else "threads"
    k = population(m)
    log.info(f"--jobs auto: {f'{n} processes × 1 torch thread' if best == 'processes' else f'one process × {n} torch threads'}"
             + (f", queued runs in populations of {k}" if k > 1 else "")
             + f" ({n} one-thread processes {m['processes']:.0f} steps/s against one {n}-thread process "
             f"{m['threads']:.0f} on {cpu_name()} for {spec.space.models[0]}"
             + (f"; populations of {k} {m['populations'][str(k)]:.0f} member-steps/s" if k > 1 else "")
             + f"; cached in {settings.cache_dir() / CACHE})")
    return (n, 1) if best == "processes" else (1, n)


def population(m: dict) -> int:
    """The population size with the most member-steps/s in one-thread processes (1: solo runs, when no
    population beat them — on a CPU the population is chosen only where it gains)."""
    timed = {1: m["processes"], **{int(k): v for k, v in m.get("populations", {}).items()}}
    return max(timed, key=lambda k: (timed[k], -k))


def rates(spec, device: str, n: int, data_dir: str | None = None) -> dict:
    """The study model's steps/s in both layouts on this machine: from the cache, else measured (and
    cached when plausible; an implausible cached entry is measured again)."""
    key, path = _key(spec, n), settings.cache_dir() / CACHE
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if key in cached and plausible(cached[key], n) and "populations" in cached[key]:  # older entries lack them
        return cached[key]
    log.info(f"--jobs auto: timing the study's model on this machine, once (about 40 s: {n} one-thread "
             f"processes against one {n}-thread process, then populations); --jobs N skips it")
    m = measure(spec, device, n, data_dir)
    if plausible(m, n):
        cached[key] = m
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached, indent=2) + "\n")
    else:
        log.warning(f"--jobs auto: {n} one-thread processes {m['processes']:.0f} steps/s against one {n}-thread "
                    f"process {m['threads']:.0f} steps/s is more than {2 * n}× apart, which only other load on the "
                    "machine explains; used for this run, not cached (the next run measures again)")
    return m


def measured(jobs: int | str, spec, device: str, data_dir: str | None = None) -> Layout:
    """--jobs as it runs and as `--plan` prices it: processes, threads per process, and — when --jobs puts
    one 1-thread process on each core of a CPU — the summed steps/s of the study's model in that layout and,
    for auto, the population size its workers train queued runs in (bench.jobs.rates; `--jobs N` keeps
    bench.storage's default); None for any other layout (not measured; one process needs no rate)."""
    processes, threads = layout(jobs, spec, device, data_dir)
    n = cores()
    if processes == 1 or processes != n or threads != 1 or not device.startswith("cpu"):
        return Layout(processes, threads, None)
    m = rates(spec, device, n, data_dir)
    return Layout(processes, threads, m["processes"], population(m) if jobs == "auto" else None)


def speedup(jobs: int | str, spec, device: str, data_dir: str | None = None) -> tuple[int, int, float | None]:
    """(processes, threads per process, steps/s over one process with every thread) for --jobs: 1.0 for one
    process; the measured ratio when --jobs puts one 1-thread process on each core; None otherwise."""
    processes, threads, rate, _ = measured(jobs, spec, device, data_dir)
    if processes == 1:
        return processes, threads, 1.0
    return processes, threads, rate / rates(spec, device, cores(), data_dir)["threads"] if rate else None


def _key(spec, n: int) -> str:
    return f"{cpu_name()}|{n} cores|{spec.space.models[0]}|{spec.train.batch_size}"


def _probe_cfg(spec):
    from bench.space import probe_configs

    return probe_configs(spec, steps=10**6)[0]


def _steps_in_window(spec_dump: dict, threads: int, barrier, window: float, out, data_dir=None,
                     members: int = 1) -> None:
    """Train the study's first model (a population of `members`) for `window` seconds after every timed
    process has warmed up (`barrier`); put the member-steps/s (or the error, as text: the parent says it in
    one line). A failure breaks the barrier, so the other processes stop waiting at once."""
    try:
        out.put(_rate(spec_dump, threads, barrier, window, data_dir, members))
    except Exception as e:  # noqa: BLE001 — reported by the parent
        barrier.abort()
        out.put(f"{type(e).__name__}: {e}")


def _rate(spec_dump: dict, threads: int, barrier, window: float, data_dir, members: int = 1) -> float:
    """Member-steps/s of the study's model over `window` seconds. The window opens when every timed process
    has passed WARMUP steps and met at `barrier` (None: alone), so all of them train through the same
    seconds — started by the barrier, not a fixed delay: spawning, importing torch and loading the data take
    2–10 s depending on the machine's load, and the fixed 10 s wait it replaced made auto's measurement 90 s, now 40."""
    from bench.spec import StudySpec
    from stabgen.datasets import DATASETS
    from stabgen import train as train_mod

    torch.set_num_threads(threads)
    spec = StudySpec.model_validate(spec_dump)
    source = DATASETS.get(spec.dataset).source(data_dir)
    cfg = replace(_probe_cfg(spec), eval_every=10**9)
    clock = {"steps": 0, "counted": 0, "t0": 0.0, "t1": 0.0}

    class Stop(Exception):
        pass

    def on_step(it: int) -> None:
        clock["steps"] += 1
        if clock["steps"] == WARMUP:
            if barrier is not None:
                barrier.wait(timeout=180)
            clock["t0"] = time.perf_counter()
        elif clock["steps"] > WARMUP:
            clock["counted"] += 1
            clock["t1"] = time.perf_counter()
            if clock["t1"] - clock["t0"] >= window:
                raise Stop

    with contextlib.suppress(Stop):
        if members == 1:
            train_mod.train(cfg, source, "cpu", on_step=on_step)
        else:  # the seeds of one config, as queued runs train
            train_mod.train_population([replace(cfg, seed=cfg.seed + i) for i in range(members)], source, "cpu",
                                       on_step=on_step)
    if clock["counted"] == 0:
        raise StabgenError("the timed training ended before its window opened")
    return members * clock["counted"] / (clock["t1"] - clock["t0"])


def _timed(ctx, dump: dict, threads: list[int], data_dir, members: int = 1) -> float:
    """Summed member-steps/s of processes with these thread counts (each training a population of
    `members`), timed over the same window."""
    q = ctx.Queue()
    barrier = ctx.Barrier(len(threads))
    procs = [ctx.Process(target=_steps_in_window, args=(dump, t, barrier, WINDOW, q, data_dir, members))
             for t in threads]
    for p in procs:
        p.start()
    try:
        got = [q.get(timeout=300) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    # the failure itself, not the broken barrier it left the other processes
    errors = sorted((g for g in got if isinstance(g, str)), key=lambda g: g.startswith("BrokenBarrierError"))
    if errors:
        raise StabgenError(f"--jobs auto could not time the study's model: {errors[0].splitlines()[0]}")
    return float(sum(got))


def measure(spec, device: str, n: int, data_dir: str | None = None) -> dict:
    """Steps/s of the study's model: n one-thread processes at once (summed), and one n-thread process;
    each layout timed REPEATS times, alternating, its fastest kept (a burst of other load lowers one
    window, not the answer). Then member-steps/s of the n one-thread processes each training a population
    of each size in POPULATIONS, timed once each (the choice among them is a throughput, not a layout)."""
    ctx = mp.get_context("spawn")
    dump = spec.model_dump(mode="json")
    processes = threads = 0.0
    for _ in range(REPEATS):
        processes = max(processes, _timed(ctx, dump, [1] * n, data_dir))
        threads = max(threads, _timed(ctx, dump, [n], data_dir))
    populations = {str(k): _timed(ctx, dump, [1] * n, data_dir, k) for k in POPULATIONS}
    return {"processes": processes, "threads": threads, "populations": populations, "cores": n,
            "measured_at": time.strftime("%Y-%m-%d")}


def plausible(m: dict, n: int) -> bool:
    """A ratio no quiet machine gives is other load (the cache once held 141 against 8 steps/s, timed beside
    a benchmark). n one-thread processes can beat one n-thread process by more than n on a small net —
    threads cost overhead there: 321 against 150 steps/s (2.1×) for the MLP GAN on a quiet 2-core EPYC —
    so the bound allows another factor of 2 either way."""
    return 1 / (2 * n) <= m["processes"] / max(m["threads"], 1e-9) <= 2 * n


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _worker(spec_dump: dict, opts, threads: int) -> None:
    """A spawned local worker: `bench worker` in a process of its own. SIGTERM (its parent stopping)
    is an interruption: the running trial is failed and queued again (bench.storage.requeue)."""
    import signal
    import sys

    from bench import search
    from bench.spec import StudySpec

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # ^C in the terminal reaches the whole process group
    torch.set_num_threads(threads)
    try:
        search.run(StudySpec.model_validate(spec_dump), opts, worker=True)
    except KeyboardInterrupt:
        sys.exit(143)


@contextlib.contextmanager
def helpers(spec, opts, processes: int, threads: int) -> Iterator[list]:
    """Start `processes` − 1 workers on the study beside this process (which trains too, with `threads`
    threads); on leaving, wait for them to finish (they stop when nothing is owed), or on an error or
    interruption end them with SIGTERM — their running trials are failed and queued again. This process
    trains with `threads` threads inside and gets its own count back on leaving: what runs after the
    trainings (the Inception FID of the top trials) has the cores to itself (it ran on 1 of 2, 316 s
    instead of ~160 s, in a measured mnist_reg --jobs auto)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    ctx = mp.get_context("spawn")
    dump = spec.model_dump(mode="json")
    procs = [ctx.Process(target=_worker, args=(dump, opts, threads), daemon=False) for _ in range(processes - 1)]
    try:
        for p in procs:
            p.start()
        try:
            yield procs
        except BaseException:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=60)
            raise
        for p in procs:
            p.join()
    finally:
        torch.set_num_threads(before)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise StabgenError(f"{len(failed)} of {len(procs)} worker processes ended with an error (exit "
                           f"{failed[0]}); the study is intact: rerun the command to resume")


def _start_like_a_worker(spec_json: str, device: str, data_dir: str) -> None:
    """What a fresh worker does before its first training, timed by `--plan` (bench.plan.startup_seconds)."""
    from bench import report, search  # noqa: F401  (what a run imports)
    from bench.papers.plan import ready_evaluator
    from bench.plan import arm_config
    from bench.arms import arms
    from bench.spec import StudySpec
    from stabgen.userdata import resolve

    spec = StudySpec.model_validate_json(spec_json)
    resolve(spec.dataset)  # a folder of the user's images registers on first use, in each process
    ready_evaluator(arm_config(spec, arms(spec)[0]), spec.eval.samples, spec.metric, device, data_dir or None,
                    spec.eval.split)


if __name__ == "__main__":
    import sys

    _start_like_a_worker(*sys.argv[1:4])
