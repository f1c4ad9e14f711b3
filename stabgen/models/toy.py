"""MLP GANs for 2D point data (ring, grid).

mlp2d       — sized like PacGAN 2018's synthetic experiments: G z → 3 × [400, ReLU] → 2;
              D 2 → 3 × [200, LeakyReLU(0.2)] → 1. About 20 ms per step on 2 CPU cores.
mlp2d_small — G and D with 2 × 128 units: several times faster, for CPU-budget studies.
pacgan      — PacGAN 2018's own 2D networks (fjxmlzn/PacGAN, synthetic_data_experiments): G z → 4 ×
              [Linear 400 without bias, batch norm, ReLU] → Linear 2; D 2 → 3 × LinearMaxout(200 units,
              5 pieces) → Linear 1; every weight N(0, 0.02²), every bias 0."""

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


class LinearMaxout(nn.Module):
    """Linear to units × pieces outputs, then the max over each unit's `pieces` consecutive outputs (the
    layout of Blocks' LinearMaxout, which the PacGAN code uses): unit j = max_p (Wx + b)[j·pieces + p]."""

    def __init__(self, d_in: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(-1, (self.units, self.pieces)).amax(-1)


def _paper_init(module: nn.Module) -> None:
    """The PacGAN code's initialization: weights N(0, 0.02²), biases 0 (batch norm keeps scale 1, shift 0)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class PaperPointGenerator(PointGenerator):
    def __init__(self, z_dim: int, dim: int = 2, hidden: int = 400, depth: int = 4) -> None:
        nn.Module.__init__(self)
        layers: list[nn.Module] = []
        for a in [z_dim] + [hidden] * (depth - 1):
            layers += [nn.Linear(a, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
        self.stem = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, dim)
        _paper_init(self)


class MaxoutDiscriminator(nn.Module):
    def __init__(self, dim: int = 2, hidden: int = 200, depth: int = 3, pieces: int = 5) -> None:
        super().__init__()
        self.net = nn.Sequential(*[LinearMaxout(a, hidden, pieces) for a in [dim] + [hidden] * (depth - 1)],
                                 nn.Linear(hidden, 1))
        _paper_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_paper_point_gan(shape, z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"generator": PaperPointGenerator(z_dim, shape[0]),
                          "discriminator": MaxoutDiscriminator(shape[0])})


MODELS.register("mlp2d")(ModelSpec("gan", "MLP GAN for 2D points (PacGAN-sized: G 3×400 ReLU, D 3×200)",
                                   build_point_gan, data_kind="points"))
MODELS.register("mlp2d_small")(ModelSpec("gan", "small MLP GAN for 2D points (G and D 2×128), for CPU budgets",
                                         build_small_point_gan, data_kind="points"))
MODELS.register("pacgan")(ModelSpec("gan", "PacGAN 2018's 2D networks: G 4×400 (batch norm, ReLU), D 3×200 LinearMaxout "
                                    "of 5 pieces; N(0, 0.02²) weights", build_paper_point_gan, data_kind="points"))
