"""The model registry and its entry type, apart from the architectures that register into it (so
the architecture modules and the package import this module, never each other in a circle)."""

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


MODELS: Registry[ModelSpec] = Registry("model", group="stabgen.models")
