"""`bench run --plan` and `bench benchmark --plan`: what a study (or a suite of them) costs before paying
for it — the whole work (search trials, seed re-runs, confirmation trainings at the first look and at
the sequential design's cap, Inception scorings) and a fresh process's start-up, each kind priced on the
device at hand by the same short timed runs that price a paper reproduction (bench.papers.plan.estimate).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pandas as pd

from bench.arms import arms as arms_of
from bench.rounds import even_split, share
from bench.papers.plan import STARTUP_WORK, Work, estimate, ready_evaluator
from bench.papers.plan import total_line  # noqa: F401  (the CLI's last line)
from stabgen.datasets import DATASETS
from stabgen.errors import StabgenError
from stabgen.models import MODELS
from stabgen.trial import TrialConfig


def _mid(r) -> float:
    """A range's middle (geometric for a log range): the config a kind of work is priced at."""
    return math.sqrt(r.low * r.high) if r.log and r.low > 0 else (r.low + r.high) / 2


def arm_config(spec, arm) -> TrialConfig:
    """A representative config of one arm (its λ and lr at the middle of the search ranges)."""
    t, sp = spec.train, spec.space
    family = MODELS.get(arm.model).family
    return TrialConfig(dataset=spec.dataset, model=arm.model, objective=arm.objective or "ns",
                       regularizer=arm.regularizer or "none", lam=_mid(sp.lam) if arm.regularizer not in (None, "none") else 0.0,
                       lr=_mid(sp.lr), beta1=t.beta1, beta2=t.beta2, batch_size=t.batch_size,
                       steps=spec.steps_for(t.batch_size), z_dim=t.z_dim, eval_every=t.eval_every,
                       lr_schedule=t.lr_schedule, n_critic=sp.n_critic[0] if family == "gan" else 1)


def arm_counts(spec, per_arm: int | None = None) -> dict[str, int]:
    """The one home of a study's training counts, per arm: search trials (`per_arm`: the run's --trials,
    else the spec's), seed re-runs, confirmation seeds at the first look and at the sequential cap; and
    for the whole study, the top configs' extra seeds and the Inception scorings."""
    per_arm = per_arm or spec.per_arm or math.ceil(spec.n_trials / max(1, len(arms_of(spec))))
    c = spec.confirm
    confirm = c.seeds if c.seeds and not spec.joint else 0  # joint covers multi-objective: no verdicts
    more_seeds = spec.seeds.per_config - 1 + spec.search.seeds_per_trial - 1  # re-runs, or race seeds (at most)
    return {"search": per_arm, "reruns": per_arm * more_seeds, "confirmation": confirm,
            "confirmation_cap": confirm * c.stages, "top": spec.seeds.top_k * spec.seeds.extra,
            "inception": spec.eval.inception_top_k if DATASETS.get(spec.dataset).inception else 0}


def study_works(spec, confirmed: dict[str, int] | None = None) -> list[Work]:
    """Every kind of training a study asks for: per arm its search trials (with their race seeds), seed
    re-runs and confirmation seeds (at the first look; the note says the cap of a sequential design), plus
    the top configs' extra seeds and Inception images. Re-runs and confirmation seeds are queued runs: they
    train as populations (`queue`, priced so by study_plan). confirmed: arm label → the confirmation seeds a
    run trained (the sequential design's looks depend on the data): the plan of the work that ran."""
    arms, n = arms_of(spec), arm_counts(spec)
    evals = max(1, math.ceil(spec.steps_for(spec.train.batch_size) / spec.train.eval_every))
    race = n["search"] * (spec.search.seeds_per_trial - 1)
    reruns = n["search"] * (spec.seeds.per_config - 1)
    works = []
    for arm in arms:
        cfg = arm_config(spec, arm)
        works.append(Work(f"{arm.label}: search ({n['search']})" + (f" + race seeds ({race})" if race else ""), cfg,
                          n["search"] + race, spec.eval.samples, evals, spec.metric))
        if reruns:
            works.append(Work(f"{arm.label}: seed re-runs ({reruns})", cfg, reruns, spec.eval.samples, evals,
                              spec.metric, queue="re-runs"))
        if n["confirmation"]:
            cap = n["confirmation_cap"]
            ran = (confirmed or {}).get(arm.label)
            note = (f"as the run confirmed (first look {n['confirmation']})" if ran is not None else
                    f"first look; up to {cap} seeds if the answer stays open" if cap > n["confirmation"] else "")
            works.append(Work(f"{arm.label}: confirmation", cfg, n["confirmation"] if ran is None else ran,
                              spec.eval.samples, evals, spec.metric, note=note, queue="confirmation"))
    if n["top"]:
        works.append(Work(f"top {spec.seeds.top_k} configs: {spec.seeds.extra} more seeds each", arm_config(spec, arms[0]),
                          n["top"], spec.eval.samples, evals, spec.metric, queue="re-runs", blocks=spec.seeds.top_k))
    if n["inception"]:
        works.append(Work(f"Inception FID of the top {n['inception']}", None, 0,
                          inception=n["inception"] * spec.eval.inception_samples, inception_sets=n["inception"]))
    return works


