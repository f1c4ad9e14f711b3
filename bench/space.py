"""The search space: one function, `suggest_config`, says which parameters a trial samples.

The space is *conditional* in a way TPE handles well: each model family has its own regularizer
parameter (`regularizer_gan`, `regularizer_vae`) listing only the regularizers that apply to it,
and each regularizer has its own λ parameter (`lam_<name>`) that exists only when that regularizer
is chosen — λ for L2 and λ for a gradient penalty live on different scales and must not share a
density estimate. Likewise an objective's own λ (`obj_lam_wgan_gp`), the clip value (wgan only),
n_critic (GANs only) and β (VAEs only) exist only where they apply.

The same function enumerates the grid for `sampler = "grid"`: it is replayed against a trial
stand-in that walks every branch, so the grid holds only configs that can occur (Optuna's
GridSampler would take the product over all parameter names, conditional ones included).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS
from stabgen.trial import TrialConfig

StudySpec = Any  # a bench.spec.StudySpec (which imports this module: the grid check of its validation)

REEVAL = "reeval_of"  # user attr of a seed re-run: the number of the trial whose config it repeats
CONFIRM = "confirm_arm"  # user attr of a confirmation run: its arm (with confirm_of, confirm_seed)
SEED_STRIDE = 100_000  # seed re-run i of trial n trains with seed  spec.seed + i·SEED_STRIDE + n
CONFIRM_SEEDS = 1_000_000_000  # confirmation seed i: spec.seed + CONFIRM_SEEDS + i, the same for every arm


def trial_seed(spec: StudySpec, number: int, user_attrs: dict) -> int:
    """Search trial n trains with seed spec.seed + n; a seed re-run with a seed no search trial uses;
    confirmation seed i with seed spec.seed + CONFIRM_SEEDS + i for every arm (paired, fresh)."""
    if CONFIRM in user_attrs:
        return spec.seed + CONFIRM_SEEDS + user_attrs["confirm_seed"]
    if REEVAL in user_attrs:
        return spec.seed + SEED_STRIDE * user_attrs["seed_index"] + user_attrs[REEVAL]
    return spec.seed + number


def is_search(user_attrs: dict) -> bool:
    """A trial the sampler proposed (not a seed re-run, not a confirmation run)."""
    return REEVAL not in user_attrs and CONFIRM not in user_attrs


def _float(trial, name: str, r) -> float:
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def _choice(trial, name: str, options: Sequence[Any]):
    """A categorical parameter only when there is a choice to make."""
    return trial.suggest_categorical(name, list(options)) if len(options) > 1 else options[0]


def suggest_config(trial, spec: StudySpec, steps: int | None = None, seed: int = 0) -> TrialConfig:
    """Sample one config; every parameter exists only where it means something (see module doc)."""
    sp, t = spec.space, spec.train
    model = _choice(trial, "model", sp.models)
    family = MODELS.get(model).family
    extra: dict = {}
    if family == "gan":
        objective = extra["objective"] = _choice(trial, "objective", sp.objectives)
        obj = OBJECTIVES.get(objective)
        if obj.penalty:
            extra["obj_lam"] = _float(trial, f"obj_lam_{objective}", sp.obj_lam)
        if obj.clip:
            extra["clip_value"] = _float(trial, "clip", sp.clip)
        extra["n_critic"] = _choice(trial, "n_critic", sp.n_critic)
    elif sp.beta is not None:
        extra["beta"] = _float(trial, "beta", sp.beta)
    reg = trial.suggest_categorical(f"regularizer_{family}", sp.regularizers_for(family))
    lam = _float(trial, f"lam_{reg}", sp.lam) if reg != "none" and REGULARIZERS.get(reg).uses_lambda else 0.0
    lr = _float(trial, "lr", sp.lr)
    beta1 = _float(trial, "beta1", sp.beta1) if sp.beta1 else t.beta1
    beta2 = _float(trial, "beta2", sp.beta2) if sp.beta2 else t.beta2
    batch = _choice(trial, "batch_size", sp.batch_size) if sp.batch_size else t.batch_size
    steps = steps or spec.steps_for(batch)
    if family == "gan" and t.budget_counts == "discriminator":  # compare_gan's count: D updates
        steps = -(-steps // extra["n_critic"])
    d_bn = _choice(trial, "d_bn", sp.d_bn) if family == "gan" and sp.d_bn else t.d_bn
    return TrialConfig(dataset=spec.dataset, model=model, regularizer=reg, lam=lam, lr=lr, beta1=beta1,
                       beta2=beta2, batch_size=batch, steps=steps, z_dim=t.z_dim, seed=seed,
                       eval_every=min(t.eval_every, steps), kl_warmup=t.kl_warmup, d_bn=d_bn,
                       lr_schedule=t.lr_schedule, **extra)


def grid_values(low: float, high: float, log: bool, points: int) -> list[float]:
    """`points` values spanning [low, high], evenly on a log or linear scale."""
    v = np.geomspace(low, high, points) if log else np.linspace(low, high, points)
    return [float(f"{x:.6g}") for x in v]


class _GridWalker:
    """A stand-in for optuna.Trial that takes the branch given by `path` and records each choice's
    number of options, so `grid` can enumerate every distinct config depth-first."""

    def __init__(self, path: list[int], points: int):
        self.path, self.points = path, points
        self.widths: list[int] = []
        self.params: dict[str, Any] = {}

    def _pick(self, name: str, options: list):
        i = self.path[len(self.widths)] if len(self.widths) < len(self.path) else 0
        self.widths.append(len(options))
        self.params[name] = options[i]
        return options[i]

    def suggest_categorical(self, name: str, options: list):
        return self._pick(name, options)

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return self._pick(name, grid_values(low, high, log, self.points))


def grid(spec: StudySpec) -> list[dict[str, Any]]:
    """Every distinct parameter set of the conditional space, continuous ranges at
    `space.grid_points` values each, in a fixed order."""
    out, stack = [], [[]]
    while stack:
        path = stack.pop()  # a prefix of choices; deeper ones default to the first option
        walker = _GridWalker(path, spec.space.grid_points)
        suggest_config(walker, spec, steps=1)
        full = path + [0] * (len(walker.widths) - len(path))
        out.append((full, walker.params))
        for depth in range(len(walker.widths) - 1, len(path) - 1, -1):  # siblings of the defaulted choices
            stack.extend(full[:depth] + [i] for i in range(walker.widths[depth] - 1, 0, -1))
    return [params for _, params in sorted(out, key=lambda x: x[0])]


def probe_configs(spec: StudySpec, steps: int = 2) -> list[TrialConfig]:
    """One config per model of the space (its first grid point), short: what sizing a population
    from free memory measures."""
    out = []
    for i in range(len(spec.space.models)):
        walker = _GridWalker([i], 2)
        out.append(suggest_config(walker, spec, steps=steps))
    return out
