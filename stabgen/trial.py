"""One trial: its config, its result, how its networks are built and sampled.

The training loop that runs trials (one, or a population of K) is stabgen.train.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from stabgen.datasets import DATASETS, DEFAULT_DATASET
from stabgen.data import to_uint8
from stabgen.errors import StabgenError
from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS
from stabgen.schedules import SCHEDULES


@dataclass
class TrialConfig:
    """Everything that defines one training run (the search samples some of these fields)."""

    dataset: str = DEFAULT_DATASET
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
    lr_schedule: str = "constant"  # stabgen.schedules: constant, linear (decay to 0), cosine

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
        kind = DATASETS.get(self.dataset).kind  # raises for an unknown dataset, naming the known ones
        if MODELS.get(self.model).data_kind != kind:
            raise StabgenError(f"model {self.model!r} is for {MODELS.get(self.model).data_kind} data; "
                               f"dataset {self.dataset!r} is {kind} data")
        if family == "gan":
            OBJECTIVES.get(self.objective)
        SCHEDULES.get(self.lr_schedule)  # raises for an unknown schedule, naming the known ones
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
    arithmetic: str = ""  # what ran, e.g. "float32, TF32 matmuls, CUDA graphs" (stabgen.train)

    @property
    def final(self) -> dict:
        return self.evals[-1] if self.evals else {}


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


def fixed_noise(seed: int, n: int, z_dim: int) -> torch.Tensor:
    """The n latent codes a trial's evaluations always use (CPU generator, seed 10,000 + seed)."""
    return torch.randn(n, z_dim, generator=torch.Generator(device="cpu").manual_seed(10_000 + seed))


def sampler(generator: nn.Module, z_dim: int, seed: int, device: torch.device,
            chunk: int = 1000, output: Callable[[torch.Tensor], torch.Tensor] = to_uint8) -> Callable[[int], torch.Tensor]:
    """Fixed-noise sampling: sample(n) always uses the same n latent codes for a given seed,
    so evaluations at different steps of a trial compare like with like. Images come back as
    uint8 (what the metrics take); pass output=lambda x: x for point data."""

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        z = fixed_noise(seed, n, z_dim)
        dtype = next(generator.parameters()).dtype
        was_training = generator.training
        generator.eval()
        out = torch.cat([output(generator(zc.to(device, dtype))).cpu() for zc in z.split(chunk)])
        generator.train(was_training)
        return out

    return sample


Evaluate = Callable[[Callable[[int], torch.Tensor], bool], dict]
OnEval = Callable[[int, dict], bool]  # returns True to stop (prune) the trial


def sample_output(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return to_uint8 if kind == "image" else (lambda x: x)
