"""`bench run --jobs N`: local worker processes share the study through its storage (issue 31) — exactly
the trials and confirmation runs asked for, none twice, also after one process is killed with -9."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from bench.storage import all_trials
import pytest
import torch

from bench import jobs
from stabgen.trial import TrialConfig
from helpers import study_toml
from stabgen.errors import StabgenError

BENCH = [sys.executable, "-m", "bench.cli"]
State = optuna.trial.TrialState
SPEC = study_toml(name="jobs", steps=60, eval_every=30, samples=300, top="[search]\nper_arm = 2",
                  confirm="seeds = 3\nstages = 1", regularizers=("none", "r1", "l2"),
                  space="lr = { low = 5e-4, high = 2e-3, log = true }")


def _counts(db: Path):
    study = optuna.load_study(study_name="jobs", storage=f"sqlite:///{db}")
    done = all_trials(study, states=(State.COMPLETE, State.PRUNED))  # the search's and the owed runs' studies
    search = collections.Counter(t.user_attrs["search_arm"] for t in done if "search_arm" in t.user_attrs)
    confirm = collections.Counter((t.user_attrs["confirm_arm"], t.user_attrs["confirm_seed"])
                                  for t in done if "confirm_arm" in t.user_attrs)
    workers = {t.user_attrs.get("worker") for t in done}
    return study, search, confirm, workers


def _expected(search, confirm) -> None:
    assert search == {"mlp2d_small/ns/none": 2, "mlp2d_small/ns/r1": 2, "mlp2d_small/ns/l2": 2}
    assert set(confirm.values()) == {1} and len(confirm) == 3 * 3  # every arm × seed once, none twice


@pytest.mark.slow
def test_two_jobs_share_the_study_and_nothing_is_duplicated(tmp_path):
    """Whichever process trains trial 0 is held at its step 30 until the other process has finished a
    trial of its own: both train, deterministically (a helper that starts late is not a race here)."""
    (tmp_path / "jobs.toml").write_text(SPEC)
    flag = tmp_path / "held"
    env = {**os.environ, "COLUMNS": "200", "STABGEN_TEST_HOLD": f"0:30:{flag}"}
    proc = subprocess.Popen([*BENCH, "run", "--study", "jobs.toml", "--jobs", "2"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not flag.exists():
        assert proc.poll() is None and time.time() < deadline, "no process reached the hold point"
        time.sleep(0.05)
    holder = f":{flag.read_text()}"
    while not any(w and not w.endswith(holder) for w in _counts(tmp_path / "runs/jobs/study.db")[3]):
        assert proc.poll() is None and time.time() < deadline, "the other process trained nothing"
        time.sleep(0.1)
    flag.unlink()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    study, search, confirm, workers = _counts(tmp_path / "runs/jobs/study.db")
    _expected(search, confirm)
    assert len(workers) == 2  # both processes trained
    assert not [t for t in study.trials if t.state == State.RUNNING]
    # the run's output has one line per finished trial, the helper's trials too (bench.search.TrialEcho)
    finished = all_trials(study, states=(State.COMPLETE, State.PRUNED))
    told = collections.Counter(re.findall(r"^trial (\d+)", err, re.M))  # the log, on stderr
    assert told == collections.Counter(str(t.number) for t in finished), err


@pytest.mark.slow
def test_a_killed_job_loses_and_duplicates_nothing(tmp_path):
    """kill -9 of the process training search trial 1 at step 30 (bench.search.hold_point), then the same
    command again: every trial and confirmation run exactly once among the finished ones."""
    (tmp_path / "jobs.toml").write_text(SPEC)
    flag = tmp_path / "held"
    args = [*BENCH, "run", "--study", "jobs.toml", "--jobs", "2", "--heartbeat", "1"]
    env = {**os.environ, "COLUMNS": "200", "STABGEN_TEST_HOLD": f"1:30:{flag}"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not flag.exists():
        assert proc.poll() is None and time.time() < deadline, "no process reached the hold point"
        time.sleep(0.05)
    time.sleep(0.2)
    os.kill(int(flag.read_text()), signal.SIGKILL)
    flag.unlink()
    try:
        proc.communicate(timeout=600)  # the survivor finishes what it can; a killed main exits at once
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not end after one of its processes was killed")
    time.sleep(4)  # let any orphaned worker finish its round
    resume = {k: v for k, v in env.items() if k != "STABGEN_TEST_HOLD"}
    r = subprocess.run(args, cwd=tmp_path, env=resume, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    study, search, confirm, _ = _counts(tmp_path / "runs/jobs/study.db")
    _expected(search, confirm)
    assert any(t.state == State.FAIL for t in study.trials)  # the killed trial, failed when its heartbeat went stale


def test_every_core_is_busy_by_default_unless_the_environment_says_otherwise(monkeypatch):
    """The CLI's --jobs left out: $STABGEN_JOBS, else auto (click reads the variable); the API's None is one
    process (a spawned worker re-imports the calling script: a script asks for processes)."""
    from typer.main import get_command

    from bench.cli import app

    def default(command: str):
        ctx = get_command(app).make_context("bench", [command, "--help"], resilient_parsing=True)
        sub = ctx.command.get_command(ctx, command)
        sub_ctx = sub.make_context(command, [], parent=ctx, resilient_parsing=True)
        return sub_ctx.params["jobs"]

    monkeypatch.delenv("STABGEN_JOBS", raising=False)
    assert [default(c) for c in ("run", "benchmark", "reproduce")] == ["auto"] * 3
    monkeypatch.setenv("STABGEN_JOBS", "3")
    assert [default(c) for c in ("run", "benchmark", "reproduce")] == ["3"] * 3
    assert jobs.parse(None) == 1
    with pytest.raises(StabgenError, match=r"--jobs \(or \$STABGEN_JOBS\) must be .*'many'"):
        jobs.parse("many")


def test_the_header_names_the_processes_asked_for(monkeypatch):
    """bench.api.describe_run's device: this process's threads for one process; the processes × threads
    --jobs N starts; "--jobs auto" until its choice is said (bench.jobs.layout logs it)."""
    from bench import api
    from stabgen.hardware import describe

    monkeypatch.setattr(jobs, "cores", lambda: 4)
    spec = api.load_spec("smoke")
    for given, want in ((1, describe("cpu")), (2, "2 processes × 2 torch threads"), (4, "4 processes × 1 torch thread"),
                        ("auto", "--jobs auto on 4 cores")):
        words = api.describe_run(spec, api.options(spec, jobs=given, device="cpu"))["device"]
        assert words.endswith(want), (given, words)


def test_jobs_values_are_checked_in_one_line():
    assert jobs.parse("auto") == "auto" and jobs.parse("3") == 3
    for bad in ("0", "-2", "many", "1000"):
        with pytest.raises(StabgenError, match="--jobs"):
            jobs.parse(bad)
    from bench import api
    with pytest.raises(StabgenError, match="--jobs"):  # --plan refuses it before pricing anything (no data here)
        api.plan("smoke", jobs="many", data_dir="/nonexistent", device="cpu")


def test_layout_splits_the_cores_and_auto_reads_its_measurement(tmp_path, monkeypatch):
    from bench.spec import load

    spec = load("smoke")
    monkeypatch.setattr(jobs, "cores", lambda: 4)
    assert jobs.layout(2, spec, "cpu") == (2, 2) and jobs.layout(4, spec, "cpu") == (4, 1)
    assert jobs.layout("auto", spec, "cuda:0") == (1, 4)  # a GPU: one process, its populations fill it
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    key = f"{jobs.cpu_name()}|4 cores|gan|64"
    for processes, threads, want in ((300.0, 200.0, (4, 1)), (100.0, 200.0, (1, 4))):
        (tmp_path / jobs.CACHE).write_text(json.dumps({key: {"processes": processes, "threads": threads,
                                                             "populations": {"8": 250.0}}}))
        assert jobs.layout("auto", spec, "cpu") == want


def test_an_implausible_measurement_is_measured_again_and_never_cached(tmp_path, monkeypatch, caplog):
    """Two processes more than 4× one 2-thread process (the cache once held 141 against 8 steps/s, timed
    beside a benchmark) is other load: a cached one is measured again, a fresh one is used but not kept;
    2.1× (321 against 150 steps/s, measured on a quiet machine: threads cost overhead on a small net) is not."""
    from bench.spec import load

    spec = load("smoke")
    monkeypatch.setattr(jobs, "cores", lambda: 2)
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    key = f"{jobs.cpu_name()}|2 cores|gan|64"
    (tmp_path / jobs.CACHE).write_text(json.dumps({key: {"processes": 141.0, "threads": 8.0, "cores": 2}}))
    answers = iter([{"processes": 90.0, "threads": 10.0, "cores": 2, "populations": {}},
                    {"processes": 321.0, "threads": 150.0, "cores": 2, "populations": {}}])
    monkeypatch.setattr(jobs, "measure", lambda *a, **k: next(answers))
    assert jobs.layout("auto", spec, "cpu") == (2, 1)  # 90 against 10 (9×): used once, with a warning
    assert "not cached" in caplog.text and json.loads((tmp_path / jobs.CACHE).read_text())[key]["threads"] == 8.0
    assert jobs.speedup("auto", spec, "cpu") == (2, 1, 321.0 / 150.0)  # measured again: plausible, kept
    assert json.loads((tmp_path / jobs.CACHE).read_text())[key]["threads"] == 150.0
    assert jobs.plausible({"processes": 100.0, "threads": 25.0}, 2) and jobs.plausible({"processes": 25.0, "threads": 100.0}, 2)
    assert not jobs.plausible({"processes": 100.0, "threads": 24.0}, 2)
    assert not jobs.plausible({"processes": 24.0, "threads": 100.0}, 2)


def test_plan_prices_jobs_by_the_measured_speed_up(tmp_path, monkeypatch):
    """--plan --jobs: one process is the plan's own seconds; one 1-thread process per core divides them by
    the cached steps/s ratio (hand-computed: 300/200 → 1.5×); any other count is said to be unpriced."""
    import pandas as pd

    from bench.papers.plan import total_line
    from bench.spec import load

    spec = load("smoke")
    monkeypatch.setattr(jobs, "cores", lambda: 4)
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    (tmp_path / jobs.CACHE).write_text(json.dumps({f"{jobs.cpu_name()}|4 cores|gan|64":
                                                   {"processes": 300.0, "threads": 200.0, "populations": {}}}))
    assert jobs.speedup(1, spec, "cpu") == (1, 4, 1.0)
    assert jobs.speedup("auto", spec, "cpu") == (4, 1, 1.5) == jobs.speedup(4, spec, "cpu")
    assert jobs.speedup(2, spec, "cpu") == (2, 2, None)
    table = pd.DataFrame({"trainings": [2, 1], "steps each": [100, 100], "Inception images": [0, 0],
                          "estimated s": [60.0, 30.0], "with --jobs s": [40.0, 20.0],
                          "--jobs layout": ["4 processes × 1 thread"] * 2})
    line = total_line(table, "a CPU")
    assert "estimated wall time ≈ 1m30s on a CPU (one process" in line
    assert "with --jobs (4 processes × 1 thread): ≈ 1m00s" in line
    assert "not priced" in total_line(table.assign(**{"with --jobs s": float("nan")}), "a CPU")


def test_a_config_whose_worker_keeps_dying_is_retried_then_reported_failed(tmp_path):
    """A killed worker's trial goes stale: its config (seed included) is queued again, MAX_RETRIES times in
    a row; then the study records it as given up and the trials frame lists it as failed (the worst value
    in every table) — it never vanishes. Optuna's own callback dropped it silently after two retries."""
    import time

    import optuna

    from bench import records, spec as spec_mod, storage
    from helpers import study_toml

    (tmp_path / "s.toml").write_text(study_toml("ring", name="s"))
    spec = spec_mod.load(str(tmp_path / "s.toml"))
    study = storage.open_study(spec, f"sqlite:///{tmp_path / 's.db'}", heartbeat=0.3)  # beat 1 s, grace 2 s
    config = {"model": "mlp2d_small", "regularizer": "none", "seed": 1234, "lr": 1e-3}
    study.enqueue_trial({}, user_attrs={"config": config})
    numbers = []
    for _ in range(storage.MAX_RETRIES + 1):
        trial = study.ask()  # the queued config, like a worker that then dies mid-training
        assert trial.user_attrs["config"]["seed"] == 1234
        numbers.append(trial.number)
        study._storage.record_heartbeat(trial._trial_id)
        time.sleep(3.0)  # past the grace period (its heartbeat is stored in whole seconds)
        optuna.storages.fail_stale_trials(study)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL] * (storage.MAX_RETRIES + 1)  # nothing left WAITING
    assert [t.user_attrs.get("retries", 0) for t in study.trials] == list(range(storage.MAX_RETRIES + 1))
    assert study.user_attrs[storage.GIVEN_UP] == [numbers[-1]]
    frame = records.trials_frame(study)
    assert list(frame["trial"]) == [numbers[-1]] and list(frame["status"]) == ["failed"]


