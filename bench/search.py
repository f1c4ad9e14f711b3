"""Spec → Optuna study: one trial = sample a config (bench.space), train it, evaluate it, record it.

The storage (SQLite by default, PostgreSQL for many machines) is the record and the only
coordination between workers: every worker loops "ask, train, tell" until the study holds its
trial budget. Optuna numbers trials under a lock on the study row, so a worker can tell from the
trials numbered before its own whether the budget was already met by the time it asked (then its
trial is marked FAIL as surplus and never trained). Heartbeats let any worker fail a killed
worker's RUNNING trial, and bench.storage.retry_stale queues it again with the same
parameters: a trial is neither lost nor counted twice.
"""

from __future__ import annotations

import contextlib
import datetime
import dataclasses
import logging
import math
import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import torch

from bench import records
from bench import confirm
from bench.arms import ARM_ATTR, arms
from bench.space import CONFIRM, REEVAL, grid, is_search, probe_configs, suggest_config, trial_seed
from bench.spec import StudySpec
from bench import artifacts
from bench import racing
from bench.rounds import even_split, share
from bench.trackers import TensorBoard, flat_metrics
from bench.storage import (OWED_POPULATION_CPU, OWED_POPULATION_JOBS, all_trials, claim_runs_folder, heartbeats, is_owed_study, open_study,
                           owed_study, quiet, record_spec, requeue, sweep_orphans, trial_id)
from bench.strategies import make_sampler
from stabgen import progress
from stabgen.datasets import DATASETS, EvalRequest
from stabgen.hardware import describe, workers_per_gpu
from stabgen.metrics.stability import stability_objective, trial_stability
from stabgen.sources import Source
from stabgen.train import group_key, train_population
from stabgen.trial import TrialConfig, TrialResult, sample_output, sampler

log = logging.getLogger(__name__)
State = optuna.trial.TrialState
FINISHED = (State.COMPLETE, State.PRUNED)
ACTIVE = (State.COMPLETE, State.PRUNED, State.RUNNING, State.WAITING)  # hold a place in the budget


@dataclass
class RunOptions:
    """How a run runs: the one home of every run default (the CLI's and the API's defaults read these)."""

    trials: int
    steps: int | None  # None: the spec's budget (train.steps, or train.epochs at the trial's batch size)
    device: str
    storage: str
    runs_dir: Path = Path("runs")  # trial folders, storages, reports and reproductions' caches
    data_dir: str | None = None
    inception_weights: str | None = None
    heartbeat: float = 10.0  # seconds; a RUNNING trial silent for 3 heartbeats is failed and retried
    tensorboard: bool = False  # also write each trial's curves as TensorBoard events
    allow_spec_change: bool = False  # resume a study although its stored spec differs (recorded)
    artifacts: str | None = None  # artifact store URL (bench.artifacts); None: the study's, else beside runs_dir
    jobs: int | str = 1  # local worker processes (bench.jobs): a number, or "auto" (measured per machine and model)
    population: int | None = None  # queued runs a --jobs worker trains at once, where measured (bench.jobs.population)
    inception: bool = True  # score the top trials with TF-Inception after the search (the spec's inception_top_k)


def n_finished(study: optuna.Study) -> int:
    """Finished search trials (seed re-runs and confirmation runs do not count against the trial budget)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED) if is_search(t.user_attrs))


def finite_or_null(d: dict) -> dict:
    """The record's view of a metrics dict: NaN/Inf (undefined) become None, never numbers."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


class Surplus(Exception):
    """A trial asked after the budget was met (or a second copy of a queued seed re-run): not trained."""


def holds_slot(study: optuna.Study, trial: optuna.Trial, budget: int, per_arm: bool = False) -> str | None:
    """None if this freshly asked trial may run, else why not. Trial numbers are assigned under a lock
    on the study, so every trial numbered before this one is already visible in the storage. Under the
    per-arm search `budget` is per arm, and a trial's arm is fixed when it is queued (queue_arms), so
    the count needs nothing another worker may not have written yet."""
    before = [t for t in study.get_trials(deepcopy=False, states=ACTIVE) if t.number < trial.number]
    for kind, attrs in (("seed re-run", (REEVAL, "seed_index")), ("confirmation run", ("confirm_of", "confirm_seed"))):
        key = tuple(trial.user_attrs.get(a) for a in attrs)
        if key[0] is not None:
            if any(tuple(t.user_attrs.get(a) for a in attrs) == key for t in before):
                return f"{kind} {key} already taken by another worker"
            return None
    if is_owed_study(study):  # asked where only queued re-runs and confirmation runs train: nothing queued was left
        return "no seed re-run or confirmation run was queued for this trial"
    arm = trial.user_attrs.get(ARM_ATTR)
    if per_arm and arm is None:  # asked with no arm queued: the per-arm search trains only queued trials
        return "no arm was queued for this trial (per-arm search)"
    n_before = sum(1 for t in before if is_search(t.user_attrs) and t.user_attrs.get(ARM_ATTR) == arm)
    what = f"arm {arm}'s budget of {budget} trials" if per_arm else f"trial budget {budget}"
    return f"{what} already met by other workers" if n_before >= budget else None


