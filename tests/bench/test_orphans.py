"""RUNNING trials that no heartbeat will ever fail (a worker killed between `ask` and its first heartbeat)
are swept and queued again, so a resumed worker never waits for them forever (bench.storage.sweep_orphans)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import optuna

from bench.storage import retry_stale, sweep_orphans

State = optuna.trial.TrialState


def _study(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=60, grace_period=180,
                                         heartbeat_stale_trial_callback=retry_stale)
    return optuna.create_study(study_name="o", storage=storage)


def test_orphans_are_failed_and_queued_again_live_trials_are_not(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    here = socket.gethostname()
    study = _study(tmp_path)
    study.enqueue_trial({"x": 1.0}, user_attrs={"confirm_arm": "a", "confirm_of": 0, "confirm_seed": 3})
    killed = study.ask()  # a dead process of this machine asked it: swept at once, whatever its heartbeat
    killed.suggest_float("x", 0, 2)
    killed.set_user_attr("worker", f"{here}:{dead}")
    unconfigured = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})  # killed before it got a worker
    live = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    live.set_user_attr("worker", f"{here}:{os.getpid()}")
    other = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    other.set_user_attr("worker", f"elsewhere:{dead}")  # another machine's: its heartbeat decides, never us
    assert sweep_orphans(study, grace=3600) == 1  # only the dead local worker's; the unconfigured one is young
    assert sweep_orphans(study, grace=0) == 1  # now the unconfigured one too
    states = {t.number: t.state for t in study.trials}
    assert states[killed.number] == states[unconfigured.number] == State.FAIL
    assert states[live.number] == states[other.number] == State.RUNNING
    queued = [t for t in study.trials if t.state == State.WAITING]
    assert [t.user_attrs.get("retry_of") for t in queued] == [killed.number, unconfigured.number]
    assert queued[0].system_attrs["fixed_params"] == {"x": 1.0} and queued[0].user_attrs["confirm_seed"] == 3  # the same run


def test_a_trial_killed_before_it_suggested_its_queued_params_is_retried_with_them(tmp_path):
    """The per-arm search queues each arm's trial with the arm's parameters fixed (bench.search.queue_arms);
    a worker killed between `ask` and the first suggest leaves a trial with no params. Its retry must pin the
    same arm, or the sampler fills the slot with another arm's config and the arm is never searched."""
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    study = _study(tmp_path)
    study.enqueue_trial({"regularizer_gan": "none"}, user_attrs={"search_arm": "mlp2d_small/ns/none"})
    killed = study.ask()
    killed.set_user_attr("worker", f"{socket.gethostname()}:{dead}")
    assert study.trials[killed.number].params == {}  # killed before the first suggest
    assert sweep_orphans(study, grace=3600) == 1
    retry = [t for t in study.trials if t.state == State.WAITING]
    assert len(retry) == 1 and retry[0].system_attrs["fixed_params"] == {"regularizer_gan": "none"}
    assert retry[0].user_attrs["search_arm"] == "mlp2d_small/ns/none" and retry[0].user_attrs["retry_of"] == 0
    again = study.ask()  # the retry, asked: it suggests the arm's regularizer, not a fresh draw
    assert again.suggest_categorical("regularizer_gan", ["none", "r1"]) == "none"


def test_on_a_shared_server_a_workers_pid_is_not_judged_from_here(tmp_path, monkeypatch):
    """Two containers may share a host name: on a server storage only heartbeats (and a trial that never got
    a worker) decide, never a pid that does not exist on this machine."""
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    study = _study(tmp_path)
    t = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    t.set_user_attr("worker", f"{socket.gethostname()}:{dead}")
    monkeypatch.setattr(study._storage._backend, "url", "postgresql+psycopg2://db.example/stabgen")
    assert sweep_orphans(study, grace=0) == 0 and study.trials[0].state == State.RUNNING


def test_an_interrupted_trial_that_had_not_suggested_yet_is_queued_again_with_its_arm(tmp_path):
    """The same on ^C (bench.search._fail → requeue with the live trial): its arm's queued parameters go with it."""
    from bench.storage import requeue

    study = _study(tmp_path)
    study.enqueue_trial({"regularizer_gan": "r1"}, user_attrs={"search_arm": "mlp2d_small/ns/r1"})
    live = study.ask()
    requeue(study, live)
    study.tell(live, state=State.FAIL)
    retry = [t for t in study.trials if t.state == State.WAITING]
    assert len(retry) == 1 and retry[0].system_attrs["fixed_params"] == {"regularizer_gan": "r1"}
    assert retry[0].user_attrs["search_arm"] == "mlp2d_small/ns/r1"
