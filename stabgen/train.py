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

from stabgen import sources
from stabgen.data import ImageData, to_uint8
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
    lam: float = 0.0  # λ: weight of the regularizer's penalty (instance_noise: σ₀)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64
    steps: int = 2000
    z_dim: int = 64
    seed: int = 0
    eval_every: int = 500
    log_every: int = 10
    n_critic: int = 1  # D steps per G step
    obj_lam: float = 10.0  # weight of the objective's own penalty (wgan_gp, dragan)
    clip_value: float = 0.01  # wgan weight clipping
    d_bn: bool = False  # batch norm in conv discriminators
    beta: float = 1.0  # VAE: KL weight (β-VAE)
    kl_warmup: int = 0  # VAE: steps over which the KL weight ramps linearly from 0 to β
    pack: int = 1  # PacGAN: D judges `pack` samples at once, concatenated along the feature/channel axis

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
        kind = sources.KINDS.get(self.dataset)
        if kind is None:
            sources.SOURCES.get(self.dataset)  # raises: unknown dataset, naming the known ones
        if MODELS.get(self.model).data_kind != kind:
            raise StabgenError(f"model {self.model!r} is for {MODELS.get(self.model).data_kind} data; "
                               f"dataset {self.dataset!r} is {kind} data")
        if family == "gan":
            OBJECTIVES.get(self.objective)
        if self.pack > 1 and family != "gan":
            raise StabgenError(f"pack={self.pack} (PacGAN) needs a GAN model, not {self.model!r}")
        if self.pack > 1 and self.batch_size < self.pack:
            raise StabgenError(f"batch_size={self.batch_size} is smaller than pack={self.pack}")
        for name in ("lr", "batch_size", "steps", "eval_every", "n_critic", "clip_value", "beta", "pack"):
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
    def __call__(self, next_real: Callable[[], torch.Tensor], it: int) -> dict[str, torch.Tensor]: ...


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
    """n_critic D updates then one G update. λ·penalty joins the loss the regularizer declares; the
    objective's own penalty (wgan_gp, dragan) is weighted by obj_lam; wgan clips D after each step."""
    gen, disc = modules["generator"], modules["discriminator"]
    obj = OBJECTIVES.get(cfg.objective)
    built_in = REGULARIZERS.get(obj.penalty)() if obj.penalty else None
    opt_g, opt_d = _adam(gen.parameters(), cfg), _adam(disc.parameters(), cfg)

    def step(next_real: Callable[[], torch.Tensor], it: int) -> dict[str, torch.Tensor]:
        progress = (it - 1) / cfg.steps
        see = lambda x: reg.d_inputs(x, progress, cfg.lam, rng)  # noqa: E731  (instance noise hook)
        for _ in range(cfg.n_critic):
            real = next_real()
            z = torch.randn(real.shape[0], cfg.z_dim, generator=rng, device=real.device)
            fake = gen(z).detach()
            d_real, d_fake = disc(see(real)), disc(see(fake))
            loss_d = obj.d_loss(d_real, d_fake)
            ctx = RegContext(modules, real, fake, rng=rng, d_real=d_real, d_fake=d_fake)
            pen_d = reg.penalty(ctx) if reg.loss == "discriminator" else loss_d.new_zeros(())
            pen_obj = built_in.penalty(ctx) if built_in else loss_d.new_zeros(())
            opt_d.zero_grad(set_to_none=True)
            (loss_d + cfg.lam * pen_d + cfg.obj_lam * pen_obj).backward()
            gnorm_d = _grad_norm(disc)
            opt_d.step()
            if obj.clip:
                with torch.no_grad():
                    for p in disc.parameters():
                        p.clamp_(-cfg.clip_value, cfg.clip_value)

        z = torch.randn(real.shape[0], cfg.z_dim, generator=rng, device=real.device)
        h = gen.features(z)
        fake = gen.decode(h)
        loss_g = obj.g_loss(disc(see(fake)))
        pen_g = reg.penalty(RegContext(modules, real, fake, features=h, rng=rng)) \
            if reg.loss == "generator" else loss_g.new_zeros(())
        opt_g.zero_grad(set_to_none=True)
        (loss_g + cfg.lam * pen_g).backward()
        gnorm_g = _grad_norm(gen)
        opt_g.step()
        return {"loss_d": loss_d, "loss_g": loss_g, "penalty": pen_d + pen_g + pen_obj,
                "grad_norm_d": gnorm_d, "grad_norm_g": gnorm_g}

    return step


