"""Regularizer registry: each declares where it acts and returns an unscaled penalty; the trainer
adds λ · penalty to the loss of the network it regularizes.

Where a regularizer acts decides what it needs from the step (see `RegContext`):
  generator_params      — the generator's weights (for a VAE: the decoder's)
  generator_features    — the generator's hidden activations h(z) for the batch
  generator_outputs     — the generator's outputs G(z) for the batch (for a VAE: the decoder's mean)
  discriminator_inputs  — gradients of D with respect to its input (GANs only)
  discriminator_params  — the discriminator's weights (GANs only)
  discriminator_outputs — D's logits on the batch (LeCam)
  module_transform      — rewrites D's layers once, before training (spectral norm)
  discriminator_inputs_noise — perturbs what D sees, in D and G steps (instance noise)
Training is always a population (K members; a solo trial is K = 1): tensors carry the member on
axis 0 and the batch on axis 1, and a penalty returns one value per member, reducing over every
other axis. Random draws come from `ctx.noise` (per-member streams), never from a global RNG.
Adding one: subclass `Regularizer`, fill the four class attributes, implement `penalty` (and, if
needed, the `transform` / `d_inputs` hooks), register it with `@REGULARIZERS.register("name")` (the
registry checks the four attributes), add a closed-form test, and run `stabgen.testing.check_regularizer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from stabgen.registry import Registry
from stabgen.streams import Streams


class Networks(Protocol):
    """What a penalty may call on the population's networks (stabgen.stacked.Stacked)."""

    def fn(self, net: str, method: str = "forward") -> Callable[..., torch.Tensor]: ...

    def weights(self, net: str) -> list[torch.Tensor]: ...


