"""Reports: the statistics against scipy and closed forms, and a report built from a small real
study (files, CIs, images, the page rendered by headless Chromium), TensorBoard events, and the
cross-study leaderboard."""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as sps

from bench import stats

BENCH = [sys.executable, "-m", "bench.cli"]
ENV = {**os.environ, "COLUMNS": "200"}


def bench(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*BENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


# --- statistics ------------------------------------------------------------------------------------

def test_bootstrap_ci_is_scipys_percentile_bootstrap():
    x = [3.1, 2.4, 5.0, 4.2, 3.3, 2.9]
    ref = sps.bootstrap((np.array(x),), np.mean, confidence_level=0.95, n_resamples=stats.N_RESAMPLES,
                        method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert stats.bootstrap_ci(x) == pytest.approx((ref.low, ref.high))
    lo, hi = stats.bootstrap_ci(x)
    assert lo < np.mean(x) < hi
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)  # no spread, no interval width
    assert all(math.isnan(v) for v in stats.bootstrap_ci([1.0]))  # one seed: no CI is invented


def test_holm_matches_the_step_down_formula():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone: 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.2]) == [0.2]


def test_compare_is_scipys_mann_whitney_with_the_pairwise_effect_size():
    a, b = [1.0, 2.5, 3.0, 3.0, 7.0], [2.0, 3.0, 4.0, 8.0, math.inf, 9.5]
    c = stats.compare(a, b, "minimize")
    ref = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert (c.u, c.p) == pytest.approx((ref.statistic, ref.pvalue))
    pairs = list(itertools.product(a, b))
    better = sum((x < y) + 0.5 * (x == y) for x, y in pairs) / len(pairs)  # P(a beats b), ties half
    assert c.better == pytest.approx(better)
    assert stats.compare(a, b, "maximize").better == pytest.approx(1 - better)


# --- a report from a real study ----------------------------------------------------------------------

RING = """
name = "rep"
dataset = "ring"
metric = "modes_captured"
n_trials = 6
seed = 3
[train]
steps = 240
eval_every = 80
batch_size = 50
z_dim = 2
[eval]
samples = 500
[seeds]
top_k = 2
extra = 2
[space]
models = ["mlp2d_small"]
regularizers = ["none", "r1", "l2"]
lr = { low = 5e-4, high = 3e-3, log = true }
"""


@pytest.fixture(scope="module")
def ring_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "rep.toml").write_text(RING)
    r = bench("run", "--study", "rep.toml", "--tensorboard", cwd=root)
    assert r.returncode == 0, r.stderr
    r = bench("report", "--study", "rep", cwd=root)
    assert r.returncode == 0, r.stderr
    return root, root / "reports" / "rep"


def test_report_files_tables_and_cis(ring_report):
    root, out = ring_report
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "leaderboard.html", "regularizers.csv",
                 "index.html"):
        assert (out / name).stat().st_size > 0, name
    lb = pd.read_csv(out / "leaderboard.csv")
    assert lb["seeds"].sum() == 6 + 2 * 2 and lb["seeds"].max() == 3  # 6 search trials, top 2 × 2 extra seeds
    assert list(lb["rank"]) == list(range(1, len(lb) + 1))
    ranked = lb["modes_captured"].dropna()
    assert list(ranked) == sorted(ranked, reverse=True)  # maximize
    for m in ("modes_captured", "high_quality"):
        multi = lb[lb["seeds"] > 1]
        assert len(multi) == 2
        assert ((multi[f"{m}_ci_low"] <= multi[m] + 1e-12) & (multi[m] <= multi[f"{m}_ci_high"] + 1e-12)).all()
        assert lb.loc[lb["seeds"] == 1, f"{m}_ci_low"].isna().all()  # one seed: no interval
    regs = pd.read_csv(out / "regularizers.csv")
    assert set(regs["regularizer"]) <= {"none", "r1", "l2"}
    md = (out / "leaderboard.md").read_text()
    assert "bench report --study rep" in md and "bench run --study rep.toml" in md
    assert "AMD" in md or "CPU" in md or "x86" in md or "arm" in md.lower()  # the hardware is named
    assert "6 search trials + 4 seed re-runs" in md
    assert "\\begin{tabular}" in (out / "leaderboard.tex").read_text()