def test_this_process_gets_its_thread_count_back_after_the_trainings(tmp_path):
    """Inside `jobs.helpers` this process trains with its share of the cores (1 thread of 2 beside one
    worker); after it — where the Inception FID of the top trials runs — with all of them again, also after
    an error. (It kept 1 thread: mnist_reg --jobs auto scored Inception in 316 s instead of ~160.)"""
    import tomllib

    import torch

    from bench.spec import StudySpec

    spec = StudySpec.model_validate(tomllib.loads(SPEC))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with jobs.helpers(spec, None, 1, 1) as procs:  # one process: no worker beside it
            assert procs == [] and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), jobs.helpers(spec, None, 1, 1):
            raise RuntimeError("a training failed")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_queued_runs_train_as_populations_and_each_jobs_worker_asks_its_share():
    """bench.search.owed_population: one CPU process trains the queued runs 16 at a time, a one-thread --jobs
    worker 8 at a time (as fast as solo runs on the MNIST models, faster on the 2D ring's small nets), and
    never more than its share of what is queued (bench.rounds.share), so no look ends with one core idle
    for a population's whole length; an accelerator keeps the spec's (or probed) size."""
    from bench.rounds import share
    from bench.search import owed_population
    from bench.storage import OWED_POPULATION_CPU, OWED_POPULATION_JOBS

    assert owed_population(1, "cpu") == OWED_POPULATION_CPU == 16 and owed_population(20, "cpu") == 20
    assert owed_population(1, "cpu", processes=2) == OWED_POPULATION_JOBS == 8 and owed_population(12, "cpu", processes=2) == 12
    assert owed_population(1, "cpu", 2, measured=32) == 32 and owed_population(1, "cpu", 2, measured=1) == 1
    assert owed_population(1, "cpu", 1, measured=32) == OWED_POPULATION_CPU  # one process: not what was measured
    assert owed_population(8, "cuda:0") == 8 == owed_population(8, "cuda:0", processes=2)
    assert [share(w, 2) for w in (20, 10, 5, 2, 1, 0)] == [10, 5, 3, 1, 1, 1] and share(7, 1) == 7
    # the other workers' runs in flight counted (an even split), never more than is waiting
    assert [share(25, 2, running=25), share(10, 2, running=8), share(2, 2, running=8), share(0, 2, running=8)] == [25, 9, 2, 1]


