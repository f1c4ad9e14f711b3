"""Regularizer registry: each declares where it acts and returns an unscaled penalty; the trainer
adds λ · penalty to the loss of the network it regularizes.

Where a regularizer acts decides what it needs from the step (see `RegContext`):
  generator_params      — the generator's weights (for a VAE: the decoder's)
  generator_features    — the generator's hidden activations h(z) for the batch
  discriminator_inputs  — gradients of D with respect to its input (GANs only)
  discriminator_params  — the discriminator's weights (GANs only)
  discriminator_outputs — D's logits on the batch (LeCam)
  module_transform      — rewrites D's layers once, before training (spectral norm)
  discriminator_inputs_noise — perturbs what D sees, in D and G steps (instance noise)
Adding one: subclass `Regularizer`, fill the four class attributes, implement `penalty` (and, if
needed, the `transform` / `d_inputs` hooks), register it with `@REGULARIZERS.register("name")`,
and add a closed-form test in tests/.
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
    d_real: torch.Tensor | None = None  # D's logits on the real batch (discriminator side)
    d_fake: torch.Tensor | None = None  # D's logits on the fake batch (discriminator side)


class Regularizer:
    description: ClassVar[str]
    families: ClassVar[frozenset[str]]
    acts_on: ClassVar[str]
    loss: ClassVar[str]  # "generator" or "discriminator": which loss receives λ · penalty
    uses_lambda: ClassVar[bool] = True  # False: the search samples no λ for it (spectral_norm)

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, modules: nn.ModuleDict) -> None:
        """Rewrite modules once before training (default: nothing)."""

    def d_inputs(self, x: torch.Tensor, progress: float, lam: float, rng: torch.Generator) -> torch.Tensor:
        """What D sees instead of x, at training progress ∈ [0, 1] (default: x itself)."""
        return x


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


@REGULARIZERS.register("r2")
class R2(Regularizer):
    """R2 (Mescheder 2018): ½ E_fake ‖∇D(G(z))‖²."""

    description = "zero-centred gradient penalty on generated data, ½E‖∇D(G(z))‖² (Mescheder 2018)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        grad = input_gradients(ctx.modules["discriminator"], ctx.fake)
        return 0.5 * grad.pow(2).sum(dim=1).mean()


@REGULARIZERS.register("dragan")
class Dragan(Regularizer):
    """DRAGAN (Kodali 2017, reference code): E(‖∇D(x̂)‖ − 1)², x̂ = αx + (1 − α)(x + ½·std(x)·u),
    α, u ~ U[0, 1]: a one-centred penalty in a noisy neighbourhood of the real data."""

    description = "one-centred gradient penalty at perturbed real points (DRAGAN)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        x = ctx.real
        u = torch.rand(x.shape, generator=ctx.rng, device=x.device, dtype=x.dtype)
        alpha = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=ctx.rng, device=x.device, dtype=x.dtype)
        x_hat = alpha * x + (1 - alpha) * (x + 0.5 * x.std() * u)
        grad = input_gradients(ctx.modules["discriminator"], x_hat)
        return (grad.norm(dim=1) - 1).pow(2).mean()


@REGULARIZERS.register("spectral_norm")
class SpectralNorm(Regularizer):
    """Spectral normalization (Miyato 2018): every Linear/Conv weight of D divided by its largest
    singular value, estimated by one power iteration per forward pass (torch's parametrization)."""

    description = "spectral normalization of every D layer (module transform; no λ)"
    families = frozenset({"gan"})
    acts_on = "module_transform"
    loss = "discriminator"
    uses_lambda = False

    def transform(self, modules: nn.ModuleDict) -> None:
        from torch.nn.utils.parametrizations import spectral_norm
        for m in list(modules["discriminator"].modules()):
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                spectral_norm(m)

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.real.new_zeros(())


def translate(x: torch.Tensor, rng: torch.Generator | None, max_shift: int = 2) -> torch.Tensor:
    """Random circular translation of images by up to max_shift pixels (one shift per batch)."""
    if x.dim() < 4:  # 2D points: a tiny isotropic jitter instead
        return x + 0.01 * torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=rng, device=x.device).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@REGULARIZERS.register("consistency")
class Consistency(Regularizer):
    """Consistency regularization (Zhang 2020): E‖D(x) − D(T(x))‖² on real x, T a random translation
    by up to 2 pixels (circular), so D must be invariant to the augmentation."""

    description = "consistency regularization: D invariant to a random 2-px translation (CR-GAN)"
    families = frozenset({"gan"})
    acts_on = "discriminator_outputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        disc = ctx.modules["discriminator"]
        d_real = ctx.d_real if ctx.d_real is not None else disc(ctx.real)
        return (d_real - disc(translate(ctx.real, ctx.rng))).pow(2).mean()


@REGULARIZERS.register("instance_noise")
class InstanceNoise(Regularizer):
    """Instance noise (Sønderby 2017; Arjovsky & Bottou 2017): D sees x + σ_t·ε, ε ~ N(0, I), for
    real and fake inputs alike, with σ_t = λ·(1 − t) annealed linearly to 0 over the run (λ = σ₀)."""

    description = "Gaussian noise on D's inputs, σ annealed linearly from λ to 0"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs_noise"
    loss = "discriminator"

    def d_inputs(self, x: torch.Tensor, progress: float, lam: float, rng: torch.Generator) -> torch.Tensor:
        sigma = lam * max(0.0, 1.0 - progress)
        if sigma == 0.0:
            return x
        return x + sigma * torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.real.new_zeros(())


@REGULARIZERS.register("orthogonal")
class Orthogonal(Regularizer):
    """Orthogonal regularization on G's weights: Σ ‖W Wᵀ − I‖²_F with W reshaped to [out, −1] and the
    Gram matrix taken on the smaller side, so an orthogonal (or semi-orthogonal) W scores 0."""

    description = "Σ‖WWᵀ − I‖²_F over the generator's weights (orthogonality)"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_params"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        total = ctx.real.new_zeros(())
        for w in generator_weights(ctx.modules["generator"]):
            m = w.flatten(1)
            if m.shape[0] > m.shape[1]:
                m = m.T
            eye = torch.eye(m.shape[0], device=m.device, dtype=m.dtype)
            total = total + (m @ m.T - eye).pow(2).sum()
        return total


@REGULARIZERS.register("lecam")
class LeCam(Regularizer):
    """LeCam regularization (Tseng 2021): E(D(x) − α_F)² + E(D(G(z)) − α_R)², α_R and α_F the
    exponential moving averages (decay 0.99, starting at 0) of D's mean logit on real and fake."""

    description = "LeCam: D's logits pulled toward EMAs of the other side's (Tseng 2021)"
    families = frozenset({"gan"})
    acts_on = "discriminator_outputs"
    loss = "discriminator"
    decay = 0.99

    def __init__(self) -> None:
        self.ema_real = 0.0
        self.ema_fake = 0.0

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        assert ctx.d_real is not None and ctx.d_fake is not None, "lecam needs D's logits"
        self.ema_real = self.decay * self.ema_real + (1 - self.decay) * float(ctx.d_real.detach().mean())
        self.ema_fake = self.decay * self.ema_fake + (1 - self.decay) * float(ctx.d_fake.detach().mean())
        return (ctx.d_real - self.ema_fake).pow(2).mean() + (ctx.d_fake - self.ema_real).pow(2).mean()


def applicable(family: str) -> list[str]:
    """Regularizer names that apply to a model family, in registry order."""
    return [name for name, reg in REGULARIZERS.items() if family in reg.families]
