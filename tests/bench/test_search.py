"""The search engine: samplers, pruners, multi-objective, the conditional grid, crash safety and
distributed workers — real `bench` processes on real Optuna storages (SQLite; PostgreSQL in CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
from bench.storage import all_trials
import pandas as pd
import pytest

from helpers import missing, study_toml

from bench import spec as spec_mod
from bench.space import grid, grid_values

BENCH = [sys.executable, "-m", "bench.cli"]
State = optuna.trial.TrialState
ENV = {**os.environ, "COLUMNS": "200"}



def _ring(name: str, n: int, steps: int, every: int, top: str = "", confirm: int = 0) -> str:
    return study_toml(name=name, n_trials=n, top=top, steps=steps, eval_every=every, samples=500,
                      confirm=f"seeds = {confirm}", regularizers=("none", "r1", "l2"),
                      space="lr = { low = 5e-4, high = 2e-3, log = true }\n")


def ring(tmp_path: Path, name: str, n: int = 2, steps: int = 60, every: int = 30, top: str = "", extra: str = "",
         confirm: int = 0) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(_ring(name, n, steps, every, top, confirm) + extra)
    return p


def bench(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*BENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


def load(name: str, storage: str) -> optuna.Study:
    from bench.storage import driver_url  # the bare postgresql:// as README writes it, bound to its driver

    return optuna.load_study(study_name=name, storage=driver_url(storage))


# --- the conditional grid -------------------------------------------------------------------------

def test_grid_holds_each_reachable_config_once(tmp_path):
    p = ring(tmp_path, "g", top='sampler = "grid"\n[search]\njoint = true', extra='objectives = ["ns", "wgan_gp"]\ngrid_points = 2\n')
    spec = spec_mod.load(str(p))
    points = grid(spec)
    # ns: none + r1×2λ + l2×2λ = 5 branches; wgan_gp: the same × 2 obj_lam; each × 2 lr
    assert len(points) == (5 + 5 * 2) * 2
    assert len({tuple(sorted(x.items())) for x in points}) == len(points)
    assert all(("lam_r1" in x) == (x["regularizer_gan"] == "r1") for x in points)  # λ only where it applies
    assert all(("obj_lam_wgan_gp" in x) == (x["objective"] == "wgan_gp") for x in points)
    assert grid_values(1e-4, 1e-2, True, 3) == [1e-4, 1e-3, 1e-2]
    assert grid_values(0.0, 1.0, False, 3) == [0.0, 0.5, 1.0]


def test_grid_study_runs_the_first_grid_points(tmp_path):
    p = ring(tmp_path, "grid", n=3, steps=30, top='sampler = "grid"\n[search]\njoint = true', extra="grid_points = 2\n")
    r = bench("run", "--study", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trials = load("grid", f"sqlite:///{tmp_path}/runs/grid/study.db").trials
    assert [t.params for t in trials] == grid(spec_mod.load(str(p)))[:3]


# --- samplers, pruners, multi-objective ------------------------------------------------------------

@pytest.mark.parametrize("sampler,pruner", [("cmaes", "hyperband"), ("nsga2", "median"), ("random", "none")])
def test_each_sampler_and_pruner_runs_a_study(tmp_path, sampler, pruner):
    p = ring(tmp_path, "s", n=3, steps=60, every=20, top=f'sampler = "{sampler}"\npruner = "{pruner}"')
    r = bench("run", "--study", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = load("s", f"sqlite:///{tmp_path}/runs/s/study.db")
    assert len(study.trials) == 3 and all(t.state in (State.COMPLETE, State.PRUNED) for t in study.trials)
    assert (study.user_attrs["spec"]["sampler"], study.user_attrs["spec"]["pruner"]) == (sampler, pruner)
    attrs = " ".join(k for t in study.trials for k in t.system_attrs)  # each strategy leaves its own marks
    assert {"cmaes": "cma:generation", "nsga2": "NSGAIISampler:generation", "random": ""}[sampler] in attrs
    assert pruner != "hyperband" or "completed_rung_0" in attrs
    assert all(set(t.intermediate_values) <= {20, 40, 60} for t in study.trials)  # reported at each eval
    assert any(t.intermediate_values for t in study.trials)


def test_multi_objective_study_records_a_pareto_front(tmp_path):
    p = ring(tmp_path, "mo", n=4, steps=90, every=30, top='sampler = "nsga2"\npareto_with = ["late_std"]')
    r = bench("run", "--study", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = load("mo", f"sqlite:///{tmp_path}/runs/mo/study.db")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = [t for t in study.trials if t.state == State.COMPLETE]
    assert done and all(len(t.values) == 2 for t in done)
    for t in done:  # the second objective is the std of the metric over the last 3 evaluations
        assert t.values[1] == pytest.approx(t.user_attrs["stability"]["modes_captured_std_last"])
    front = pd.read_csv(tmp_path / "runs/mo/pareto.csv")
    assert sorted(front["trial"]) == sorted(t.number for t in study.best_trials)
    assert list(front.columns[-2:]) == ["modes_captured", "late_std"]


def test_population_study_trains_members_together_and_reports_each(tmp_path):
    """population = 3: trials are asked three at a time, trained in one pass, and told one by one,
    each with its own intermediate values (what per-member pruning reads)."""
    p = tmp_path / "pop.toml"
    p.write_text(_ring("pop", 5, 60, 20, top='pruner = "median"')
                 .replace("[train]\n", "[train]\npopulation = 3\n").replace('["none", "r1", "l2"]', '["r1"]'))
    r = bench("run", "--study", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trials = load("pop", f"sqlite:///{tmp_path}/runs/pop/study.db").trials
    assert len(trials) == 5 and all(t.state in (State.COMPLETE, State.PRUNED) for t in trials)
    assert [t.user_attrs["population"] for t in trials] == [3, 3, 3, 2, 2]
    assert len({t.user_attrs["config"]["seed"] for t in trials}) == 5
    assert len({t.params["lam_r1"] for t in trials}) == 5  # members differ in λ
    for t in trials:
        assert set(t.intermediate_values) <= {20, 40, 60} and t.intermediate_values
        assert (tmp_path / t.user_attrs["trial_dir"] / "history.csv").exists()


def test_population_heartbeats_keep_every_member_alive(tmp_path):
    """One thread beats for all members: while the population trains (here: sleeps past the grace
    period) none of its trials goes stale; afterwards, with the beats stopped, all of them do."""
    from bench.storage import heartbeats
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/hb.db", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="hb")
    trials = [study.ask() for _ in range(3)]
    stale = lambda: storage._get_stale_trial_ids(study._study_id)  # noqa: E731 (Optuna's own staleness test)
    with heartbeats(study, trials):  # past the grace period twice over, checked throughout
        end = time.time() + 4.5
        while time.time() < end:
            assert stale() == []
            time.sleep(0.25)
    stopped = time.time()
    # then the storage's own state says when they went stale (SQLite's timestamps have 1 s resolution, so
    # a fixed sleep of grace + ½ s can still read as "grace" and race): poll it, within a generous bound
    while sorted(stale()) != sorted(t._trial_id for t in trials):
        assert time.time() - stopped < 15, "the trials never went stale after their heartbeats stopped"
        time.sleep(0.1)


def test_study_opens_with_load_study_and_optuna_visualization(tmp_path):
    p = ring(tmp_path, "viz", n=4, steps=40, every=20)
    assert bench("run", "--study", str(p), cwd=tmp_path).returncode == 0
    study = optuna.load_study(study_name="viz", storage=f"sqlite:///{tmp_path}/runs/viz/study.db")
    from optuna import visualization as vis
    for plot in (vis.plot_optimization_history, vis.plot_intermediate_values, vis.plot_parallel_coordinate,
                 vis.plot_slice):
        fig = plot(study)
        assert fig.data, plot.__name__  # a plotly figure with traces
    assert study.user_attrs["spec"]["name"] == "viz"  # the spec travels with the storage


# --- crash safety ----------------------------------------------------------------------------------

def _wait_for(storage: str, name: str, ok, timeout: float = 240) -> list:
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            trials = load(name, storage).trials
        except Exception:  # not created yet
            continue
        if ok(trials):
            return trials
    raise AssertionError(f"timed out waiting on study {name}")


def _kill_when_held(tmp_path: Path, spec: Path, name: str, trial: int, step: int) -> list:
    """`bench run` with `trial` held at `step` (bench.search.hold_point), SIGKILLed once it is there;
    returns the study's trials as they stood at the hold point."""
    flag = tmp_path / f"held-{trial}-{step}"
    env = {**ENV, "STABGEN_TEST_HOLD": f"{trial}:{step}:{flag}"}
    proc = subprocess.Popen([*BENCH, "run", "--study", str(spec), "--heartbeat", "1"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_file(flag, proc)
        return load(name, f"sqlite:///{tmp_path}/runs/{name}/study.db").trials
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_file(flag: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not flag.exists():
        assert proc.poll() is None, "the run ended before reaching the hold point"
        assert time.time() < deadline, f"the run did not reach the hold point ({flag.name}) in {timeout}s"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_mid_trial_then_rerun_keeps_every_completed_trial(tmp_path):
    """Killed while trial 1 is held at step 100 (a known point, not a guess): trial 0 stays as it
    was, trial 1 is failed by its missing heartbeat and re-run with its own config and seed."""
    p = ring(tmp_path, "kill", n=3, steps=300, every=150)
    storage = f"sqlite:///{tmp_path}/runs/kill/study.db"
    before = _kill_when_held(tmp_path, p, "kill", 1, 100)
    assert len(before) == 2 and before[0].state == State.COMPLETE
    killed = load("kill", storage).trials
    assert killed[1].state == State.RUNNING  # SIGKILL: nobody told the storage
    r = bench("run", "--study", str(p), "--heartbeat", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = load("kill", storage).trials
    complete = [t for t in after if t.state == State.COMPLETE]
    assert len(complete) == 3
    assert after[0].values == before[0].values and after[0].datetime_complete == before[0].datetime_complete
    assert after[1].state == State.FAIL  # the stale trial, failed by its missing heartbeat ...
    retry = [t for t in after if t.user_attrs.get("retry_of") == 1]  # bench.storage.retry_stale
    assert len(retry) == 1 and retry[0].params == after[1].params  # ... and run again with its config
    assert retry[0].user_attrs["config"]["seed"] == after[1].user_attrs["config"]["seed"]
    assert len({t.number for t in after}) == len(after)


def test_sigkill_of_a_population_study_retries_every_member(tmp_path):
    """A round of 3 (population = 3; its members may form several groups) held in its first group at
    step 50 and killed: all three trials were RUNNING — the ones whose group had not started too, as
    the round's heartbeat covers them all — go stale, and are each re-run once with their own config."""
    p = ring(tmp_path, "popkill", n=3, steps=120, every=60)
    p.write_text(p.read_text().replace("z_dim = 2", "z_dim = 2\npopulation = 3"))
    storage = f"sqlite:///{tmp_path}/runs/popkill/study.db"
    _kill_when_held(tmp_path, p, "popkill", 0, 50)
    killed = load("popkill", storage).trials
    assert [t.state for t in killed] == [State.RUNNING] * 3
    r = bench("run", "--study", str(p), "--heartbeat", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = load("popkill", storage).trials
    assert [t.state for t in after[:3]] == [State.FAIL] * 3
    for t in after[:3]:
        retry = [u for u in after if u.user_attrs.get("retry_of") == t.number]
        assert len(retry) == 1 and retry[0].state == State.COMPLETE and retry[0].params == t.params
        assert retry[0].user_attrs["config"]["seed"] == t.user_attrs["config"]["seed"]
    assert sum(t.state == State.COMPLETE for t in after) == 3


# --- distributed workers ----------------------------------------------------------------------------

POSTGRES = os.environ.get("STABGEN_TEST_POSTGRES")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_in_other_folders_share_their_trial_files_through_the_artifact_store(tmp_path, backend):
    """Workers in folders A and B (their runs/ folders apart, as on two machines) share one storage;
    a report built from a third folder C finds every trial's samples and curves, and the Python API
    loads a generator written by either worker — through the store the study records."""
    if backend == "postgresql" and not POSTGRES:
        missing("no PostgreSQL server: set STABGEN_TEST_POSTGRES to a storage URL (scripts/pg-scratch start DIR)")
    name = f"artifacts-{uuid.uuid4().hex[:8]}"
    url = POSTGRES if backend == "postgresql" else f"sqlite:///{tmp_path / 'shared.db'}"
    spec_path = ring(tmp_path, name, n=4, steps=40, every=20)
    folders = [tmp_path / d for d in ("A", "B", "C")]
    for f in folders:
        f.mkdir()
    procs = [subprocess.Popen([*BENCH, "worker", "--study", str(spec_path), "--storage", url, "--heartbeat", "2"],
                              cwd=f, env={**ENV, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for f in folders[:2]]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    study = load(name, url)
    store = study.user_attrs["artifact_store"]
    assert store.startswith("file://") and Path(store.removeprefix("file://")).is_dir()
    done = [t for t in study.trials if t.state == State.COMPLETE]
    assert len(done) == 4 and {Path(t.user_attrs["trial_dir"]).parts[0] for t in done} == {"runs"}  # relative: local to A or B
    r = bench("report", "--study", name, "--storage", url, cwd=folders[2], timeout=600)
    assert r.returncode == 0, r.stderr
    report = folders[2] / "runs" / name / "report"
    assert len(list((report / "samples").glob("trial-*.png"))) >= 2
    assert "is not on this machine" not in (report / "index.html").read_text()
    # a generator written by a worker in another folder, loaded from C through the API
    from bench import api

    cwd = os.getcwd()
    try:
        os.chdir(folders[2])
        rec = api.open_study(name, url)
        gen = api.load_generator(rec, trial=done[0].number)
    finally:
        os.chdir(cwd)
    assert sum(p.numel() for p in gen.parameters()) > 0


def test_the_storage_comes_from_the_option_then_the_environment_then_the_spec(monkeypatch, tmp_path):
    from bench.storage import resolve_url

    monkeypatch.delenv("STABGEN_STORAGE", raising=False)
    assert resolve_url(None, None, tmp_path, "s") == f"sqlite:///{tmp_path}/s/study.db"
    assert resolve_url(None, "sqlite:///spec.db", tmp_path, "s") == "sqlite:///spec.db"
    monkeypatch.setenv("STABGEN_STORAGE", "postgresql://u:pw@h/db")
    assert resolve_url(None, "sqlite:///spec.db", tmp_path, "s").endswith("://u:pw@h/db")  # bound to its driver
    assert resolve_url("sqlite:///opt.db", "sqlite:///spec.db", tmp_path, "s") == "sqlite:///opt.db"


@pytest.mark.slow
def test_three_workers_share_one_postgres_study(tmp_path):
    if not POSTGRES:
        missing("no PostgreSQL server: set STABGEN_TEST_POSTGRES to a storage URL (scripts/pg-scratch start DIR)")
    name = f"workers-{uuid.uuid4().hex[:8]}"
    p = ring(tmp_path, name, n=9, steps=200, every=100)
    # worker 0 finds the server through $STABGEN_STORAGE (no password on its command line), 1 and 2 through --storage
    procs = [subprocess.Popen([*BENCH, "worker", "--study", str(p), *(["--storage", POSTGRES] if i else []), "--heartbeat", "2"],
                              cwd=tmp_path, env={**ENV, "OMP_NUM_THREADS": "1", **({} if i else {"STABGEN_STORAGE": POSTGRES})},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        password = POSTGRES.split("://")[1].split("@")[0].partition(":")[2]
        assert not password or password not in out + err  # credentials are never printed
    trials = load(name, POSTGRES).trials
    complete = [t for t in trials if t.state == State.COMPLETE]
    assert len(complete) == 9
    assert len({t.number for t in trials}) == len(trials)
    assert all(t.state in (State.COMPLETE, State.FAIL) for t in trials)
    assert all("surplus" in t.user_attrs for t in trials if t.state == State.FAIL)  # asked too late, never trained
    assert len({t.user_attrs["worker"] for t in complete}) >= 2  # the work was shared
    r = bench("worker", "--study", str(p), "--storage", POSTGRES, cwd=tmp_path)  # budget met: nothing to do
    assert r.returncode == 0 and len(load(name, POSTGRES).trials) == len(trials)


def _open(args):
    from bench import spec as spec_mod, storage
    try:
        storage.open_study(spec_mod.load(args[0]), args[1], heartbeat=10.0)
        return "ok"
    except Exception as e:  # what a worker would print
        return f"{type(e).__name__}: {e}"


def test_workers_starting_at_once_on_an_empty_database(tmp_path):
    if not POSTGRES:
        missing("no PostgreSQL server: set STABGEN_TEST_POSTGRES to a storage URL (scripts/pg-scratch start DIR)")
    """Six processes create Optuna's tables at the same moment; the losers of that race retry."""
    import multiprocessing as mp

    import sqlalchemy
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    from bench.storage import driver_url

    engine = sqlalchemy.create_engine(driver_url(POSTGRES), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    p = ring(tmp_path, "race", n=1)
    with mp.get_context("fork").Pool(6) as pool:
        assert pool.map(_open, [(str(p), url)] * 6) == ["ok"] * 6
    assert len(optuna.get_all_study_names(driver_url(url))) == 1


@pytest.mark.slow
def test_confirmation_resumes_and_is_shared_by_workers(tmp_path):
    """A search finished without confirmation, resumed with [confirm] seeds = 3 (allowed change):
    exactly arms × 3 confirmation runs are added and the search is untouched; two workers at once
    on a study owing confirmation runs train each (arm, seed) once; a rerun owes nothing."""
    p = ring(tmp_path, "conf", n=3, steps=40, every=40)
    assert bench("run", "--study", str(p), cwd=tmp_path).returncode == 0
    storage = f"sqlite:///{tmp_path}/runs/conf/study.db"
    before = {t.number: t.params for t in optuna.load_study(study_name="conf", storage=storage).trials}
    p.write_text(p.read_text().replace("seeds = 0", "seeds = 3"))
    r = bench("run", "--study", str(p), "--allow-spec-change", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="conf", storage=storage)
    conf = [t for t in all_trials(study) if "confirm_arm" in t.user_attrs]
    assert not any("confirm_arm" in t.user_attrs for t in study.trials)  # in their own study, never the search's
    assert study.best_trial.number in before  # so Optuna's (and optuna-dashboard's) best trial is a search trial
    arms = study.user_attrs["confirm/plan"]["arms"]
    assert sorted((t.user_attrs["confirm_arm"], t.user_attrs["confirm_seed"]) for t in conf) == sorted(
        (a, i) for a in arms for i in range(3))
    assert all(t.state == State.COMPLETE or t.user_attrs.get("status") == "metric_undefined" for t in conf)
    # the search trained one trial at a time; the owed runs (fixed configs) trained as populations (bench.search.owed_population)
    assert {t.user_attrs["population"] for t in study.trials if t.number in before} == {1}
    assert max(t.user_attrs["population"] for t in conf) == 3  # an arm's 3 seeds at once
    assert {t.number: t.params for t in study.trials if t.number in before} == before  # search untouched
    assert (tmp_path / "runs/conf/confirm.csv").exists()
    assert bench("run", "--study", str(p), "--allow-spec-change", cwd=tmp_path).returncode == 0
    assert len(all_trials(optuna.load_study(study_name="conf", storage=storage))) == len(all_trials(study))  # nothing owed

    q = ring(tmp_path, "shared", n=2, steps=40, every=40, confirm=4)
    url = f"sqlite:///{tmp_path}/shared.db"
    procs = [subprocess.Popen([*BENCH, "worker", "--study", str(q), "--storage", url], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    study = optuna.load_study(study_name="shared", storage=url)
    done = [(t.user_attrs["confirm_arm"], t.user_attrs["confirm_seed"]) for t in all_trials(study)
            if "confirm_arm" in t.user_attrs and t.state != State.FAIL]
    assert sorted(done) == sorted((a, i) for a in study.user_attrs["confirm/plan"]["arms"] for i in range(4))


# --- the per-arm search (issue 29: an equal tuning budget per arm) --------------------------------

def _per_arm_study(tmp_path, per_arm: int, sampler: str = "tpe"):
    from bench import api, search

    p = ring(tmp_path, "arms", n=1, steps=20, every=20, top=f'sampler = "{sampler}"\n[search]\nper_arm = {per_arm}')
    spec = spec_mod.load(str(p))
    opts = api.options(spec, device="cpu", runs_dir=tmp_path / "runs")
    return spec, opts, search.run(spec, opts)


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_every_arm_gets_exactly_its_search_budget(tmp_path, sampler):
    from bench.arms import ARM_ATTR, arms

    spec, opts, study = _per_arm_study(tmp_path, 3, sampler)
    if sampler == "cmaes":  # CMA-ES runs within an arm of two continuous parameters (λ, lr) after its first trial
        r1 = [t for t in study.trials if t.user_attrs.get(ARM_ATTR) == "mlp2d_small/ns/r1"]
        assert any(k.startswith("cma:") for t in r1 for k in t.system_attrs)
    search_trials = [t for t in study.trials if t.state in (State.COMPLETE, State.PRUNED) and ARM_ATTR in t.user_attrs]
    by_arm = pd.Series([t.user_attrs[ARM_ATTR] for t in search_trials]).value_counts().to_dict()
    assert by_arm == {a.label: 3 for a in arms(spec)}  # the baseline included
    for t in search_trials:  # the trial trained the arm it was queued for
        cfg = t.user_attrs["config"]
        assert t.user_attrs[ARM_ATTR] == f"{cfg['model']}/{cfg['objective']}/{cfg['regularizer']}"
    assert not [t for t in study.trials if t.state == State.FAIL]
    assert opts.trials == 3 and spec.search_budget() == 9
    # queued search trials train one at a time, so each arm's sampler sees the results before it (they
    # were once swept into one owed-run population, where the sampler learned nothing)
    assert all(t.user_attrs["population"] == 1 for t in search_trials)


def test_the_arm_sampler_sees_only_its_arms_trials(tmp_path):
    """TPE inside an arm learns from that arm alone: its view of the study holds no other arm's trial."""
    from bench.arms import ARM_ATTR
    from bench.strategies import _ArmView

    _, _, study = _per_arm_study(tmp_path, 2)
    view = _ArmView(study, "mlp2d_small/ns/r1")
    mine = view._get_trials(deepcopy=False)
    assert len(mine) == 2 and {t.user_attrs[ARM_ATTR] for t in mine} == {"mlp2d_small/ns/r1"}
    assert len(view.get_trials(states=(State.COMPLETE, State.PRUNED))) == 2 and view.directions == study.directions


def test_a_failed_search_trial_frees_its_arms_slot_and_surplus_is_refused(tmp_path):
    from bench import api, search
    from bench.arms import ARM_ATTR
    from bench.storage import open_study

    spec = spec_mod.load(str(ring(tmp_path, "q", steps=20, every=20, top="[search]\nper_arm = 1")))
    study = open_study(spec, api.options(spec, device="cpu", runs_dir=tmp_path / "runs").storage, heartbeat=10.0)
    assert search.queue_arms(study, spec, 1) == 3 and search.queue_arms(study, spec, 1) == 0  # queued once
    first = study.ask()  # arm none's slot, taken and then failed for good (a worker's error)
    assert first.user_attrs[ARM_ATTR] == "mlp2d_small/ns/none"
    assert study._storage.get_trial(first._trial_id).system_attrs["fixed_params"] == {"regularizer_gan": "none"}  # the arm, pinned; λ and lr sampled
    study.tell(first, state=State.FAIL)
    assert search.queue_arms(study, spec, 1) == 1  # its slot is queued again
    waiting = study.get_trials(states=(State.WAITING,))
    assert sorted(t.user_attrs[ARM_ATTR] for t in waiting) == ["mlp2d_small/ns/l2", "mlp2d_small/ns/none",
                                                               "mlp2d_small/ns/r1"]
    # a second copy of an arm's slot (two workers queued it at once) is surplus; an unqueued ask is refused
    study.enqueue_trial({"regularizer_gan": "r1"}, user_attrs={ARM_ATTR: "mlp2d_small/ns/r1"})
    asked = [study.ask() for _ in range(4)]
    r1 = [t for t in asked if t.user_attrs[ARM_ATTR] == "mlp2d_small/ns/r1"]
    assert search.holds_slot(study, r1[0], 1, per_arm=True) is None
    assert "budget of 1 trials already met" in search.holds_slot(study, r1[1], 1, per_arm=True)
    assert "no arm was queued" in search.holds_slot(study, study.ask(), 1, per_arm=True)


def test_joint_search_carries_no_verdict_and_grid_needs_it(tmp_path):
    with pytest.raises(Exception, match="joint search is exploration"):
        spec_mod.load(str(ring(tmp_path, "j", confirm=3, top="[search]\njoint = true")))
    with pytest.raises(Exception, match="sampler 'grid' works on the whole space"):
        spec_mod.load(str(ring(tmp_path, "g2", confirm=3, top='sampler = "grid"')))
    assert spec_mod.load(str(ring(tmp_path, "j2"))).joint  # no confirmation, no per_arm: nothing to compare
