"""An MLP VAE whose decoder is the seed MLP generator (so it samples like a GAN).

Encoder: x → Linear(784, 256) → LeakyReLU(0.2) → Linear(256, 2·z_dim) → (μ, log σ²).
Likelihood: Bernoulli on pixels rescaled to [0, 1]. Since tanh(a) = 2·sigmoid(2a) − 1, the
generator's tanh output in [-1, 1] *is* a Bernoulli mean with logits 2a, so the loss is an exact,
numerically stable BCE-with-logits and sampling needs no second head.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from stabgen.models.base import MODELS, ModelSpec
from stabgen.models.gan import MLPGenerator


class MLPEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], z_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * z_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


def vae_terms(encode: Callable, features: Callable, logits: Callable, x: torch.Tensor,
              noise: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-member batch-mean reconstruction NLL (nats) and KL(q(z|x) ‖ N(0, I)), (K,) each, plus the
    decoder features. x is (K, B, …); the networks are the population's (encoder → (μ, log σ²),
    generator.features, generator.logits) and the decoder's mean in model space (tanh of the logits,
    the generator's own output). `noise` is the reparameterization ε ~ N(0, I), passed in so the
    caller owns the random stream."""
    mu, logvar = encode(x)
    z = mu + torch.exp(0.5 * logvar) * noise
    h = features(z)
    target = (x + 1.0) / 2.0
    a = logits(h)
    bce = F.binary_cross_entropy_with_logits(2.0 * a, target, reduction="none")
    recon = bce.flatten(1).sum(1) / x.shape[1]
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean(-1)
    return {"recon": recon, "kl": kl, "z": z, "features": h, "output": torch.tanh(a)}


def build_mlp_vae(image_shape: tuple[int, int, int], z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({
        "generator": MLPGenerator(z_dim, image_shape),
        "encoder": MLPEncoder(image_shape, z_dim),
    })


MODELS.register("vae")(ModelSpec(
    family="vae",
    description="MLP VAE: encoder 784→256→2·z, decoder = the seed MLP generator (Bernoulli likelihood)",
    build=build_mlp_vae,
))