@FAMILY_STEPS.register("vae")
def vae_step(modules: nn.ModuleDict, cfg: TrialConfig, reg: Regularizer,
             rng: torch.Generator) -> Step:
    """One ELBO update (KL weighted by β, ramped over kl_warmup steps); the regularizer acts on the
    decoder (the generator)."""
    enc, dec = modules["encoder"], modules["generator"]
    opt = _adam(modules.parameters(), cfg)

    def step(next_real: Callable[[], torch.Tensor], it: int) -> dict[str, torch.Tensor]:
        real = next_real()
        noise = torch.randn(real.shape[0], cfg.z_dim, generator=rng, device=real.device)
        t = vae_terms(enc, dec, real, noise)
        kl_weight = cfg.beta * min(1.0, it / cfg.kl_warmup) if cfg.kl_warmup else cfg.beta
        loss = t["recon"] + kl_weight * t["kl"]
        pen = reg.penalty(RegContext(modules, real, real, features=t["features"], rng=rng))
        opt.zero_grad(set_to_none=True)
        (loss + cfg.lam * pen).backward()
        gnorm = _grad_norm(modules)
        opt.step()
        return {"loss": loss, "recon": t["recon"], "kl": t["kl"], "penalty": pen, "grad_norm": gnorm}

    return step


class Packed(nn.Module):
    """PacGAN's packing (Lin et al. 2018): D sees m consecutive samples concatenated along axis 1
    ((N, C, …) → (N/m, m·C, …)) and gives one logit per pack; a batch's remainder is dropped."""

    def __init__(self, disc: nn.Module, m: int) -> None:
        super().__init__()
        self.inner, self.m = disc, m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] // self.m * self.m
        return self.inner(x[:n].reshape(n // self.m, self.m * x.shape[1], *x.shape[2:]))


def build(cfg: TrialConfig, shape: tuple[int, ...], device: torch.device) -> nn.ModuleDict:
    torch.manual_seed(cfg.seed)  # parameter init is the only use of the global RNG
    modules = MODELS.get(cfg.model).build(shape, cfg.z_dim, d_bn=cfg.d_bn)
    if cfg.pack > 1:  # a discriminator built for m·C input channels/features, fed packs
        packed = (shape[0] * cfg.pack, *shape[1:])
        modules["discriminator"] = Packed(MODELS.get(cfg.model).build(packed, cfg.z_dim, d_bn=cfg.d_bn)
                                          ["discriminator"], cfg.pack)
    REGULARIZERS.get(cfg.regularizer)().transform(modules)
    return modules.to(device)


def sampler(generator: nn.Module, z_dim: int, seed: int, device: torch.device,
            chunk: int = 1000, output: Callable[[torch.Tensor], torch.Tensor] = to_uint8) -> Callable[[int], torch.Tensor]:
    """Fixed-noise sampling: sample(n) always uses the same n latent codes for a given seed,
    so evaluations at different steps of a trial compare like with like. Images come back as
    uint8 (what the metrics take); pass output=lambda x: x for point data."""

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        g = torch.Generator(device="cpu").manual_seed(10_000 + seed)
        z = torch.randn(n, z_dim, generator=g)
        was_training = generator.training
        generator.eval()
        out = torch.cat([output(generator(zc.to(device))).cpu() for zc in z.split(chunk)])
        generator.train(was_training)
        return out

    return sample


Evaluate = Callable[[Callable[[int], torch.Tensor], bool], dict]
OnEval = Callable[[int, dict], bool]  # returns True to stop (prune) the trial


def _params_finite(modules: nn.ModuleDict) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in modules.parameters())


def sample_output(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return to_uint8 if kind == "image" else (lambda x: x)


def train(cfg: TrialConfig, data, device: torch.device | str = "cpu", *,
          evaluate: Evaluate | None = None, on_eval: OnEval | None = None,
          on_step: Callable[[int], None] | None = None) -> TrialResult:
    """Train one trial on a source (stabgen.sources) or an ImageData split. Data already on
    `device` stays there; anything else is moved once, here."""
    if isinstance(data, ImageData):
        data = sources.ImageSource(data)
    cfg.validate()
    device = torch.device(device)
    source = data.to(device)
    modules = build(cfg, source.shape, device)
    rng = torch.Generator(device=device).manual_seed(cfg.seed)
    step_fn = FAMILY_STEPS.get(cfg.family)(modules, cfg, REGULARIZERS.get(cfg.regularizer)(), rng)
    sample = sampler(modules["generator"], cfg.z_dim, cfg.seed, device, output=sample_output(source.kind))
    result = TrialResult(cfg, "completed", 0, None, modules=modules)
    t0 = time.perf_counter()

    next_real = lambda: source.batch(cfg.batch_size, rng)  # noqa: E731
    for it in range(1, cfg.steps + 1):
        losses = step_fn(next_real, it)
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
