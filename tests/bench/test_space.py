"""The search space's counting and searched switches (bench.space.suggest_config), with Optuna's
FixedTrial standing in for a sampled trial."""

from __future__ import annotations

import os

import optuna
import pytest

from bench.space import suggest_config
from bench.spec import StudySpec


def spec(**train) -> StudySpec:
    return StudySpec.model_validate({
        "name": "s", "dataset": "mnist", "metric": "domain_fid", "n_trials": 1,
        "train": {"steps": 3001, "batch_size": 64, **train},
        "space": {"models": ["infogan"], "objectives": ["wgan"], "regularizers": ["none"], "n_critic": [1, 5],
                  "d_bn": [False, True]}})


PARAMS = {"lr": 1e-3, "clip": 0.01, "regularizer_gan": "none"}


@pytest.mark.parametrize("n_critic, counts, g_steps", [(5, "discriminator", 601), (1, "discriminator", 3001),
                                                       (5, "generator", 3001)])
def test_steps_count_d_updates_as_compare_gan_does(n_critic, counts, g_steps):
    """3,001 D steps at n_disc = 5 are ⌈3001 / 5⌉ = 601 G steps (each after 5 D steps: 3,005 D updates,
    the last partial G interval rounded up, never below the budget)."""
    cfg = suggest_config(optuna.trial.FixedTrial({**PARAMS, "n_critic": n_critic, "d_bn": False}),
                         spec(budget_counts=counts))
    assert (cfg.steps, cfg.n_critic) == (g_steps, n_critic)


@pytest.mark.parametrize("d_bn", [False, True])
def test_d_batch_norm_is_searched_when_the_space_lists_it(d_bn):
    cfg = suggest_config(optuna.trial.FixedTrial({**PARAMS, "n_critic": 1, "d_bn": d_bn}), spec())
    assert cfg.d_bn is d_bn


def test_unknown_budget_count_is_refused():
    with pytest.raises(ValueError, match="budget_counts"):
        spec(budget_counts="epochs")


def test_a_trial_another_live_worker_is_computing_inception_for_is_left_to_it(monkeypatch):
    """bench.inception's claim: fresh and someone else's → skip; stale (a dead worker's) or ours → compute."""
    import time

    from bench import inception

    study = optuna.create_study()
    monkeypatch.setattr(inception, "_me", lambda: "here:1")
    study.set_user_attr(f"{inception.CLAIM_ATTR}3", {"worker": "there:2", "time": time.time()})
    study.set_user_attr(f"{inception.CLAIM_ATTR}4", {"worker": "there:2", "time": time.time() - inception.CLAIM_STALE - 1})
    study.set_user_attr(f"{inception.CLAIM_ATTR}5", {"worker": "here:1", "time": time.time()})
    assert [inception._claimed_by_another(study, n) for n in (3, 4, 5, 6)] == [True, False, False, False]


def test_a_fresh_claim_of_a_dead_process_on_this_machine_is_stale_at_once():
    """A resumed run must not wait CLAIM_STALE (an hour) on the claim its own killed session left."""
    import socket
    import subprocess
    import sys
    import time

    from bench import inception

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, host = int(done.stdout), socket.gethostname()
    study = optuna.create_study()
    study.set_user_attr(f"{inception.CLAIM_ATTR}1", {"worker": f"{host}:{dead}", "time": time.time()})
    study.set_user_attr(f"{inception.CLAIM_ATTR}2", {"worker": f"{host}:{os.getppid()}", "time": time.time()})
    study.set_user_attr(f"{inception.CLAIM_ATTR}3", {"worker": f"elsewhere:{dead}", "time": time.time()})
    assert [inception._claimed_by_another(study, n) for n in (1, 2, 3)] == [False, True, True]


def test_a_worker_waits_for_the_inception_result_another_worker_claimed(monkeypatch):
    """What it reports next must have the value: it returns once the other worker's result is recorded."""
    import threading
    import time

    from bench import inception, records
    from stabgen import progress

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="w")
    monkeypatch.setattr(inception, "_me", lambda: "here:1")
    study.set_user_attr(f"{inception.CLAIM_ATTR}7", {"worker": "there:2", "time": time.time()})
    threading.Timer(0.3, lambda: study.set_user_attr(f"{records.INCEPTION_ATTR}7", {"fid": 3.0})).start()
    t0 = time.perf_counter()
    with progress.task("wait", total=1) as bar:
        inception._wait_for(study, [7], bar, poll=0.05)
    assert 0.25 < time.perf_counter() - t0 < 5
