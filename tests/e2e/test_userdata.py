"""Bring your own data: a folder of images (or an .npz array) named in a spec trains and is evaluated,
with a domain classifier the user trains on it, or with Inception features without one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers import run_main


def _shapes(n: int, kind: int, seed: int) -> np.ndarray:
    """28×28 grey images of one of two classes: a bright blob (0) or a horizontal bar (1)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        cy, cx = g.integers(8, 20, 2)
        img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 12.0) if kind == 0 else \
            (np.abs(yy - cy) < 2) * (np.abs(xx - 14) < 10) * 1.0
        out[i] = (255 * img).astype(np.uint8)
    return out


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "shapes"
    for split, n in (("train", 96), ("test", 32)):
        for label in (0, 1):
            d = root / split / f"class{label}"
            d.mkdir(parents=True)
            for i, a in enumerate(_shapes(n, label, seed=10 * label + len(split))):
                Image.fromarray(a, mode="L").save(d / f"{i:03d}.png")
    return root


SPEC = """
dataset = "{path}"
n_trials = 2
[train]
steps = 30
eval_every = 30
[eval]
samples = {n}
inception_top_k = 0
[confirm]
seeds = 0
[space]
models = ["gan"]
regularizers = ["none", "l2"]
"""


def test_a_folder_of_images_with_its_own_classifier_runs_a_study(tmp_path, capsys, monkeypatch, image_folder):
    from stabgen.metrics import classifier
    from stabgen.userdata import load_splits

    splits = load_splits(image_folder)
    assert {s: len(d) for s, d in splits.items()} == {"train": 192, "test": 64}
    assert splits["train"].images.shape[1:] == (1, 28, 28) and set(splits["test"].labels.tolist()) == {0, 1}
    code, _, err = run_main(["train-classifier", "--dataset", str(image_folder), "--epochs", "25"], tmp_path,
                            capsys, monkeypatch)
    assert code == 0, err
    card = json.loads(classifier.weights_path(str(image_folder)).with_suffix(".json").read_text())
    assert card["dataset"] == str(image_folder) and card["classes"] == 2 and card["train_images"] == 192
    assert card["test_accuracy"] > 0.8  # blobs vs bars: easy, even in 25 steps of one batch
    (tmp_path / "mine.toml").write_text(SPEC.format(path=image_folder, n=64))
    code, _, err = run_main(["run", "--study", "mine.toml", "--device", "cpu"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "runs/mine/trials.csv")
    assert len(trials) == 2 and trials["domain_fid"].notna().all() and (trials["classes"] <= 2).all()
    assert "domain_fid" in pd.read_csv(tmp_path / "runs/mine/leaderboard.csv")


@pytest.mark.slow
def test_an_npz_without_a_classifier_is_scored_on_inception_features(tmp_path, capsys, monkeypatch,
                                                                      inception_weights):
    x = np.concatenate([_shapes(40, 0, 1), _shapes(40, 1, 2)])
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=np.repeat([0, 1], 40), x_test=x[::4], y_test=np.repeat([0, 1], 10))
    (tmp_path / "npz.toml").write_text(SPEC.format(path=tmp_path / "mine.npz", n=10).replace("n_trials = 2",
                                                                                              "n_trials = 1"))
    code, _, err = run_main(["run", "--study", "npz.toml", "--device", "cpu", "--steps", "10"], tmp_path, capsys,
                            monkeypatch)
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "runs/npz/trials.csv")
    assert trials.loc[0, "inception_fid"] > 0 and np.isfinite(trials.loc[0, "inception_kid"])


@pytest.mark.parametrize("dataset, expect", [
    ("no/such/folder", "does not exist"),
    ("notes.txt/", "does not exist"),
    ("bad.npz", "not a readable .npz file"),
    ("empty/", "no .png/.jpg/.jpeg/.bmp images"),
])
def test_bad_user_data_is_one_line(tmp_path, capsys, monkeypatch, dataset, expect):
    (tmp_path / "bad.npz").write_bytes(b"\x00\x01 not a zip")
    (tmp_path / "empty").mkdir()
    (tmp_path / "s.toml").write_text(SPEC.format(path=dataset, n=10))
    code, _, err = run_main(["run", "--study", "s.toml", "--device", "cpu"], tmp_path, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expect in lines[0] and "Traceback" not in err, err


def test_user_data_reaches_the_trainer_unchanged(image_folder):
    from stabgen.streams import Streams
    from stabgen.userdata import resolve

    ds = resolve(str(image_folder))
    batch = ds.source(None).batch(8, Streams([0], torch.device("cpu")))
    assert batch.shape == (1, 8, 1, 28, 28) and batch.min() >= -1 and batch.max() <= 1
    assert ds.kind == "image" and ds.splits == {"train": 192, "test": 64} and ds.classes == 2
