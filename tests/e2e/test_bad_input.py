"""Bad input across every subcommand: one line naming what is wrong (and what to do), exit 2, no
traceback, and nothing already recorded lost. Files are missing, directories, empty, binary or
corrupt; counts are zero, negative, NaN or absurd; storages unreachable; devices absent.
(Usage errors that typer itself catches — an unknown choice, a non-number — exit 2 with its usage
box; every case that reaches stabgen's own checks is held to one line.) Every case runs beside a study
that already holds results, in a copy of one prepared folder, and leaves every file in it — the
study's database and trial folders included — byte for byte as it was. With the spec-file mistakes of
tests/e2e/test_cli.py (MALFORMED) this is the bad-input suite (issue 33)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
from pathlib import Path

import optuna
import pytest
from helpers import study_toml

VALID = study_toml()  # the ring at a tiny budget


def files(tmp: Path) -> None:
    (tmp / "ok.toml").write_text(VALID)
    (tmp / "empty.toml").write_text("")
    (tmp / "binary.toml").write_bytes(bytes(range(256)) * 4)
    (tmp / "adir.toml").mkdir()
    (tmp / "samples_dir").mkdir()
    (tmp / "garbage.pt").write_bytes(b"\x00not a tensor file\xff" * 10)
    (tmp / "empty.npy").write_bytes(b"")
    (tmp / "a_file").write_text("x")
    (tmp / "badsched.toml").write_text(VALID.replace("[train]\n", '[train]\nlr_schedule = "exponential"\n'))
    (tmp / "incep.toml").write_text(INCEPTION)
    (tmp / "suite_unknown.toml").write_text('studies = ["no_such_study"]\n')
    (tmp / "suite_empty.toml").write_text("studies = []\n")
    (tmp / "corrupt.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    for name, n in (("one_sample", 1), ("truncated_samples", 3)):
        (tmp / name).mkdir()
        for i in range(n):
            _png(tmp / name / f"{i}.png")
    png = (tmp / "truncated_samples" / "2.png").read_bytes()
    (tmp / "truncated_samples" / "2.png").write_bytes(png[: len(png) // 2])
    idx = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
           "t10k-labels-idx1-ubyte.gz")
    for folder, content in (("bad_data", b"\x1f\x8b\x08\x00 not deflate data" * 8),  # a broken gzip stream
                            ("short_data", gzip.compress(b"\x00\x00\x08\x03\x00\x00\xea\x60" + bytes(100)))):
        (tmp / folder / "mnist").mkdir(parents=True)
        for f in idx:
            (tmp / folder / "mnist" / f).write_bytes(content)


INCEPTION = VALID.replace('dataset = "ring"\nmetric = "modes_captured"', 'dataset = "mnist"').replace(
    '["mlp2d_small"]', '["gan"]').replace("batch_size = 50\nz_dim = 2\n", "").replace(
    "[eval]\n", "[eval]\ninception_top_k = 1\ninception_samples = 50\n")


def _png(path: Path) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype("uint8")).save(path)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """The bad files, beside a study (`ok`) that has already run: what a refused command must not touch."""
    import subprocess

    root = tmp_path_factory.mktemp("prepared")
    files(root)
    r = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--study", "ok.toml"], cwd=root,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root`, the study's database and trial folders included, by content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# (argv, text the one line must contain); "typer" = a usage error typer reports (exit 2, no traceback)
CASES = {
    "run: unknown study": (["run", "--study", "nope"], "no study named 'nope'"),
    "run: study is a directory": (["run", "--study", "adir.toml"], "is a directory"),
    "run: empty spec": (["run", "--study", "empty.toml"], "empty.toml"),
    "run: binary spec": (["run", "--study", "binary.toml"], "not a text file"),
    "run: unknown lr schedule": (["run", "--study", "badsched.toml"], "unknown lr_schedule 'exponential'"),
    "run: missing spec file": (["run", "--study", "missing.toml"], "does not exist"),
    "run: zero trials": (["run", "--study", "ok.toml", "--trials", "0"], "--trials must be a positive integer"),
    "run: negative trials": (["run", "--study", "ok.toml", "--trials", "-3"], "--trials must be a positive integer"),
    "run: zero steps": (["run", "--study", "ok.toml", "--steps", "0"], "--steps must be a positive integer"),
    "run: NaN heartbeat": (["run", "--study", "ok.toml", "--heartbeat", "nan"], "--heartbeat must be a positive"),
    "run: zero heartbeat": (["run", "--study", "ok.toml", "--heartbeat", "0"], "--heartbeat must be a positive"),
    "run: non-number trials": (["run", "--study", "ok.toml", "--trials", "many"], "typer"),
    "run: absurd trials": (["run", "--study", "ok.toml", "--trials", str(10**12)], "beyond any run"),
    "run: absurd steps": (["run", "--study", "ok.toml", "--steps", str(10**12)], "beyond any run"),
    "run: unknown device": (["run", "--study", "ok.toml", "--device", "tpu"], "device 'tpu'"),
    "run: absent CUDA": (["run", "--study", "ok.toml", "--device", "cuda:7"], "cuda"),
    "run: unknown storage scheme": (["run", "--study", "ok.toml", "--storage", "bogus://x"], "cannot open storage"),
    "run: storage under a file": (["run", "--study", "ok.toml", "--storage", "sqlite:///a_file/x.db"],
                                  "a_file"),
    "run: artifact store is a file": (["run", "--study", "ok.toml", "--artifacts", "a_file"], "is a file, not a folder"),
    "run: unknown format": (["run", "--study", "ok.toml", "--format", "xml"], "typer"),
    "worker: unknown study": (["worker", "--study", "nope"], "no study named 'nope'"),
    "worker: zero trials": (["worker", "--study", "ok.toml", "--trials", "0"], "--trials must be a positive integer"),
    "report: no such study": (["report", "--study", "ghost"], "no study storage"),
    "report: storage is a directory": (["report", "--study", "ghost", "--storage", "sqlite:///samples_dir"],
                                       "no study storage at samples_dir"),
    "leaderboard: no such study": (["leaderboard", "ghost"], "no study storage"),
    "list: unknown registry": (["list", "things"], "cannot list 'things'"),
    "metrics: no source": (["metrics", "--dataset", "mnist"], "exactly one of --samples"),
    "metrics: missing samples": (["metrics", "--samples", "missing.pt"], "missing.pt"),
    "metrics: empty folder": (["metrics", "--samples", "samples_dir"], "samples_dir"),
    "metrics: corrupt tensor file": (["metrics", "--samples", "garbage.pt"], "garbage.pt"),
    "metrics: empty npy": (["metrics", "--samples", "empty.npy"], "empty.npy"),
    "metrics: zero n": (["metrics", "--real-vs", "test", "--n", "0"], "--n"),
    "metrics: negative n": (["metrics", "--real-vs", "test", "--n", "-5"], "--n"),
    "metrics: unknown dataset": (["metrics", "--dataset", "cifar", "--real-vs", "test"], "cifar"),
    "metrics: unknown extractor": (["metrics", "--real-vs", "test", "--extractor", "vgg"], "vgg"),
    "reproduce: unknown paper": (["reproduce", "goodfellow2014"], "goodfellow2014"),
    "reproduce: unknown budget": (["reproduce", "mescheder2018", "--budget", "huge"], "huge"),
    "train-classifier: zero epochs": (["train-classifier", "--dataset", "mnist", "--epochs", "0"], "--epochs"),
    "train-classifier: unknown dataset": (["train-classifier", "--dataset", "cifar"], "cifar"),
    # issue 33: silently accepted or a traceback before
    "run: infinite heartbeat": (["run", "--study", "ok.toml", "--heartbeat", "inf"], "--heartbeat must be a positive"),
    "run: zero jobs": (["run", "--study", "ok.toml", "--jobs", "0"], "--jobs"),
    "run: jobs not a number": (["run", "--study", "ok.toml", "--jobs", "many"], "--jobs"),
    "run: negative confirmation seeds": (["run", "--study", "ok.toml", "--confirm-seeds", "-1"], "--confirm-seeds"),
    "run: data dir is a file": (["run", "--study", "ok.toml", "--data-dir", "a_file"], "a_file"),
    "run: data dir missing": (["run", "--study", "ok.toml", "--data-dir", "no_such_dir"], "no_such_dir"),
    "run: artifacts of an unknown scheme": (["run", "--study", "ok.toml", "--artifacts", "ftp://host/store"], "ftp"),
    "run: in-memory SQLite": (["run", "--study", "ok.toml", "--storage", "sqlite://"], "in memory"),
    "run: in-memory SQLite, named": (["run", "--study", "ok.toml", "--storage", "sqlite:///:memory:"], "in memory"),
    "run: corrupt database": (["run", "--study", "ok.toml", "--storage", "sqlite:///corrupt.db"], "corrupt.db"),
    "run: Inception weights missing, before training": (
        ["run", "--study", "incep.toml", "--inception-weights", "no_such.pth"], "no_such.pth"),
    "run: Inception weights not a weights file, before training": (
        ["run", "--study", "incep.toml", "--inception-weights", "garbage.pt"], "garbage.pt"),
    "run: MNIST files corrupt": (["run", "--study", "incep.toml", "--data-dir", "bad_data", "--no-inception"],
                                 "bad_data"),
    "run: MNIST files truncated": (["run", "--study", "incep.toml", "--data-dir", "short_data", "--no-inception"],
                                   "short_data"),
    "worker: other steps than the study's": (["worker", "--study", "ok.toml", "--steps", "30"], "--steps 30"),
    "report: out is a file": (["report", "--study", "ok", "--out", "a_file"], "a_file"),
    "report: corrupt database": (["report", "--study", "ok", "--storage", "sqlite:///corrupt.db"], "corrupt.db"),
    "metrics: one sample": (["metrics", "--samples", "one_sample"], "one_sample"),
    "metrics: truncated PNG": (["metrics", "--samples", "truncated_samples"], "2.png"),
    "metrics: both sources": (["metrics", "--real-vs", "test", "--samples", "one_sample"], "exactly one of"),
    "train-classifier: a dataset without labels": (["train-classifier", "--dataset", "ring"], "ring"),
    "benchmark: unknown suite": (["benchmark", "--suite", "nosuch"], "no suite named 'nosuch'"),
    "benchmark: suite is a directory": (["benchmark", "--suite", "adir.toml"], "is a directory"),
    "benchmark: binary suite": (["benchmark", "--suite", "binary.toml"], "not a valid TOML suite"),
    "benchmark: empty suite": (["benchmark", "--suite", "suite_empty.toml"], "studies"),
    "benchmark: suite of an unknown study": (["benchmark", "--suite", "suite_unknown.toml"], "no study named"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, prepared, tmp_path, capsys, monkeypatch):
    from bench.cli import main

    root = tmp_path / "w"
    shutil.copytree(prepared, root)
    before = snapshot(root)
    args, expect = CASES[case]
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    monkeypatch.setenv("STABGEN_DATA_DIR", str(root / "no-data"))  # no case may start a download
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    assert e.value.code == 2, (e.value.code, err[-800:])
    assert "Traceback" not in err + out
    if expect == "typer":
        assert "Usage:" in err or "Invalid value" in err or "No such" in err
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], err[-800:]
    assert snapshot(root) == before, "a refused command changed a file"


def test_there_are_at_least_sixty_cases_over_every_subcommand():
    from bench.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert len(CASES) >= 60
    covered = {args[0] for args, _ in CASES.values()}
    assert commands - {"list_"} <= covered | {"list"}, commands - covered


def test_a_bad_resume_loses_nothing_recorded(tmp_path, capsys, monkeypatch):
    """A finished study, then a resume with bad options: it refuses in one line, and every trial is
    still in the storage."""
    from bench.cli import main

    files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for argv, code in ((["bench", "run", "--study", "ok.toml"], 0),
                       (["bench", "run", "--study", "ok.toml", "--trials", "-1"], 2),
                       (["bench", "run", "--study", "ok.toml", "--artifacts", "a_file"], 2)):
        monkeypatch.setattr(sys, "argv", argv)
        try:
            main()
            got = 0
        except SystemExit as e:
            got = e.code or 0
        assert got == code, capsys.readouterr().err[-800:]
    study = optuna.load_study(study_name="ok", storage=f"sqlite:///{tmp_path}/runs/ok/study.db")
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 1
