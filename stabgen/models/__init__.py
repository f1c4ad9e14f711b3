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
    build: Callable[[tuple[int, int, int], int], nn.ModuleDict]


MODELS: Registry[ModelSpec] = Registry("model")

from stabgen.models import gan, vae  # noqa: E402,F401  (register the built-in models)

__all__ = ["MODELS", "ModelSpec"]
