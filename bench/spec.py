"""Study specs: TOML files validated by pydantic, so a typo fails before any training starts.

Every error becomes one line naming the file and the field path (e.g. `space.lam.low`), and
unknown keys are rejected rather than silently ignored.
"""

from __future__ import annotations

import importlib.resources
import math
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.space import grid
from bench.racing import calibrated_p
from bench.strategies import PRUNERS, SAMPLERS
from stabgen.datasets import DATASETS, DEFAULT_DATASET, all_metrics
from stabgen import userdata
from stabgen.errors import StabgenError
from stabgen.metrics.stability import STABILITY_OBJECTIVES
from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS

# the shipped study specs: package data of bench (bench/studies/*.toml, also reachable as studies/ in
# the checkout), found through importlib.resources so an installed wheel finds them by name
STUDIES = importlib.resources.files("bench") / "studies"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A numeric search range; `log = true` samples log-uniformly."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"a range needs finite bounds, got low={self.low}, high={self.high}")
        if not self.low < self.high:
            raise ValueError(f"empty or inverted range: low={self.low} must be < high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log range needs low > 0, got {self.low}")
        return self


class Train(_Strict):
    steps: int = Field(2000, gt=0, description="optimizer steps per trial")
    epochs: float | None = Field(None, gt=0, description="budget in epochs of the train split instead "
                                 "of steps (image datasets; steps = ⌈epochs·60000/batch_size⌉)")
    batch_size: int = Field(64, gt=0)
    eval_every: int = Field(500, gt=0, description="steps between intermediate evaluations")
    z_dim: int = Field(64, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    kl_warmup: int = Field(0, ge=0, description="VAE: steps over which the KL weight ramps from 0 to β")
    d_bn: bool = Field(False, description="batch norm in conv discriminators")
    budget_counts: Literal["generator", "discriminator"] = Field(
        "generator", description="what steps/epochs count: generator updates (each after n_critic D updates) "
        "or discriminator updates, as compare_gan (Lucic 2018) does — then G trains ⌈steps / n_critic⌉ times")
    lr_schedule: str = Field("constant", description="learning-rate schedule (stabgen.schedules): constant, "
                             "linear (decay to 0 over the run) or cosine")
    population: int | Literal["auto"] = Field(1, description="trials trained together in one vectorized "
                                              "pass (stabgen.train); 'auto' sizes it from free GPU "
                                              "memory (1 on CPU)")

    @field_validator("lr_schedule")
    @classmethod
    def _known_schedule(cls, v: str) -> str:
        from stabgen.schedules import SCHEDULES

        if v not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {v!r}; known: {', '.join(SCHEDULES.names())}")
        return v

    @field_validator("population")
    @classmethod
    def _population_positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 4096:
            raise ValueError(f"population must be 'auto' or an integer in 1..4096, got {v}")
        return v


class Eval(_Strict):
    split: Literal["train", "test"] = "test"
    samples: int = Field(2000, ge=10, description="N real = N fake for the domain metrics")
    inception_top_k: int = Field(3, ge=0, description="best trials that get an Inception evaluation")
    inception_samples: int = Field(500, ge=10)



class Seeds(_Strict):
    """Seeds per config: every finished search config is re-run until it has `per_config` seeds, then
    the top_k configs get `extra` more each (queued with Optuna's enqueue_trial)."""

    per_config: int = Field(1, ge=1)
    top_k: int = Field(0, ge=0)
    extra: int = Field(0, ge=0)


ARMS = ("regularizer", "objective", "model")


class Search(_Strict):
    """How the search budget is spent. The fair default: every arm (bench.arms), the baseline included,
    gets `per_arm` trials over its own λ and lr, the sampler running within the arm, so each arm's best
    config is a best-of-N with the same N. `joint = true` is the old joint search over the whole space
    (exploration: its leaderboards carry no verdict, so it takes no confirmation)."""

    per_arm: int | None = Field(None, ge=1, le=10**6, description="search trials per arm (absent: "
                                "⌈n_trials / arms⌉; the default wherever there is a confirmation)")
    joint: bool = Field(False, description="one joint search of n_trials over every arm (exploration, no verdicts)")
    seeds_per_trial: int = Field(1, ge=1, le=100, description="seed racing (bench.racing): each search trial "
                                 "trains its config on up to this many seeds, the same seeds for every trial; "
                                 "with pruner = \"wilcoxon\" a config clearly worse than its arm's best stops early")
    race_p: float | None = Field(None, gt=0, lt=1, validate_default=True, description="WilcoxonPruner's p "
                                 "threshold (absent: the one calibrated for seeds_per_trial, bench.racing.calibrated_p)")

    @field_validator("race_p")
    @classmethod
    def _calibrated(cls, v: float | None, info) -> float:
        return v if v is not None else calibrated_p(info.data.get("seeds_per_trial", 1))


class Confirm(_Strict):
    """After the search, the best config of each arm is re-trained on `seeds` fresh seeds, the same
    seeds for every arm, and only these runs enter tests and headline tables (docs/statistics.md)."""

    seeds: int = Field(10, ge=0, le=1000, description="confirmation seeds per arm in each stage (0: no "
                       "confirmation; below 6 the paired two-sided test cannot reach p < 0.05 at all)")
    stages: int = Field(4, ge=1, le=5, description="sequential confirmation: up to `stages` looks, `seeds` more "
                        "seeds each for the arms still undecided, at Pocock's per-look level (bench.stats.POCOCK); "
                        "1: a fixed design of `seeds` seeds")
    arm: Literal["regularizer", "objective", "model"] = Field("regularizer", description="what an arm is")
    baseline: str = Field("none", description="the arm every other arm is tested against")
    margin: float | None = Field(None, gt=0, description="equivalence margin in metric units (TOST); "
                                 "absent: equivalence is not tested")


class Space(_Strict):
    models: list[str] = Field(min_length=1)
    objectives: list[str] = Field(default_factory=lambda: ["ns"], min_length=1)
    regularizers: list[str] = Field(min_length=1)
    lam: Range = Range(low=1e-3, high=1e2, log=True)
    lr: Range = Range(low=1e-5, high=1e-2, log=True)
    obj_lam: Range = Field(Range(low=0.1, high=100.0, log=True), description="λ of wgan_gp / dragan (Lucic)")
    clip: Range = Field(Range(low=1e-3, high=1.0, log=True), description="wgan clip value (Lucic)")
    n_critic: list[int] = Field(default_factory=lambda: [1], min_length=1)
    d_bn: list[bool] | None = Field(None, min_length=1, description="batch norm in conv discriminators, "
                                    "searched (Lucic 2018: [false, true]); absent: train.d_bn")
    beta: Range | None = Field(None, description="VAE KL weight β; absent: β = 1")
    beta1: Range | None = Field(None, description="Adam β1; absent: train.beta1")
    beta2: Range | None = Field(None, description="Adam β2; absent: train.beta2")
    batch_size: list[int] | None = Field(None, min_length=1, description="absent: train.batch_size")
    grid_points: int = Field(3, ge=1, description="values per continuous range when sampler = grid")

    @field_validator("lam", "lr", "obj_lam", "clip")
    @classmethod
    def _positive(cls, v: Range, info) -> Range:
        """Checked when the spec is read, before a study is stored (issue 33: a negative λ or lr range
        was refused only at trial time, after a FAIL trial was stored)."""
        if info.field_name == "lam" and v.low < 0:
            raise ValueError(f"λ must be ≥ 0, got a range from {v.low}")
        if info.field_name != "lam" and v.low <= 0:
            raise ValueError(f"{info.field_name} must be > 0, got a range from {v.low}")
        return v

    @field_validator("beta1", "beta2")
    @classmethod
    def _adam_beta(cls, v: Range | None) -> Range | None:
        if v is not None and not (0 <= v.low and v.high < 1):
            raise ValueError(f"Adam betas must lie in [0, 1), got [{v.low}, {v.high}]")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(b < 1 for b in v):
            raise ValueError(f"batch sizes must be ≥ 1, got {v}")
        return v

    @field_validator("n_critic")
    @classmethod
    def _n_critic(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v):
            raise ValueError(f"n_critic values must be ≥ 1, got {v}")
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        return _known(v, MODELS, "model")

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        return _known(v, OBJECTIVES, "objective")

    @field_validator("regularizers")
    @classmethod
    def _regularizers(cls, v: list[str]) -> list[str]:
        return _known(v, REGULARIZERS, "regularizer")

    @model_validator(mode="after")
    def _combinations(self) -> "Space":
        families = {MODELS.get(m).family for m in self.models}
        for m in self.models:
            family = MODELS.get(m).family
            if not self.regularizers_for(family):
                raise ValueError(f"none of the regularizers {self.regularizers} applies to model {m!r} ({family})")
        for r in self.regularizers:
            if not families & REGULARIZERS.get(r).families:
                raise ValueError(f"regularizer {r!r} applies to {'/'.join(sorted(REGULARIZERS.get(r).families))} "
                                 f"models, none of which is in models = {self.models}")
        if self.objectives != ["ns"] and "gan" not in families:
            raise ValueError(f"objectives {self.objectives} need a GAN model in models = {self.models}")
        return self

    def regularizers_for(self, family: str) -> list[str]:
        return [r for r in self.regularizers if family in REGULARIZERS.get(r).families]


def _known(names: list[str], registry, kind: str) -> list[str]:
    for n in names:
        if n not in registry:
            raise ValueError(f"unknown {kind} {n!r}; known: {', '.join(registry.names())}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate {kind} names in {names}")
    return names


class StudySpec(_Strict):
    name: str = Field("", validate_default=True, description="the study's name (default: the file's stem)")
    description: str = ""
    dataset: str = DEFAULT_DATASET  # a name in stabgen.datasets.DATASETS
    metric: str = ""  # one of the dataset's metrics (default: its first)
    direction: Literal["minimize", "maximize", ""] = ""  # derived from the metric when omitted
    pareto_with: list[str] = Field(default_factory=list, description="more objectives next to `metric`: a "
                                   "multi-objective search with a Pareto front (metric or stability names)")
    sampler: Literal[tuple(SAMPLERS.names())] = "tpe"  # type: ignore[valid-type]  # the registry's names
    pruner: Literal[tuple(PRUNERS.names())] = "none"  # type: ignore[valid-type]
    n_trials: int = Field(20, gt=0)
    seed: int = Field(0, ge=0, le=2**31 - 1 - 2 * 10**9, description="base seed (trial and confirmation "
                      "seeds are offsets from it)")
    storage: str | None = Field(None, description="Optuna storage URL (default: SQLite under runs/)")
    train: Train = Train()
    eval: Eval = Eval()
    search: Search = Search()
    seeds: Seeds = Seeds()
    confirm: Confirm = Confirm()
    space: Space

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        """One path component: runs/<name>/ must stay inside runs/ (issue 33: "../../x" escaped it)."""
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", v) or ".." in v:
            raise ValueError(f"study name {v!r} must be 1–100 letters, digits, '-', '_' or '.', starting with a "
                             f"letter or digit (it names a folder under runs/)")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v not in DATASETS and not userdata.is_path(v):
            raise ValueError(f"unknown dataset {v!r}; known: {', '.join(DATASETS.names())} "
                             f"(or a folder of images / an .npz file, or register one: docs/extending.md, Adding a dataset)")
        userdata.resolve(v)  # a user's data is registered under its path on first use
        return v

    @field_validator("pareto_with")
    @classmethod
    def _pareto_with(cls, v: list[str]) -> list[str]:
        known = [*all_metrics(), *STABILITY_OBJECTIVES]
        for name in v:
            if name not in known:
                raise ValueError(f"unknown objective {name!r}; known: {', '.join(known)}")
        return v

    @property
    def metrics(self) -> list[str]:
        """Every objective, the study metric first."""
        return [self.metric, *self.pareto_with]

    @property
    def directions(self) -> list[str]:
        ds = DATASETS.get(self.dataset).metrics
        return [self.direction, *(ds[n] if n in ds else STABILITY_OBJECTIVES[n][0] for n in self.pareto_with)]

    @property
    def multi_objective(self) -> bool:
        return bool(self.pareto_with)

    def budget_label(self) -> str:
        return f"{self.train.epochs:g} epochs" if self.train.epochs is not None else f"{self.train.steps} steps"

    def steps_for(self, batch_size: int) -> int:
        """The per-trial step budget: `train.steps`, or `train.epochs` over the train split."""
        if self.train.epochs is None:
            return self.train.steps
        return math.ceil(self.train.epochs * DATASETS.get(self.dataset).split_size("train") / batch_size)

    @model_validator(mode="after")
    def _consistent(self) -> "StudySpec":
        ds = DATASETS.get(self.dataset)
        if not self.metric:
            object.__setattr__(self, "metric", next(iter(ds.metrics)))
        if self.metric not in ds.metrics:
            raise ValueError(f"metric {self.metric!r} is not one of {self.dataset!r}'s: {', '.join(ds.metrics)}")
        direction = ds.metrics[self.metric]
        if self.direction and self.direction != direction:
            raise ValueError(f"metric {self.metric!r} must be {direction}d, not {self.direction}d")
        object.__setattr__(self, "direction", direction)
        for m in self.space.models:
            if MODELS.get(m).data_kind != ds.kind:
                raise ValueError(f"model {m!r} is for {MODELS.get(m).data_kind} data; {self.dataset!r} is {ds.kind} data")
        self._check_sizes(ds)
        self._check_objectives(ds)
        self._check_confirm()
        if self.sampler == "grid" and self.n_trials > len(grid(self)):
            raise ValueError(f"n_trials={self.n_trials} exceeds the {len(grid(self))} points of the grid "
                             f"(space.grid_points={self.space.grid_points} per range); lower n_trials")
        return self

    def _check_sizes(self, ds) -> None:
        if ds.finite:
            batches = self.space.batch_size or [self.train.batch_size]
            if max(batches) > ds.split_size("train"):
                raise ValueError(f"batch size {max(batches)} exceeds the {ds.split_size('train')} samples of "
                                 f"{self.dataset!r}'s train split")
            size = ds.split_size(self.eval.split)
            inception = self.eval.inception_top_k > 0 and ds.inception
            for name in ("samples", "inception_samples") if inception else ("samples",):
                if getattr(self.eval, name) > size:
                    raise ValueError(f"eval.{name}={getattr(self.eval, name)} exceeds the {size} "
                                     f"images of the {self.eval.split} split")
        elif self.train.epochs is not None:
            raise ValueError(f"train.epochs needs a finite dataset; {self.dataset!r} is sampled fresh: use train.steps")

    def arms(self) -> list[str]:
        """The values the confirmation's compared factor takes in this space."""
        sp = self.space
        return {"regularizer": sp.regularizers, "objective": sp.objectives, "model": sp.models}[self.confirm.arm]

    @property
    def joint(self) -> bool:
        """A joint search over the whole space: asked for, or a study without confirmation (nothing is
        compared, so nothing needs equal budgets) that names no per_arm, or a multi-objective one."""
        return self.search.joint or self.multi_objective or (self.confirm.seeds == 0 and self.search.per_arm is None)

    @property
    def per_arm(self) -> int | None:
        """Search trials per arm under the per-arm search; None for a joint search."""
        if self.joint:
            return None
        from bench.arms import arms

        return self.search.per_arm or math.ceil(self.n_trials / len(arms(self)))

    def search_budget(self, trials: int | None = None) -> int:
        """All search trials: `trials` (or the spec's) per arm × arms, or the joint search's total."""
        from bench.arms import arms

        n = trials or self.per_arm or self.n_trials
        return n if self.joint else n * len(arms(self))

    def _check_confirm(self) -> None:
        c = self.confirm
        if c.seeds and self.search.joint:
            raise ValueError("a joint search is exploration and carries no verdict: set confirm.seeds = 0 "
                             "with search.joint = true, or drop joint for the per-arm search")
        if not self.joint and self.sampler in ("grid", "nsga2"):
            raise ValueError(f"sampler {self.sampler!r} works on the whole space: use it with search.joint = true "
                             f"(and confirm.seeds = 0)")
        if c.seeds and c.baseline not in self.arms() and len(self.arms()) > 1:
            raise ValueError(f"confirm.baseline {c.baseline!r} is not one of the space's {c.arm}s "
                             f"({', '.join(self.arms())}); name one of them")
        if c.seeds and self.multi_objective:
            raise ValueError("confirmation compares arms on one metric; set confirm.seeds = 0 with pareto_with")

    def _check_objectives(self, ds) -> None:
        for name in self.pareto_with:
            if name not in ds.metrics and name not in STABILITY_OBJECTIVES:
                raise ValueError(f"objective {name!r} is not one of {self.dataset!r}'s metrics "
                                 f"({', '.join(ds.metrics)}) or a stability objective")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"pareto_with {self.pareto_with} repeats the study metric {self.metric!r}")
        if self.multi_objective and self.pruner != "none":
            raise ValueError(f"pruner {self.pruner!r} needs a single objective (Optuna prunes on one "
                             f"intermediate value); use pruner = \"none\" with pareto_with")
        if self.multi_objective and self.sampler == "cmaes":
            raise ValueError("sampler 'cmaes' is single-objective; use tpe or nsga2 with pareto_with")
        self._check_racing()

    def _check_racing(self) -> None:
        """Seed racing (bench.racing) reports one value per seed, so it excludes the pruners that read
        values per training step, a second way of adding seeds, and several objectives."""
        s = self.search.seeds_per_trial
        if self.pruner == "wilcoxon" and s < 3:
            raise ValueError(f"pruner 'wilcoxon' races seeds: set [search] seeds_per_trial ≥ 3 (it is {s}; "
                             f"the pruner compares no fewer than 3 paired seeds)")
        if s > 1 and self.pruner not in ("none", "wilcoxon"):
            raise ValueError(f"pruner {self.pruner!r} reads values per training step; with [search] "
                             f"seeds_per_trial = {s} use pruner = \"wilcoxon\" (or \"none\")")
        if s > 1 and self.multi_objective:
            raise ValueError("[search] seeds_per_trial > 1 races one metric; drop pareto_with or set it to 1")
        if s > 1 and self.seeds.per_config > 1:
            raise ValueError("[search] seeds_per_trial and [seeds] per_config both add seeds to a config; use one")


def resolve_path(study: str) -> Path:
    """`--study` is a name from studies/ or a path to the user's own TOML file."""
    p = Path(study)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise StabgenError(f"study file {p} does not exist")
        if not p.is_file():
            raise StabgenError(f"study {p} is a directory, not a TOML file; pass the spec file inside it")
        return p
    cand = STUDIES / f"{study}.toml"
    if not cand.is_file():
        known = ", ".join(sorted(x.name.removesuffix(".toml") for x in STUDIES.iterdir() if x.name.endswith(".toml")))
        raise StabgenError(f"no study named {study!r} among the shipped studies (known: {known}); "
                           f"or pass a path to a .toml file")
    return Path(str(cand))


def load(study: str) -> StudySpec:
    path = resolve_path(study)
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise StabgenError(f"{path}: not a text file (not UTF-8); a study spec is TOML text") from None
    except OSError as e:
        raise StabgenError(f"{path}: cannot read it ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise StabgenError(f"{path}: invalid TOML: {e}") from None
    raw.setdefault("name", path.stem)
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against docs/spec.md)"
        more = f" (+{len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise StabgenError(f"{path}: {loc}: {msg}{more}") from None