def test_a_round_is_asked_in_one_turn_of_the_lock(monkeypatch, tmp_path):
    """bench.search.population_round asks its whole round while holding the ask lock once, so two --jobs workers
    cannot take turns through the queue and split an arm's seeds between them (each split population pays the
    model's fixed per-step cost again: measured on the ring, 8 populations for a look of 50 where 6 do)."""
    import contextlib
    from types import SimpleNamespace

    from bench import search

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    for i in range(5):
        study.enqueue_trial({"x": float(i)})
    held, turns, asks = [False], [], []
    real_ask = study.ask

    @contextlib.contextmanager
    def lock(storage):
        turns.append(storage)
        held[0] = True
        yield
        held[0] = False

    def ask(*a, **k):
        asks.append(held[0])
        return real_ask(*a, **k)

    monkeypatch.setattr(search, "ask_lock", lock)
    monkeypatch.setattr(study, "ask", ask)
    told = []
    monkeypatch.setattr(search, "_train_groups", lambda study, runner, groups, untold, *a: told.extend(untold))
    runner = SimpleNamespace(opts=SimpleNamespace(storage=f"sqlite:///{tmp_path}/s.db"),
                             start=lambda trial: TrialConfig(seed=trial.number))
    assert search.population_round(study, runner, 4) == 4
    assert len(turns) == 1 and asks == [True] * 4 and sorted(told) == [0, 1, 2, 3]


