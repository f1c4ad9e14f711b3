"""Train one trial: a config in, a TrialResult out (history, evaluations, divergence, weights).

The loop is deliberately plain. A *family step* (GAN or VAE, from a registry) does one optimizer
update and returns its losses; the loop around it samples batches from a uint8 tensor already on
the device, checks for NaN/Inf every step (a non-finite loss or parameter ends the trial as
"diverged" at that step), and evaluates every `eval_every` steps through a caller-supplied
function whose values the caller may use to prune.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import torch
import torch.nn as nn

from stabgen.data import ImageData, to_uint8, to_unit
from stabgen.errors import StabgenError
from stabgen.models import MODELS
from stabgen.models.vae import vae_terms
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS, RegContext, Regularizer
from stabgen.registry import Registry


@dataclass
class TrialConfig:
    """Everything that defines one training run (the search samples some of these fields)."""

    dataset: str = "mnist"
    model: str = "gan"
    objective: str = "ns"  # GAN family only
    regularizer: str = "none"
    lam: float = 0.0  # λ: weight of the regularizer's penalty
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64
    steps: int = 2000
    z_dim: int = 64
    seed: int = 0
    eval_every: int = 500
    log_every: int = 10

    @property
    def family(self) -> str:
        return MODELS.get(self.model).family

    def validate(self) -> None:
        """Reject combinations that cannot run (unknown names, a D-side regularizer on a VAE)."""
        family = self.family
        reg = REGULARIZERS.get(self.regularizer)
        if family not in reg.families:
            raise StabgenError(f"regularizer {self.regularizer!r} does not apply to {family} models "
                               f"(it applies to: {', '.join(sorted(reg.families))})")
        if family == "gan":
            OBJECTIVES.get(self.objective)
        for name in ("lr", "batch_size", "steps", "eval_every"):
            if not getattr(self, name) > 0:
                raise StabgenError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lam < 0 or not math.isfinite(self.lam):
            raise StabgenError(f"lam must be a finite number ≥ 0, got {self.lam}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrialResult:
    config: TrialConfig
    status: str  # "completed" | "diverged" | "pruned"
    steps_done: int
    diverged_step: int | None
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    modules: nn.ModuleDict | None = None

    @property
    def final(self) -> dict:
        return self.evals[-1] if self.evals else {}


class Step(Protocol):
    def __call__(self, real: torch.Tensor) -> dict[str, torch.Tensor]: ...


StepFactory = Callable[[nn.ModuleDict, TrialConfig, Regularizer, torch.Generator], Step]
FAMILY_STEPS: Registry[StepFactory] = Registry("model family")


def _adam(params, cfg: TrialConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


@FAMILY_STEPS.register("gan")
def gan_step(modules: nn.ModuleDict, cfg: TrialConfig, reg: Regularizer,
             rng: torch.Generator) -> Step:
    """One D update then one G update; λ·penalty joins the loss the regularizer declares."""
    gen, disc = modules["generator"], modules["discriminator"]
    obj = OBJECTIVES.get(cfg.objective)
    opt_g, opt_d = _adam(gen.parameters(), cfg), _adam(disc.parameters(), cfg)

    def step(real: torch.Tensor) -> dict[str, torch.Tensor]:
        b = real.shape[0]
        z = torch.randn(b, cfg.z_dim, generator=rng, device=real.device)
        fake = gen(z).detach()
        loss_d = obj.d_loss(disc(real), disc(fake))
        pen_d = reg.penalty(RegContext(modules, real, fake, rng=rng)) \
            if reg.loss == "discriminator" else loss_d.new_zeros(())
        opt_d.zero_grad(set_to_none=True)
        (loss_d + cfg.lam * pen_d).backward()
        gnorm_d = _grad_norm(disc)
        opt_d.step()

        z = torch.randn(b, cfg.z_dim, generator=rng, device=real.device)
        h = gen.features(z)
        fake = gen.decode(h)
        loss_g = obj.g_loss(disc(fake))
        pen_g = reg.penalty(RegContext(modules, real, fake, features=h, rng=rng)) \
            if reg.loss == "generator" else loss_g.new_zeros(())
        opt_g.zero_grad(set_to_none=True)
        (loss_g + cfg.lam * pen_g).backward()
        gnorm_g = _grad_norm(gen)
        opt_g.step()
        return {"loss_d": loss_d, "loss_g": loss_g, "penalty": pen_d + pen_g,
                "grad_norm_d": gnorm_d, "grad_norm_g": gnorm_g}

    return step


@FAMILY_STEPS.register("vae")
def vae_step(modules: nn.ModuleDict, cfg: TrialConfig, reg: Regularizer,
             rng: torch.Generator) -> Step:
    """One ELBO update of encoder and decoder; the regularizer acts on the decoder (the generator)."""
    enc, dec = modules["encoder"], modules["generator"]
    opt = _adam(modules.parameters(), cfg)

    def step(real: torch.Tensor) -> dict[str, torch.Tensor]:
        noise = torch.randn(real.shape[0], cfg.z_dim, generator=rng, device=real.device)
        t = vae_terms(enc, dec, real, noise)
        loss = t["recon"] + t["kl"]
        pen = reg.penalty(RegContext(modules, real, real, features=t["features"], rng=rng))
        opt.zero_grad(set_to_none=True)
        (loss + cfg.lam * pen).backward()
        gnorm = _grad_norm(modules)
        opt.step()
        return {"loss": loss, "recon": t["recon"], "kl": t["kl"], "penalty": pen, "grad_norm": gnorm}

    return step


def build(cfg: TrialConfig, image_shape: tuple[int, int, int], device: torch.device) -> nn.ModuleDict:
    torch.manual_seed(cfg.seed)  # parameter init is the only use of the global RNG
    return MODELS.get(cfg.model).build(image_shape, cfg.z_dim).to(device)


def sampler(generator: nn.Module, z_dim: int, seed: int, device: torch.device,
            chunk: int = 1000) -> Callable[[int], torch.Tensor]:
    """Fixed-noise sampling: sample(n) always uses the same n latent codes for a given seed,
    so evaluations at different steps of a trial compare like with like."""

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        g = torch.Generator(device="cpu").manual_seed(10_000 + seed)
        z = torch.randn(n, z_dim, generator=g)
        was_training = generator.training
        generator.eval()
        out = torch.cat([to_uint8(generator(zc.to(device))).cpu() for zc in z.split(chunk)])
        generator.train(was_training)
        return out

    return sample


Evaluate = Callable[[Callable[[int], torch.Tensor], bool], dict]
OnEval = Callable[[int, dict], bool]  # returns True to stop (prune) the trial


def _params_finite(modules: nn.ModuleDict) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in modules.parameters())


def train(cfg: TrialConfig, data: ImageData, device: torch.device | str = "cpu", *,
          evaluate: Evaluate | None = None, on_eval: OnEval | None = None,
          on_step: Callable[[int], None] | None = None) -> TrialResult:
    """Train one trial. `data.images` should already be on `device` (moved once by the caller)."""
    cfg.validate()
    device = torch.device(device)
    images = data.images.to(device)
    modules = build(cfg, tuple(images.shape[1:]), device)
    rng = torch.Generator(device=device).manual_seed(cfg.seed)
    step_fn = FAMILY_STEPS.get(cfg.family)(modules, cfg, REGULARIZERS.get(cfg.regularizer)(), rng)
    sample = sampler(modules["generator"], cfg.z_dim, cfg.seed, device)
    result = TrialResult(cfg, "completed", 0, None, modules=modules)
    t0 = time.perf_counter()

    for it in range(1, cfg.steps + 1):
        idx = torch.randint(0, images.shape[0], (cfg.batch_size,), generator=rng, device=device)
        losses = step_fn(to_unit(images[idx]))
        result.steps_done = it
        finite = all(bool(torch.isfinite(v)) for v in losses.values())
        if not finite or (it % 50 == 0 and not _params_finite(modules)):
            result.status, result.diverged_step = "diverged", it
            result.history.append({"step": it, **{k: float(v.detach()) for k, v in losses.items()}})
            break
        if it % cfg.log_every == 0 or it == cfg.steps:
            result.history.append({"step": it, **{k: float(v.detach()) for k, v in losses.items()}})
        if on_step is not None:
            on_step(it)
        if evaluate is not None and (it % cfg.eval_every == 0 or it == cfg.steps):
            final = it == cfg.steps
            metrics = {"step": it, **evaluate(sample, final)}
            result.evals.append(metrics)
            if on_eval is not None and on_eval(it, metrics) and not final:
                result.status = "pruned"
                break

    if result.status == "completed" and not _params_finite(modules):
        result.status, result.diverged_step = "diverged", result.steps_done
    result.seconds = time.perf_counter() - t0
    return result
