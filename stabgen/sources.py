"""Training data as *sources*: anything that hands the trainer a batch in model space.

A source has `shape` (one sample's shape), `kind` ("image" or "points") and `batch(n, noise)`, which
draws one batch per member of a population from per-member streams (stabgen.streams): (K, n, …).
Image sources keep their uint8 tensor on the training device (moved once) and index it per step; the
2D mixtures and Stacked MNIST are infinite samplers. Which dataset uses which source is said once,
in stabgen.datasets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from stabgen import data as data_mod
from stabgen.streams import Streams


class Source(Protocol):
    """What the trainer draws batches from (one per dataset, built by its DatasetSpec)."""

    name: str
    kind: str  # "image" or "points"

    @property
    def shape(self) -> tuple[int, ...]: ...

    def to(self, device) -> "Source": ...

    def batch(self, n: int, noise: Streams) -> torch.Tensor: ...


@dataclass
class ImageSource:
    """Random minibatches of a real split (uint8 on the device → float in [-1, 1])."""

    data: data_mod.ImageData
    kind: str = "image"

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.images.shape[1:])

    def to(self, device) -> "ImageSource":
        return ImageSource(self.data.to(device))

    def batch(self, n: int, noise: Streams) -> torch.Tensor:
        imgs = self.data.images
        return data_mod.to_unit(imgs[noise.integers(imgs.shape[0], (n,))])


@dataclass
class StackedMNIST(ImageSource):
    """Three independent MNIST digits as the R, G, B channels: 10³ = 1,000 modes (Metz 2017)."""

    @property
    def name(self) -> str:
        return "stacked-mnist"

    @property
    def shape(self) -> tuple[int, ...]:
        return (3, *self.data.images.shape[2:])

    def to(self, device) -> "StackedMNIST":
        return StackedMNIST(self.data.to(device))

    def batch(self, n: int, noise: Streams) -> torch.Tensor:
        imgs = self.data.images
        digits = imgs[noise.integers(imgs.shape[0], (3, n))]  # (K, 3, n, 1, H, W)
        return data_mod.to_unit(digits.squeeze(3).transpose(1, 2))  # (K, n, 3, H, W)


@dataclass
class GaussianMixture:
    """An isotropic Gaussian mixture with equal weights, sampled without end."""

    name: str
    centers: torch.Tensor  # [K, 2]
    sigma: float
    kind: str = "points"

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.centers.shape[1],)

    def to(self, device) -> "GaussianMixture":
        return GaussianMixture(self.name, self.centers.to(device), self.sigma)

    def batch(self, n: int, noise: Streams) -> torch.Tensor:
        k = noise.integers(self.centers.shape[0], (n,))
        return self.centers[k] + self.sigma * noise.normal((n, self.centers.shape[1]))


def ring_centers(n: int = 8, radius: float = 1.0) -> torch.Tensor:
    """n mode centres evenly on a circle (PacGAN's ring: 8 at radius 1)."""
    ang = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return torch.stack([radius * ang.cos(), radius * ang.sin()], dim=1)


def grid_centers(values=(-4.0, -2.0, 0.0, 2.0, 4.0)) -> torch.Tensor:
    """The product grid of mode centres (PacGAN's grid: 25 at {−4,−2,0,2,4}²)."""
    v = torch.tensor(values, dtype=torch.float64)
    return torch.cartesian_prod(v, v)


RING = GaussianMixture("ring", ring_centers(8, 1.0).float(), 0.01)
GRID = GaussianMixture("grid", grid_centers().float(), 0.05)