@dataclass
class TrialRunner:
    """The two halves of a trial around training: `start` (budget slot, config, attributes) and
    `finish` (files, attributes, the value(s) to tell). One trial or a population uses the same."""

    spec: StudySpec
    opts: RunOptions
    source: Source
    budget: int
    store: str | None = None  # the search study's artifact store (an owed run's own study does not carry it)

    def __post_init__(self) -> None:
        e = self.spec.eval
        self.evaluate = DATASETS.get(self.spec.dataset).build_evaluator(
            EvalRequest(e.split, e.samples, self.opts.device, self.opts.data_dir, self.spec.metric))
        self.tensorboard = TensorBoard() if self.opts.tensorboard else None  # written during training

    def trial_dir(self, number: int) -> Path:
        """Trial `number` as reports list it (bench.storage.trial_id: owed runs from OWED_BASE on)."""
        return self.opts.runs_dir / self.spec.name / "trials" / str(number)

    def on_log(self, numbers: list[int]):
        """The trainer's on_log for these trials (member order), or None: no host sync asked for."""
        return self.tensorboard.on_log(numbers) if self.tensorboard else None

    def start(self, trial: optuna.Trial) -> TrialConfig:
        why_not = holds_slot(trial.study, trial, self.budget, per_arm=not self.spec.joint)
        if why_not:
            trial.set_user_attr("surplus", why_not)
            raise Surplus(why_not)
        retried = trial.user_attrs.get("config")  # a killed worker's trial, queued again: same seed too
        seed = retried["seed"] if retried else trial_seed(self.spec, trial.number, trial.user_attrs)
        if self.racing and is_search(trial.user_attrs):  # its files are those of race seed 0 (bench.racing)
            seed = racing.race_seed(self.spec.seed, 0)
        cfg = suggest_config(trial, self.spec, self.opts.steps, seed)
        trial.set_user_attr("config", cfg.to_dict())
        trial.set_user_attr("device", describe(self.opts.device))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if self.tensorboard:
            self.tensorboard.start(trial_id(trial), self.trial_dir(trial_id(trial)), cfg)
        return cfg

    @property
    def racing(self) -> bool:
        """Seed racing (bench.racing): a search trial trains its config on up to seeds_per_trial seeds."""
        return self.spec.search.seeds_per_trial > 1

    def pruner(self, trial: optuna.Trial) -> Callable[[int, dict], bool]:
        # a confirmation run is never pruned: every seed runs its budget; a racing trial reports per seed, not per step
        confirming = CONFIRM in trial.user_attrs or self.racing

        def on_eval(step: int, metrics: dict) -> bool:
            if self.tensorboard:
                self.tensorboard.on_eval(trial_id(trial), step, metrics)
            value = metrics.get(self.spec.metric)
            if confirming or self.spec.multi_objective or value is None or not math.isfinite(value):
                return False  # multi-objective, or undefined here (no high-quality sample yet): no pruning
            trial.report(value, step)
            return trial.should_prune()
        return on_eval

    def finish(self, trial: optuna.Trial, result: TrialResult, population: int = 1) -> float | list[float]:
        spec, opts, cfg = self.spec, self.opts, result.config
        trial_dir = self.trial_dir(trial_id(trial))
        grid_ = None
        if result.status != "diverged":
            n_show = 64 if self.source.kind == "image" else 2500
            grid_ = sampler(result.modules["generator"], cfg.z_dim, cfg.seed, torch.device(opts.device),
                            output=sample_output(self.source.kind))(n_show)
        centers = getattr(self.source, "centers", None)  # a 2D mixture: its modes under the samples
        records.write_trial_dir(trial_dir, result, grid_,
                                (centers, self.source.sigma) if centers is not None else None)
        if self.tensorboard:
            self.tensorboard.finish(trial_id(trial), result, trial_dir / "samples.png")
        store = self.store or trial.study.user_attrs.get(artifacts.STORE_ATTR)
        if store:  # reachable from every machine that reaches the storage (bench.artifacts)
            artifacts.upload(trial, trial_dir, store)
        stab = trial_stability(result.history, result.evals, result.status, result.diverged_step, spec.metric)
        # a diverged trial has no final model: its last pre-divergence evaluation stays in evals.csv only;
        # an undefined value (NaN) is recorded as null, never as a number
        final = finite_or_null(result.final) if result.status != "diverged" else {}
        stab = finite_or_null(stab)
        for k, v in {"status": result.status, "diverged_step": result.diverged_step,
                     "steps_done": result.steps_done, "seconds": round(result.seconds, 2), "population": population,
                     "arithmetic": result.arithmetic,
                     "metrics": final, "stability": stab, "trial_dir": str(trial_dir),
                     **flat_metrics(final)}.items():  # flat: what optuna-dashboard lists (bench.trackers)
            trial.set_user_attr(k, v)
        if result.status != "completed":  # diverged or pruned: TPE learns the region is bad
            raise optuna.TrialPruned(f"{result.status} at step {result.diverged_step or result.steps_done}")
        values = [final.get(m) if m in final else stability_objective(m, stab, spec.metric) for m in spec.metrics]
        if any(v is None for v in values):  # e.g. reverse KL with no high-quality sample
            trial.set_user_attr("status", "metric_undefined")
            undefined = [m for m, v in zip(spec.metrics, values) if v is None]
            raise optuna.TrialPruned(f"{', '.join(undefined)} undefined for this trial's samples")
        return [float(v) for v in values] if spec.multi_objective else float(values[0])

    def finish_race(self, trial: optuna.Trial, results: list[TrialResult], values: list[float], raced_out: bool) -> float:
        """A raced search trial (bench.racing): race seed 0's files and attributes, every seed's value, and
        as its value the median over the seeds it ran. Raced out, or most seeds not completed: PRUNED."""
        try:
            self.finish(trial, results[0])
        except optuna.TrialPruned:
            pass  # a seed that did not complete is one worst race value, not the trial's end
        trial.set_user_attr(racing.RACE_ATTR, values)  # what the pruner saw: a run that did not complete at RACE_WORST
        trial.set_user_attr("race_statuses", [r.status for r in results])
        raw = [r.final.get(self.spec.metric) if r.status == "completed" else None for r in results]
        trial.set_user_attr("race_metric", [v if v is not None and math.isfinite(v) else None for v in raw])
        if raced_out:
            trial.set_user_attr("status", "pruned")
            raise optuna.TrialPruned(f"raced out after {len(values)} of {self.spec.search.seeds_per_trial} seeds")
        value = racing.race_summary(values)
        if abs(value) >= racing.RACE_WORST:
            trial.set_user_attr("status", "diverged")
            raise optuna.TrialPruned(f"most of its {len(values)} race seeds did not complete")
        metrics = {**trial.user_attrs.get("metrics", {}), self.spec.metric: value}  # what reports rank it by
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr(self.spec.metric, value)
        trial.set_user_attr("status", "completed")
        return value


