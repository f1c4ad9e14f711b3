"""stabgen: which regularizers (and which λ and learning rate) make GAN and VAE training stable.

The public library, imported lazily (PEP 562) so that `import stabgen` stays cheap and changes no
global state: the trial config, the one training loop, the registries and the data sources.
"""

from __future__ import annotations

import importlib

from stabgen.errors import StabgenError

__version__ = "0.1.0"

_PUBLIC = {
    "TrialConfig": "stabgen.trial", "TrialResult": "stabgen.trial",
    "train": "stabgen.train", "train_population": "stabgen.train",
    "DATASETS": "stabgen.datasets", "DatasetSpec": "stabgen.datasets", "load_source": "stabgen.datasets",
    "MODELS": "stabgen.models", "OBJECTIVES": "stabgen.objectives", "REGULARIZERS": "stabgen.regularizers",
}
__all__ = ["StabgenError", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'stabgen' has no attribute {name!r}")
