"""Reports: the statistics against scipy and closed forms, and a report built from a small real
study (files, CIs, images, the page rendered by headless Chromium), TensorBoard events, and the
cross-study leaderboard."""

from __future__ import annotations

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

from helpers import ROOT, compile_tex, missing, study_toml
from PIL import Image
from scipy import stats as sps

from bench import stats

BENCH = [sys.executable, "-m", "bench.cli"]
ENV = {**os.environ, "COLUMNS": "200"}


def bench(*args, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:  # a hang's net: generous under load
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


# --- a report from a real study ----------------------------------------------------------------------

RING = study_toml(name="rep", n_trials=6, top="seed = 3", steps=240, eval_every=80, samples=500,
                  sections="[seeds]\ntop_k = 2\nextra = 2", confirm="seeds = 6\nstages = 1",
                  regularizers=("none", "r1", "l2"), space="lr = { low = 5e-4, high = 3e-3, log = true }\n")


@pytest.fixture(scope="module")
def ring_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "rep.toml").write_text(RING)
    r = bench("run", "--study", "rep.toml", "--tensorboard", cwd=root)
    assert r.returncode == 0, r.stderr
    r = bench("report", "--study", "rep", cwd=root)
    assert r.returncode == 0, r.stderr
    return root, root / "runs" / "rep" / "report"  # bench report without --out writes under runs/


def test_report_writes_under_runs_and_clears_its_own_stale_files(ring_report):
    """Without --out nothing is written into a reports/ folder (the committed ones stay clean), and a
    rebuilt report leaves nothing of the previous one behind, touching no file it does not own."""
    root, out = ring_report
    assert not (root / "reports").exists()
    (out / "figures" / "stale.png").write_bytes(b"old")
    (out / "pareto.csv").write_text("stale")  # this study is single-objective: no pareto.csv of its own
    (out / "notes.txt").write_text("mine")
    r = bench("report", "--study", "rep", "--format", "csv", cwd=root)
    assert r.returncode == 0, r.stderr
    assert not (out / "figures" / "stale.png").exists() and not (out / "pareto.csv").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "figures").is_dir()


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
    assert {a.split("/")[-1] for a in regs["arm"]} <= {"none", "r1", "l2"}  # per arm: model/objective/regularizer
    md = (out / "leaderboard.md").read_text()
    assert "bench report --study rep" in md and "bench run --study rep.toml" in md
    assert "AMD" in md or "CPU" in md or "x86" in md or "arm" in md.lower()  # the hardware is named
    assert "6 search trials + 4 seed re-runs + 18 confirmation runs" in md
    assert "\\begin{tabular}" in (out / "leaderboard.tex").read_text()


def test_report_figures_are_real_images(ring_report):
    _, out = ring_report
    pngs = sorted((out / "figures").glob("*.png"))
    names = {p.stem for p in pngs}
    assert {"objective_vs_lambda", "objective_by_regularizer", "budget_curves", "training_curves",
            "param_importances", "expected_best", "lambda_robustness", "divergence_survival"} <= names
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


def test_confirmation_runs_pair_every_arm_on_the_same_fresh_seeds(ring_report):
    """[confirm] seeds = 6: each regularizer's best search config re-trained on seeds no
    search trial used, the same seeds for every arm, never pruned; confirm.csv holds the paired tests
    and index.html its section."""
    root, out = ring_report
    from bench import api
    from bench.space import CONFIRM_SEEDS

    rec = api.open_study("rep", runs_dir=root / "runs")
    conf = rec.trials[rec.trials["confirm_arm"].notna()]
    assert len(conf) == 3 * 6 and set(conf["confirm_arm"]) == {f"mlp2d_small/ns/{r}" for r in ("none", "r1", "l2")}
    seeds = conf.groupby("confirm_arm")["seed"].apply(lambda s: sorted(s))
    assert all(s == [3 + CONFIRM_SEEDS + i for i in range(6)] for s in seeds)  # paired and fresh
    assert not set(conf["seed"]) & set(rec.trials.loc[rec.trials["confirm_arm"].isna(), "seed"])
    assert (conf["steps"] == 240).all() and not (conf["status"] == "pruned").any()
    plan = rec.study.user_attrs["confirm/plan"]["arms"]
    for arm, src in plan.items():  # each arm's config is the one it confirms
        assert (conf.loc[conf["confirm_arm"] == arm, "config_id"] == rec.trials.loc[
            rec.trials["trial"] == src, "config_id"].iloc[0]).all()
    table = pd.read_csv(out / "confirm.csv")
    for col in ("arm", "seeds", "median", "median_ci_low", "median_ci_high", "p", "p_holm",
                "prob_improvement", "prob_improvement_ci_low", "median_diff", "seeds_needed", "verdict"):
        assert col in table, col
    base = "mlp2d_small/ns/none"
    assert table.loc[table["arm"] == base, "verdict"].item() in ("baseline", "baseline did not train at this budget: "
                                                                  "no verdict for its family")
    assert set(table["gate"]) <= {"passed", "did not train"} and set(table["baseline"]) == {base}
    tested = table[table["p"].notna()]  # at 240 steps the ring's gate (50 % near a mode) may stop every arm
    assert tested["p"].between(0, 1).all() and (tested["p_holm"] >= tested["p"]).all()
    assert table.loc[table["gate"] == "did not train", "p"].isna().all()
    page = (out / "index.html").read_text()
    assert "id='confirmation'" in page and "confirm.csv" in page


