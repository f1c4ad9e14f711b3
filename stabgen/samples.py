"""Load a user's generated samples (a .pt/.npz tensor file or a folder of images) as uint8 [N, C, H, W].

Accepted layouts: [N, H, W], [N, C, H, W] or [N, H, W, C] with C ∈ {1, 3}; uint8 in [0, 255], or
float in [0, 1], or float in [-1, 1] (a tanh generator's output, recognized by negative values).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stabgen.errors import StabgenError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
KEYS = ("images", "samples", "x", "arr_0")


def _pick(obj, path: Path):
    if isinstance(obj, dict) or hasattr(obj, "files"):
        keys = list(obj.keys()) if isinstance(obj, dict) else list(obj.files)
        for k in KEYS:
            if k in keys:
                return obj[k]
        if len(keys) == 1:
            return obj[keys[0]]
        raise StabgenError(f"{path}: holds {keys}; name the samples array one of {', '.join(KEYS)}")
    return obj


def to_uint8_nchw(x, source: str = "samples") -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not torch.is_tensor(x) else x
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4:
        raise StabgenError(f"{source}: expected [N, H, W], [N, C, H, W] or [N, H, W, C], got {tuple(t.shape)}")
    if t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] not in (1, 3):
        raise StabgenError(f"{source}: images need 1 or 3 channels, got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.contiguous()
    t = t.float()
    if not torch.isfinite(t).all():
        raise StabgenError(f"{source}: contains NaN or Inf values")
    if t.min() < 0:
        t = (t + 1) / 2  # [-1, 1] → [0, 1]
    if t.max() > 1.0 + 1e-6:
        raise StabgenError(f"{source}: float images must lie in [0, 1] or [-1, 1]; found max {float(t.max()):.3g}")
    return (t * 255).round().clamp(0, 255).to(torch.uint8)


def _load_tensor_file(p: Path) -> torch.Tensor:
    if p.suffix == ".pt":
        return to_uint8_nchw(_pick(torch.load(p, map_location="cpu", weights_only=True), p), str(p))
    if p.suffix == ".npz":
        with np.load(p) as z:
            return to_uint8_nchw(np.array(_pick(z, p)), str(p))
    return to_uint8_nchw(np.load(p), str(p))


def load_samples(path: str | Path) -> torch.Tensor:
    p = Path(path)
    if not p.exists():
        raise StabgenError(f"samples {p} do not exist")
    if p.is_dir():
        from PIL import Image
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise StabgenError(f"no {'/'.join(IMAGE_EXTS)} images in {p}")
        imgs = []
        for f in files:
            try:
                with Image.open(f) as im:
                    a = np.asarray(im.convert("L") if im.mode not in ("L", "RGB") else im)
            except (OSError, ValueError, SyntaxError) as e:  # truncated, corrupt or not an image at all
                raise StabgenError(f"{f}: not a readable image ({str(e).splitlines()[0][:100]}); "
                                   f"remove or re-save it") from None
            imgs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        if len({i.shape for i in imgs}) != 1:
            raise StabgenError(f"images in {p} differ in size or channels")
        return to_uint8_nchw(torch.from_numpy(np.stack(imgs)), str(p))
    if p.suffix in (".pt", ".npz", ".npy"):
        try:
            return _load_tensor_file(p)
        except StabgenError:
            raise
        except Exception as e:  # corrupt, truncated or empty: torch/numpy raise many kinds of error
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise StabgenError(f"{p}: not a readable {p.suffix} tensor file ({first[:120]}); "
                               f"save the samples with torch.save or numpy.save") from None
    raise StabgenError(f"{p}: unsupported sample file; use .pt, .npz, .npy or a folder of images")
