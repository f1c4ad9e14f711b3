"""Bad input across every subcommand: one line naming what is wrong (and what to do), exit 2, no
traceback, and nothing already recorded lost. Files are missing, directories, empty, binary or
corrupt; counts are zero, negative, NaN or absurd; storages unreachable; devices absent.
(Usage errors that typer itself catches — an unknown choice, a non-number — exit 2 with its usage
box; every case that reaches stabgen's own checks is held to one line.)"""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest

VALID = """
dataset = "ring"
metric = "modes_captured"
n_trials = 1
[train]
steps = 20
eval_every = 10
batch_size = 50
z_dim = 2
[eval]
samples = 200
[confirm]
seeds = 0
[space]
models = ["mlp2d_small"]
regularizers = ["none"]
"""


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
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, tmp_path, capsys, monkeypatch):
    from bench.cli import main

    files(tmp_path)
    args, expect = CASES[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    monkeypatch.setenv("STABGEN_DATA_DIR", str(tmp_path / "no-data"))  # no case may start a download
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


def test_there_are_at_least_thirty_cases_over_every_subcommand():
    from bench.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert len(CASES) >= 30
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
