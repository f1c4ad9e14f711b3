"""Where data, weights and caches live.

Lookup order for every path: explicit argument (CLI option) → environment variable → default
under ~/.cache/stabgen. Library code never names a machine-specific path; offline machines point
the environment variables at their local copies.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "STABGEN_DATA_DIR"
ENV_INCEPTION_WEIGHTS = "STABGEN_INCEPTION_WEIGHTS"
ENV_CACHE_DIR = "STABGEN_CACHE_DIR"

INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"


def cache_dir() -> Path:
    """Root for downloads and metric caches (default ~/.cache/stabgen)."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stabgen"


def data_dirs(option: str | os.PathLike | None = None) -> list[Path]:
    """Candidate data roots in lookup order: option, $STABGEN_DATA_DIR, the cache dir."""
    out: list[Path] = []
    if option:
        out.append(Path(option).expanduser())
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        out.append(Path(env).expanduser())
    out.append(cache_dir())
    return out


def inception_weights(option: str | os.PathLike | None = None) -> Path | None:
    """A local TF-Inception weights file, or None (torch-fidelity then downloads it).

    Order: option, $STABGEN_INCEPTION_WEIGHTS, torch hub's checkpoint cache (where torch-fidelity's
    own download puts it).
    """
    for cand in (option, os.environ.get(ENV_INCEPTION_WEIGHTS)):
        if cand:
            return Path(cand).expanduser()
    import torch.hub

    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME
    return hub if hub.exists() else None

ENV_CUDA_GRAPHS = "STABGEN_CUDA_GRAPHS"
ENV_TF32 = "STABGEN_TF32"


def _flag(name: str, default: bool | None) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    from stabgen.errors import StabgenError

    raise StabgenError(f"${name}={os.environ[name]!r} is not a switch; set it to 1 or 0")


def cuda_graphs() -> bool:
    """Replay each CUDA training step as one CUDA graph (default on; $STABGEN_CUDA_GRAPHS=0: eager)."""
    return bool(_flag(ENV_CUDA_GRAPHS, True))


def tf32() -> bool | None:
    """TF32 matmuls and convolutions on CUDA: $STABGEN_TF32=1 on, =0 off; unset, None (torch's own
    setting stands, fp32 by default)."""
    return _flag(ENV_TF32, None)
