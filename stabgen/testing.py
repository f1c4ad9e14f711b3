"""The contracts every registered regularizer, objective, model and dataset must keep, as functions a
plugin author calls from their own tests (stabgen's tests run them over every registry entry):

    from stabgen import testing

    def test_my_penalty_keeps_the_contract():
        testing.check_regularizer("my_penalty")

Each check trains a few float64 steps on tiny synthetic data (no files needed; a dataset check loads the
dataset itself) and raises `ContractError` (an AssertionError) saying which contract broke:
  placement    — a penalty moves only the network its `loss` declares, and is nonzero at a random start
                 (a penalty routed into the wrong loss, or one that never reaches the step, fails here);
  member = solo — a member of a population computes what it computes alone (to 1e-9 in float64, over
                 `steps` steps, beside members with other λ, lr and seeds): nothing is pooled over members;
  determinism  — the same config and seed twice give bit-identical histories and weights (every draw
                 comes from the trial's streams, never from a global RNG);
  shapes       — samples and batches have the shape the dataset declares, finite and in range.
The registry's own checks (stabgen.registry) catch malformed declarations when an entry is registered;
these catch wrong behaviour.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from stabgen import sources
from stabgen.data import ImageData
from stabgen.datasets import DATASETS, DEFAULT_DATASET, EvalRequest, load_source
from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS
from stabgen.streams import Streams
from stabgen.train import train, train_population
from stabgen.trial import TrialConfig, TrialResult, build, sample_output, sampler, to_uint8

F64 = torch.float64
LAM = 10.0  # a λ large enough that a penalty's effect on one step is far above float64 noise
TOL = 1e-9


class ContractError(AssertionError):
    """A registry entry broke one of stabgen's contracts (the message names the entry and the contract)."""


def _require(ok: bool, entry: str, contract: str, detail: str) -> None:
    if not ok:
        raise ContractError(f"{entry}: {contract} — {detail}")