def test_a_round_of_queued_runs_is_the_workers_share_under_jobs():
    """bench.search._round_size: the queued confirmation runs (their own study) and the queued re-runs of a
    finished search are asked up to the population cap, and by a --jobs worker up to its share of what waits."""
    from types import SimpleNamespace

    from optuna.trial import TrialState

    from bench.search import _round_size
    from bench.space import CONFIRM, REEVAL

    def ask(study_name: str, attrs: dict, waiting: int, jobs: int, n_search: int = 10, total: int = 10,
            population: int | None = None, running: int = 0) -> int:
        trials = [SimpleNamespace(state=state, user_attrs=attrs)
                  for state, n in ((TrialState.WAITING, waiting), (TrialState.RUNNING, running)) for _ in range(n)]
        return _round_size(SimpleNamespace(study_name=study_name), trials, n_search, total, 1,
                           SimpleNamespace(jobs=jobs, device="cpu", population=population))

    owed = ("s:confirmation", {CONFIRM: "gan/ns/none"})
    assert [ask(*owed, w, jobs=2) for w in (20, 10, 3, 1)] == [8, 5, 2, 1]
    assert [ask(*owed, w, jobs=2, population=16) for w in (50, 20, 10)] == [16, 10, 5]  # the measured size
    assert ask(*owed, 20, jobs=2, population=1) == 1  # solo runs were fastest: one at a time
    # a measured population beat solo runs (rounds cost their fixed part): the other worker's round in flight
    # counts, so the second worker takes the other half of a look of 50 (25, 25), not 13 of it (25, 13, 6, 3, 2, 1)
    assert ask(*owed, 25, jobs=2, population=32, running=25) == 25 and ask(*owed, 50, jobs=2, population=32) == 25
    assert ask(*owed, 25, jobs=2, running=8) == 8 and ask(*owed, 10, jobs=2, running=8) == 5  # the default 8: halving
    assert ask(*owed, 10, jobs=2, population=1, running=1) == 1
    assert [ask(*owed, w, jobs=1) for w in (20, 10)] == [16, 10]
    reruns = ("s", {REEVAL: 3})
    assert ask(*reruns, 12, jobs=2) == 6 and ask(*reruns, 12, jobs=1) == 12
    assert ask(*reruns, 12, jobs=2, n_search=4) == 1  # still searching: the spec's population (1)


