"""`bench run --plan` and `bench benchmark --plan`: what a study (or a suite of them) costs before paying
for it — the whole work (search trials, seed re-runs, confirmation trainings at the first look and at
the sequential design's cap, Inception scorings), each kind priced on the device at hand by the same
short timed runs that price a paper reproduction (bench.papers.plan.estimate).
"""

from __future__ import annotations

import math

import pandas as pd

from bench.arms import arms as arms_of
from bench.papers.plan import Work, estimate, total_line  # noqa: F401  (total_line: the CLI's last line)
from stabgen.datasets import DATASETS
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


def study_works(spec) -> list[Work]:
    """Every kind of training a study asks for: per arm its search trials, seed re-runs and confirmation
    seeds (at the first look; the note says the cap of a sequential design), plus Inception images."""
    arms, n = arms_of(spec), arm_counts(spec)
    evals = max(1, math.ceil(spec.steps_for(spec.train.batch_size) / spec.train.eval_every))
    works = []
    for arm in arms:
        cfg = arm_config(spec, arm)
        works.append(Work(f"{arm.label}: search ({n['search']}) + seed re-runs ({n['reruns']})", cfg,
                          n["search"] + n["reruns"], spec.eval.samples, evals, spec.metric))
        if n["confirmation"]:
            cap = n["confirmation_cap"]
            works.append(Work(f"{arm.label}: confirmation", cfg, n["confirmation"], spec.eval.samples, 1, spec.metric,
                              note=f"first look; up to {cap} seeds if the answer stays open" if cap > n["confirmation"]
                              else ""))
    if n["top"]:
        works.append(Work(f"top {spec.seeds.top_k} configs: {spec.seeds.extra} more seeds each", arm_config(spec, arms[0]),
                          n["top"], spec.eval.samples, evals, spec.metric))
    if n["inception"]:
        works.append(Work(f"Inception FID of the top {n['inception']}", None, 0,
                          inception=n["inception"] * spec.eval.inception_samples))
    return works


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
               inception: bool = True) -> pd.DataFrame:
    """The priced plan of one study (one row per kind of work; nothing is run or stored)."""
    works = [w for w in study_works(spec) if inception or w.config is not None]
    return estimate(works, device, data_dir, inception_weights)
