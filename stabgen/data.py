"""MNIST and Fashion-MNIST from the original idx(.gz) files.

Lookup order for a dataset's files: CLI option → $STABGEN_DATA_DIR → ~/.cache/stabgen → download
from the official mirrors into the cache. Every file is checked against the sha256 of its
*uncompressed* bytes (recompressed .gz files stay valid), so a stale or corrupted copy fails loudly.
The result is one uint8 tensor [N, 1, 28, 28]: moved once to the training device, indexed per step.
"""

from __future__ import annotations

import gzip
import zlib
import hashlib
import struct
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stabgen import settings
from stabgen.errors import StabgenError


@dataclass(frozen=True)
class IdxSource:
    mirrors: tuple[str, ...]
    sha256: dict[str, str]  # uncompressed sha256 per file stem


_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

IDX_FILES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    "fashion-mnist": IdxSource(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ),
}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageData:
    """A split held as tensors: images uint8 [N, C, H, W], labels int64 [N]."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(self.name, self.split, self.images.to(device), self.labels.to(device))

    def subset(self, n: int, seed: int = 0) -> torch.Tensor:
        """A fixed random subset of n images (the same n and seed give the same images)."""
        if n > len(self):
            raise StabgenError(f"{self.name}/{self.split} has {len(self)} images; asked for {n}")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n]
        return self.images[idx.to(self.images.device)]


SplitLoader = Callable[[str, "str | None"], ImageData]  # (split, data_dir) → the split's images and labels


@dataclass(frozen=True)
class RealRef:
    """A reproducible real reference set: the first n of a fixed permutation of a split. `load`
    reads the split (a DatasetSpec's loader); the name, split, n and seed key the metric caches."""

    dataset: str
    split: str
    n: int
    seed: int = 0
    data_dir: str | None = None
    load: SplitLoader | None = field(default=None, compare=False, repr=False)

    @property
    def cache_name(self) -> str:
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.dataset)  # a user's data: a path
        return f"stabgen-{name}-{self.split}-n{self.n}-s{self.seed}"

    def images(self) -> torch.Tensor:
        if self.load is None:
            raise StabgenError(f"reference {self.cache_name} has no loader; build it with "
                               f"stabgen.datasets.DATASETS.get(name).reference(...)")
        return self.load(self.split, self.data_dir).subset(self.n, self.seed)


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse an idx file (magic 0x0000TTDD: type TT, DD dimensions, big-endian sizes)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise StabgenError("not an idx file: bad magic number")
    dtype, ndim = raw[2], raw[3]
    if dtype not in _IDX_DTYPES:
        raise StabgenError(f"not an idx file: unknown data type 0x{dtype:02x}")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    arr = np.frombuffer(raw, dtype=_IDX_DTYPES[dtype], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise StabgenError(f"idx file truncated: header says {shape}, found {arr.size} values")
    return arr.reshape(shape)


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut stream an EOFError
        raise StabgenError(f"{path}: not a readable gzip file ({str(e).splitlines()[0][:80]}); delete it and let "
                           f"stabgen download it, or point --data-dir at a good copy") from None


def _find(dataset: str, stem: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for cand in (root / dataset / f"{stem}.gz", root / dataset / stem):
            if cand.exists():
                return cand
    return None


def _download(dataset: str, stem: str, dest_dir: Path) -> Path:
    errors = []
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{stem}.gz"
    for mirror in IDX_FILES[dataset].mirrors:
        url = f"{mirror}{stem}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                blob = r.read()
            tmp = dest.with_suffix(".part")
            tmp.write_bytes(blob)
            tmp.replace(dest)
            return dest
        except OSError as e:  # URLError, timeouts, DNS failure: all OSError
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
    raise OSError("; ".join(errors))


def _verified(dataset: str, stem: str, path: Path) -> bytes:
    raw = _read(path)
    want = IDX_FILES[dataset].sha256[stem]
    got = hashlib.sha256(raw).hexdigest()
    if got != want:
        raise StabgenError(
            f"checksum mismatch for {path}: sha256 {got[:12]}… expected {want[:12]}…; "
            f"delete the file and let stabgen download it, or point --data-dir at a good copy"
        )
    return raw


def load(dataset: str, split: str = "train", data_dir: str | Path | None = None,
         download: bool = True) -> ImageData:
    """Load a split of MNIST or Fashion-MNIST as uint8 tensors (see module doc for the lookup)."""
    if dataset not in IDX_FILES:
        raise StabgenError(f"no idx files known for dataset {dataset!r}; known: {', '.join(IDX_FILES)}")
    if split not in ("train", "test"):
        raise StabgenError(f"unknown split {split!r}; use 'train' or 'test'")
    roots = settings.data_dirs(data_dir)
    arrays = []
    for part in ("images", "labels"):
        stem = _FILES[(split, part)]
        path = _find(dataset, stem, roots)
        if path is None and download:
            try:
                path = _download(dataset, stem, settings.cache_dir() / dataset)
            except OSError as e:
                tried = ", ".join(str(r / dataset) for r in roots)
                raise StabgenError(
                    f"{dataset} file {stem} not found in {tried} and download failed ({e}); "
                    f"set --data-dir or ${settings.ENV_DATA_DIR} to a folder holding {dataset}/{stem}.gz"
                ) from None
        if path is None:
            tried = ", ".join(str(r / dataset) for r in roots)
            raise StabgenError(f"{dataset} file {stem} not found in {tried}; set --data-dir or "
                               f"${settings.ENV_DATA_DIR}")
        arrays.append(parse_idx(_verified(dataset, stem, path)))
    images, labels = arrays
    return ImageData(
        name=dataset,
        split=split,
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
    )


def to_unit(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], the range of the generators' tanh output."""
    return images_u8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] → uint8 [0, 255] (what torch-fidelity's extractors take)."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