HOLD_ENV = "STABGEN_TEST_HOLD"


def hold_point(trial_number: int, step: int) -> None:
    """A synchronisation point for crash-safety tests, off unless $STABGEN_TEST_HOLD = "TRIAL:STEP:FILE":
    trial TRIAL, on reaching step STEP, writes FILE and waits while it exists — so a test kills or
    interrupts a run at a known step of a known trial instead of guessing with sleeps."""
    hold = os.environ.get(HOLD_ENV)
    if not hold:
        return
    try:
        number, at, path = hold.split(":", 2)
        number, at = int(number), int(at)
    except ValueError:
        from stabgen.errors import StabgenError
        raise StabgenError(f"${HOLD_ENV}={hold!r} is not TRIAL:STEP:FILE (a test hook; unset it)") from None
    if trial_number == number and step == at:
        Path(path).write_text(str(os.getpid()))
        while Path(path).exists():
            time.sleep(0.05)


def _step_callback(trial_number: int, on_step: Callable[[int, int], None] | None,
                   tick: Callable[[int], None] | None = None) -> Callable[[int], None]:
    def step(s: int) -> None:
        hold_point(trial_number, s)
        if on_step:
            on_step(trial_number, s)
        if tick:
            tick(s)
    return step


class RunMeter:
    """The whole run as one progress task, in trainings: each finished search trial, seed re-run and
    confirmation run counts 1 (counted in the storage, so over all workers), and the round this process
    is training counts its members' steps as they go — so the whole run's ETA moves within a trial (a
    population round of 16 confirmation runs used to leave every bar still for its whole length)."""

    def __init__(self, task: progress.Task) -> None:
        self.task, self.done = task, 0.0

    def sync(self, done: int, total: int) -> None:
        self.done = float(done)
        self.task.update(completed=self.done, total=float(max(total, done)))

    def round(self, members: int, steps: int) -> Callable[[int], None]:
        base, every = self.done, max(1, steps // 100)  # about 100 updates per training, whatever its length

        def tick(step: int) -> None:
            if step % every == 0 or step == steps:
                self.task.update(completed=base + members * step / steps)
        return tick


@contextlib.contextmanager
def ask_lock(storage: str):
    """Processes on one storage take turns at asking a round of trials (population_round). Why, on SQLite:
    Python's sqlite3 reads outside a transaction, so two processes can both see a queued (WAITING) trial
    and both mark it RUNNING — one trial trained twice, the second `tell` failing (seen with `--jobs 2`);
    a file lock beside the database, released by the kernel if its holder dies. On PostgreSQL, Optuna's
    row lock (FOR UPDATE) already keeps a trial from being asked twice, but workers asking one trial each
    in turn split an arm's queued seeds between them (more, smaller populations; bench.search's
    population_round): a session-level advisory lock on a connection of its own, released by the server
    when the connection ends — its holder's death included. Other storages: no lock."""
    if storage.startswith("sqlite:///"):
        import fcntl

        path = Path(storage.removeprefix("sqlite:///")).with_suffix(".ask.lock")
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    elif storage.startswith(("postgresql", "postgres://")):
        import sqlalchemy

        from bench.storage import driver_url, engine_kwargs

        engine = sqlalchemy.create_engine(driver_url(storage), poolclass=sqlalchemy.pool.NullPool,
                                          **engine_kwargs(storage))
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": ASK_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": ASK_LOCK_KEY})
        finally:
            engine.dispose()
    else:
        yield