def test_best_config_of_an_arm_counts_divergence():
    """A config that diverged on 2 of 3 seeds does not beat a steady one with a worse best seed."""
    from bench import confirm

    rows = [(0, "gp", "a", "completed", 8.0), (1, "gp", "a", "diverged", None), (2, "gp", "a", "diverged", None),
            (3, "gp", "b", "completed", 6.0), (4, "gp", "b", "completed", 6.0), (5, "gp", "b", "completed", 5.0),
            (6, "none", "c", "pruned", None), (7, "none", "d", "completed", 1.0)]
    df = pd.DataFrame([{"trial": t, "regularizer": r, "config_id": c, "status": s, "modes_captured": v,
                        "confirm_arm": None} for t, r, c, s, v in rows])
    assert confirm.select(df, "regularizer", "modes_captured", "maximize") == {"gp": 3, "none": 7}
    assert confirm.select(df, "regularizer", "modes_captured", "minimize") == {"gp": 3, "none": 7}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_index_html_renders_with_every_image_loaded(ring_report, tmp_path):
    if not CHROMIUM:
        missing("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    _, out = ring_report
    url = (out / "index.html").resolve().as_uri()
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*cmd, "--dump-dom", url], capture_output=True, text=True, timeout=600).stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page's load check did not run"
    n, total = map(int, loaded.groups())
    assert total >= 6 and n == total  # every <img> decoded (none broken)
    shot = tmp_path / "page.png"
    subprocess.run([*cmd, "--window-size=1280,3000", f"--screenshot={shot}", url], capture_output=True,
                   timeout=600)
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
    assert "samples" in acc.Tags()["images"]  # the trial's samples.png (here the 2D scatter)
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")  # TensorBoard's HParams view


def test_optuna_dashboard_sees_metric_names_and_flat_metrics(ring_report):
    """optuna-dashboard labels values with the study's metric names and lists flat numeric attributes."""
    import optuna

    root, _ = ring_report
    study = optuna.load_study(study_name="rep", storage=f"sqlite:///{root}/runs/rep/study.db")
    assert study.metric_names == ["modes_captured"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:
        assert t.user_attrs["metric/modes_captured"] == t.user_attrs["metrics"]["modes_captured"] == t.value
        assert all(isinstance(v, float) for k, v in t.user_attrs.items() if k.startswith("metric/"))


def test_leaderboard_tex_compiles_with_pdflatex(ring_report, tmp_path):
    """The fresh report's table and every committed one (underscores, %, —, ∞ of a diverged config)."""
    _, out = ring_report
    tables = [out / "leaderboard.tex", *sorted(ROOT.glob("reports/*/leaderboard.tex"))]
    for i, table in enumerate(tables):
        compile_tex(table, tmp_path / str(i))


def test_latex_symbols_become_math_mode():
    from bench.render import latex_symbols as _latex_symbols

    assert _latex_symbols("∞ & −∞ & λ ≥ 1 & 3 ± 1 — x") == r"$\infty$ & $-$$\infty$ & $\lambda$ $\geq$ 1 & 3 $\pm$ 1 — x"


def test_report_of_a_study_where_every_trial_diverged(tmp_path):
    (tmp_path / "dv.toml").write_text(RING.replace('name = "rep"', 'name = "dv"').replace("n_trials = 6", "n_trials = 2")
                                      .replace("steps = 240", "steps = 20").replace("eval_every = 80", "eval_every = 10")
                                      .replace("low = 5e-4, high = 3e-3", "low = 100.0, high = 500.0")
                                      + 'objectives = ["ls"]\n')
    assert bench("run", "--study", "dv.toml", cwd=tmp_path).returncode == 0
    r = bench("report", "--study", "dv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lb = pd.read_csv(tmp_path / "runs" / "dv" / "report" / "leaderboard.csv")
    assert (lb["divergence_rate"] == 1.0).all() and lb["modes_captured"].isna().all()
    assert "infty" in (tmp_path / "runs" / "dv" / "report" / "leaderboard.tex").read_text()  # score ∞: every seed diverged
    compile_tex(tmp_path / "runs" / "dv" / "report" / "leaderboard.tex", tmp_path / "latex")
    assert "nothing to draw" in (tmp_path / "runs" / "dv" / "report" / "index.html").read_text()


def test_report_of_a_missing_study_is_one_line(tmp_path):
    r = bench("report", "--study", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "no study storage" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --- several studies -----------------------------------------------------------------------------------



@pytest.mark.slow
def test_leaderboard_puts_gan_and_vae_studies_side_by_side(tmp_path, mnist_dir):
    for name, model in (("lb_gan", "gan"), ("lb_vae", "vae")):
        (tmp_path / f"{name}.toml").write_text(study_toml(
            "mnist", name=name, n_trials=2, steps=30, eval_every=30, eval="inception_top_k = 0", models=(model,),
            regularizers=("none", "l2"), space="lr = { low = 1e-4, high = 1e-3, log = true }\n"))
        r = bench("run", "--study", f"{name}.toml", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    r = bench("leaderboard", "lb_gan", "lb_vae", "--out", "cross/mnist", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "cross" / "mnist.csv")
    assert set(table["study"]) == {"lb_gan", "lb_vae"} and set(table["model"]) == {"gan", "vae"}
    assert {"domain_fid", "precision", "coverage"} <= set(table.columns)
    fids = table["domain_fid"].dropna()
    assert list(fids) == sorted(fids)