def owed_groups(counts: list[int], cap: int, processes: int = 1, even: bool = False) -> list[list[int]]:
    """The populations queued runs train in, per block of compatible runs (an arm's seeds): the queue (the
    blocks in order) is asked `cap` runs at a time — by each of `processes` --jobs workers no more than its
    share of what is left (bench.rounds.share; `even`: with the other workers' rounds in flight counted,
    the workers asking in turn, bench.rounds.even_split) — and each round trains each block's share as one
    population (bench.search.population_round), so a block can straddle two rounds.
    E.g. counts [10, 10, 10], cap 16 → [[10], [6, 4], [10]]; with 2 processes and cap 8 the rounds
    are 8, 8, 7, 4, 2, 1 → [[8, 2], [6, 4], [3, 4, 2, 1]]; evenly, cap 32: 15, 15 → [[10], [5, 5], [10]]."""
    queue = [b for b, c in enumerate(counts) for _ in range(c)]
    out: list[list[int]] = [[] for _ in counts]
    start, in_flight = 0, []  # the other workers' current rounds, oldest first
    while start < len(queue):
        running = sum(in_flight) if even else 0
        size = min(max(1, cap), share(len(queue) - start, processes, running))
        for b in dict.fromkeys(queue[start:start + size]):
            out[b].append(queue[start:start + size].count(b))
        start += size
        in_flight = (in_flight + [size])[-(max(1, processes) - 1):] if processes > 1 else []
    return out


class Affine:
    """Seconds per step of a population of g members, a + b·g: a fixed per-op cost and a per-member one,
    through two timed points (g = 1 and g = hi). Why affine: a population step is the same kernels on
    g-times larger tensors; on a CPU a small net's step is mostly the fixed part (the 2D MLP: 16 members
    cost a few solo steps), a larger one's mostly the per-member part (the MNIST MLP GAN: 16 cost ≈ 16)."""

    def __init__(self, one: float, hi: float = 0.0, k: int = 1) -> None:
        self.b = (hi - one) / (k - 1) if k > 1 else 0.0
        self.a = one - self.b

    def __call__(self, g: int) -> float:
        return max(self.a + self.b * g, 0.0)

    def like(self, solo: float, g: int) -> float:
        """A population of g of another config of this model whose solo step takes `solo`: the model's fixed
        part once, the rest of its solo step per member — what a regularizer adds is per-member work (the
        ring's gp: 15 ms for 10 members at one thread, where scaling its solo step as the plain GAN's, the
        rule before, said 11.7; on the MNIST nets, whose fixed part is ≈ 0, the two agree)."""
        fixed = min(max(self.a, 0.0), solo)
        return fixed + (solo - fixed) * g


