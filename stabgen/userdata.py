"""Bring your own data: a folder of images or an .npz file becomes a registered dataset, named by its path.

Layouts (images of one size, grey or RGB; uint8, or float in [0, 1] or [-1, 1]):
  folder  PATH/train/<class>/*.png and PATH/test/<class>/*.png  — two labelled splits;
          PATH/<class>/*.png                                   — one split, "train", labelled;
          PATH/*.png                                           — one split, "train", one class.
  .npz    x_train [, y_train] [, x_test, y_test]  (or `images` [, `labels`] as the train split).
Evaluation: the domain metrics (FID/KID/PR, density/coverage, class coverage) on a classifier trained
for this data with `bench train-classifier --dataset PATH` (28×28 images; its card records the data it
learned), else Inception FID/KID/PR on TF-Inception's features (slow on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stabgen import datasets, sources
from stabgen.data import ImageData
from stabgen.errors import StabgenError
from stabgen.metrics import classifier
from stabgen.metrics.evaluate import InceptionEvaluator
from stabgen.samples import IMAGE_EXTS, load_samples, to_uint8_nchw

INCEPTION_COLUMNS = {
    "inception_fid": datasets.Column("inception_fid", "minimize", "{:.2f}"),
    "inception_kid": datasets.Column("inception_kid", "minimize", "{:.4f}"),
    "precision": datasets.Column("inception_precision", "maximize", "{:.3f}"),
    "recall": datasets.Column("inception_recall", "maximize", "{:.3f}"),
}
INCEPTION_METRICS = {"inception_fid": "minimize", "inception_kid": "minimize"}


def is_path(name: str) -> bool:
    """A spec's `dataset` names a user's data when it is a folder or an .npz file (not a registered name)."""
    return name.endswith(".npz") or "/" in name or Path(name).is_dir()


def resolve(name: str) -> datasets.DatasetSpec:
    """A registered dataset, or the user's data at a path (registered on first use)."""
    if name in datasets.DATASETS and is_path(name) and datasets.DATASETS.get(name).metrics is INCEPTION_METRICS \
            and classifier.has_weights(name):  # a classifier was trained since: domain metrics from now on
        datasets.DATASETS.unregister(name)
    if name in datasets.DATASETS or not is_path(name):
        return datasets.DATASETS.get(name)
    return register_path(name)


def _folder_split(folder: Path) -> ImageData:
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir())
    if not subdirs:
        images = load_samples(folder)
        return ImageData(str(folder), "train", images, torch.zeros(len(images), dtype=torch.long))
    parts = [load_samples(d) for d in subdirs]
    if len({p.shape[1:] for p in parts}) != 1:
        raise StabgenError(f"images in the class folders of {folder} differ in size or channels")
    labels = torch.cat([torch.full((len(p),), i, dtype=torch.long) for i, p in enumerate(parts)])
    return ImageData(str(folder), "train", torch.cat(parts), labels)


def _npz_splits(path: Path) -> dict[str, ImageData]:
    try:
        z = dict(np.load(path))
    except Exception as e:
        raise StabgenError(f"{path}: not a readable .npz file ({str(e).splitlines()[0]})") from None
    if "x_train" not in z and "images" in z:
        z["x_train"], z["y_train"] = z.pop("images"), z.pop("labels", None)
    out = {}
    for split in ("train", "test"):
        if z.get(f"x_{split}") is None:
            continue
        x = to_uint8_nchw(z[f"x_{split}"], f"{path}:x_{split}")
        y = z.get(f"y_{split}")
        labels = torch.as_tensor(np.asarray(y), dtype=torch.long) if y is not None else torch.zeros(len(x), dtype=torch.long)
        if len(labels) != len(x):
            raise StabgenError(f"{path}: y_{split} has {len(labels)} labels for {len(x)} images")
        out[split] = ImageData(str(path), split, x, labels)
    if "train" not in out:
        raise StabgenError(f"{path}: holds {sorted(z)}; name the training images x_train (or images)")
    return out


def load_splits(path: str | Path) -> dict[str, ImageData]:
    """Every split of a user's data as uint8 images and int64 labels."""
    p = Path(path)
    if not p.exists():
        raise StabgenError(f"dataset {p} does not exist; give a folder of images or an .npz file")
    if p.is_file():
        if p.suffix != ".npz":
            raise StabgenError(f"dataset {p}: a file must be an .npz array (x_train, y_train, …)")
        splits = _npz_splits(p)
    elif (p / "train").is_dir():
        splits = {s: _folder_split(p / s) for s in ("train", "test") if (p / s).is_dir()}
    else:
        splits = {"train": _folder_split(p)}
    shapes = {tuple(d.images.shape[1:]) for d in splits.values()}
    if len(shapes) != 1:
        raise StabgenError(f"dataset {p}: its splits hold images of different shapes {sorted(shapes)}")
    return {s: ImageData(str(path), s, d.images, d.labels) for s, d in splits.items()}


def register_path(path: str) -> datasets.DatasetSpec:
    """Register the data at `path` under that name: domain metrics where a classifier was trained for
    it, Inception metrics otherwise."""
    splits = load_splits(path)
    domain = classifier.has_weights(path)
    classes = int(max(int(d.labels.max()) for d in splits.values())) + 1
    kind = "domain classifier" if domain else "Inception features"
    return datasets.register(datasets.DatasetSpec(
        path, f"your data at {path}: {', '.join(f'{s} {len(d)}' for s, d in splits.items())} images, "
              f"{classes} class(es); metrics on {kind}", "image", tuple(splits["train"].images.shape[1:]),
        source=lambda data_dir=None: sources.ImageSource(splits["train"]),
        evaluator=datasets.domain_evaluator if domain else inception_evaluator,
        metrics=datasets.IMAGE_METRICS if domain else INCEPTION_METRICS,
        columns=datasets.IMAGE_COLUMNS if domain else INCEPTION_COLUMNS,
        splits={s: len(d) for s, d in splits.items()}, load_split=lambda split, data_dir=None: splits[split],
        classes=classes, inception=domain))


def inception_evaluator(ds: datasets.DatasetSpec, r: datasets.EvalRequest) -> InceptionEvaluator:
    return InceptionEvaluator(ds.reference(r.split, r.n, data_dir=r.data_dir), r.device, r.metric)


__all__ = ["register_path", "resolve", "load_splits", "is_path", "IMAGE_EXTS"]
