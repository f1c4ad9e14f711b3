"""Training data as *sources*: anything that hands the trainer a batch in model space.

A source has `shape` (one sample's shape), `kind` ("image" or "points") and `batch(n, noise)`, which
draws one batch per member of a population from per-member streams (stabgen.streams): (K, n, …).
Image sources keep their uint8 tensor on the training device (moved once) and index it per step; the
2D mixtures and Stacked MNIST are infinite samplers. `SOURCES` maps a dataset name to a loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from stabgen import data as data_mod
from stabgen.streams import Streams
from stabgen.metrics.modes import grid_centers, ring_centers
from stabgen.registry import Registry


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


Loader = Callable[[str | None], object]
SOURCES: Registry[Loader] = Registry("dataset")
DESCRIPTIONS: dict[str, str] = {}


def _register(name: str, description: str):
    def deco(fn):
        DESCRIPTIONS[name] = description
        return SOURCES.register(name)(fn)
    return deco


@_register("mnist", "MNIST 28×28 grey, 60k train / 10k test, sha256-verified idx files")
def _mnist(data_dir: str | None = None) -> ImageSource:
    return ImageSource(data_mod.load("mnist", "train", data_dir))


@_register("fashion-mnist", "Fashion-MNIST 28×28 grey, 60k train / 10k test, sha256-verified idx files")
def _fashion(data_dir: str | None = None) -> ImageSource:
    return ImageSource(data_mod.load("fashion-mnist", "train", data_dir))


@_register("stacked-mnist", "three MNIST digits as RGB channels, 1,000 modes (infinite sampler)")
def _stacked(data_dir: str | None = None) -> StackedMNIST:
    return StackedMNIST(data_mod.load("mnist", "train", data_dir))


@_register("ring", "2D ring of 8 Gaussians, radius 1, σ 0.01 (PacGAN 2018)")
def _ring(data_dir: str | None = None) -> GaussianMixture:
    return GaussianMixture("ring", ring_centers(8, 1.0).float(), 0.01)


@_register("grid", "2D grid of 25 Gaussians at {−4,−2,0,2,4}², σ 0.05 (PacGAN 2018)")
def _grid(data_dir: str | None = None) -> GaussianMixture:
    return GaussianMixture("grid", grid_centers().float(), 0.05)


def load_source(name: str, data_dir: str | None = None):
    return SOURCES.get(name)(data_dir)


KINDS = {"mnist": "image", "fashion-mnist": "image", "stacked-mnist": "image", "ring": "points", "grid": "points"}
SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "stacked-mnist": (3, 28, 28), "ring": (2,), "grid": (2,)}
