"""The `bench` command as a user runs it: real subprocesses, real storage, real MNIST when present."""

from __future__ import annotations

import io
import json
import math
import os
import time
import subprocess
import sys
from pathlib import Path

import optuna
from bench.storage import all_trials
import pandas as pd
import pytest
from helpers import run_main, study_toml

BENCH = [sys.executable, "-m", "bench.cli"]


def bench(*args, cwd: Path, timeout=900):  # a hang's safety net, not a speed limit: generous under load
    return subprocess.run([*BENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


VALID = study_toml("mnist", n_trials=2, eval="inception_top_k = 0", regularizers=("none", "gp"))

MALFORMED = {
    "toml syntax": ("dataset = 'mnist\n", "invalid TOML"),
    "unknown top key": (VALID + "\nfoo = 1\n", "foo: unknown key"),
    "unknown model": (VALID.replace('["gan"]', '["gam"]'), "space.models: unknown model 'gam'"),
    "unknown regularizer": (VALID.replace('"gp"]', '"gpp"]'), "space.regularizers: unknown regularizer 'gpp'"),
    "inverted range": (VALID + 'lam = { low = 10.0, high = 1.0, log = true }\n', "space.lam: empty or inverted"),
    "log range at zero": (VALID + 'lr = { low = 0.0, high = 1.0, log = true }\n', "space.lr: log range needs low > 0"),
    "negative steps": (VALID.replace("steps = 20", "steps = -5"), "train.steps"),
    "unknown dataset": (VALID.replace('"mnist"', '"cifar"'), "dataset"),
    "missing space": ("dataset = 'mnist'\n", "space: Field required"),
    "vae with only D-side regs": (VALID.replace('["gan"]', '["vae"]').replace('"none", "gp"', '"gp", "r1"'),
                                  "none of the regularizers"),
    "eval beyond split": (VALID.replace("samples = 200", "samples = 20000"), "exceeds the 10000 images"),
    "2D model on images": (VALID.replace('["gan"]', '["mlp2d"]'), "model 'mlp2d' is for points data"),
    "image model on the ring": (VALID.replace('dataset = "mnist"', 'dataset = "ring"\nmetric = "reverse_kl"'),
                                "model 'gan' is for image data"),
    "regularizer for no listed model": (VALID.replace('["gan"]', '["vae"]').replace('"none", "gp"', '"none", "spectral_norm"'),
                                        "regularizer 'spectral_norm' applies to gan models"),
    "metric of another dataset": (VALID.replace('dataset = "mnist"', 'dataset = "mnist"\nmetric = "reverse_kl"'),
                                  "metric 'reverse_kl' is not one of 'mnist'"),
    "wrong direction": (VALID.replace('dataset = "mnist"', 'dataset = "mnist"\ndirection = "maximize"'),
                        "must be minimized"),
    "n_critic zero": (VALID + "n_critic = [0, 1]\n", "space.n_critic: n_critic values must be ≥ 1"),
    "objectives without a GAN": (VALID.replace('["gan"]', '["vae"]').replace('"none", "gp"', '"none"')
                                 + 'objectives = ["wgan"]\n', "need a GAN model"),
    "unknown key in a table": (VALID.replace("steps = 20", "step = 20"), "train.step: unknown key"),
    "unknown sampler": (VALID.replace('n_trials = 2', 'n_trials = 2\nsampler = "bayes"'), "sampler: Input should be"),
    "unknown pruner": (VALID.replace('n_trials = 2', 'n_trials = 2\npruner = "asha"'), "pruner: Input should be"),
    "pruning a multi-objective study": (VALID.replace('n_trials = 2', 'n_trials = 2\npruner = "median"\n'
                                                      'pareto_with = ["late_std"]'), "needs a single objective"),
    "unknown pareto objective": (VALID.replace('n_trials = 2', 'n_trials = 2\npareto_with = ["speed"]'),
                                 "pareto_with: unknown objective 'speed'"),
    "grid smaller than n_trials": (VALID.replace('n_trials = 2', 'n_trials = 50\nsampler = "grid"').replace(
        "[space]", "[search]\njoint = true\n[space]"),
                                   "n_trials=50 exceeds the 12 points of the grid"),
    "epochs on a sampled dataset": (VALID.replace('dataset = "mnist"', 'dataset = "ring"\nmetric = "reverse_kl"')
                                    .replace('["gan"]', '["mlp2d"]').replace("steps = 20", "epochs = 2"),
                                    "train.epochs needs a finite dataset"),
    "adam beta1 out of range": (VALID + "beta1 = { low = 0.5, high = 1.5 }\n", "space.beta1: Adam betas"),
    "zero batch size": (VALID + "batch_size = [0, 64]\n", "space.batch_size: batch sizes must be ≥ 1"),
    "negative confirmation seeds": (VALID.replace("seeds = 0", "seeds = -3"), "confirm.seeds"),
    "NaN equivalence margin": (VALID.replace("seeds = 0", "seeds = 6\nmargin = nan"), "confirm.margin"),
    "confirmation baseline not in the space": (VALID.replace("seeds = 0", 'seeds = 6\nbaseline = "r1"'),
                                               "confirm.baseline 'r1' is not one of the space's regularizers"),
    "confirmation of a multi-objective study": (VALID.replace('n_trials = 2', 'n_trials = 2\npareto_with = ["late_std"]')
                                                .replace("seeds = 0", "seeds = 6"), "set confirm.seeds = 0"),
    "zero population": (VALID.replace("steps = 20", "steps = 20\npopulation = 0"),
                        "train.population: population must be 'auto' or an integer in 1..4096"),
    # issue 33: validated before anything is stored
    "name escapes runs/": ('name = "../../escaped"\n' + VALID, "name: study name '../../escaped' must be"),
    "empty name": ('name = ""\n' + VALID, "name: study name '' must be"),
    "λ range up to inf": (VALID + 'lam = { low = 1e-3, high = inf, log = true }\n', "space.lam: a range needs finite bounds"),
    "negative lr range": (VALID + 'lr = { low = -1e-3, high = 1e-2 }\n', "space.lr: lr must be > 0"),
    "negative λ range": (VALID + 'lam = { low = -1.0, high = 1.0 }\n', "space.lam: λ must be ≥ 0"),
    "negative seed": ("seed = -3\n" + VALID, "seed: Input should be greater than or equal to 0"),
    "batch beyond the dataset": (VALID.replace("[eval]", "batch_size = 70000\n[eval]"), "batch size 70000 exceeds"),
    "grid with a confirmation": (VALID.replace('n_trials = 2', 'n_trials = 2\nsampler = "grid"').replace(
        "seeds = 0", "seeds = 3"), "sampler 'grid' works on the whole space"),
    "joint search with verdicts": (VALID.replace("seeds = 0", "seeds = 3").replace("[space]", "[search]\njoint = true\n[space]"),
                                   "a joint search is exploration"),
    "zero per-arm trials": (VALID.replace("[space]", "[search]\nper_arm = 0\n[space]"), "search.per_arm"),
    "six confirmation stages": (VALID.replace("seeds = 0", "seeds = 3\nstages = 6"), "confirm.stages"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_spec_is_one_line_exit_2(case, tmp_path, capsys, monkeypatch):
    text, expect = MALFORMED[case]
    (tmp_path / "bad.toml").write_text(text)
    code, out, err = run_main(["run", "--study", "bad.toml"], tmp_path, capsys, monkeypatch)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expect in lines[0], lines[0]


def test_malformed_spec_from_a_real_process(tmp_path):
    (tmp_path / "bad.toml").write_text(MALFORMED["unknown regularizer"][0])
    r = bench("run", "--study", "bad.toml", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: bad.toml: space.regularizers: unknown regularizer 'gpp'; known: none, l1, l2, feature_norm, output_norm, gp, r1")


def test_unknown_study_name(tmp_path, capsys, monkeypatch):
    code, _, err = run_main(["run", "--study", "no_such_study"], tmp_path, capsys, monkeypatch)
    assert code == 2 and "no study named 'no_such_study'" in err and len(err.strip().splitlines()) == 1


def test_unreachable_storage(tmp_path):
    (tmp_path / "ok.toml").write_text(VALID)
    r = bench("run", "--study", "ok.toml", "--storage", "postgresql://bob:s3cret@127.0.0.1:1/x", cwd=tmp_path)
    assert r.returncode == 2 and "cannot open storage" in r.stderr
    assert "s3cret" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_data_is_one_line(tmp_path):
    (tmp_path / "ok.toml").write_text(VALID)
    env_data = tmp_path / "nodata"
    env_data.mkdir()  # an empty folder: a missing one is refused as a bad --data-dir (tests/e2e/test_bad_input.py)
    r = subprocess.run([*BENCH, "run", "--study", "ok.toml", "--data-dir", str(env_data)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "STABGEN_DATA_DIR": str(env_data), "STABGEN_CACHE_DIR": str(tmp_path / "c"),
                            "no_proxy": "*", "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("error: mnist file") and "STABGEN_DATA_DIR" in err and "Traceback" not in r.stderr


RING_SPEC = study_toml(n_trials=2, steps=40, eval_every=20, samples=300, confirm="seeds = 2", regularizers=("none", "r1"))


@pytest.mark.slow
def test_tables_print_as_json_csv_and_markdown(tmp_path):
    """--format json: one object per table and line, raw numbers; csv: '# title' then the table;
    md: Markdown even where rich would draw a box. The same tables as the report files."""
    spec = tmp_path / "fmt.toml"
    spec.write_text(RING_SPEC)
    r = bench("run", "--study", str(spec), "--format", "json", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    tables = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    titles = [t["table"] for t in tables]
    assert any("confirmation" in t for t in titles) and any("search configs" in t for t in titles)
    configs = next(t["rows"] for t in tables if "search configs" in t["table"])
    assert len(configs) == len(pd.read_csv(tmp_path / "runs/fmt/leaderboard.csv"))
    assert all(isinstance(row["modes_captured"], (int, float)) for row in configs)  # raw numbers, not "7 [6, 8]"
    rep = bench("report", "--study", "fmt", "--format", "csv", cwd=tmp_path, timeout=600)
    assert rep.returncode == 0, rep.stderr
    blocks = [b for b in rep.stdout.strip().split("\n\n") if b.strip()]
    assert blocks[0].startswith("# fmt: confirmation")
    conf = pd.read_csv(io.StringIO(blocks[0]), comment="#")
    assert len(conf) >= 1 and {a.split("/")[-1] for a in conf["arm"]} <= {"none", "r1"} and "seeds" in conf
    md = bench("list", "regularizers", "--format", "md", cwd=tmp_path)
    assert md.returncode == 0 and "| output_norm" in md.stdout
    bad = bench("list", "--format", "xml", cwd=tmp_path)
    assert bad.returncode == 2 and "'xml' is not one of" in bad.stderr


def test_list_regularizers(tmp_path):
    r = bench("list", "regularizers", cwd=tmp_path)
    assert r.returncode == 0
    for name in ("none", "l1", "l2", "feature_norm", "gp", "r1"):
        assert name in r.stdout


def test_help_reads_like_documentation(tmp_path):
    r = bench("run", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "Rerunning resumes" in r.stdout and "STABGEN_DATA_DIR" in r.stdout


@pytest.mark.slow
def test_diverging_trial_is_recorded_and_study_completes(tmp_path, mnist_dir):
    (tmp_path / "div.toml").write_text(VALID + "lr = { low = 1e29, high = 1e30, log = true }\n")
    r = bench("run", "--study", "div.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="div", storage=f"sqlite:///{tmp_path}/runs/div/study.db")
    assert len(study.trials) == 2
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert t.user_attrs["status"] == "diverged" and t.user_attrs["diverged_step"] >= 1
    lb = pd.read_csv(tmp_path / "runs/div/leaderboard.csv")  # per config: every one diverged
    assert (lb["divergence_rate"] == 1.0).all()
    assert (pd.read_csv(tmp_path / "runs/div/trials.csv")["status"] == "diverged").all()


@pytest.mark.slow
def test_smoke_study_end_to_end(tmp_path, mnist_dir, monkeypatch):
    r = bench("run", "--study", "smoke", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "wall time" in r.stderr
    assert "| rank" in r.stdout and "…" not in r.stdout  # piped: whole Markdown tables, no squeezed cell
    lb = pd.read_csv(tmp_path / "runs/smoke/trials.csv")  # per trial (leaderboard.csv: per search config)
    search = lb[lb["confirm_arm"].isna()]
    arms = 5  # gan/ns/{none, l2, r1} and vae/{none, l2}: one search trial each (search.per_arm = 1)
    assert len(search) == arms and list(lb["rank"]) == list(range(1, len(lb) + 1))
    conf = pd.read_csv(tmp_path / "runs/smoke/confirm.csv")  # smoke's [confirm]: 2 seeds per arm, one look
    assert len(conf) == arms and len(lb) == arms + 2 * len(conf) and set(conf["seeds"]) == {2}
    assert set(conf["baseline"]) == {"gan/ns/none", "vae/none"}  # each family its own baseline
    assert len(pd.read_csv(tmp_path / "runs/smoke/leaderboard.csv")) == arms
    header = (tmp_path / "runs/smoke/leaderboard.md").read_text()  # what the Inception column is, said once
    weights = Path(os.environ["STABGEN_INCEPTION_WEIGHTS"]).name
    assert f"of 1 search trial(s), the best by the study metric: 50 fake vs 50 real mnist/test; weights {weights}" in header
    done = lb[lb["status"] == "completed"]
    assert len(done) >= 1 and all(math.isfinite(v) for v in done["domain_fid"])
    for t in lb["trial"]:
        d = tmp_path / "runs/smoke/trials" / str(t)
        assert (d / "history.csv").exists() and json.loads((d / "metrics.json").read_text())["status"]
    # the benchmark's FID-against-N of one confirmation run (bench.agreement): its generator's first N samples
    from bench import agreement, api
    assert agreement.SAMPLE_SIZES == (500, 1000, 2000, 5000, 10000)
    monkeypatch.setattr(agreement, "SAMPLE_SIZES", (500, 1000))  # the path at two sizes: 10,000 images cost CI 10 s
    rec = api.open_study("smoke", runs_dir=tmp_path / "runs")
    run = int(lb.loc[lb["confirm_arm"].notna() & (lb["status"] == "completed"), "trial"].iloc[0])
    fids = api._run_fids(None, "cpu")(rec, run)
    assert list(fids) == [500, 1000] and all(0 < v < math.inf for v in fids.values())
    # at the study's own N (1,000) it is the run's recorded domain FID: same fixed noise, same reference subset
    assert fids[1000] == pytest.approx(float(lb.loc[lb["trial"] == run, "domain_fid"].iloc[0]), rel=1e-6)
    # resuming with the same command adds no trials and keeps the record — and the wall time of the run
    # that trained (a resume of a finished study took seconds; it is not "the last run's wall time")
    db = f"sqlite:///{tmp_path}/runs/smoke/study.db"
    wall = optuna.load_study(study_name="smoke", storage=db).user_attrs["last_wall_seconds"]
    r2 = bench("run", "--study", "smoke", cwd=tmp_path)
    assert r2.returncode == 0
    study = optuna.load_study(study_name="smoke", storage=db)
    assert len(all_trials(study)) == len(lb) and study.user_attrs["last_wall_seconds"] == wall


@pytest.mark.slow
def test_bench_metrics_real_vs_test_classifier(tmp_path, mnist_dir):
    # N = 3,000 (FID 0.51 on the reference machine; README shows N = 10,000, FID 0.26)
    r = bench("metrics", "--real-vs", "test", "--extractor", "classifier", "--n", "3000",  # mnist: the default
              "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["samples"] == "mnist/test (real)" and res["dataset"] == "mnist"
    assert res["n_fake"] == 3000 and res["n_real"] == 3000 and res["extractor"] == "classifier"
    assert res["fid"] < 1.0 and res["classes_covered"] == 10 and res["is"] > 9.0
    assert 0.8 < res["precision"] <= 1 and 0.9 < res["coverage"] <= 1 and abs(res["density"] - 1) < 0.1
    print(f"bench metrics --real-vs test --n 3000 (classifier): {res['seconds']}s, FID {res['fid']:.3f}")


def test_bench_metrics_on_user_samples(tmp_path, mnist_dir, capsys, monkeypatch):
    import numpy as np
    noise = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "noise.npz", samples=noise)
    code, out, err = run_main(["metrics", "--samples", "noise.npz", "--n", "300", "--json"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    assert res["fid"] > 100 and res["n_fake"] == 300 and res["samples"] == "noise.npz"


def test_bench_metrics_needs_one_source(tmp_path, capsys, monkeypatch):
    code, _, err = run_main(["metrics", "--dataset", "mnist"], tmp_path, capsys, monkeypatch)
    assert code == 2 and "exactly one of --samples" in err


@pytest.mark.slow
def test_ring_study_reports_modes(tmp_path):
    r = bench("run", "--study", "ring_reg", "--trials", "1", "--confirm-seeds", "2", "--steps", "100", cwd=tmp_path,
              timeout=900)
    assert r.returncode == 0, r.stderr
    lb = pd.read_csv(tmp_path / "runs/ring_reg/trials.csv")
    arms = 7  # the GAN with each of ring_reg's 7 regularizers, one search trial each
    assert lb["confirm_arm"].isna().sum() == arms and {"modes_captured", "high_quality", "reverse_kl"} <= set(lb.columns)
    conf = pd.read_csv(tmp_path / "runs/ring_reg/confirm.csv")  # --confirm-seeds: 2 paired seeds per arm
    assert (conf["seeds"] == 2).all() and len(conf) == arms and len(lb) == arms + 2 * arms
    assert set(conf["baseline"]) == {"mlp2d_small/ns/none"} and set(conf["gate"]) <= {"passed", "did not train"}
    assert lb["modes_captured"].between(0, 8).all()
    assert {"modes_captured", "reverse_kl_ci_low"} <= set(pd.read_csv(tmp_path / "runs/ring_reg/leaderboard.csv"))
    assert "modes_captured" in (tmp_path / "runs/ring_reg/leaderboard.md").read_text()
    assert (tmp_path / "runs/ring_reg/trials/0/samples.png").stat().st_size > 1000


@pytest.mark.slow
def test_stacked_mnist_study(tmp_path, mnist_dir):
    (tmp_path / "stacked.toml").write_text(study_toml(
        "stacked-mnist", metric="stacked_modes", steps=30, eval_every=30, batch_size=16, samples=500,
        eval="inception_top_k = 0", models=("infogan",), regularizers=("r1",), space='objectives = ["hinge"]'))
    r = bench("run", "--study", "stacked.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lb = pd.read_csv(tmp_path / "runs/stacked/trials.csv")
    assert lb.loc[0, "stacked_modes"] >= 1 and math.isfinite(lb.loc[0, "stacked_kl"])


def test_unavailable_device_is_one_line(tmp_path, capsys, monkeypatch):
    import torch
    (tmp_path / "ok.toml").write_text(VALID)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_main(["run", "--study", "ok.toml", "--device", "cuda"], tmp_path, capsys, monkeypatch)
    assert code == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(["run", "--study", "ok.toml", "--device", "tpu"], tmp_path, capsys, monkeypatch)
    assert code == 2 and "tpu" in err


@pytest.mark.slow
def test_top_k_configs_are_rerun_over_extra_seeds(tmp_path):
    (tmp_path / "seeds.toml").write_text(study_toml(
        n_trials=2, steps=60, eval_every=60, samples=500, eval="inception_top_k = 0",
        sections="[seeds]\ntop_k = 1\nextra = 2", regularizers=("none", "r1"),
        space="lr = { low = 1e-3, high = 3e-3, log = true }"))
    r = bench("run", "--study", "seeds.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    storage = f"sqlite:///{tmp_path}/runs/seeds/study.db"
    study = optuna.load_study(study_name="seeds", storage=storage)
    reruns = [t for t in all_trials(study) if "reeval_of" in t.user_attrs]
    assert len(study.trials) == 2 and len(reruns) == 2  # the re-runs in their own study (bench.storage.owed_study)
    src = study.trials[reruns[0].user_attrs["reeval_of"]]
    seeds = {t.user_attrs["config"]["seed"] for t in [src, *reruns]}
    assert len(seeds) == 3 and all(t.params == src.params for t in reruns)
    cfg = pd.read_csv(tmp_path / "runs/seeds/leaderboard.csv")  # one row per config
    assert cfg["seeds"].max() == 3 and list(cfg["rank"]) == sorted(cfg["rank"]) and len(cfg) == 2
    assert cfg["reverse_kl_ci_low"].notna().any()  # a 3-seed config has a CI
    r2 = bench("run", "--study", "seeds.toml", cwd=tmp_path)  # resuming owes nothing: no new trials
    assert r2.returncode == 0 and len(all_trials(optuna.load_study(study_name="seeds", storage=storage))) == 4


def test_undefined_metric_is_stored_as_null_not_nan(tmp_path):
    """A ring trial whose samples are all far from the modes: reverse KL is undefined."""
    (tmp_path / "far.toml").write_text(study_toml(
        metric="reverse_kl", steps=2, eval_every=1, batch_size=10, eval="inception_top_k = 0",
        space="lr = { low = 1e-5, high = 2e-5, log = true }"))
    r = bench("run", "--study", "far.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    t = optuna.load_study(study_name="far", storage=f"sqlite:///{tmp_path}/runs/far/study.db").trials[0]
    m = t.user_attrs["metrics"]
    assert m["high_quality"] == 0.0  # a 2-step generator misses every 3σ = 0.03 ball (seeded)
    assert m["reverse_kl"] is None and t.user_attrs["status"] == "metric_undefined"
    assert t.intermediate_values == {}  # nothing undefined was reported to the pruner
    assert "nan" not in json.dumps(t.user_attrs).lower()


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interruption_keeps_finished_trials_and_retries_the_running_config(tmp_path, sig):
    """^C or SIGTERM (Slurm's time limit) while trial 1 is held at step 100 (bench.search.hold_point: a
    known point, not a sleep): finished trials stay, the running config is queued again and trained on resume."""
    import signal
    # the search's interruption is under test: no confirmation, and 150 steps (held at 100)
    args = [*BENCH, "run", "--study", "ring_reg", "--trials", "1", "--confirm-seeds", "0", "--steps", "150"]
    flag = tmp_path / "held"
    env = {**os.environ, "COLUMNS": "200", "STABGEN_TEST_HOLD": f"1:100:{flag}"}
    # A terminal user's process has SIGINT at its default; a CI runner may start us with SIGINT
    # ignored (background jobs of non-interactive shells), which exec would pass on to the child.
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    storage = f"sqlite:///{tmp_path}/runs/ring_reg/study.db"
    deadline = time.time() + 240
    while not flag.exists():  # trial 0 finished, trial 1 at step 100
        assert proc.poll() is None and time.time() < deadline, "the run did not reach the hold point"
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=180)  # generous for a loaded machine; a swallowed ^C would exit 0, not 130
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[sig], err
    assert ("interrupted" if sig == "SIGINT" else "terminated") + ": finished trials are saved" in err
    assert "Traceback" not in err
    trials = optuna.load_study(study_name="ring_reg", storage=storage).trials
    first = trials[0]
    assert first.state in FINISHED  # completed, or pruned as diverged / metric undefined
    assert trials[1].state == optuna.trial.TrialState.FAIL
    held = trials[1]
    resume = {k: v for k, v in env.items() if k != "STABGEN_TEST_HOLD"}
    r = subprocess.run(args, cwd=tmp_path, env=resume, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    after = optuna.load_study(study_name="ring_reg", storage=storage).trials
    done = [t for t in after if t.state in FINISHED and "confirm_arm" not in t.user_attrs]
    assert len(done) == 7 and done[0].number == 0  # one per arm: the failed trial's arm was queued again
    retried = [t for t in after if t.user_attrs.get("retry_of") == held.number]
    assert len(retried) == 1 and retried[0].state in FINISHED  # the same config, the same seed, trained
    assert retried[0].params == held.params and retried[0].user_attrs["config"] == held.user_attrs["config"]
    assert (done[0].state, done[0].value, done[0].user_attrs) == (first.state, first.value, first.user_attrs)
