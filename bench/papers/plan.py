"""`bench reproduce NAME --budget B --plan`: what a budget costs, before paying for it.

Each reproduction's Paper entry (bench.papers.base.PAPERS) carries in `plan` the work its budget asks for — groups of trainings of one kind
of config (how many, steps each, evaluations and their sample counts, Inception images) — and this
module prices it on the device at hand from a short timed run of each kind: a few training steps
after a warm-up, one evaluation at the budget's sample count, and TF-Inception on a few images when
the budget uses it. Nothing is written and nothing of the reproduction runs; the estimate is what a
GPU user needs to decide whether `paper` fits their allocation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import pandas as pd

from stabgen.errors import StabgenError
from stabgen.trial import TrialConfig

PROBE_STEPS = 40  # timed steps per kind of config beyond WARMUP_STEPS (graph capture, allocations): a multiple of 10
WARMUP_STEPS = 10  # (log steps, every 10, synchronize an accelerator: the timed window's ends fall on them)
REPEATS = 3  # probe runs at least this many times; the fastest window counts
MAX_REPEATS = 8  # … and up to this many, until the two fastest agree within SETTLE (settled)
SETTLE = 0.05
INCEPTION_PROBE = 8  # images timed through TF-Inception when the budget uses it
STARTUP_WORK = "start-up of a fresh process"  # bench run's plan row (bench.plan.startup_seconds)


@dataclass
class Work:
    """`count` trainings of configs like `config` (its steps are theirs), each evaluated `evals` times
    on `eval_samples` samples (metric `metric`), and `inception` images through TF-Inception after."""

    what: str
    config: TrialConfig | None  # None: no training (e.g. the Dirac-GAN's closed-form dynamics)
    count: int
    eval_samples: int = 0
    evals: int = 1
    metric: str = "domain_fid"
    inception: int = 0
    inception_sets: int = 1  # the sample sets those images make: each pays one Fréchet distance of 2048-d statistics
    note: str = ""
    population: int = 1  # how many of them train at once, as one population (bench.papers.base.train_many)
    queue: str = ""  # a study's queued runs ("re-runs", "confirmation"): they train as populations (bench.plan)
    blocks: int = 1  # the count splits into this many configs of possibly different arms (the top configs' seeds)



def _step_seconds(cfg: TrialConfig, device: str, data_dir: str | None, k: int = 1, probe: int = PROBE_STEPS,
                  max_repeats: int = MAX_REPEATS) -> float:
    """Seconds per training step of a population of `k` configs like `cfg` (seeds apart): runs of
    WARMUP_STEPS + `probe` steps, each timing its steps WARMUP_STEPS + 1 … WARMUP_STEPS + probe from inside
    (on_step), REPEATS times and more, up to `max_repeats`, until the two fastest windows agree (settled);
    the fastest counts (a busy machine slows a run, never speeds it up). Why a window inside the run:
    building the networks, moving the data and the first steps stay outside it; the old price, a long run's
    wall time less a short run's, carried both runs' noise (±20 % between pricings on a quiet machine,
    benchmarks/under_load.py). The window's ends fall on log steps, which synchronize an accelerator."""
    from stabgen.datasets import DATASETS
    from stabgen.train import train_population

    source = DATASETS.get(cfg.dataset).source(data_dir)
    ends = (WARMUP_STEPS, WARMUP_STEPS + probe)
    cfgs = [replace(cfg, steps=ends[1], eval_every=10**9, log_every=10, seed=cfg.seed + i) for i in range(k)]
    windows: list[float] = []
    for r in range(max_repeats):
        stamps: dict[int, float] = {}

        def stamp(it: int) -> None:
            stamps[it] = time.perf_counter()

        train_population(cfgs, source, device, on_step=stamp)
        last = max(stamps, default=0)  # a population whose every member diverged stops early
        if last > ends[0]:
            windows.append((stamps[last] - stamps[ends[0]]) / (last - ends[0]))
        if len(windows) >= REPEATS and settled(windows):
            break
    if not windows:
        raise StabgenError(f"timing {cfg.model} failed: every probe run diverged within {ends[0]} steps")
    return min(windows)


