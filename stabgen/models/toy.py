"""MLP GANs for 2D point data (ring, grid).

mlp2d       — sized like PacGAN 2018's synthetic experiments: G z → 3 × [400, ReLU] → 2;
              D 2 → 3 × [200, LeakyReLU(0.2)] → 1. About 20 ms per step on 2 CPU cores.
mlp2d_small — G and D with 2 × 128 units: several times faster, for CPU-budget studies."""

from __future__ import annotations

import torch
import torch.nn as nn

from stabgen.models.base import MODELS, ModelSpec


def _mlp(sizes: list[int], act) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers)


class PointGenerator(nn.Module):
    def __init__(self, z_dim: int, dim: int = 2, hidden: int = 400, depth: int = 3) -> None:
        super().__init__()
        self.stem = _mlp([z_dim] + [hidden] * depth, nn.ReLU)
        self.out = nn.Linear(hidden, dim)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        return self.stem(z)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)  # points live in R², no squashing

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(self.features(z))


class PointDiscriminator(nn.Module):
    def __init__(self, dim: int = 2, hidden: int = 200, depth: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(_mlp([dim] + [hidden] * depth, lambda: nn.LeakyReLU(0.2)), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_point_gan(shape, z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"generator": PointGenerator(z_dim, shape[0]), "discriminator": PointDiscriminator(shape[0])})


def build_small_point_gan(shape, z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"generator": PointGenerator(z_dim, shape[0], 128, 2),
                          "discriminator": PointDiscriminator(shape[0], 128, 2)})


MODELS.register("mlp2d")(ModelSpec("gan", "MLP GAN for 2D points (PacGAN-sized: G 3×400 ReLU, D 3×200)",
                                   build_point_gan, data_kind="points"))
MODELS.register("mlp2d_small")(ModelSpec("gan", "small MLP GAN for 2D points (G and D 2×128), for CPU budgets",
                                         build_small_point_gan, data_kind="points"))