def test_auto_picks_the_population_size_with_the_most_member_steps():
    """bench.jobs.population: the timed size with the most member-steps/s; solo runs (1) when no population
    beat them; a tie goes to the smaller size (shorter rounds at a look's end)."""
    m = {"processes": 300.0, "threads": 200.0, "populations": {"8": 320.0, "16": 410.0, "32": 390.0}}
    assert jobs.population(m) == 16
    assert jobs.population(m | {"populations": {"8": 290.0, "16": 280.0, "32": 150.0}}) == 1
    assert jobs.population(m | {"populations": {"8": 410.0, "16": 410.0}}) == 8
    assert jobs.population({"processes": 300.0, "threads": 200.0}) == 1  # nothing timed: solo runs


def test_measure_times_each_population_size_in_one_thread_processes(monkeypatch):
    """bench.jobs.measure: both layouts REPEATS times (fastest kept), then every size in POPULATIONS once,
    each as `cores` one-thread processes at once; the cache entry holds them all."""
    calls = []

    def timed(ctx, dump, threads, data_dir, members=1):
        calls.append((tuple(threads), members))
        return {1: 100.0 + len(calls), 8: 500.0, 16: 700.0, 32: 600.0}[members] if threads == [1, 1] else 50.0

    from bench.spec import load

    monkeypatch.setattr(jobs, "_timed", timed)
    m = jobs.measure(load("smoke"), "cpu", 2)
    assert calls == [((1, 1), 1), ((2,), 1)] * jobs.REPEATS + [((1, 1), k) for k in jobs.POPULATIONS]
    assert m["processes"] == 103.0 and m["threads"] == 50.0
    assert m["populations"] == {"8": 500.0, "16": 700.0, "32": 600.0} and jobs.population(m) == 16


def test_a_timed_population_counts_member_steps(mnist_dir, monkeypatch):
    """bench.jobs._rate trains the study's model for real, a population of `members` seeds of one config:
    member-steps per second, i.e. members × the steps counted in the window (after WARMUP steps) over the
    window's seconds."""
    from bench.spec import load
    from stabgen import train as train_mod

    seen = {"steps": 0}
    real = train_mod.train_population

    def spy(cfgs, *a, on_step=None, **k):
        seen["seeds"] = [c.seed for c in cfgs]

        def count(it):
            seen["steps"] += 1
            on_step(it)
        return real(cfgs, *a, on_step=count, **k)

    monkeypatch.setattr(train_mod, "train_population", spy)
    before = torch.get_num_threads()
    try:
        rate = jobs._rate(load("smoke").model_dump(mode="json"), 1, None, 0.5, str(mnist_dir), members=3)
    finally:
        torch.set_num_threads(before)
    assert len(seen["seeds"]) == 3 == len(set(seen["seeds"]))
    counted = seen["steps"] - jobs.WARMUP
    assert counted > 0 and 0.5 <= 3 * counted / rate < 0.5 + 0.5  # the window, closed by the step that passed it


