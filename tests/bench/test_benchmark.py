"""The benchmark (bench.benchmark): normalization on a hand-computed case, the point aggregates against
rliable.metrics on fixed arrays, the stratified-bootstrap intervals' coverage by simulation, the 2D
chance rows recomputed, and a two-task suite end to end — resumed after kill -9 without re-running the
study that had finished."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import compile_tex, study_toml

BENCH = [sys.executable, "-m", "bench.cli"]


def test_normalization_by_hand():
    """0 at the chance row, 1 at real data, in the metric's direction; a diverged run takes the task's
    worst (0, or the lowest finite score if that is lower)."""
    from bench.benchmark import Scale, normalized

    fid = Scale(chance=300.0, floor=2.0)  # minimize: (x − 300) / (2 − 300)
    assert fid(151.0) == pytest.approx(0.5) and fid(300.0) == 0 and fid(2.0) == 1 and fid(598.0) == pytest.approx(-1)
    hq = Scale(chance=0.05, floor=0.95)  # maximize
    assert hq(0.5) == pytest.approx(0.5)
    s = normalized(np.array([151.0, np.inf, 449.0]), fid)
    assert s == pytest.approx([0.5, -0.5, -0.5])  # the diverged run at the task's worst finite score
    assert normalized(np.array([151.0, np.inf]), fid) == pytest.approx([0.5, 0.0])  # or at chance


def test_an_image_tasks_real_floor_reads_the_domain_metric_under_its_unprefixed_name(tmp_path):
    """bench metrics (api.score_samples) names the classifier's FID "fid"; a trial records it as
    "domain_fid". The floor of an image task reads the one as the other (a KeyError ended the first
    real core-suite report), and a metric with no classifier floor is one line."""
    from bench.benchmark import real_floor
    from stabgen.errors import StabgenError

    calls = []

    def score_real(dataset, split, n):
        calls.append((dataset, split, n))
        return {"fid": 0.42, "kid": 1e-4, "precision": 0.9}

    cache = tmp_path / "floors.json"
    assert real_floor("mnist", "domain_fid", 5000, None, score_real, cache) == 0.42
    assert calls == [("mnist", "test", 5000)]
    assert real_floor("mnist", "domain_fid", 5000, None, score_real, cache) == 0.42 and len(calls) == 1  # cached
    with pytest.raises(StabgenError, match="no real-vs-real floor for metric 'inception_fid'"):
        real_floor("mnist", "inception_fid", 5000, None, score_real, cache)


def _matrix(seed: int = 0, runs: int = 7, tasks: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.5, 0.3, size=(runs, tasks))


def _tasks(m: np.ndarray) -> dict[str, np.ndarray]:
    return {f"t{j}": m[:, j] for j in range(m.shape[1])}


def test_point_aggregates_equal_rliable_metrics():
    from rliable import metrics as rl

    from bench import benchmark as bm

    x, y = _matrix(0), _matrix(1) + 0.1
    assert bm.iqm(_tasks(x)) == pytest.approx(rl.aggregate_iqm(x))
    assert bm.mean_score(_tasks(x)) == pytest.approx(rl.aggregate_mean(x))
    assert bm.optimality_gap(_tasks(x)) == pytest.approx(rl.aggregate_optimality_gap(x, gamma=1))
    assert bm.probability_of_improvement(_tasks(y), _tasks(x)) == pytest.approx(rl.probability_of_improvement(y, x))
    ties = np.round(x * 4) / 4  # ties count half, as in rliable's Mann-Whitney form
    assert bm.probability_of_improvement(_tasks(ties), _tasks(ties[::-1])) == pytest.approx(
        rl.probability_of_improvement(ties, ties[::-1]))


def test_poi_matrix_is_rliables_probability_of_improvement_for_every_pair():
    import pandas as pd
    from rliable import metrics as rl

    from bench import benchmark as bm

    mats = {"none": _matrix(0), "r1": _matrix(1) + 0.1, "gp": _matrix(2) - 0.05}
    runs = pd.DataFrame([{"regularizer": reg, "task": f"t{j}", "seed": i, "score": m[i, j]}
                         for reg, m in mats.items() for i in range(m.shape[0]) for j in range(m.shape[1])])
    got = bm.poi_matrix(runs)
    for a in mats:
        for b in mats:
            want = rl.probability_of_improvement(mats[a], mats[b]) if a != b else np.nan
            assert got.loc[a, b] == pytest.approx(want, nan_ok=True)


def test_performance_profile_is_the_task_averaged_share_above_tau():
    from bench.benchmark import profile

    tasks = {"a": np.array([0.1, 0.5, 0.9, 1.0]), "b": np.array([0.0, 0.2])}
    got = profile(tasks, np.array([0.15, 0.95]))
    assert got == pytest.approx([(3 / 4 + 1 / 2) / 2, (1 / 4 + 0) / 2])


def test_stratified_bootstrap_intervals_cover_at_their_nominal_rate():
    """Five tasks of seven runs from known distributions: the 95 % stratified-bootstrap interval of the
    mean and of the IQM (a symmetric law: IQM = mean) covers the true value in about 95 % of 200
    simulated benchmarks (percentile intervals with 7 runs a task run a little narrow: ≥ 0.88)."""
    from bench.benchmark import iqm, mean_score, stratified_ci

    rng = np.random.default_rng(7)
    centres = np.array([0.2, 0.4, 0.5, 0.7, 0.9])
    truth = centres.mean()
    hits = {"mean": 0, "iqm": 0}
    sims = 200
    for i in range(sims):
        tasks = {f"t{j}": rng.normal(c, 0.2, 7) for j, c in enumerate(centres)}
        for name, f in (("mean", mean_score), ("iqm", iqm)):
            lo, hi = stratified_ci(f, tasks, n_boot=200, seed=i)
            hits[name] += lo <= truth <= hi
    # the IQM of pooled tasks with different centres is not the mean of centres: check the mean strictly,
    # the IQM loosely (its own estimand differs slightly from the centres' mean)
    assert 0.88 <= hits["mean"] / sims <= 0.99, hits
    assert hits["iqm"] / sims >= 0.8, hits


def test_2d_chance_rows_for_the_benchmark_recompute():
    from bench.papers.pacgan2018 import chance_samples
    from stabgen.datasets import DATASETS
    from stabgen.metrics.modes import mixture_modes
    from stabgen.sources import GRID, RING

    for name, mix in (("ring", RING), ("grid", GRID)):
        r = [mixture_modes(chance_samples("uniform", name, 1000 * t + 7, 2500), mix.centers, mix.sigma)
             for t in range(10)]
        row = DATASETS.get(name).chance["uniform noise"]
        for k in ("high_quality", "modes_captured", "reverse_kl"):
            assert float(np.mean([x[k] for x in r])) == pytest.approx(row[k], abs=0.0051), (name, k)


def test_suite_files_name_studies_that_load():
    from bench import api
    from bench.benchmark import SUITES, load_suite

    for path in sorted(SUITES.glob("*.toml")):
        name, suite, studies = load_suite(path.stem)
        specs = [api.load_spec(s) for s in studies]
        assert all(not s.joint and s.confirm.seeds > 0 for s in specs), name
    _, core, _ = load_suite("core")
    datasets = {api.load_spec(s).dataset for s in core.studies}
    assert datasets == {"mnist", "fashion-mnist", "ring", "grid"}  # five tasks: MNIST's study has two families


def _tiny(name: str) -> str:
    return study_toml("ring", name=name, n_trials=2, regularizers=("none", "r1"),
                      top="[search]\nper_arm = 1\n", confirm="seeds = 3\nstages = 1")


@pytest.mark.slow
def test_a_two_task_suite_runs_writes_its_report_and_resumes_after_kill_9(tmp_path):
    import optuna
    import pandas as pd

    for name in ("ta", "tb"):
        (tmp_path / f"{name}.toml").write_text(_tiny(name))
    (tmp_path / "suite.toml").write_text('description = "two tiny ring tasks"\nstudies = ["ta.toml", "tb.toml"]\n')
    env = {**os.environ, "COLUMNS": "200"}
    p = subprocess.Popen([*BENCH, "benchmark", "--suite", "suite.toml", "--out", "out"], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = tmp_path / "runs" / "ta" / "leaderboard.csv"  # study ta finished (its report is its last step)
    deadline = time.time() + 300
    while not first.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    db = f"sqlite:///{tmp_path / 'runs' / 'ta' / 'study.db'}"
    before = [(t.number, t.datetime_complete) for t in optuna.load_study(study_name="ta", storage=db).trials]
    # --report-only while tb is unfinished: the benchmark of ta alone, labelled partial; nothing trains
    tb = tmp_path / "runs" / "tb" / "study.db"
    tb_before = tb.read_bytes() if tb.exists() else None
    part = subprocess.run([*BENCH, "benchmark", "--suite", "suite.toml", "--report-only", "--out", "partial"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert part.returncode == 0, part.stderr[-2000:]
    assert "PARTIAL" in part.stdout
    assert "**PARTIAL**: 1 of 2 studies finished; not yet: tb" in (tmp_path / "partial" / "leaderboard.md").read_text()
    assert set(pd.read_csv(tmp_path / "partial" / "tasks.csv")["task"]) == {"ta:mlp2d_small/ns"}
    assert (tb.read_bytes() if tb.exists() else None) == tb_before  # tb's storage untouched
    r = subprocess.run([*BENCH, "benchmark", "--suite", "suite.toml", "--out", "out"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    after = [(t.number, t.datetime_complete) for t in optuna.load_study(study_name="ta", storage=db).trials]
    assert after == before  # the finished study trained nothing again
    out = tmp_path / "out"
    lb = pd.read_csv(out / "leaderboard.csv")
    assert set(lb["regularizer"]) == {"none", "r1"}
    assert {"iqm", "iqm_ci_low", "iqm_ci_high", "optimality_gap", "p_improvement"} <= set(lb.columns)
    tasks = pd.read_csv(out / "tasks.csv")
    # every arm of both tasks, 3 seeds each (said on failure: which task lost which arm)
    assert tasks.groupby(["task", "regularizer"]).size().to_dict() == {
        (t, r): 3 for t in ("ta:mlp2d_small/ns", "tb:mlp2d_small/ns") for r in ("none", "r1")}
    norm = pd.read_csv(out / "normalization.csv")
    assert (norm["chance (0)"] == 3.8).all()  # the ring's uniform-noise row for modes_captured
    compile_tex(out / "leaderboard.tex", tmp_path / "latex")  # as a paper \input's it
    md = (out / "leaderboard.md").read_text()
    assert "Regularizers across tasks" in md and "Holm over the whole benchmark" in md
    assert (out / "iqm.png").stat().st_size > 1000 and "regularizers across 2 tasks" in r.stdout
    metrics = pd.read_csv(out / "metrics.csv")  # every run × every metric the ring reports: what τ is computed on
    counts = metrics.groupby(["study", "metric"]).size().to_dict()  # said on failure: which study lost which metric
    assert set(metrics["metric"]) == {"modes_captured", "high_quality", "reverse_kl"} and len(metrics) == 3 * 12, (
        counts, tasks.to_dict("records"))
    agree = pd.read_csv(out / "agreement.csv")
    assert len(agree) == 2 * 3 and (agree.loc[agree["metric"] == "modes_captured", "tau"].dropna() == 1.0).all()
    assert "Do the metrics agree?" in md and "flips_on" in pd.read_csv(out / "claims.csv").columns
    page = (out / "index.html").read_text()
    for fig in ("iqm", "profiles", "poi", "tasks", "agreement"):  # each figure drawn and shown on the page
        assert (out / f"{fig}.png").stat().st_size > 1000 and f"src='{fig}.png'" in page, fig
    assert "Regularizers across tasks" in page and "<table" in (out / "leaderboard.html").read_text()


@pytest.mark.slow
def test_plan_prices_a_study_and_a_suite_and_stores_nothing(tmp_path):
    for name in ("ta", "tb"):
        (tmp_path / f"{name}.toml").write_text(_tiny(name))
    (tmp_path / "suite.toml").write_text('studies = ["ta.toml", "tb.toml"]\n')
    env = {**os.environ, "COLUMNS": "250"}
    r = subprocess.run([*BENCH, "benchmark", "--suite", "suite.toml", "--plan", "--format", "csv"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ta,mlp2d_small/ns/none: search (1),1,1" in r.stdout
    assert "tb,mlp2d_small/ns/r1: confirmation,3,3," in r.stdout  # its 3 seeds train as one population
    assert "tb,mlp2d_small/ns/r1: confirmation,3" in r.stdout
    assert "16 trainings" in r.stdout  # 2 studies × 2 arms × (1 search + 3 confirmation seeds)
    # each study's fresh process, timed to its first training (a subprocess that really starts)
    starts = re.findall(r"^(t[ab]),start-up of a fresh process,0,1,0,0,0,0,—,—,([0-9.]+),", r.stdout, re.M)
    assert [s for s, _ in starts] == ["ta", "tb"] and all(float(sec) > 0 for _, sec in starts), r.stdout[:800]
    s = subprocess.run([*BENCH, "run", "--study", "ta.toml", "--plan", "--jobs", "1"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert s.returncode == 0 and "8 trainings" in s.stdout, s.stderr[-2000:]
    one = re.search(r"estimated wall time ≈ (\S+) on", s.stdout).group(1)  # one process: the same time
    assert re.search(rf"with --jobs \(1 process × \d+ threads?\): ≈ {re.escape(one)},", s.stdout), s.stdout[-600:]
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing stored
