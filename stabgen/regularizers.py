"""Regularizer registry: each declares where it acts and returns an unscaled penalty; the trainer
adds λ · penalty to the loss of the network it regularizes.

Where a regularizer acts decides what it needs from the step (see `RegContext`):
  generator_params      — the generator's weights (for a VAE: the decoder's)
  generator_features    — the generator's hidden activations h(z) for the batch
  discriminator_inputs  — gradients of D with respect to its input (GANs only)
Adding one: subclass `Regularizer`, fill the four class attributes, implement `penalty`, and
register it with `@REGULARIZERS.register("name")`; add a closed-form test in tests/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from stabgen.registry import Registry


@dataclass
class RegContext:
    """What a penalty may look at during one step."""

    modules: nn.ModuleDict
    real: torch.Tensor  # real batch in [-1, 1]
    fake: torch.Tensor  # generated batch (detached on the discriminator side)
    features: torch.Tensor | None = None  # generator hidden features h(z) (generator side)
    rng: torch.Generator | None = None  # for random interpolation / perturbation


class Regularizer:
    description: ClassVar[str]
    families: ClassVar[frozenset[str]]
    acts_on: ClassVar[str]
    loss: ClassVar[str]  # "generator" or "discriminator": which loss receives λ · penalty

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        raise NotImplementedError


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def generator_weights(gen: nn.Module) -> list[torch.Tensor]:
    """The generator's weight tensors: parameters with ≥ 2 dims (biases and norm scales excluded)."""
    return [p for p in gen.parameters() if p.dim() >= 2]


def input_gradients(disc: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """∇ₓ D(x) per sample, flattened [B, C·H·W], with a graph so the penalty can be trained."""
    x = x.detach().requires_grad_(True)
    out = disc(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


@REGULARIZERS.register("none")
class NoRegularizer(Regularizer):
    description = "no regularization (the baseline every study compares against)"
    families = frozenset({"gan", "vae"})
    acts_on = "nothing"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.real.new_zeros(())


@REGULARIZERS.register("l1")
class L1(Regularizer):
    description = "L1 weight penalty Σ|w| over the generator's weights"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_params"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return sum(w.abs().sum() for w in generator_weights(ctx.modules["generator"]))


@REGULARIZERS.register("l2")
class L2(Regularizer):
    description = "L2 weight penalty Σw² over the generator's weights"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_params"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return sum(w.pow(2).sum() for w in generator_weights(ctx.modules["generator"]))


@REGULARIZERS.register("feature_norm")
class FeatureNorm(Regularizer):
    """Feature-norm penalty: (1/B) Σᵢ ‖h(zᵢ)‖₂.

    h is the generator's hidden representation (`generator.features(z)`: for the MLP generator,
    the 256-d activation after LeakyReLU) for the B latent codes of the current step; for a VAE,
    the decoder's hidden activation at the posterior samples. The norm is per sample, not squared.
    """

    description = "mean over the batch of the L2 norm of the generator's hidden features"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_features"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        assert ctx.features is not None, "feature_norm needs the generator's features"
        return ctx.features.flatten(1).norm(dim=1).mean()


@REGULARIZERS.register("gp")
class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani 2017): E[(‖∇D(x̂)‖₂ − 1)²], x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1] per sample."""

    description = "one-centred gradient penalty on D at real/fake interpolates (WGAN-GP)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        shape = (ctx.real.shape[0],) + (1,) * (ctx.real.dim() - 1)
        eps = torch.rand(shape, generator=ctx.rng, device=ctx.real.device, dtype=ctx.real.dtype)
        x_hat = eps * ctx.real + (1 - eps) * ctx.fake.detach()
        grad = input_gradients(ctx.modules["discriminator"], x_hat)
        return (grad.norm(dim=1) - 1).pow(2).mean()


@REGULARIZERS.register("r1")
class R1(Regularizer):
    """R1 (Mescheder 2018): ½ E_real ‖∇D(x)‖², so λ plays the role of the paper's γ."""

    description = "zero-centred gradient penalty on real data, ½E‖∇D(x)‖² (Mescheder 2018)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        grad = input_gradients(ctx.modules["discriminator"], ctx.real)
        return 0.5 * grad.pow(2).sum(dim=1).mean()


def applicable(family: str) -> list[str]:
    """Regularizer names that apply to a model family, in registry order."""
    return [name for name, reg in REGULARIZERS.items() if family in reg.families]