def test_a_run_hands_every_worker_the_measured_population(mnist_dir, tmp_path, monkeypatch):
    """bench.api.run_study: --jobs auto's measured layout reaches the workers' options — how many processes
    share the study and the population size they train queued runs in (bench.search._round_size reads it)."""
    import contextlib

    from bench import api

    class Started(Exception):
        pass

    seen = {}

    @contextlib.contextmanager
    def helpers(spec, opts, processes, threads):
        seen.update(jobs=opts.jobs, population=opts.population, processes=processes, threads=threads)
        raise Started
        yield

    monkeypatch.setattr(jobs, "measured", lambda *a, **k: jobs.Layout(2, 1, 300.0, 16))
    monkeypatch.setattr(jobs, "helpers", helpers)
    with pytest.raises(Started):
        api.run_study("smoke", runs_dir=tmp_path, storage_url=f"sqlite:///{tmp_path}/s.db", data_dir=str(mnist_dir),
                      jobs="auto", device="cpu")
    assert seen == {"jobs": 2, "population": 16, "processes": 2, "threads": 1}
    monkeypatch.setattr(jobs, "rates", lambda *a, **k: pytest.fail("--jobs N measured the model"))
    monkeypatch.setattr(jobs, "cores", lambda: 2)
    with pytest.raises(Started):  # --jobs N: no measurement before the first training, the default size
        api.run_study("smoke", runs_dir=tmp_path, storage_url=f"sqlite:///{tmp_path}/s.db", data_dir=str(mnist_dir),
                      jobs=2, device="cpu")
    assert seen == {"jobs": 2, "population": None, "processes": 2, "threads": 1}


def test_the_run_tells_every_finished_trial_once_also_other_processes_ones():
    """bench.search.TrialEcho: a trial this process told is not told again, another process's finished trial
    is told once when the storage shows it (in order of completion), a running one not yet, and what had
    finished before the run began (a resume) never; a `bench worker` tells only its own."""
    from bench.search import TrialEcho

    study = optuna.create_study()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def finish(value: float) -> optuna.trial.FrozenTrial:
        t = study.ask()
        return study.tell(t, value)

    before = finish(0.0)
    told: list[int] = []
    echo = TrialEcho(lambda t: told.append(t.number), study.get_trials())
    echo.others(study.get_trials())
    assert told == []  # the resume's old trial
    echo.own(finish(1.0))
    other_a, running, other_b = finish(2.0), study.ask(), finish(3.0)
    echo.others(study.get_trials())
    assert told == [1, other_a.number, other_b.number]
    study.tell(running, 4.0)
    echo.others(study.get_trials())
    echo.others(study.get_trials())
    assert told == [1, 2, 4, 3] and before.number == 0
    quiet: list[int] = []
    worker = TrialEcho(lambda t: quiet.append(t.number), [], others=False)
    worker.others(study.get_trials())
    assert quiet == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_ask_lock_excludes_another_process_and_is_freed_when_its_holder_dies(tmp_path, backend):
    """bench.search.ask_lock on SQLite (a file lock) and PostgreSQL (an advisory lock): while another process
    holds it, this one waits; when that process is killed with -9 holding it, the lock is free again."""
    from bench import search
    from helpers import missing

    url = os.environ.get("STABGEN_TEST_POSTGRES") if backend == "postgresql" else f"sqlite:///{tmp_path}/s.db"
    if not url:
        missing("no PostgreSQL server: set STABGEN_TEST_POSTGRES to a storage URL (scripts/pg-scratch start DIR)")
    flag = tmp_path / "holding"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import pathlib, sys, time\nfrom bench import search\n"
        f"with search.ask_lock({url!r}):\n    pathlib.Path({str(flag)!r}).touch()\n"
        "    time.sleep(1.5 if sys.argv[1] == 'release' else 600)"), "release"])
    while not flag.exists():
        assert holder.poll() is None, "the holder ended before it took the lock"
        time.sleep(0.02)
    t0 = time.perf_counter()
    with search.ask_lock(url):
        waited = time.perf_counter() - t0
    holder.wait(timeout=60)
    assert waited > 0.5  # it waited for the holder's turn (about 1.5 s less its start)
    flag.unlink()
    holder = subprocess.Popen([sys.executable, "-c", holder.args[2], "die"])
    while not flag.exists():
        assert holder.poll() is None, "the holder ended before it took the lock"
        time.sleep(0.02)
    holder.kill()
    holder.wait()
    t0 = time.perf_counter()
    with search.ask_lock(url):
        assert time.perf_counter() - t0 < 30  # freed by the kernel (a file lock) or the server (a session's lock)