@dataclass
class RegContext:
    """What a penalty may look at during one step. Tensors are stacked over the population: axis 0
    is the member, axis 1 the batch."""

    nets: Networks
    real: torch.Tensor  # (K, B, …) real batch in [-1, 1]
    fake: torch.Tensor  # (K, B, …) generated batch (detached on the discriminator side)
    noise: Streams  # per-member random streams (interpolation, perturbation, augmentation)
    features: torch.Tensor | None = None  # (K, B, …) generator hidden features h(z) (generator side)
    d_real: torch.Tensor | None = None  # (K, B) D's logits on the real batch (discriminator side)
    d_fake: torch.Tensor | None = None  # (K, B) D's logits on the fake batch (discriminator side)

    def disc(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets.fn("discriminator")(x)

    def zeros(self) -> torch.Tensor:
        return self.real.new_zeros(self.real.shape[0])


class Regularizer:
    description: ClassVar[str]
    families: ClassVar[frozenset[str]]
    acts_on: ClassVar[str]
    loss: ClassVar[str]  # "generator" or "discriminator": which loss receives λ · penalty
    uses_lambda: ClassVar[bool] = True  # False: the search samples no λ for it (spectral_norm)

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        """(K,) unscaled penalties, one per member."""
        raise NotImplementedError

    def transform(self, modules: nn.ModuleDict) -> None:
        """Rewrite modules once before training (default: nothing)."""

    def d_inputs(self, x: torch.Tensor, progress: torch.Tensor | float, lam: torch.Tensor,
                 noise: Streams) -> torch.Tensor:
        """What D sees instead of x (K, B, …) at training progress ∈ [0, 1] (a 0-dim device tensor in
        training, so a captured step replays it; no branch may read its value), with each member's
        λ (K,) (default: x itself)."""
        return x


PLACEMENTS = ("nothing", "generator_params", "generator_features", "generator_outputs", "discriminator_inputs",
              "discriminator_params", "discriminator_outputs", "module_transform", "discriminator_inputs_noise")
LOSSES = ("generator", "discriminator")
FAMILIES = frozenset({"gan", "vae"})


def check_class(name: str, cls: object) -> None:
    """What the registry checks when a regularizer is registered: a Regularizer subclass whose four class
    attributes say something the trainer understands (the module docstring lists them)."""
    if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
        raise ValueError(f"regularizer {name!r} must be a subclass of stabgen.regularizers.Regularizer, not {cls!r}")
    missing = [a for a in ("description", "families", "acts_on", "loss") if not hasattr(cls, a)]
    if missing:
        raise ValueError(f"regularizer {name!r} lacks the class attribute(s) {', '.join(missing)}")
    if not cls.families or not set(cls.families) <= FAMILIES:
        raise ValueError(f"regularizer {name!r}: families must be a non-empty subset of {sorted(FAMILIES)}, "
                         f"not {sorted(cls.families)}")
    if cls.acts_on not in PLACEMENTS:
        raise ValueError(f"regularizer {name!r}: acts_on {cls.acts_on!r} is none of {', '.join(PLACEMENTS)}")
    if cls.loss not in LOSSES:
        raise ValueError(f"regularizer {name!r}: loss {cls.loss!r} must be 'generator' or 'discriminator'")


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer", group="stabgen.regularizers", check=check_class)


def per_member(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (K,) vector shaped to broadcast against a (K, …) tensor."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def input_gradients(ctx: RegContext, x: torch.Tensor) -> torch.Tensor:
    """∇ₓ D(x) per member and sample, (K, B, C·H·W), with a graph so the penalty can be trained.
    Members and samples are independent, so the gradient of the summed logits is each one's own."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(ctx.disc(x).sum(), x, create_graph=True)
    return grad.flatten(2)


def batch_uniform(ctx: RegContext, x: torch.Tensor) -> torch.Tensor:
    """One U(0, 1) per member and sample, shaped (K, B, 1, …) to broadcast against x."""
    return ctx.noise.uniform(x.shape[1:2], x.dtype).reshape(*x.shape[:2], *([1] * (x.dim() - 2)))


@REGULARIZERS.register("none")
class NoRegularizer(Regularizer):
    description = "no regularization (the baseline every study compares against)"
    families = frozenset({"gan", "vae"})
    acts_on = "nothing"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.zeros()


@REGULARIZERS.register("l1")
class L1(Regularizer):
    description = "L1 weight penalty Σ|w| over the generator's weights"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_params"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return sum(w.abs().flatten(1).sum(1) for w in ctx.nets.weights("generator"))


@REGULARIZERS.register("l2")
class L2(Regularizer):
    description = "L2 weight penalty Σw² over the generator's weights"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_params"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return sum(w.pow(2).flatten(1).sum(1) for w in ctx.nets.weights("generator"))


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
        return ctx.features.flatten(2).norm(dim=2).mean(1)


@REGULARIZERS.register("output_norm")
class OutputNorm(Regularizer):
    """The seed article's feature regularization as written (its section 4.1): Reg(G) = Σᵢ ‖G(φᵢ)‖₂,
    the L2 norm of each generated sample, *summed* over the B samples of the step (so λ = 10 means
    what it meant there only at the seed's batch size). G(φᵢ) is the generator's output in model
    space ([-1, 1] images, 2D points); for a VAE, the decoder's mean at the posterior samples.
    `feature_norm` is the other reading (mean norm of a hidden layer), kept under its own name."""

    description = "the seed's formula: Σ over the batch of the L2 norm of each generated sample"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_outputs"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.fake.flatten(2).norm(dim=2).sum(1)


@REGULARIZERS.register("gp")
class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani 2017): E[(‖∇D(x̂)‖₂ − 1)²], x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1] per sample."""

    description = "one-centred gradient penalty on D at real/fake interpolates (WGAN-GP)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        eps = batch_uniform(ctx, ctx.real)
        x_hat = eps * ctx.real + (1 - eps) * ctx.fake.detach()
        return (input_gradients(ctx, x_hat).norm(dim=2) - 1).pow(2).mean(1)


@REGULARIZERS.register("r1")
class R1(Regularizer):
    """R1 (Mescheder 2018): ½ E_real ‖∇D(x)‖², so λ plays the role of the paper's γ."""

    description = "zero-centred gradient penalty on real data, ½E‖∇D(x)‖² (Mescheder 2018)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return 0.5 * input_gradients(ctx, ctx.real).pow(2).sum(2).mean(1)


@REGULARIZERS.register("r2")
class R2(Regularizer):
    """R2 (Mescheder 2018): ½ E_fake ‖∇D(G(z))‖²."""

    description = "zero-centred gradient penalty on generated data, ½E‖∇D(G(z))‖² (Mescheder 2018)"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return 0.5 * input_gradients(ctx, ctx.fake.detach()).pow(2).sum(2).mean(1)


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
        u = ctx.noise.uniform(x.shape[1:], x.dtype)
        alpha = batch_uniform(ctx, x)
        std = per_member(x.flatten(1).std(1), x)  # each member's own batch
        x_hat = alpha * x + (1 - alpha) * (x + 0.5 * std * u)
        return (input_gradients(ctx, x_hat).norm(dim=2) - 1).pow(2).mean(1)


class SpectralNormed(nn.Module):
    """A Linear or Conv2d layer whose weight is divided by its largest singular value σ(W).

    σ is estimated as torch's spectral_norm parametrization does (Miyato 2018): vectors u, v kept as
    buffers, 15 power iterations at creation, one more per training-mode forward, σ = uᵀWv. Written
    out here because the update is a plain in-place copy into the buffers, which works when the
    buffers are stacked over a population under vmap (torch's parametrization writes with out=)."""

    def __init__(self, layer: nn.Linear | nn.Conv2d, eps: float = 1e-12) -> None:
        super().__init__()
        self.layer, self.eps = layer, eps
        w = layer.weight.detach().flatten(1)
        self.register_buffer("u", F.normalize(w.new_empty(w.shape[0]).normal_(0, 1), dim=0, eps=eps))
        self.register_buffer("v", F.normalize(w.new_empty(w.shape[1]).normal_(0, 1), dim=0, eps=eps))
        self._power(w, 15)

    @torch.no_grad()
    def _power(self, w: torch.Tensor, n: int) -> None:
        u, v = self.u, self.v
        for _ in range(n):
            u = F.normalize(w @ v, dim=0, eps=self.eps)
            v = F.normalize(w.T @ u, dim=0, eps=self.eps)
        self.u.copy_(u)
        self.v.copy_(v)

    def weight(self) -> torch.Tensor:
        w = self.layer.weight
        if self.training:
            self._power(w.detach().flatten(1), 1)
        sigma = torch.dot(self.u.clone(), w.flatten(1) @ self.v.clone())  # clones: later forwards update u, v in place
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, nn.Conv2d):
            return self.layer._conv_forward(x, self.weight(), self.layer.bias)
        return F.linear(x, self.weight(), self.layer.bias)


@REGULARIZERS.register("spectral_norm")
class SpectralNorm(Regularizer):
    """Spectral normalization (Miyato 2018): every Linear/Conv2d weight of D divided by its largest
    singular value, estimated by one power iteration per training forward pass (`SpectralNormed`)."""

    description = "spectral normalization of every D layer (module transform; no λ)"
    families = frozenset({"gan"})
    acts_on = "module_transform"
    loss = "discriminator"
    uses_lambda = False

    def transform(self, modules: nn.ModuleDict) -> None:
        _wrap_layers(modules["discriminator"])

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.zeros()


def _wrap_layers(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, SpectralNormed(child))
        else:
            _wrap_layers(child)


def translate(x: torch.Tensor, noise: Streams, max_shift: int = 2) -> torch.Tensor:
    """Random circular translation of each member's images (K, B, C, H, W) by up to max_shift
    pixels (one shift per member and batch); 2D points (K, B, 2) get a tiny isotropic jitter."""
    if x.dim() < 5:
        return x + 0.01 * noise.normal(x.shape[1:], x.dtype)
    k, h, w = x.shape[0], x.shape[3], x.shape[4]
    shift = noise.integers(2 * max_shift + 1, (2,)) - max_shift  # (K, 2): dy, dx
    rows = (torch.arange(h, device=x.device) - shift[:, :1]) % h  # (K, H): source row of each row
    cols = (torch.arange(w, device=x.device) - shift[:, 1:]) % w
    x = torch.take_along_dim(x, rows.view(k, 1, 1, h, 1), dim=3)
    return torch.take_along_dim(x, cols.view(k, 1, 1, 1, w), dim=4)


@REGULARIZERS.register("consistency")
class Consistency(Regularizer):
    """Consistency regularization (Zhang 2020): E‖D(x) − D(T(x))‖² on real x, T a random translation
    by up to 2 pixels (circular), so D must be invariant to the augmentation."""

    description = "consistency regularization: D invariant to a random 2-px translation (CR-GAN)"
    families = frozenset({"gan"})
    acts_on = "discriminator_outputs"
    loss = "discriminator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        d_real = ctx.d_real if ctx.d_real is not None else ctx.disc(ctx.real)
        return (d_real - ctx.disc(translate(ctx.real, ctx.noise))).pow(2).mean(1)


@REGULARIZERS.register("instance_noise")
class InstanceNoise(Regularizer):
    """Instance noise (Sønderby 2017; Arjovsky & Bottou 2017): D sees x + σ_t·ε, ε ~ N(0, I), for
    real and fake inputs alike, with σ_t = λ·(1 − t) annealed linearly to 0 over the run (λ = σ₀)."""

    description = "Gaussian noise on D's inputs, σ annealed linearly from λ to 0"
    families = frozenset({"gan"})
    acts_on = "discriminator_inputs_noise"
    loss = "discriminator"

    def d_inputs(self, x: torch.Tensor, progress: torch.Tensor | float, lam: torch.Tensor,
                 noise: Streams) -> torch.Tensor:
        # σ = 0 from progress 1 on by a clamp, not a branch on progress (a branch would sync, and a
        # captured step would replay the branch taken at capture)
        remaining = torch.clamp(1.0 - torch.as_tensor(progress, dtype=torch.float64, device=x.device), min=0.0)
        sigma = per_member(lam.to(x.dtype) * remaining, x)
        return x + sigma * noise.normal(x.shape[1:], x.dtype)

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        return ctx.zeros()


@REGULARIZERS.register("orthogonal")
class Orthogonal(Regularizer):
    """Orthogonal regularization on G's weights: Σ ‖W Wᵀ − I‖²_F with W reshaped to [out, −1] and the
    Gram matrix taken on the smaller side, so an orthogonal (or semi-orthogonal) W scores 0."""

    description = "Σ‖WWᵀ − I‖²_F over the generator's weights (orthogonality)"
    families = frozenset({"gan", "vae"})
    acts_on = "generator_params"
    loss = "generator"

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        total = ctx.zeros()
        for w in ctx.nets.weights("generator"):
            m = w.flatten(2)  # (K, out, in)
            if m.shape[1] > m.shape[2]:
                m = m.mT
            eye = torch.eye(m.shape[1], device=m.device, dtype=m.dtype)
            total = total + (m @ m.mT - eye).pow(2).sum((1, 2))
        return total


@REGULARIZERS.register("lecam")
class LeCam(Regularizer):
    """LeCam regularization (Tseng 2021): E(D(x) − α_F)² + E(D(G(z)) − α_R)², α_R and α_F the
    exponential moving averages (decay 0.99, starting at 0) of D's mean logit on real and fake,
    one pair per member."""

    description = "LeCam: D's logits pulled toward EMAs of the other side's (Tseng 2021)"
    families = frozenset({"gan"})
    acts_on = "discriminator_outputs"
    loss = "discriminator"
    decay = 0.99

    def __init__(self) -> None:
        self.ema_real: torch.Tensor | None = None  # (K,)
        self.ema_fake: torch.Tensor | None = None

    def penalty(self, ctx: RegContext) -> torch.Tensor:
        assert ctx.d_real is not None and ctx.d_fake is not None, "lecam needs D's logits"
        real, fake = ctx.d_real.detach().mean(1), ctx.d_fake.detach().mean(1)
        if self.ema_real is None or self.ema_fake is None:
            self.ema_real, self.ema_fake = torch.zeros_like(real), torch.zeros_like(fake)
        # updated in place, never rebound: a captured step (stabgen.graphs) reads and writes the
        # tensors that existed at capture
        self.ema_real.copy_(self.decay * self.ema_real + (1 - self.decay) * real)
        self.ema_fake.copy_(self.decay * self.ema_fake + (1 - self.decay) * fake)
        return ((ctx.d_real - self.ema_fake[:, None]).pow(2).mean(1)
                + (ctx.d_fake - self.ema_real[:, None]).pow(2).mean(1))


def applicable(family: str) -> list[str]:
    """Regularizer names that apply to a model family, in registry order."""
    return [name for name, reg in REGULARIZERS.items() if family in reg.families]