def settled(times: list[float], tol: float = SETTLE) -> bool:
    """The two fastest runs agree within `tol`: the fastest is a speed the machine gave twice, not one lucky
    or one slowed run. Why: a burst of load slows some runs of a probe; three runs could all be hit (a price
    moved 16 % under load, issue 31), and more runs, until two agree, find the unloaded speed."""
    if len(times) < 2:
        return False
    a, b = sorted(times)[:2]
    return b <= a * (1 + tol)


def ready_evaluator(cfg: TrialConfig, n: int, metric: str, device: str, data_dir: str | None, split: str = "test"):
    """What a process builds before its first evaluation — the dataset's source, a network, the evaluator
    and its first call (the extractor, the real statistics) — returned as (evaluate, sample)."""
    import torch

    from stabgen.datasets import DATASETS, EvalRequest
    from stabgen.train import train
    from stabgen.trial import sample_output, sampler

    ds = DATASETS.get(cfg.dataset)
    evaluate = ds.build_evaluator(EvalRequest(split, n, device, data_dir, metric))
    res = train(replace(cfg, steps=1, eval_every=10**9), ds.source(data_dir), device)
    sample = sampler(res.modules["generator"], cfg.z_dim, cfg.seed, torch.device(device),
                     output=sample_output(ds.kind))
    evaluate(sample, True)  # the first call builds the extractor and caches the real statistics
    return evaluate, sample


def _eval_seconds(cfg: TrialConfig, n: int, metric: str, device: str, data_dir: str | None) -> tuple[float, float]:
    """(an intermediate evaluation, the final one) of an untrained generator's n samples, as the trainer calls
    them: the intermediate ones compute the search metric only, the final one every metric (on MNIST at 5,000
    samples 1.0 against 3.4 s at one thread; pricing every evaluation as a final one, and a confirmation run
    as one evaluation, had mispriced both kinds of run)."""
    evaluate, sample = ready_evaluator(cfg, n, metric, device, data_dir)
    out = []
    for final in (False, True):
        t0 = time.perf_counter()
        evaluate(sample, final)
        out.append(time.perf_counter() - t0)
    return out[0], out[1]


def per_evaluation(quick: float, final: float, evals: int) -> float:
    """The mean seconds of a training's `evals` evaluations: evals − 1 intermediate ones and the final one."""
    return ((max(1, evals) - 1) * quick + final) / max(1, evals)


def _inception_seconds(device: str, inception_weights: str | None) -> tuple[float, float, float]:
    """(loading TF-Inception, one image through it, one set's Fréchet distance) in seconds: the scoring stage
    pays the first once, the last per sample set — torch-fidelity's FID takes the eigenvalues of a 2,048 × 2,048
    product (1.8 s on the 2-core CPU: unpriced, a smoke run's 50-image scoring took 7.1 s against 4.6 planned)."""
    import torch

    from stabgen.metrics import fidelity

    from stabgen import settings
    from stabgen.errors import StabgenError

    if settings.inception_weights(inception_weights) is None:  # torch-fidelity would download them mid-plan
        raise StabgenError(f"no local TF-Inception weights to time the Inception step; set "
                           f"${settings.ENV_INCEPTION_WEIGHTS} or --inception-weights, or plan with --no-inception")
    fidelity.check_inception_weights(inception_weights)
    images = torch.randint(0, 256, (INCEPTION_PROBE, 1, 28, 28), dtype=torch.uint8)
    t0 = time.perf_counter()
    fidelity.features(images[:2], "inception", device=device, inception_weights=inception_weights)  # load once
    t1 = time.perf_counter()
    fidelity.features(images, "inception", device=device, inception_weights=inception_weights)
    per_image = (time.perf_counter() - t1) / INCEPTION_PROBE
    return max(t1 - t0 - 2 * per_image, 0.0), per_image, _frechet_seconds(INCEPTION_FEATURES)


INCEPTION_FEATURES = 2048  # TF-Inception's pool features, what its FID compares


def _frechet_seconds(dim: int) -> float:
    """One FID from two sets' statistics of `dim`-d features, by torch-fidelity's own function (its cost is the
    eigenvalues of the covariances' product, whatever the sample count)."""
    import numpy as np
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    rng = np.random.default_rng(0)
    stats = []
    for _ in range(2):
        f = rng.standard_normal((dim + 8, dim))
        stats.append({"mu": f.mean(0), "sigma": np.cov(f, rowvar=False)})
    t0 = time.perf_counter()
    fid_statistics_to_metric(stats[0], stats[1], False)
    return time.perf_counter() - t0