ASK_LOCK_KEY = 0x57AB6E4  # PostgreSQL's advisory lock key for ask_lock (any fixed bigint: one per database)


def population_round(study: optuna.Study, runner: TrialRunner, size: int, on_trial_start=None, on_step=None,
                     on_trial_end=None, meter: RunMeter | None = None) -> int:
    """Ask up to `size` trials, train each group of compatible configs as one population (pruning
    per member), tell every result; returns how many trials were asked. Heartbeats run for every
    member, so a killed worker's trials go stale and are retried like single ones."""
    asked: list[tuple[optuna.Trial, TrialConfig]] = []
    # the whole round is asked under one turn of the lock, so a worker takes a contiguous run of the queue and
    # an arm's queued seeds stay in as few populations as can be. Why: asked one by one, two --jobs workers
    # took turns and split each arm's seeds between them — the ring's look of 50 trained as 8 populations
    # (gp 3 + 7, r1 4 + 6, r2 8 + 2, …), each paying the small net's fixed per-step cost, where the queue
    # in two runs of 25 is 6; one worker then sat idle for the last 36 s (measured, 2026-12-08)
    with ask_lock(runner.opts.storage):
        for _ in range(size):
            trial = study.ask()
            _first_heartbeat(study, trial)
            try:
                asked.append((trial, runner.start(trial)))
            except Surplus:
                study.tell(trial, state=State.FAIL)
                break
            except BaseException as e:  # e.g. ^C: nothing asked in this round is left RUNNING
                for t in [trial] + [t for t, _ in asked]:
                    _fail(study, t, retry=isinstance(e, KeyboardInterrupt))
                raise
            if on_trial_start:
                on_trial_start(trial_id(trial))
    groups: dict[tuple, list[tuple[optuna.Trial, TrialConfig]]] = {}
    for trial, cfg in asked:
        groups.setdefault(group_key(cfg), []).append((trial, cfg))
    untold = {t.number: t for t, _ in asked}
    try:
        # one heartbeat for every trial of the round from the start, not per group: a trial asked here
        # whose group has not started yet must go stale too if this worker dies (else it stays RUNNING)
        with heartbeats(study, [t for t, _ in asked]):
            _train_groups(study, runner, groups, untold, on_step, on_trial_end, meter)
    except BaseException as e:  # e.g. ^C or an error: every trial of this round not yet told is failed, none left RUNNING
        for t in untold.values():
            _fail(study, t, retry=isinstance(e, KeyboardInterrupt))
        raise
    return len(asked)


