"""Search strategies by spec name: Optuna's samplers and pruners behind the one study API."""

from __future__ import annotations

from typing import Any, Callable

import optuna

from stabgen.registry import Registry

StudySpec = Any  # a bench.spec.StudySpec

# samplers and pruners are registries like every other extension seam (stabgen.registry): a new one is one
# `SAMPLERS.register(name)(factory)` line, and the spec's `sampler`/`pruner` fields accept it by name
SAMPLERS: Registry[Callable[[StudySpec, int], optuna.samplers.BaseSampler]] = Registry("sampler")
PRUNERS: Registry[Callable[[StudySpec], optuna.pruners.BasePruner]] = Registry("pruner")

# constant_liar: running trials count as if they had scored badly, so parallel workers spread out
SAMPLERS.register("tpe")(lambda spec, seed: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                                                      constant_liar=True))
SAMPLERS.register("random")(lambda spec, seed: optuna.samplers.RandomSampler(seed=seed))
SAMPLERS.register("grid")(lambda spec, seed: optuna.samplers.RandomSampler(seed=seed))  # never used: the grid is queued
# CMA-ES models the continuous parameters; the categorical ones are drawn independently
SAMPLERS.register("cmaes")(lambda spec, seed: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False))
SAMPLERS.register("nsga2")(lambda spec, seed: optuna.samplers.NSGAIISampler(
    seed=seed, population_size=max(4, min(50, spec.n_trials // 4))))

PRUNERS.register("none")(lambda spec: optuna.pruners.NopPruner())
PRUNERS.register("median")(lambda spec: optuna.pruners.MedianPruner(n_startup_trials=3))
def _wilcoxon(spec: StudySpec) -> optuna.pruners.BasePruner:
    """Seed racing (bench.racing): Optuna's WilcoxonPruner against the best trial of the trial's own arm."""
    import warnings

    from bench.racing import ArmWilcoxonPruner

    with warnings.catch_warnings():  # Optuna marks the pruner experimental (since 3.6); it is what we test against
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return ArmWilcoxonPruner(p_threshold=spec.search.race_p, n_startup_steps=2)


PRUNERS.register("wilcoxon")(_wilcoxon)
# resources are training steps: rungs from the first evaluation up to the full budget
PRUNERS.register("hyperband")(lambda spec: optuna.pruners.HyperbandPruner(min_resource=spec.train.eval_every,
                                                                          max_resource="auto", reduction_factor=3))


class _ArmView:
    """A study as one arm's sampler sees it: only that arm's search trials (bench.arms.ARM_ATTR), so TPE's
    densities, CMA-ES's generations and the constant liar are all the arm's own — a search *within* the arm.
    Everything else (directions, storage, id) is the study's."""

    def __init__(self, study: optuna.Study, arm: str) -> None:
        self._study, self._arm = study, arm

    def __getattr__(self, name: str):
        return getattr(self._study, name)

    def _mine(self, trials: list) -> list:
        from bench.arms import ARM_ATTR

        return [t for t in trials if t.user_attrs.get(ARM_ATTR) == self._arm]

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list:
        return self._mine(self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache))

    def get_trials(self, deepcopy: bool = True, states=None) -> list:
        return self._mine(self._study.get_trials(deepcopy=deepcopy, states=states))

    @property
    def trials(self) -> list:
        return self.get_trials()


class ArmSampler(optuna.samplers.BaseSampler):
    """The per-arm search (bench.arms): one sampler of the spec's kind per arm, each fed only its arm's
    trials. Why a wrapper rather than one sampler over the study: a shared TPE would learn lr from every
    arm's trials, so an arm's best-of-N would depend on the others' budgets. A trial's arm is pinned
    by the fixed parameters it was queued with (bench.search.queue_arms); trials that carry no arm
    (seed re-runs, confirmation runs: every parameter fixed) go to a random sampler that is never asked."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._by_arm: dict[str, optuna.samplers.BaseSampler] = {}
        self._plain = optuna.samplers.RandomSampler(seed=seed)

    def _route(self, study, trial) -> tuple[optuna.samplers.BaseSampler, object]:
        from bench.arms import ARM_ATTR

        arm = trial.user_attrs.get(ARM_ATTR)
        if arm is None:
            return self._plain, study
        if arm not in self._by_arm:  # a seed per arm from its label: reproducible whatever the arms' order
            self._by_arm[arm] = self._make(self._seed + sum(map(ord, arm)) * 7919)
        return self._by_arm[arm], _ArmView(study, arm)

    def infer_relative_search_space(self, study, trial):
        sampler, view = self._route(study, trial)
        return sampler.infer_relative_search_space(view, trial)

    def sample_relative(self, study, trial, search_space):
        sampler, view = self._route(study, trial)
        return sampler.sample_relative(view, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        sampler, view = self._route(study, trial)
        return sampler.sample_independent(view, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        sampler, view = self._route(study, trial)
        sampler.before_trial(view, trial)

    def after_trial(self, study, trial, state, values) -> None:
        sampler, view = self._route(study, trial)
        sampler.after_trial(view, trial, state, values)

    def reseed_rng(self) -> None:
        self._plain.reseed_rng()
        for s in self._by_arm.values():
            s.reseed_rng()


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler: per arm (the fair default), or one over the whole space for a joint search."""
    if spec.joint:
        return SAMPLERS.get(spec.sampler)(spec, seed)
    return ArmSampler(lambda s: SAMPLERS.get(spec.sampler)(spec, s), seed)
