"""The seed article's MLP GAN for 28×28 images.

Generator: z → Linear(z_dim, 256) → LeakyReLU(0.2) → Linear(256, C·H·W) → tanh.
Discriminator: x → Linear(C·H·W, 256) → LeakyReLU(0.2) → Linear(256, 1) (a logit).
Every generator exposes `features(z)` (here the 256-d hidden activation, which the feature-norm
regularizer penalizes) and `decode(h)`, with forward = decode ∘ features; the MLP one also gives
`logits(h)` (pre-tanh) so a VAE can use a stable Bernoulli loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from stabgen.models.base import MODELS, ModelSpec


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], hidden: int = 256) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.image_shape = tuple(image_shape)
        self.hidden = nn.Linear(z_dim, hidden)
        self.out = nn.Linear(hidden, math.prod(image_shape))

    def features(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(self.hidden(z), 0.2)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h).view(-1, *self.image_shape)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(h))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(self.features(z))


class MLPDiscriminator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_mlp_gan(image_shape: tuple[int, int, int], z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({
        "generator": MLPGenerator(z_dim, image_shape),
        "discriminator": MLPDiscriminator(image_shape),
    })


MODELS.register("gan")(ModelSpec(
    family="gan",
    description="seed MLP GAN: G z→256→784 tanh, D 784→256 LeakyReLU(0.2)→1",
    build=build_mlp_gan,
))
