"""GAN objectives: name → (discriminator loss, generator loss) on raw logits D(x).

Formulas follow Lucic et al. 2018, Table 1 (σ = sigmoid, softplus(t) = log(1 + eᵗ)):
  mm    D: −E log σ(D(x)) − E log(1 − σ(D(G(z))))      G: E log(1 − σ(D(G(z))))
  ns    D: as mm                                      G: −E log σ(D(G(z)))
  ls    D: ½E(D(x) − 1)² + ½E D(G(z))²                 G: ½E(D(G(z)) − 1)²
  hinge D: E max(0, 1 − D(x)) + E max(0, 1 + D(G(z)))  G: −E D(G(z))
  wgan  D: E D(G(z)) − E D(x), weights clipped to [−c, c] after each D step   G: −E D(G(z))
  wgan_gp  as wgan without clipping, plus λ·E(‖∇D(x̂)‖ − 1)² at real/fake interpolates
  dragan   as ns, plus λ·E(‖∇D(x̂)‖ − 1)² at perturbed real points (Kodali 2017)
Logits arrive as (K, B) for a population of K members (or (B,) for one); every loss averages over
the last axis only, so each member gets its own loss. The generator loss always scores the *fake* logits (the seed listing scored D(real): a bug).
An objective's built-in penalty is one of the registered regularizers, weighted by the trial's
`obj_lam` (Lucic's λ), separately from the regularizer under study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from stabgen.registry import Registry

Loss = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Objective:
    description: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real_logits, fake_logits)
    g_loss: Callable[[torch.Tensor], torch.Tensor]  # (fake_logits)
    penalty: str | None = None  # a registered regularizer built into the objective (weight: obj_lam)
    clip: bool = False  # clip D's weights to [−clip_value, clip_value] after each D step


def check_objective(name: str, obj: object) -> None:
    """What the registry checks when an objective is registered (behaviour: stabgen.testing.check_objective)."""
    if not isinstance(obj, Objective):
        raise ValueError(f"objective {name!r} must be a stabgen.objectives.Objective, not {type(obj).__name__}")
    if not (callable(obj.d_loss) and callable(obj.g_loss)):
        raise ValueError(f"objective {name!r}: d_loss and g_loss must be callables on logits")


OBJECTIVES: Registry[Objective] = Registry("objective", group="stabgen.objectives", check=check_objective)


def _bce_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    # −log σ(r) = softplus(−r); −log(1 − σ(f)) = softplus(f)
    return F.softplus(-real).mean(-1) + F.softplus(fake).mean(-1)


def _mm_g(fake: torch.Tensor) -> torch.Tensor:
    return -F.softplus(fake).mean(-1)  # log(1 − σ(f)) = −softplus(f)


def _ns_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean(-1)  # −log σ(f)


def _ls_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (real - 1).pow(2).mean(-1) + 0.5 * fake.pow(2).mean(-1)


def _ls_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).pow(2).mean(-1)


def _hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean(-1) + F.relu(1 + fake).mean(-1)


def _wgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean(-1) - real.mean(-1)


def _critic_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean(-1)  # hinge and the WGAN family: G maximizes the critic's score of its samples


# named functions, not lambdas: the mutation tool (benchmarks/mutation.sh) mutates only named functions
OBJECTIVES.register("mm")(Objective(
    "minimax GAN (Goodfellow 2014): G minimizes log(1 − D(G(z)))", d_loss=_bce_d, g_loss=_mm_g))
OBJECTIVES.register("ns")(Objective("non-saturating GAN: G maximizes log D(G(z))", d_loss=_bce_d, g_loss=_ns_g))
OBJECTIVES.register("ls")(Objective("least-squares GAN (Mao 2017, ½ convention)", d_loss=_ls_d, g_loss=_ls_g))
OBJECTIVES.register("hinge")(Objective("hinge GAN (Lim & Ye 2017; Miyato 2018)", d_loss=_hinge_d, g_loss=_critic_g))
OBJECTIVES.register("wgan")(Objective(
    "Wasserstein GAN (Arjovsky 2017) with weight clipping (clip_value searchable)",
    d_loss=_wgan_d, g_loss=_critic_g, clip=True,
))
OBJECTIVES.register("wgan_gp")(Objective(
    "WGAN with gradient penalty (Gulrajani 2017), λ = obj_lam",
    d_loss=_wgan_d, g_loss=_critic_g, penalty="gp",
))
OBJECTIVES.register("dragan")(Objective(
    "DRAGAN (Kodali 2017): non-saturating GAN + gradient penalty around the data, λ = obj_lam",
    d_loss=_bce_d, g_loss=_ns_g, penalty="dragan",
))
