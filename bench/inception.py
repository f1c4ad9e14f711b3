"""Post-hoc evaluation: Inception FID/KID/PR of a study's best trials, after the search.

Slow on a CPU (minutes per trial), so only the top `eval.inception_top_k` completed trials get it,
on `eval.inception_samples` images; results are kept as study attributes `inception/<trial number>`
(finished trials are immutable in Optuna), so a rerun or another machine never repeats one.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import optuna
import torch

from bench import records
from bench.storage import dead_here, single_machine, trial_by_id
from bench.spec import StudySpec
from stabgen.datasets import DATASETS
from stabgen import progress, settings
from stabgen.trial import TrialConfig, sampler

log = logging.getLogger(__name__)


def inception_eval(study: optuna.Study, spec: StudySpec, device: str, data_dir: str | None = None,
                   inception_weights: str | None = None) -> None:
    """Inception FID/KID/PR for the top-k completed trials that lack one (progress: one task)."""
    ds = DATASETS.get(spec.dataset)
    k = spec.eval.inception_top_k
    if k == 0 or not ds.inception:
        return
    # the search's best trials, as before confirmation existed
    trials = records.ranked(records.search_rows(records.trials_frame(study)), spec.metric, spec.direction)
    if trials.empty:
        return
    top = trials[trials["status"] == "completed"].head(k)
    ref = ds.reference(spec.eval.split, spec.eval.inception_samples, data_dir=data_dir)
    missing = [int(n) for n in top["trial"] if f"{records.INCEPTION_ATTR}{int(n)}" not in study.user_attrs]
    theirs = [n for n in missing if _claimed_by_another(study, n)]
    with progress.task(f"{spec.name}: Inception FID of the top {k} trials", total=len(missing)) as bar:
        for number in missing:
            if number not in theirs:
                _one(study, spec, number, ref, device, inception_weights)
                bar.advance()
        _wait_for(study, theirs, bar)


def _wait_for(study: optuna.Study, numbers: list[int], bar, poll: float = 5.0) -> None:
    """Wait for other workers' claimed Inception results, so what is reported next has them; a claim
    that goes stale (its worker died) ends the wait, and that trial is left for a rerun to compute.
    (Study.user_attrs reads the storage on every access, so polling it sees other workers' writes.)"""
    while numbers:
        done = [n for n in numbers if f"{records.INCEPTION_ATTR}{n}" in study.user_attrs
                or not _claimed_by_another(study, n)]
        for n in done:
            numbers.remove(n)
            bar.advance()
        if numbers:
            time.sleep(poll)


CLAIM_ATTR = "inception_claim/"  # + trial number: {worker, time} of the worker computing it
CLAIM_STALE = 3600.0  # seconds after which a claim counts as a dead worker's (no pass takes an hour per trial)


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimed_by_another(study: optuna.Study, number: int) -> bool:
    """Another live worker is computing this trial's Inception metrics: leave it to them (on a CPU one
    pass is minutes; two workers of one study would otherwise both compute the same trial)."""
    claim = study.user_attrs.get(f"{CLAIM_ATTR}{number}")
    return (bool(claim) and claim["worker"] != _me() and time.time() - claim["time"] < CLAIM_STALE
            and not (single_machine(study) and dead_here(claim["worker"])))


def _one(study: optuna.Study, spec: StudySpec, number: int, ref, device: str, inception_weights: str | None) -> None:
    """One trial's Inception metrics, kept as the study attribute inception/<number> (claimed first)."""
    from stabgen.metrics import fidelity  # torch-fidelity: imported by the studies that use it

    study.set_user_attr(f"{CLAIM_ATTR}{number}", {"worker": _me(), "time": time.time()})

    trial = trial_by_id(study, number)
    cfg = TrialConfig(**trial.user_attrs["config"])
    gen = records.load_generator(trial, device, study=study)
    t0 = time.perf_counter()
    fake = sampler(gen, cfg.z_dim, cfg.seed, torch.device(device))(spec.eval.inception_samples)
    m = fidelity.compute(fake, ref, "inception", ("fid", "kid", "prc"), device=device,
                         inception_weights=inception_weights)
    m["seconds"] = round(time.perf_counter() - t0, 1)
    weights = settings.inception_weights(inception_weights)  # what the report names (None: torch-fidelity's download)
    m["weights"] = weights.name if weights is not None else "torch-fidelity's pt_inception-2015-12-05 download"
    study.set_user_attr(f"{records.INCEPTION_ATTR}{number}", m)
    log.info(f"trial {number}: Inception FID {m['fid']:.2f} (N={m['n_fake']} fake vs "
             f"{m['n_real']} real {spec.dataset}/{spec.eval.split}, {m['seconds']}s)")
