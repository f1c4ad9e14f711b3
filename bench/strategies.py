"""Search strategies by spec name: Optuna's samplers and pruners behind the one study API."""

from __future__ import annotations

from typing import Any, Callable

import optuna

StudySpec = Any  # a bench.spec.StudySpec

SAMPLERS: dict[str, Callable[[StudySpec, int], optuna.samplers.BaseSampler]] = {
    # constant_liar: running trials count as if they had scored badly, so parallel workers spread out
    "tpe": lambda spec, seed: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                                          constant_liar=True),
    "random": lambda spec, seed: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda spec, seed: optuna.samplers.RandomSampler(seed=seed),  # never used: the grid is queued
    # CMA-ES models the continuous parameters; the categorical ones are drawn independently
    "cmaes": lambda spec, seed: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
    "nsga2": lambda spec, seed: optuna.samplers.NSGAIISampler(seed=seed,
                                                              population_size=max(4, min(50, spec.n_trials // 4))),
}

PRUNERS: dict[str, Callable[[StudySpec], optuna.pruners.BasePruner]] = {
    "none": lambda spec: optuna.pruners.NopPruner(),
    "median": lambda spec: optuna.pruners.MedianPruner(n_startup_trials=3),
    # resources are training steps: rungs from the first evaluation up to the full budget
    "hyperband": lambda spec: optuna.pruners.HyperbandPruner(min_resource=spec.train.eval_every,
                                                             max_resource="auto", reduction_factor=3),
}