def _first_heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    """A heartbeat the moment a trial is asked. Why: Optuna counts a RUNNING trial stale only once it has
    a heartbeat, and the round's heartbeat thread starts after every member was asked and configured; a
    worker killed in between left a trial RUNNING forever, and every resumed worker waited for it."""
    storage = study._storage  # Optuna exposes neither the storage nor trial ids publicly (bench.storage.heartbeats)
    if hasattr(storage, "record_heartbeat") and storage.get_heartbeat_interval() is not None:
        storage.record_heartbeat(trial._trial_id)


def _fail(study: optuna.Study, trial: optuna.Trial, retry: bool) -> None:
    """A trial that will not finish: FAIL, and on an interruption (^C, SIGTERM) queued again."""
    if retry:
        trial.set_user_attr("interrupted", True)
        requeue(study, trial)
    study.tell(trial, state=State.FAIL)


def _train_groups(study: optuna.Study, runner: TrialRunner, groups: dict, untold: dict, on_step, on_trial_end,
                  meter: RunMeter | None = None) -> None:
    """Train each group of compatible configs as one population and tell its trials."""
    for group in groups.values():
        trials = [t for t, _ in group]
        if runner.racing and is_search(trials[0].user_attrs):
            _race_group(study, runner, group, untold, on_step, on_trial_end, meter)
            continue
        tick = meter.round(len(group), group[0][1].steps) if meter is not None else None
        results = train_population(
            [c for _, c in group], runner.source, runner.opts.device, evaluate=runner.evaluate,
            on_eval=lambda m, step, metrics, trials=trials: runner.pruner(trials[m])(step, metrics),
            on_step=_step_callback(trial_id(trials[0]), on_step, tick), on_log=runner.on_log([trial_id(t) for t in trials]))
        for trial, result in zip(trials, results):
            try:
                frozen = study.tell(trial, runner.finish(trial, result, population=len(group)))
            except optuna.TrialPruned:
                frozen = study.tell(trial, state=State.PRUNED)
            del untold[trial.number]
            if meter is not None:
                meter.done += 1
            if on_trial_end:
                on_trial_end(frozen)


def _race_group(study: optuna.Study, runner: TrialRunner, group: list, untold: dict, on_step, on_trial_end,
                meter: RunMeter | None = None) -> None:
    """Seed racing (bench.racing): the group's configs train race seed after race seed (one population per
    seed), each trial reporting its seed-k value at step k; a trial the pruner stops trains no further seed."""
    spec = runner.spec
    n_seeds = spec.search.seeds_per_trial
    alive = list(group)
    results: dict[int, list[TrialResult]] = {t.number: [] for t, _ in group}
    values: dict[int, list[float]] = {t.number: [] for t, _ in group}

    def tell(trial: optuna.Trial, raced_out: bool) -> None:
        try:
            frozen = study.tell(trial, runner.finish_race(trial, results[trial.number], values[trial.number], raced_out))
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=State.PRUNED)
        del untold[trial.number]
        if on_trial_end:
            on_trial_end(frozen)

    for k in range(n_seeds):
        trials = [t for t, _ in alive]
        cfgs = [dataclasses.replace(c, seed=racing.race_seed(spec.seed, k)) for _, c in alive]
        tick = meter.round(len(alive), cfgs[0].steps) if meter is not None else None
        out = train_population(cfgs, runner.source, runner.opts.device, evaluate=runner.evaluate,
                               on_step=_step_callback(trial_id(trials[0]), on_step, tick),
                               on_log=runner.on_log([trial_id(t) for t in trials]))
        still = []
        for (trial, cfg), res in zip(alive, out):
            results[trial.number].append(res)
            values[trial.number].append(racing.race_value(res.final.get(spec.metric), res.status == "completed",
                                                          spec.direction))
            trial.report(values[trial.number][-1], k)
            if meter is not None:
                meter.done += 1
            if k + 1 < n_seeds and trial.should_prune():
                tell(trial, raced_out=True)
            else:
                still.append((trial, cfg))
        alive = still
    for trial, _ in alive:
        tell(trial, raced_out=False)


