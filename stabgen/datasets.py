"""Datasets: the one home of every dataset fact.

A `DatasetSpec` says what kind of data a dataset is (images or 2D points), one sample's shape, its
finite splits and their sizes, how to build its training source, how to read a labelled split (the
real reference of the metrics), which evaluator a study on it runs, the metrics a study may search
with their directions, the columns a report shows, and a line for `bench list datasets`. Every other
module asks `DATASETS`; none names a dataset or branches on one. Adding a dataset is one
`register(DatasetSpec(...))` (plus its loader and evaluator where they are new); installed packages
add datasets through the `stabgen.datasets` entry-point group (see stabgen.registry); a folder of
images or an .npz file becomes a dataset with `stabgen.userdata.register_path`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from stabgen import data as data_mod
from stabgen import sources
from stabgen.data import ImageData, RealRef, SplitLoader
from stabgen.errors import StabgenError
from stabgen.metrics.evaluate import DomainEvaluator, Evaluator, MixtureEvaluator, StackedEvaluator
from stabgen.models.base import DATA_KINDS  # the kinds models train on: one list for both
from stabgen.registry import Registry


@dataclass(frozen=True)
class Column:
    """One metric column of a report: where its value is recorded, its direction, its format."""

    key: str  # key in the trial's final metrics (source "metrics") or Inception result ("inception")
    direction: str  # "minimize" | "maximize"
    fmt: str = "{:.4g}"
    source: str = "metrics"


@dataclass(frozen=True)
class EvalRequest:
    """What a study asks of its evaluator: the reference split and N, the device, the search metric."""

    split: str
    n: int
    device: str = "cpu"
    data_dir: str | None = None
    metric: str = ""


@dataclass(frozen=True)
class Check:
    """One condition of a quality gate: a report column against a threshold in its direction."""

    column: str  # a key of DatasetSpec.columns
    direction: str  # "minimize": pass when ≤ threshold; "maximize": pass when ≥ threshold
    threshold: float

    def passes(self, value: float) -> bool:
        if value != value:  # NaN: undefined, never a pass
            return False
        return value <= self.threshold if self.direction == "minimize" else value >= self.threshold


@dataclass(frozen=True)
class Gate:
    """Whether a run trained at all: every check must pass (on an arm's median over its seeds). Set
    against the dataset's chance rows, so an arm below it "did not train at this budget" and is
    never called better or worse (docs/statistics.md)."""

    checks: tuple[Check, ...]
    text: str  # the gate and the chance rows it is set against, in words (reports print it)

    def passes(self, values: Mapping[str, float]) -> bool:
        return all(c.passes(float(values.get(c.column, float("nan")))) for c in self.checks)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    kind: str  # "image" or "points": which models apply (ModelSpec.data_kind)
    shape: tuple[int, ...]  # one sample, e.g. (1, 28, 28) or (2,)
    source: Callable[[str | None], sources.Source]  # data_dir → the training source
    evaluator: Callable[["DatasetSpec", EvalRequest], Evaluator]
    metrics: Mapping[str, str]  # metrics a study may search → direction (the first is the default)
    columns: Mapping[str, Column]  # what a report shows per trial and per config
    splits: Mapping[str, int] = field(default_factory=dict)  # finite datasets: split → size
    load_split: SplitLoader | None = None  # (split, data_dir) → labelled images (the metrics' reference)
    classes: int = 0  # label classes (class coverage); 0 where there are none
    inception: bool = False  # Inception FID/KID/PR apply (natural-image-like grey or RGB images)
    # chance rows: what samples that learned nothing score (name → column → value, measured at N = 5,000
    # against the test split: tests/stabgen/test_gates.py recomputes them), the gate set against them, and the
    # best value a column can take (a claim that the baseline is beaten there is untestable)
    chance: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    gate: Gate | None = None
    ceilings: Mapping[str, float] = field(default_factory=dict)

    @property
    def finite(self) -> bool:
        return bool(self.splits)

    def split_size(self, split: str) -> int:
        if split not in self.splits:
            raise StabgenError(f"dataset {self.name!r} has no split {split!r}"
                               + (f"; it has {', '.join(self.splits)}" if self.splits else " (it is sampled fresh)"))
        return self.splits[split]

    def reference(self, split: str, n: int, seed: int = 0, data_dir: str | None = None) -> RealRef:
        """n real samples of a split, fixed by the seed: what every metric of this dataset compares to."""
        if self.load_split is None:
            raise StabgenError(f"dataset {self.name!r} has no real split to compare against")
        if not 0 < n <= self.split_size(split):
            raise StabgenError(f"{self.name}/{split} has {self.split_size(split)} samples; asked for {n}")
        return RealRef(self.name, split, n, seed, data_dir, self.load_split)

    def class_counts(self, split: str, data_dir: str | None = None) -> torch.Tensor:
        if self.load_split is None or not self.classes:
            raise StabgenError(f"dataset {self.name!r} has no class labels")
        return self.load_split(split, data_dir).labels.bincount(minlength=self.classes)

    def build_evaluator(self, request: EvalRequest) -> Evaluator:
        return self.evaluator(self, request)


DIRECTIONS = ("minimize", "maximize")


def check_spec(name: str, ds: object) -> None:
    """What the registry checks when a dataset is registered: every metric, chance row, gate and ceiling
    names a report column with a direction (behaviour: stabgen.testing.check_dataset)."""
    if not isinstance(ds, DatasetSpec):
        raise ValueError(f"dataset {name!r} must be a stabgen.datasets.DatasetSpec, not {type(ds).__name__}")
    problems = [f"kind {ds.kind!r} is none of {', '.join(DATA_KINDS)}"] if ds.kind not in DATA_KINDS else []
    problems += [f"registered as {name!r} but named {ds.name!r}"] if ds.name != name else []
    problems += ["it declares no metric"] if not ds.metrics else []
    problems += [f"metric {m!r} has direction {d!r}" for m, d in ds.metrics.items() if d not in DIRECTIONS]
    problems += [f"column {c.key!r} has direction {c.direction!r}" for c in ds.columns.values()
                 if c.direction not in DIRECTIONS]
    named = {"metric": list(ds.metrics), "ceiling": list(ds.ceilings),
             "chance row column": [c for row in ds.chance.values() for c in row],
             "gate column": [c.column for c in (ds.gate.checks if ds.gate else ())]}
    problems += [f"{what} {c!r} is not one of its columns" for what, cols in named.items() for c in cols
                 if c not in ds.columns]
    if problems:
        raise ValueError(f"dataset {name!r}: " + "; ".join(problems))


DATASETS: Registry[DatasetSpec] = Registry("dataset", group="stabgen.datasets", check=check_spec)
DEFAULT_DATASET = "mnist"  # what a spec or a TrialConfig trains on when it names none


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset (a test or a notebook may `DATASETS.unregister(name)` it afterwards)."""
    return DATASETS.register(spec.name)(spec)


def all_metrics() -> dict[str, str]:
    """Every searchable metric of every dataset → its direction."""
    return {m: d for _, ds in DATASETS.items() for m, d in ds.metrics.items()}


# --- evaluators -----------------------------------------------------------------------------------

def domain_evaluator(ds: DatasetSpec, r: EvalRequest) -> Evaluator:
    """Domain FID/KID/PR, density/coverage and class coverage on the dataset's own classifier."""
    return DomainEvaluator(ds.reference(r.split, r.n, data_dir=r.data_dir), ds.class_counts(r.split, r.data_dir),
                           r.device, r.metric)


def mixture_evaluator(ds: DatasetSpec, r: EvalRequest) -> Evaluator:
    """PacGAN's mode counting against the mixture's own centres and σ."""
    src = ds.source(None)
    return MixtureEvaluator(src.centers, src.sigma, r.n)


def stacked_evaluator(ds: DatasetSpec, r: EvalRequest) -> Evaluator:
    """Modes of 1,000: every channel classified by the MNIST classifier."""
    return StackedEvaluator(r.n, r.device, digits="mnist")


# --- the built-in datasets ------------------------------------------------------------------------

IMAGE_COLUMNS = {
    "domain_fid": Column("domain_fid", "minimize", "{:.2f}"),
    "inception_fid": Column("fid", "minimize", "{:.1f}", source="inception"),
    "domain_kid": Column("domain_kid", "minimize", "{:.4f}"),
    "precision": Column("domain_precision", "maximize", "{:.3f}"),
    "recall": Column("domain_recall", "maximize", "{:.3f}"),
    "density": Column("domain_density", "maximize", "{:.3f}"),
    "coverage": Column("domain_coverage", "maximize", "{:.3f}"),
    "vendi": Column("domain_vendi", "maximize", "{:.1f}"),  # effective number of distinct samples
    "classes": Column("classes_covered", "maximize", "{:.3g}"),
    "class_kl": Column("class_kl", "minimize", "{:.3f}"),
}
# inception_fid: TF-Inception FID of every trial in its final evaluation (slow on a CPU; the post-hoc
# Inception step of the top-k trials is the cheap alternative), what Lucic 2018 ranks by
IMAGE_METRICS = {"domain_fid": "minimize", "domain_kid": "minimize", "inception_fid": "minimize"}
MIXTURE_COLUMNS = {"modes_captured": Column("modes_captured", "maximize", "{:.3g}"),
                   "high_quality": Column("high_quality", "maximize", "{:.1%}"),
                   "reverse_kl": Column("reverse_kl", "minimize", "{:.3f}")}
MIXTURE_METRICS = {"reverse_kl": "minimize", "modes_captured": "maximize"}
STACKED_COLUMNS = {"stacked_modes": Column("stacked_modes", "maximize", "{:.3g}"),
                   "stacked_kl": Column("stacked_kl", "minimize", "{:.3f}")}
STACKED_METRICS = {"stacked_kl": "minimize", "stacked_modes": "maximize"}
IDX_SPLITS = {"train": 60000, "test": 10000}


def image_gate(chance: Mapping[str, Mapping[str, float]], classes: int = 9) -> Gate:
    """MNIST-like: domain FID below half of the best chance row's, and at least `classes` classes."""
    floor = min(row["domain_fid"] for row in chance.values())
    rows = ", ".join(f"{k} {v['domain_fid']:.0f}" for k, v in chance.items())
    return Gate((Check("domain_fid", "minimize", round(floor / 2, 1)), Check("classes", "maximize", classes)),
                f"domain FID ≤ {floor / 2:.1f} (half the chance rows' best: {rows}) and ≥ {classes} classes covered")


def idx_dataset(name: str, description: str, chance: Mapping[str, Mapping[str, float]]) -> DatasetSpec:
    """MNIST-like: 28×28 grey idx files, 10 classes, a shipped domain classifier."""
    def load_split(split: str, data_dir: str | None = None) -> ImageData:
        return data_mod.load(name, split, data_dir)

    return DatasetSpec(name, description, "image", (1, 28, 28),
                       source=lambda data_dir=None: sources.ImageSource(load_split("train", data_dir)),
                       evaluator=domain_evaluator, metrics=IMAGE_METRICS, columns=IMAGE_COLUMNS,
                       splits=IDX_SPLITS, load_split=load_split, classes=10, inception=True,
                       chance=chance, gate=image_gate(chance), ceilings={"classes": 10})


# chance rows (measured at N = 5,000 vs the test split; tests/stabgen/test_gates.py recomputes them): uniform noise, and the train split's mean image plus N(0, 30²) noise
register(idx_dataset("mnist", "MNIST 28×28 grey, 60k train / 10k test, sha256-verified idx files",
                     {"uniform noise": {"domain_fid": 327.6, "classes": 1},
                      "blurred mean": {"domain_fid": 477.9, "classes": 3}}))
register(idx_dataset("fashion-mnist", "Fashion-MNIST 28×28 grey, 60k train / 10k test, sha256-verified idx files",
                     {"uniform noise": {"domain_fid": 201.4, "classes": 2},
                      "blurred mean": {"domain_fid": 198.9, "classes": 3}}))


# 2D chance rows at PacGAN's N = 2,500, the mean of 10 draws (bench.papers.pacgan2018.chance_samples;
# tests/bench/test_benchmark.py recomputes them): uniform noise on the data's box, the mixture blurred to 10σ
RING_CHANCE = {"uniform noise": {"high_quality": 0.002, "modes_captured": 3.8, "reverse_kl": 0.91},
               "blurred mixture": {"high_quality": 0.045, "modes_captured": 8.0}}
GRID_CHANCE = {"uniform noise": {"high_quality": 0.018, "modes_captured": 21.8, "reverse_kl": 0.271},
               "blurred mixture": {"high_quality": 0.045, "modes_captured": 25.0}}


def mixture_gate(name: str, chance: Mapping[str, Mapping[str, float]]) -> Gate:
    """2D mixtures: at least half of the samples within 3σ of a mode (PacGAN's high quality). Chance
    puts a few per cent there (uniform noise on the data's box; PacGAN's chance rows), and a blurred
    mixture that learned nothing can still touch every mode — so mode counts alone never gate."""
    return Gate((Check("high_quality", "maximize", 0.5),),
                f"≥ 50 % of samples within 3σ of a mode (the {name}'s chance rows put "
                + ", ".join(f"{v['high_quality']:.1%}" for v in chance.values()) + " there: reports/papers/pacgan2018)")
register(DatasetSpec(
    "stacked-mnist", "three MNIST digits as RGB channels, 1,000 modes (infinite sampler)", "image", (3, 28, 28),
    source=lambda data_dir=None: sources.StackedMNIST(data_mod.load("mnist", "train", data_dir)),
    evaluator=stacked_evaluator, metrics=STACKED_METRICS, columns=STACKED_COLUMNS,
    ceilings={"stacked_modes": 1000}))
register(DatasetSpec(
    "ring", "2D ring of 8 Gaussians, radius 1, σ 0.01 (PacGAN 2018)", "points", (2,),
    source=lambda data_dir=None: sources.RING, evaluator=mixture_evaluator, metrics=MIXTURE_METRICS,
    columns=MIXTURE_COLUMNS, chance=RING_CHANCE, gate=mixture_gate("ring", RING_CHANCE), ceilings={"modes_captured": 8, "high_quality": 1.0}))
register(DatasetSpec(
    "grid", "2D grid of 25 Gaussians at {−4,−2,0,2,4}², σ 0.05 (PacGAN 2018)", "points", (2,),
    source=lambda data_dir=None: sources.GRID, evaluator=mixture_evaluator, metrics=MIXTURE_METRICS,
    columns=MIXTURE_COLUMNS, chance=GRID_CHANCE, gate=mixture_gate("grid", GRID_CHANCE), ceilings={"modes_captured": 25, "high_quality": 1.0}))


def load_source(name: str, data_dir: str | None = None) -> sources.Source:
    """The training source of a registered dataset."""
    return DATASETS.get(name).source(data_dir)
