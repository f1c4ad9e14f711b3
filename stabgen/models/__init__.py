"""Model registry: name → ModelSpec(family, build).

A *family* ("gan", "vae") decides which training step and which regularizers apply; a model is
one architecture of that family. `build` returns an nn.ModuleDict whose "generator" maps z to
images in [-1, 1] (for a VAE, the decoder), so sampling and metrics never care about the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from stabgen.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    family: str
    description: str
    build: Callable[..., nn.ModuleDict]  # (sample shape, z_dim, d_bn=False) → ModuleDict
    data_kind: str = "image"  # "image" (28×28, 1 or 3 channels) or "points" (2D)


MODELS: Registry[ModelSpec] = Registry("model")

from stabgen.models import gan, vae, conv, toy  # noqa: E402,F401,I001  (registration order = listing order)

__all__ = ["MODELS", "ModelSpec"]
