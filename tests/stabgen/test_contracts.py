"""stabgen.testing's contracts over every registry entry (no hand lists: a new built-in is checked the
moment it is registered), and proof that each contract fails for the bug it names: a regularizer
whose penalty goes into the wrong loss, pools over the population, or draws from the global RNG; a
dataset whose batches escape [-1, 1]; a malformed declaration refused at registration."""

from __future__ import annotations

import random

import pytest
import torch

from stabgen import testing
from stabgen.datasets import DATASETS
from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS, Regularizer, RegContext


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_every_regularizer_keeps_the_contract(name):
    testing.check_regularizer(name)


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_keeps_the_contract(name):
    testing.check_objective(name)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_keeps_the_contract(name):
    testing.check_model(name)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_keeps_the_contract(name, request):
    finite = DATASETS.get(name).finite or DATASETS.get(name).kind == "image"  # read from files (the 2D ones are sampled)
    testing.check_dataset(name, data_dir=str(request.getfixturevalue("mnist_dir")) if finite else None)


class _DWeights(Regularizer):
    description, families, acts_on = "test: D weights²", frozenset({"gan"}), "discriminator_params"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return sum(w.pow(2).flatten(1).sum(1) for w in ctx.nets.weights("discriminator"))


class _WrongLoss(_DWeights):
    loss = "generator"  # declares G's loss but penalizes D's weights: λ never moves G


class _Pooled(_DWeights):
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:  # one value for the whole population
        return super().penalty(ctx).mean().expand(ctx.real.shape[0])


class _GlobalRng(_DWeights):
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:  # a draw outside the trial's streams
        return super().penalty(ctx) * (1 + torch.rand(ctx.real.shape[0], dtype=ctx.real.dtype))


class _Unseeded(_DWeights):
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:  # a draw nothing seeds (Python's own RNG)
        return super().penalty(ctx) * (1 + random.random())


@pytest.fixture
def registered():
    names = []

    def add(name, cls):
        REGULARIZERS.register(name)(cls)
        names.append(name)
        return name

    yield add
    for name in names:
        REGULARIZERS.unregister(name)


def _solo(name):  # the member = solo check alone (the full check stops at placement for a pooled penalty)
    testing.check_member_equals_solo(f"regularizer {name!r} on 'gan'", testing._config("gan", 8, regularizer=name))


def _twice(name):  # the determinism check alone
    testing.check_determinism(f"regularizer {name!r} on 'gan'", testing._config("gan", 8, regularizer=name, lam=1.0))


@pytest.mark.parametrize("cls, check, contract", [(_WrongLoss, testing.check_regularizer, "placement — λ did not move G"),
                                                  (_Pooled, testing.check_regularizer, "placement — λ did not move D"),
                                                  (_Pooled, _solo, "member = solo — step 1"),
                                                  (_GlobalRng, testing.check_regularizer, "member = solo"),
                                                  (_Unseeded, _twice, "determinism — two runs")])
def test_each_contract_fails_for_the_bug_it_names(registered, cls, check, contract):
    name = registered("test_broken", cls)
    with pytest.raises(testing.ContractError, match=f"regularizer 'test_broken' on 'gan': {contract}"):
        check(name)


def test_a_correct_test_regularizer_passes(registered):
    class Fine(_DWeights):
        loss = "discriminator"

    testing.check_regularizer(registered("test_fine", Fine))


@pytest.mark.parametrize("attrs, message", [
    (dict(acts_on="everywhere"), "acts_on 'everywhere' is none of"),
    (dict(loss="encoder"), "loss 'encoder' must be"),
    (dict(families=frozenset({"flow"})), "families must be a non-empty subset"),
])
def test_a_malformed_regularizer_is_refused_when_registered(attrs, message):
    cls = type("Bad", (_DWeights,), {"loss": "discriminator", **attrs})
    with pytest.raises(ValueError, match=message):
        REGULARIZERS.register("test_bad")(cls)
    assert "test_bad" not in REGULARIZERS
    with pytest.raises(ValueError, match="must be a subclass of stabgen.regularizers.Regularizer"):
        REGULARIZERS.register("test_bad")(object)


def test_a_dataset_whose_batches_leave_the_unit_range_fails(monkeypatch):
    from dataclasses import replace

    ring = DATASETS.get("ring")

    class Wide:
        shape, kind, name = ring.shape, "image", "wide"

        def batch(self, n, noise):
            return ring.source(None).batch(n, noise) * 10

    DATASETS.register("test_wide")(replace(ring, name="test_wide", kind="image", source=lambda d=None: Wide()))
    try:
        with pytest.raises(testing.ContractError, match="dataset 'test_wide': shapes — images outside"):
            testing.check_dataset("test_wide")
    finally:
        DATASETS.unregister("test_wide")


def test_a_dataset_whose_metrics_name_no_column_is_refused():
    from dataclasses import replace

    with pytest.raises(ValueError, match="metric 'fid' is not one of its columns"):
        DATASETS.register("test_cols")(replace(DATASETS.get("ring"), name="test_cols", metrics={"fid": "minimize"}))