def test_report_figures_are_real_images(ring_report):
    _, out = ring_report
    pngs = sorted((out / "figures").glob("*.png"))
    names = {p.stem for p in pngs}
    assert {"objective_vs_lambda", "objective_by_regularizer", "budget_curves", "training_curves",
            "param_importances"} <= names
    for p in pngs:
        with Image.open(p) as im:
            im.load()
            assert im.size[0] > 200 and im.size[1] > 100
            assert len(np.unique(np.asarray(im.convert("L")))) > 10  # not a blank canvas
        assert p.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    samples = sorted((out / "samples").glob("trial-*.png"))
    assert samples and all(Image.open(p).size[0] > 0 for p in samples)
    page = (out / "index.html").read_text()
    for p in [*pngs, *samples]:
        assert p.relative_to(out).as_posix() in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed (apt-get install chromium); "
                                         ".ci/run installs it")
def test_index_html_renders_with_every_image_loaded(ring_report, tmp_path):
    _, out = ring_report
    url = (out / "index.html").resolve().as_uri()
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*cmd, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page's load check did not run"
    n, total = map(int, loaded.groups())
    assert total >= 6 and n == total  # every <img> decoded (none broken)
    shot = tmp_path / "page.png"
    subprocess.run([*cmd, "--window-size=1280,3000", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120)
    with Image.open(shot) as im:
        assert im.size == (1280, 3000) and len(np.unique(np.asarray(im.convert("L")))) > 50


def test_tensorboard_events_hold_the_training_curves(ring_report):
    root, _ = ring_report
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(root / "runs" / "rep" / "trials" / "0" / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss_d", "train/loss_g", "train/grad_norm_d", "eval/modes_captured"} <= tags
    history = pd.read_csv(root / "runs" / "rep" / "trials" / "0" / "history.csv")
    assert [e.value for e in acc.Scalars("train/loss_d")] == pytest.approx(history["loss_d"].tolist(), rel=1e-6)


def test_report_of_a_study_where_every_trial_diverged(tmp_path):
    (tmp_path / "dv.toml").write_text(RING.replace('name = "rep"', 'name = "dv"').replace("n_trials = 6", "n_trials = 2")
                                      .replace("steps = 240", "steps = 20").replace("eval_every = 80", "eval_every = 10")
                                      .replace("low = 5e-4, high = 3e-3", "low = 100.0, high = 500.0")
                                      + 'objectives = ["ls"]\n')
    assert bench("run", "--study", "dv.toml", cwd=tmp_path).returncode == 0
    r = bench("report", "--study", "dv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lb = pd.read_csv(tmp_path / "reports" / "dv" / "leaderboard.csv")
    assert (lb["divergence_rate"] == 1.0).all() and lb["modes_captured"].isna().all()
    assert "nothing to draw" in (tmp_path / "reports" / "dv" / "index.html").read_text()


def test_report_of_a_missing_study_is_one_line(tmp_path):
    r = bench("report", "--study", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "no study storage" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --- several studies -----------------------------------------------------------------------------------

MNIST = """
name = "{name}"
dataset = "mnist"
n_trials = 2
[train]
steps = 30
eval_every = 30
[eval]
samples = 200
inception_top_k = 0
[space]
models = ["{model}"]
regularizers = ["none", "l2"]
lr = {{ low = 1e-4, high = 1e-3, log = true }}
"""


def test_leaderboard_puts_gan_and_vae_studies_side_by_side(tmp_path, mnist_dir):
    for name, model in (("lb_gan", "gan"), ("lb_vae", "vae")):
        (tmp_path / f"{name}.toml").write_text(MNIST.format(name=name, model=model))
        r = bench("run", "--study", f"{name}.toml", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    r = bench("leaderboard", "lb_gan", "lb_vae", "--out", "cross/mnist", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "cross" / "mnist.csv")
    assert set(table["study"]) == {"lb_gan", "lb_vae"} and set(table["model"]) == {"gan", "vae"}
    assert {"domain_fid", "precision", "coverage"} <= set(table.columns)
    fids = table["domain_fid"].dropna()
    assert list(fids) == sorted(fids)
