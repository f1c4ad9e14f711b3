"""Convolutional nets for 28×28 images with 1 (MNIST) or 3 (Stacked MNIST) channels.

InfoGAN-style, as Lucic et al. 2018 use them (their Table 6):
  D: conv64 4×4 s2 → LReLU(0.2) → conv128 4×4 s2 → [BN] → LReLU → FC1024 → [BN] → LReLU → FC1
  G: z(64) → FC1024 → BN → ReLU → FC 128·7·7 → BN → ReLU → deconv64 4×4 s2 → BN → ReLU → deconv C 4×4 s2 → tanh
DCGAN-style variant: a deeper all-conv D (64 → 128 → 256) and a G that starts at 256·7·7.
Batch norm in D is switchable (`d_bn`): off by default, since gradient penalties assume per-sample
gradients that batch statistics would mix. Generators expose features(z) (the 7×7 map) and logits(h).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from stabgen.models.base import MODELS, ModelSpec


def _bn1(n: int, on: bool) -> nn.Module:
    return nn.BatchNorm1d(n) if on else nn.Identity()


def _bn2(n: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(n) if on else nn.Identity()


class ConvGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, width: int = 128, fc: int | None = 1024, mid: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = z_dim
        if fc:
            layers += [nn.Linear(z_dim, fc), nn.BatchNorm1d(fc), nn.ReLU()]
            d = fc
        layers += [nn.Linear(d, width * 7 * 7), nn.BatchNorm1d(width * 7 * 7), nn.ReLU(), nn.Unflatten(1, (width, 7, 7))]
        self.stem = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.ConvTranspose2d(width, mid, 4, 2, 1), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.ConvTranspose2d(mid, channels, 4, 2, 1),
        )

    def features(self, z: torch.Tensor) -> torch.Tensor:
        return self.stem(z)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(h))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(self.features(z))


class InfoGANDiscriminator(nn.Module):
    def __init__(self, channels: int, bn: bool = False, out: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), _bn2(128, bn), nn.LeakyReLU(0.2), nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1024), _bn1(1024, bn), nn.LeakyReLU(0.2),
            nn.Linear(1024, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, bn: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), _bn2(128, bn), nn.LeakyReLU(0.2),
            nn.Conv2d(128, 256, 3, 1, 1), _bn2(256, bn), nn.LeakyReLU(0.2), nn.Flatten(),
            nn.Linear(256 * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class ConvEncoder(nn.Module):
    def __init__(self, channels: int, z_dim: int) -> None:
        super().__init__()
        self.net = InfoGANDiscriminator(channels, bn=False, out=2 * z_dim).net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


def build_infogan(shape, z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"generator": ConvGenerator(z_dim, shape[0]),
                          "discriminator": InfoGANDiscriminator(shape[0], d_bn)})


def build_dcgan(shape, z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"generator": ConvGenerator(z_dim, shape[0], width=256, fc=None, mid=128),
                          "discriminator": DCGANDiscriminator(shape[0], d_bn)})


def build_conv_vae(shape, z_dim: int, d_bn: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"generator": ConvGenerator(z_dim, shape[0]), "encoder": ConvEncoder(shape[0], z_dim)})


MODELS.register("infogan")(ModelSpec("gan", "InfoGAN-style conv GAN of Lucic 2018 (28×28, 1 or 3 channels)", build_infogan))
MODELS.register("dcgan")(ModelSpec("gan", "DCGAN-style conv GAN (28×28, 1 or 3 channels)", build_dcgan))
MODELS.register("conv_vae")(ModelSpec("vae", "conv VAE: InfoGAN-style encoder, InfoGAN generator as decoder; β searchable",
                                      build_conv_vae))
