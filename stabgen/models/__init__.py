"""Model registry: name → ModelSpec(family, build).

A *family* ("gan", "vae") decides which training step and which regularizers apply; a model is
one architecture of that family. `build` returns an nn.ModuleDict whose "generator" maps z to
images in [-1, 1] (for a VAE, the decoder), so sampling and metrics never care about the family.
"""

from __future__ import annotations

from stabgen.models.base import MODELS, ModelSpec
from stabgen.models import gan, vae, conv, toy  # noqa: F401,I001  (registration order = listing order)

__all__ = ["MODELS", "ModelSpec"]