def tiny_images(channels: int = 1, n: int = 64, seed: int = 0) -> sources.ImageSource:
    """A synthetic image source (random uint8 28×28 images): what the contracts train on, no files needed."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, channels, 28, 28), generator=g, dtype=torch.uint8)
    return sources.ImageSource(ImageData("tiny", "train", pixels, torch.zeros(n, dtype=torch.long)))


def _source(model: str) -> tuple[str, sources.Source]:
    """(dataset name, source) a model trains on in the checks: tiny images (configs name the default
    dataset), or the first registered 2D dataset (sampled, no files)."""
    if MODELS.get(model).data_kind == "points":
        points = next(name for name, ds in DATASETS.items() if ds.kind == "points")
        return points, load_source(points)
    return DEFAULT_DATASET, tiny_images()


def _config(model: str, steps: int, **kw) -> TrialConfig:
    dataset, _ = _source(model)
    z_dim = 2 if MODELS.get(model).data_kind == "points" else 16
    base = dict(dataset=dataset, model=model, steps=steps, batch_size=8, log_every=1, eval_every=steps,
                lr=1e-3, seed=3, z_dim=z_dim)
    return TrialConfig(**{**base, **kw})


def _params(res: TrialResult, net: str) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in res.modules[net].parameters()])


def _same(a: TrialResult, b: TrialResult, net: str) -> bool:
    return torch.equal(_params(a, net), _params(b, net))


def _finite(entry: str, res: TrialResult) -> None:
    _require(res.status == "completed", entry, "trains", f"status {res.status} at step {res.diverged_step}")
    bad = [(row["step"], k) for row in res.history for k, v in row.items() if not math.isfinite(v)]
    _require(not bad, entry, "trains", f"non-finite logged values {bad[:3]}")


def _summing_differently(modules: torch.nn.Module) -> bool:
    """Convolutions (grouped for a population, single alone) and batch norms sum in other orders."""
    kinds = (torch.nn.modules.conv._ConvNd, torch.nn.modules.batchnorm._BatchNorm)
    return any(isinstance(m, kinds) for m in modules.modules())


def check_member_equals_solo(entry: str, cfg: TrialConfig, **vary) -> None:
    """Member 1 of a population of three (λ, lr and seed differing) equals its solo run, step for step: to
    1e-9 for MLPs; with convolutions or batch norms, logged values to 1e-6 relative and every weight to
    1e-6 absolute with a mean difference below 1e-9 (Adam's g/√v turns summation noise in a zero-gradient
    entry — a bias right before a batch norm — into a step of up to lr; tests/stabgen/test_population.py)."""
    _, source = _source(cfg.model)
    cfgs = [replace(cfg, lam=lam, lr=lr, seed=s, **vary) for lam, lr, s in [(0.5, 1e-3, 1), (2.0, 2e-4, 2),
                                                                            (0.1, 5e-4, 3)]]
    pop, solo = train_population(cfgs, source, dtype=F64)[1], train(cfgs[1], source, dtype=F64)
    _finite(entry, solo)
    loose = _summing_differently(solo.modules)
    rel, atol = (1e-6, 1e-6) if loose else (TOL, TOL)
    _require(len(pop.history) == len(solo.history), entry, "member = solo", "a different number of logged steps")
    for a, b in zip(pop.history, solo.history):
        off = [k for k in b if not math.isclose(a.get(k, math.nan), b[k], rel_tol=rel, abs_tol=TOL)]
        _require(not off, entry, "member = solo", f"step {b['step']}: {off} differ ({[a.get(k) for k in off]} "
                                                  f"in the population, {[b[k] for k in off]} alone)")
    diffs = []
    for name, value in solo.modules.state_dict().items():
        other = pop.modules.state_dict()[name]
        _require(torch.allclose(other, value, rtol=0 if loose else TOL, atol=atol), entry, "member = solo",
                 f"weights {name} differ by up to {(other - value).abs().max().item():.2g}")
        diffs += [(other - value).abs().flatten()] if value.is_floating_point() else []
    _require(torch.cat(diffs).mean().item() < TOL, entry, "member = solo", "the weights differ on average")


def check_determinism(entry: str, cfg: TrialConfig, first: TrialResult | None = None) -> None:
    """The same config and seed twice (`first`: a float64 run of it already made): bit-identical histories
    and weights."""
    _, source = _source(cfg.model)
    a, b = first or train(cfg, source, dtype=F64), train(cfg, source, dtype=F64)
    _require(a.history == b.history, entry, "determinism", "two runs of one config and seed logged different values")
    for (name, x), y in zip(a.modules.state_dict().items(), b.modules.state_dict().values()):
        _require(torch.equal(x, y), entry, "determinism", f"two runs of one config and seed end with different {name}")


def _one_step(cfg: TrialConfig, **changed) -> tuple[TrialResult, TrialResult]:
    """Members (cfg, cfg with `changed`) after one step from the same state and streams."""
    _, source = _source(cfg.model)
    a, b = train_population([cfg, replace(cfg, **changed)], source, dtype=F64)
    return a, b


def check_placement(name: str, model: str) -> None:
    """λ = 0 against λ = LAM from the same state: only the declared network moves; a penalty is nonzero."""
    reg, entry = REGULARIZERS.get(name), f"regularizer {name!r} on {model!r}"
    gan = MODELS.get(model).family == "gan"
    if not reg.uses_lambda:  # a transform without weight: it must change what trains against a plain run
        cfg = _config(model, 1, regularizer=name)
        a, b = (train(c, _source(model)[1], dtype=F64) for c in (replace(cfg, regularizer="none"), cfg))
        _require(not _same(a, b, "discriminator" if gan else "generator"), entry, "placement",
                 "its transform changed nothing in one step")
        return
    a, b = _one_step(_config(model, 1, regularizer=name, lam=0.0), lam=LAM)
    if reg.acts_on == "nothing":
        _require(_same(a, b, "generator"), entry, "placement", "declares it acts on nothing, yet λ moved G")
        return
    if reg.acts_on != "discriminator_inputs_noise":
        _require(a.history[0]["penalty"] > 0, entry, "placement", "its penalty is 0 at a random start")
    if gan and (reg.loss == "discriminator" or reg.acts_on == "discriminator_inputs_noise"):
        _require(not _same(a, b, "discriminator"), entry, "placement", "λ did not move D, whose loss it declares")
    elif gan:  # G-side: D steps first, so D's update is identical to the last bit and G's is not
        _require(_same(a, b, "discriminator"), entry, "placement", "declares G's loss, yet λ moved D")
        _require(not _same(a, b, "generator"), entry, "placement", "λ did not move G, whose loss it declares")
    else:
        _require(not _same(a, b, "generator"), entry, "placement", "λ did not move the decoder")


def default_model(family: str) -> str:
    """The seed's MLP of a family (the first registered model of it): what a regularizer is checked on."""
    return next(n for n, m in MODELS.items() if m.family == family)


def check_regularizer(name: str, *, steps: int = 8, models: dict[str, str] | None = None) -> None:
    """Every contract of a regularizer, on each model family it declares (the family's first model unless
    `models` maps a family to another)."""
    reg = REGULARIZERS.get(name)
    for family in sorted(reg.families):
        model = (models or {}).get(family) or default_model(family)
        entry = f"regularizer {name!r} on {model!r}"
        check_placement(name, model)
        cfg = _config(model, steps, regularizer=name)
        check_member_equals_solo(entry, cfg)
        check_determinism(entry, replace(cfg, lam=1.0))


