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


DATA_KINDS = ("image", "points")


def check_spec(name: str, spec: object) -> None:
    """What the registry checks when a model is registered (behaviour: stabgen.testing.check_model)."""
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"model {name!r} must be a stabgen.models.ModelSpec, not {type(spec).__name__}")
    if spec.data_kind not in DATA_KINDS or not callable(spec.build) or not spec.family:
        raise ValueError(f"model {name!r}: data_kind must be one of {', '.join(DATA_KINDS)} "
                         f"(is {spec.data_kind!r}), build callable and family named")


MODELS: Registry[ModelSpec] = Registry("model", group="stabgen.models", check=check_spec)