def _threads(n: int):
    """torch's intra-op threads set to n inside the block (a --jobs worker's one thread), restored after."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def scope():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)
    return scope()


def _step_model(cfg: TrialConfig, device: str, data_dir: str | None, hi: int, threads: int | None = None) -> Affine:
    """The Affine step time of populations of cfg's model, timed at 1 and `hi` members (with `threads`)."""
    from bench.papers.plan import PROBE_STEPS, _step_seconds

    import contextlib

    with _threads(threads) if threads else contextlib.nullcontext():
        one = _step_seconds(cfg, device, data_dir)
        big = _step_seconds(cfg, device, data_dir, hi, probe=PROBE_STEPS // 2) if hi > 1 else 0.0
    return Affine(one, big, hi)


def populations(works: list[Work], cap: int, processes: int = 1, even: bool = False) -> list[list[int]]:
    """Per work row, the population sizes its trainings run in: a search row one by one, queued rows as
    owed_groups gives them (asked by `processes` workers, `even`ly or halving), stage by stage (re-runs and
    the top configs' seeds, then confirmation)."""
    out = [[1] * w.count for w in works]
    for stage in ("re-runs", "confirmation"):
        rows = [i for i, w in enumerate(works) if w.queue == stage and w.count]
        blocks = [(i, c) for i in rows for c in _split(works[i].count, works[i].blocks)]
        groups = owed_groups([c for _, c in blocks], cap, processes, even)
        for i in rows:
            out[i] = [g for (j, _), gs in zip(blocks, groups) if j == i for g in gs]
    return out


def _split(count: int, blocks: int) -> list[int]:
    q, r = divmod(count, max(1, blocks))
    return [q + (b < r) for b in range(max(1, blocks))]


def price(works: list[Work], solo: list[tuple[float, float]], one: dict[str, Affine], cap: int,
          jobs: tuple[int, dict[str, Affine], float] | None = None, jobs_cap: int | None = None,
          jobs_even: bool = False) -> tuple[list[float], list[float] | None]:
    """Training and evaluation seconds per work row, one process and (with `jobs`) --jobs: a pure function
    of the timed numbers, so its arithmetic is tested by hand.
    solo: per row (seconds per step of its config alone, seconds per evaluation), every thread.
    one: per model, the Affine step time at every thread. A row's population of g costs the model's fixed
    part once and the rest of the row's solo step g times (Affine.like: a regularizer adds per-member work).
    jobs: (p processes of one thread, per model the Affine step time at one thread, c) — c is the share of
    its alone speed each process keeps beside the others, from the cached steps/s of p one-thread processes
    at once: c = rate_p · (a one-thread step alone) / p. A row on p processes costs its work at one thread
    over p·c; its evaluations slow down as a solo step does at one thread."""
    groups = populations(works, cap)
    groups_p = populations(works, jobs_cap or cap, jobs[0], jobs_even) if jobs else None
    one_s, jobs_s = [], [] if jobs else None
    for i, w in enumerate(works):
        step_s, eval_s = solo[i]
        if w.config is None or math.isnan(step_s):
            one_s.append(math.nan)
            if jobs_s is not None:
                jobs_s.append(math.nan)
            continue
        m = one[w.config.model]
        evals = w.count * w.evals * eval_s if w.eval_samples else 0.0
        one_s.append(sum(w.config.steps * m.like(step_s, g) for g in groups[i]) + evals)
        if jobs_s is not None:
            p, single, c = jobs
            m1 = single[w.config.model]
            slow = m1(1) / m(1)  # one thread against every thread, as the model's solo step shows
            work = sum(w.config.steps * m1.like(step_s * slow, g) for g in groups_p[i]) + evals * slow
            jobs_s.append(work / (p * c))
    return one_s, jobs_s


def work_counts(spec, per_arm: int | None = None) -> dict[str, int]:
    """The whole work of a run in trainings (what its header states and its whole-run task counts), from
    arm_counts: search trials, seed re-runs, confirmation trainings at the first look and at the cap,
    Inception scorings."""
    n, arms = arm_counts(spec, per_arm), len(arms_of(spec))
    search = spec.search_budget(n["search"])
    more_seeds = spec.seeds.per_config - 1 + spec.search.seeds_per_trial - 1  # re-runs, or race seeds (at most)
    return {"search": search, "reruns": search * more_seeds + n["top"],
            "confirmation": arms * n["confirmation"], "confirmation_cap": arms * n["confirmation_cap"],
            "inception": n["inception"]}


def study_plan(spec, device: str, data_dir: str | None = None, inception_weights: str | None = None,
               inception: bool = True, layout: tuple | None = None,
               confirmed: dict[str, int] | None = None) -> pd.DataFrame:
    """The priced plan of one study (one row per kind of work; nothing is run or stored). Queued runs are
    priced as the populations they train in on a CPU (bench.search.owed_population). layout: --jobs as
    bench.jobs.Layout or a tuple (processes, threads each, summed steps/s of that many one-thread processes
    at once or None where the layout is not measured, [the population size its workers train queued runs
    in]) — adds the column `with --jobs s`. confirmed: the confirmation seeds per arm that a run trained
    (study_works)."""
    import torch

    from bench.storage import OWED_POPULATION_CPU, OWED_POPULATION_JOBS

    works = [w for w in study_works(spec, confirmed) if inception or w.config is not None]
    table = estimate(works, device, data_dir, inception_weights)
    solo = table.attrs["seconds"]
    cpu = torch.device(device).type == "cpu"
    cap = OWED_POPULATION_CPU if cpu else 1  # on an accelerator: as the search trains (the spec's population)
    p = layout[0] if layout else 1
    measured_cap = getattr(layout, "population", None)  # bench.jobs.Layout: the size auto measured
    jobs_cap = (measured_cap or OWED_POPULATION_JOBS) if cpu else cap  # a one-thread worker's (owed_population)
    even = cpu and even_split(measured_cap)  # how its workers share a look (bench.rounds)
    trained = [w for w in works if w.config is not None]
    reps = {w.config.model: w.config for w in reversed(trained)}  # each model's first arm
    hi = max([g for gs in populations(works, cap) + populations(works, jobs_cap, p, even) for g in gs], default=1)
    one = {m: _step_model(c, device, data_dir, hi) for m, c in reps.items()}
    jobs = None
    if layout is not None and layout[0] > 1 and layout[2]:
        p, threads, rate = layout[:3]
        single = {m: _step_model(c, device, data_dir, hi, threads=threads) for m, c in reps.items()}
        timed = single.get(spec.space.models[0]) or next(iter(single.values()))  # the model the cached rate timed
        jobs = (p, single, rate * timed(1) / p)
    one_s, jobs_s = price(works, solo, one, cap, jobs, jobs_cap, even)
    training = table["trainings"] > 0
    table["estimated s"] = table["estimated s"].where(~training, pd.Series(one_s).round(1))
    notes = [", ".join(map(str, sorted(set(g), reverse=True))) for g in populations(works, cap)]
    table["at once"] = [max(g, default=1) for g in populations(works, cap)]
    table["note"] = [(f"{w.note}; " if w.note else "") + f"populations of {n}" if w.queue and w.count else w.note
                     for w, n in zip(works, notes)]
    start_s = round(startup_seconds(spec, device, data_dir), 1)
    start = {c: 0 for c in table.columns} | {"work": STARTUP_WORK, "at once": 1, "ms per step (all at once)": "—",
                                             "s per evaluation": "—", "estimated s": start_s,
                                             "note": "interpreter, imports, data, the evaluator's first build; each --jobs worker pays it too"}
    out = pd.concat([pd.DataFrame([start]), table], ignore_index=True)
    if layout is not None:
        p, threads = layout[:2]
        if p == 1:
            out["with --jobs s"] = out["estimated s"]
        elif jobs is None:
            out["with --jobs s"] = float("nan")
        else:
            # the workers start (S each, at once) after this process did, which trains alone meanwhile at 1/p
            # of the layout's speed: the start-up costs S + S·(1 − 1/p); the Inception scoring runs in one process
            with_jobs = [start_s * (2 - 1 / p)] + [round(j, 1) if w.config is not None else e
                                                   for w, j, e in zip(works, jobs_s, table["estimated s"])]
            out["with --jobs s"] = pd.Series(with_jobs).round(1)
        out["--jobs layout"] = f"{p} process{'es' if p > 1 else ''} × {threads} thread{'s' if threads > 1 else ''}"
    return out


def startup_seconds(spec, device: str, data_dir: str | None = None) -> float:
    """Wall seconds a fresh process spends before its first training — the interpreter and imports, the
    study's data, a network and its evaluator's first call (the extractor, the real statistics) — timed
    as a subprocess that does just that (bench.jobs's __main__, where workers start). For a one-minute study it is a quarter
    of the run: unpriced, `--plan` said 34 s for smoke's 49 s (benchmarks/results/cost-*.json)."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bench.jobs", spec.model_dump_json(), device, data_dir or ""],
                       capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise StabgenError(f"timing a fresh process's start-up failed: {last}")
    return time.perf_counter() - t0