def check_objective(name: str, *, steps: int = 8, model: str | None = None) -> None:
    """Both networks train; n_critic = 2 member = solo; determinism; an own penalty moves D and is registered."""
    obj, model = OBJECTIVES.get(name), model or default_model("gan")
    entry = f"objective {name!r}"
    if obj.penalty is not None:
        _require(obj.penalty in REGULARIZERS, entry, "its penalty", f"{obj.penalty!r} is no registered regularizer")
        a, b = _one_step(_config(model, 1, objective=name, obj_lam=0.0), obj_lam=LAM)
        _require(not _same(a, b, "discriminator"), entry, "placement", "its own penalty's weight did not move D")
    cfg = _config(model, steps, objective=name, n_critic=2)
    _, source = _source(model)
    res = train(cfg, source, dtype=F64)
    _finite(entry, res)
    start = build(cfg, source.shape, torch.device("cpu")).double()  # the seed's initial weights
    for net in ("generator", "discriminator"):
        moved = not torch.equal(torch.cat([p.detach().flatten() for p in start[net].parameters()]), _params(res, net))
        _require(moved, entry, "both networks train", f"{net} never moved in {steps} steps")
    check_member_equals_solo(entry, cfg)
    check_determinism(entry, cfg, res)


def check_model(name: str, *, steps: int = 2) -> None:
    """A model trains with its family's plain setup; member = solo; determinism; samples shaped like its data.
    Two steps at batch 2 (the conv nets have millions of weights; a second step already runs Adam's
    moments and the evaluation of a trained state)."""
    spec, entry = MODELS.get(name), f"model {name!r}"
    cfg = _config(name, steps, batch_size=2)
    _, source = _source(name)
    res = train(cfg, source, dtype=F64)
    _finite(entry, res)
    out = sampler(res.modules["generator"], cfg.z_dim, cfg.seed, torch.device("cpu"),
                  output=sample_output(spec.data_kind))(5)
    _require(tuple(out.shape) == (5, *source.shape), entry, "shapes",
             f"5 samples have shape {tuple(out.shape)}, the data {tuple(source.shape)}")
    check_member_equals_solo(entry, cfg)
    check_determinism(entry, cfg, res)


def check_dataset(name: str, *, data_dir: str | None = None, n: int = 500) -> None:
    """Batches: declared shape, finite, images in [-1, 1], a member's batch its own stream's alone, the same
    twice. Evaluation: real samples give every column it declares and pass its quality gate."""
    ds, entry = DATASETS.get(name), f"dataset {name!r}"
    source = ds.source(data_dir)
    _require(tuple(source.shape) == tuple(ds.shape), entry, "shapes", f"source {source.shape} ≠ declared {ds.shape}")
    both, alone = source.batch(16, Streams([1, 2])), source.batch(16, Streams([2]))
    _require(tuple(both.shape) == (2, 16, *ds.shape), entry, "shapes", f"a (K=2, 16) batch has shape {both.shape}")
    _require(bool(torch.isfinite(both).all()), entry, "shapes", "a batch has non-finite values")
    _require(ds.kind != "image" or bool((both.abs() <= 1).all()), entry, "shapes", "images outside [-1, 1]")
    _require(torch.equal(both[1], alone[0]), entry, "member = solo", "a member's batch depends on the others' streams")
    _require(torch.equal(both, source.batch(16, Streams([1, 2]))), entry, "determinism", "one stream, two batches")
    _check_evaluation(ds, entry, source, data_dir, n)


def _check_evaluation(ds, entry: str, source: sources.Source, data_dir: str | None, n: int) -> None:
    split = next(iter(ds.splits), "test")
    n = min(n, ds.splits.get(split, n))
    evaluator = ds.build_evaluator(EvalRequest(split, n, data_dir=data_dir, metric=next(iter(ds.metrics))))
    output = to_uint8 if ds.kind == "image" else (lambda x: x)
    real = output(source.batch(n, Streams([12_345]))[0])
    metrics = evaluator(lambda k: real[:k], True)
    columns = {c: col.key for c, col in ds.columns.items() if col.source == "metrics"}
    missing = [key for key in columns.values() if key not in metrics]
    _require(not missing, entry, "evaluation", f"the final evaluation lacks the columns {missing}")
    if ds.gate is not None:
        values = {c: float(metrics[key]) for c, key in columns.items()}
        _require(ds.gate.passes(values), entry, "quality gate",
                 f"{n} real training samples fail its own gate ({ds.gate.text}): {values}")