def owed_population(size: int, device: str, processes: int = 1, measured: int | None = None) -> int:
    """How many queued runs (seed re-runs, confirmation) train at once once the search is done. They
    are fixed configs, mostly one config on several seeds, so they train as populations even where
    the search trains one trial at a time: a member computes what its solo run computes
    (tests/stabgen/test_population.py), and on CPU ten seeds of a small net cost a fraction of ten solo runs.
    On CPU up to OWED_POPULATION_CPU at once in one process; in each one-thread --jobs worker the `measured`
    size (bench.jobs.population: the fastest of 1, 8, 16, 32 for this model on this machine), or
    OWED_POPULATION_JOBS where the layout was not measured (bench.storage says why), a round also cut to the
    worker's share of the queue (`share`); on an accelerator the spec's (or probed) size, which knows its memory."""
    if torch.device(device).type != "cpu":
        return size
    return max(size, (measured or OWED_POPULATION_JOBS) if processes > 1 else OWED_POPULATION_CPU)


def population_size(spec: StudySpec, device: str, source: Source) -> int:
    """K from the spec, or for 'auto' from free accelerator memory: a probe population of 2 measures
    one member's peak memory, and K fills 70 % of this worker's share of what is free (at most 256;
    the share: free memory over the workers on this GPU, stabgen.hardware.workers_per_gpu). On CPU, 'auto' is 1:
    see benchmarks/results for what populations gain there."""
    k = spec.train.population
    if k != "auto":
        return int(k)
    if not device.startswith("cuda"):
        return 1
    per_member = 1
    for cfg in probe_configs(spec):  # the hungriest model of the space decides
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        train_population([cfg, cfg], source, device)
        per_member = max(per_member, (torch.cuda.max_memory_allocated(device) - base) // 2)
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    sharing = workers_per_gpu()  # workers of this node on the same GPU each take their share
    return max(1, min(256, int(0.7 * free / sharing // per_member)))


def queue_grid(study: optuna.Study, spec: StudySpec, budget: int) -> None:
    """sampler = grid: queue the first `budget` grid points that no active trial holds yet."""
    held = [t.system_attrs.get("fixed_params", t.params) for t in study.get_trials(deepcopy=False, states=ACTIVE)
            if is_search(t.user_attrs)]
    points = grid(spec)[:budget]
    for params in points:
        if params not in held:
            study.enqueue_trial(params)
            held.append(params)


def queue_arms(study: optuna.Study, spec: StudySpec, per_arm: int,
               trials: list[optuna.trial.FrozenTrial] | None = None) -> int:
    """The per-arm search: queue every arm's missing trials (its arm's parameters fixed, the rest left to
    the arm's own sampler), slot by slot across arms so that a partial study has every arm. A trial that
    failed for good frees its slot, which is queued again; returns how many were queued."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    held: dict[str, int] = {}
    for t in trials:
        if t.state in ACTIVE and is_search(t.user_attrs) and ARM_ATTR in t.user_attrs:
            held[t.user_attrs[ARM_ATTR]] = held.get(t.user_attrs[ARM_ATTR], 0) + 1
    queued = 0
    for slot in range(per_arm):
        for arm in arms(spec):
            if held.get(arm.label, 0) <= slot:
                study.enqueue_trial(arm.fixed_params(spec), user_attrs={ARM_ATTR: arm.label})
                held[arm.label] = held.get(arm.label, 0) + 1
                queued += 1
    return queued


def run(spec: StudySpec, opts: RunOptions, on_trial_start=None, on_step=None, on_trial_end=None,
        poll: float = 1.0, worker: bool = False, study: optuna.Study | None = None) -> optuna.Study:
    """Work on the study until it holds `opts.trials` finished search trials (and their seed re-runs).

    Any number of processes may run this at once on one storage (`bench worker`): each asks for a
    trial, trains it and tells the result; when the budget is full but other workers' trials are
    still running, it waits for them (a killed worker's trial goes stale, is failed and queued again).
    Progress: a stabgen.progress task for the search trials, then one for the owed re-runs and
    confirmation runs (counted over all workers), each with its ETA. `study`: the study already opened
    and its spec checked (bench.api.check_storage), so the storage is opened once per command.
    """
    if study is None:
        study = open_study(spec, opts.storage, heartbeat=opts.heartbeat)
        record_spec(study, spec, opts.allow_spec_change)  # a changed spec stops here, nothing touched
    claim_runs_folder(opts.runs_dir / spec.name, opts.storage)  # one study's trial folders per runs/STUDY
    artifacts.ensure(study, opts.runs_dir, opts.artifacts)
    # a fresh RNG stream on resume; and one per worker, or simultaneous workers would propose alike
    offset = len(study.get_trials(deepcopy=False)) + (random.SystemRandom().randrange(1, 2**20) if worker else 0)
    study.sampler = make_sampler(spec, spec.seed + offset)
    with quiet():
        _work(study, spec, opts, on_trial_start, on_step, on_trial_end, poll, echo_others=not worker)
    return study


class TrialEcho:
    """The line per finished trial (`on_trial_end`) for every trial of the study, also those other processes
    trained (--jobs workers, `bench worker`s): their lines reach no terminal the run shows, so a piped
    `bench run --jobs 2` log listed about half its trials (issue 31's review). Another process's trial is
    told when this process next reads the storage: after its own round, or within `poll` while it waits.
    Trials finished before the run began (a resume) are not told again."""

    def __init__(self, on_trial_end, trials: list, others: bool = True) -> None:
        self.on_trial_end, self.others_too = on_trial_end, others
        self.told = {t._trial_id for t in trials if t.state in FINISHED}  # a storage-wide id: search and owed studies

    def own(self, frozen: optuna.trial.FrozenTrial) -> None:
        self.told.add(frozen._trial_id)
        if self.on_trial_end is not None:
            self.on_trial_end(frozen)

    def others(self, trials: list) -> None:
        if not self.others_too:
            return
        new = [t for t in trials if t.state in FINISHED and t._trial_id not in self.told]
        for t in sorted(new, key=lambda t: (t.datetime_complete or datetime.datetime.min, t._trial_id)):
            self.own(t)


def _owed_counts(trials: list[optuna.trial.FrozenTrial]) -> tuple[int, int]:
    """(finished, all) seed re-runs and confirmation runs in the study: the owed phase's progress."""
    extra = [t for t in trials if not is_search(t.user_attrs) and t.state != State.FAIL]
    return sum(1 for t in extra if t.state in FINISHED), len(extra)


def _work(study: optuna.Study, spec: StudySpec, opts: RunOptions, on_trial_start, on_step, on_trial_end,
          poll: float, echo_others: bool = True) -> None:
    """The worker loop of `run`: train while the budget has room, wait for others' running trials,
    then queue the seed re-runs still owed, then the confirmation runs (bench.confirm); return when
    none is owed. `echo_others`: on_trial_end is also called for other processes' trials (TrialEcho)."""
    if spec.sampler == "grid":
        queue_grid(study, spec, opts.trials)
    total = spec.search_budget(opts.trials)  # per-arm: opts.trials per arm, over every arm
    source = runner = None
    size = 1
    waiting_said = False
    echo = TrialEcho(on_trial_end, all_trials(study), others=echo_others)
    with contextlib.ExitStack() as bars, contextlib.ExitStack() as search_bar:
        meter = RunMeter(bars.enter_context(progress.task(f"{spec.name}: whole run, in trainings", total=total)))
        planned = total + _planned_owed(spec, opts)  # grows as sequential looks queue more
        searching = search_bar.enter_context(progress.task(f"{spec.name}: search trials", total=total))
        owed_bar = None
        while True:
            owed = owed_study(study, create=False)  # the seed re-runs and confirmation runs (bench.storage)
            for s in (study, owed) if owed is not None else (study,):
                optuna.storages.fail_stale_trials(s)
                sweep_orphans(s, grace=max(2, round(3 * opts.heartbeat)))
            trials = study.get_trials(deepcopy=False)
            if not spec.joint and queue_arms(study, spec, opts.trials, trials):
                trials = study.get_trials(deepcopy=False)
            extra = owed.get_trials(deepcopy=False) if owed is not None else []
            echo.others(trials + extra)
            searching.update(completed=min(total, sum(1 for t in trials if t.state in FINISHED
                                                      and is_search(t.user_attrs))))
            if owed_bar is not None:
                owed_bar.update(*_owed_counts(trials + extra))
            n_search = sum(1 for t in trials if t.state in ACTIVE and is_search(t.user_attrs))
            _sync_meter(meter, trials + extra, planned)
            target = (study if n_search < total or any(t.state == State.WAITING for t in trials)
                      else owed if any(t.state == State.WAITING for t in extra) else None)
            if target is not None:
                if runner is None:  # load data only when there is work: a finished study reports at once
                    source = DATASETS.get(spec.dataset).source(opts.data_dir).to(opts.device)
                    runner = TrialRunner(spec, opts, source, opts.trials, study.user_attrs.get(artifacts.STORE_ATTR))
                    size = population_size(spec, opts.device, source)
                k = _round_size(target, trials if target is study else extra, n_search, total, size, opts)
                population_round(target, runner, k, on_trial_start, on_step, echo.own, meter)
                waiting_said = False
                continue
            running = [t.number for t in all_trials(study, states=(State.RUNNING,))]
            if running:  # other workers' trials, or a killed one's until its heartbeat goes stale
                if not waiting_said:
                    log.info(f"waiting for running trial(s) {running} (other workers, or stale after "
                             f"{max(2, round(3 * opts.heartbeat))}s without a heartbeat)")
                    waiting_said = True
                time.sleep(poll)
                continue
            due = pending_reruns(study, spec) or confirm.pending(study, spec)
            if not due:
                echo.others(all_trials(study))  # what finished since this loop's read
                return
            for params, attrs in due:  # into their own study, so a confirmation seed is never Optuna's best trial
                owed_study(study).enqueue_trial(params, user_attrs=attrs)
            if owed_bar is None:  # the search phase is over: its task ends, the owed runs' begins
                search_bar.close()
                owed_bar = bars.enter_context(progress.task(f"{spec.name}: seed re-runs and confirmation"))


def _planned_owed(spec: StudySpec, opts: RunOptions) -> int:
    """Seed re-runs and first-look confirmation trainings a run will queue (bench.plan.work_counts)."""
    from bench.plan import work_counts

    w = work_counts(spec, opts.trials)
    return w["reruns"] + w["confirmation"]


def _sync_meter(meter: RunMeter, trials: list, planned: int) -> None:
    """The whole-run task from the storage: finished trainings of every worker over what is planned, or
    queued, whichever is more (a sequential look queues more seeds than the first look)."""
    live = [t for t in trials if t.state != State.FAIL]
    done = sum(len(t.user_attrs.get(racing.RACE_ATTR, ())) or 1 for t in live if t.state in FINISHED)  # a raced trial: its seeds
    meter.sync(done, max(planned, len(live)))


def _round_size(target: optuna.Study, trials: list, n_search: int, total: int, size: int, opts: RunOptions) -> int:
    """How many trials the next round asks of `target`: the population size while searching (queued search
    trials of the per-arm search train one round at a time, so each arm's sampler learns from the last);
    queued re-runs and confirmation runs all at once, up to what is queued (bench.search.owed_population) — a
    --jobs worker up to its share of it (bench.rounds.share)."""
    waiting = sum(1 for t in trials if t.state == State.WAITING)
    searching_queued = any(t.state == State.WAITING and is_search(t.user_attrs) for t in trials)
    processes = opts.jobs if isinstance(opts.jobs, int) else 1
    cap = owed_population(size, opts.device, processes, opts.population)
    # where --jobs auto measured populations faster than solo runs, a round costs mostly its fixed per-op part:
    # split the look evenly, counting the runs other workers have in flight (bench.rounds.share)
    running = sum(1 for t in trials if t.state == State.RUNNING) if even_split(opts.population) else 0
    if is_owed_study(target):
        return max(1, min(cap, share(waiting, processes, running)))
    k = cap if n_search >= total and not searching_queued else size
    if processes > 1 and k > size:  # a --jobs worker's round of queued runs: its share of them
        k = min(k, share(waiting, processes, running))
    room = total - n_search + waiting  # a solo trial is a round of one (the same code, K = 1)
    return max(1, min(k, room))


def primary(t: optuna.trial.FrozenTrial) -> float:
    return t.values[0]


def pending_reruns(study: optuna.Study, spec: StudySpec) -> list[tuple[dict, dict]]:
    """Seed re-runs still owed — every completed search config up to `per_config` seeds, then the
    top_k up to `per_config + extra` — minus those finished, running or queued (so a resumed or
    distributed study neither repeats nor forgets any)."""
    per, k, extra = spec.seeds.per_config, spec.seeds.top_k, spec.seeds.extra
    done = study.get_trials(deepcopy=False, states=(State.COMPLETE,))
    search = [t for t in done if is_search(t.user_attrs)]
    sign = 1 if spec.direction == "minimize" else -1
    search.sort(key=lambda t: sign * primary(t))
    have = {(t.user_attrs[REEVAL], t.user_attrs.get("seed_index")) for t in all_trials(study)
            if REEVAL in t.user_attrs and t.state != State.FAIL}
    owed = [(t, i) for rank, t in enumerate(search)
            for i in range(1, per + (extra if rank < k else 0))]
    return [(t.params, {REEVAL: t.number, "seed_index": i}) for t, i in owed if (t.number, i) not in have]