def estimate(works: list[Work], device: str, data_dir: str | None = None,
             inception_weights: str | None = None) -> pd.DataFrame:
    """One row per kind of work: trainings, steps, evaluation samples, and the estimated seconds."""
    step_cache: dict[tuple, float] = {}
    eval_cache: dict[tuple, float] = {}
    incep = None
    rows, raw = [], []
    for w in works:
        seconds, step_s, eval_s = 0.0, math.nan, math.nan
        if w.config is not None:
            # what a step costs depends on the networks and the batch, not on which dataset of one kind it is
            k = max(1, min(w.population, w.count))
            key = (w.config.model, w.config.objective, w.config.regularizer, w.config.pack, w.config.n_critic,
                   w.config.batch_size, w.config.d_bn, k)
            if key not in step_cache:
                step_cache[key] = _step_seconds(w.config, device, data_dir, k)
            step_s = step_cache[key]
            seconds += math.ceil(w.count / k) * w.config.steps * step_s
            if w.eval_samples:
                ekey = (w.config.dataset, w.config.model, w.eval_samples, w.metric)
                if ekey not in eval_cache:
                    eval_cache[ekey] = _eval_seconds(w.config, w.eval_samples, w.metric, device, data_dir)
                eval_s = per_evaluation(*eval_cache[ekey], w.evals)
                seconds += w.count * w.evals * eval_s
        if w.inception:
            first = incep is None
            incep = incep if incep is not None else _inception_seconds(device, inception_weights)
            seconds += w.inception * incep[1] + w.inception_sets * incep[2] + (incep[0] if first else 0.0)
        raw.append((step_s, eval_s))
        rows.append({"work": w.what, "trainings": w.count, "at once": max(1, min(w.population, w.count)),
                     "steps each": w.config.steps if w.config else 0,
                     "evaluations each": w.evals if w.eval_samples else 0, "eval samples": w.eval_samples,
                     "Inception images": w.inception,
                     "ms per step (all at once)": round(1000 * step_s, 2) if not math.isnan(step_s) else "—",
                     "s per evaluation": round(eval_s, 2) if not math.isnan(eval_s) else "—",
                     "estimated s": round(seconds, 1), "note": w.note})
    table = pd.DataFrame(rows)
    table.attrs["seconds"] = raw  # unrounded (step, evaluation) seconds per row, for bench.plan's populations
    return table


def total_line(table: pd.DataFrame, hardware: str) -> str:
    from stabgen.progress import duration

    s = float(table["estimated s"].sum())
    line = (f"{int(table['trainings'].sum())} trainings, {int((table['trainings'] * table['steps each']).sum()):,} "
            f"steps in all; estimated wall time ≈ {duration(s)} on {hardware} (one process; from {PROBE_STEPS} "
            f"timed steps per kind of config beyond {WARMUP_STEPS}, the fastest of {REPEATS} to {MAX_REPEATS} runs (until two "
            f"agree within {SETTLE:.0%}), one timed evaluation per sample "
            f"count{', Inception on ' + str(INCEPTION_PROBE) + ' images' if table['Inception images'].sum() else ''}"
            f"{', a fresh process timed to its first training' if 'work' in table and (table['work'] == STARTUP_WORK).any() else ''})")
    if "with --jobs s" in table:
        layouts = ", ".join(sorted(set(table["--jobs layout"])))
        jobs_s = table["with --jobs s"]
        line += (f"; with --jobs ({layouts}): ≈ {duration(float(jobs_s.sum()))}, each row timed at one thread over "
                 "the processes at the contention their cached steps/s show (bench/jobs.py)" if jobs_s.notna().all() else
                 f"; with --jobs ({layouts}): not priced, only one process per core is measured")
    busy = table.attrs.get(BUSY_ATTR)
    if busy is not None and busy >= BUSY_WARN:
        line += (f". Other processes used {busy:.0%} of the CPUs while it timed: under steady load every probe is "
                 "slow alike, so these prices are likely high; price again on a quiet machine")
    return line


BUSY_ATTR = "busy_elsewhere"  # the plan table's attr: stabgen.hardware.BusyElsewhere's share while it was priced
BUSY_WARN = 0.1  # a tenth of the CPUs: the level at which total_line says the prices are likely high
