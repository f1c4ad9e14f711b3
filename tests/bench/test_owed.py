"""Seed re-runs and confirmation runs live in their own study (bench.storage.owed_study), so Optuna's best
trial — what optuna-dashboard shows — is a search trial; a study made before that, whose owed runs sit in
the search's study, resumes and reports as it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from bench.storage import OWED_BASE, all_trials, owed_name, trial_by_id
from helpers import study_toml
from stabgen.errors import StabgenError

State = optuna.trial.TrialState

def _bench(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def _spec(tmp_path: Path) -> Path:
    p = tmp_path / "owed.toml"
    p.write_text(study_toml(name="owed", n_trials=2, steps=40, eval_every=40, confirm="seeds = 2\nstages = 1",
                            regularizers=("none", "r1"), sections="[seeds]\nper_config = 2"))
    return p


def test_owed_runs_live_beside_the_search_and_never_are_its_best_trial(tmp_path):
    p = _spec(tmp_path)
    r = _bench("run", "--study", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    url = f"sqlite:///{tmp_path}/runs/owed/study.db"
    search = optuna.load_study(study_name="owed", storage=url)
    owed = optuna.load_study(study_name=owed_name("owed"), storage=url)
    assert all("confirm_arm" not in t.user_attrs and "reeval_of" not in t.user_attrs for t in search.trials)
    confirm = [t for t in owed.trials if "confirm_arm" in t.user_attrs]
    reruns = [t for t in owed.trials if "reeval_of" in t.user_attrs]
    completed = [t for t in search.trials if t.state == State.COMPLETE]
    assert len(confirm) == 2 * 2 and len(reruns) == len(completed) >= 1  # 2 arms × 2 seeds; each completed config once more
    assert len(owed.trials) == len(confirm) + len(reruns)
    # the storage's best trial (what optuna-dashboard asks for) and Study.best_trial are search trials
    assert search._storage.get_best_trial(search._study_id).number == search.best_trial.number
    assert "confirm_arm" not in search.best_trial.user_attrs
    # reports list an owed run as OWED_BASE + its number, with its own folder
    lb = pd.read_csv(tmp_path / "runs/owed/trials.csv")
    conf = lb[lb["confirm_arm"].notna()]
    assert (conf["trial"] >= OWED_BASE).all() and len(conf) == 4
    for n, folder in zip(conf["trial"], conf["trial_dir"]):
        assert folder.endswith(f"trials/{n}") and (tmp_path / folder / "config.json").is_file()
        assert trial_by_id(search, int(n)).user_attrs["trial_dir"] == folder
    assert len(all_trials(search)) == len(search.trials) + len(owed.trials)
    for missing in (len(search.trials), OWED_BASE + len(owed.trials), -1):
        with pytest.raises(StabgenError, match=f"has no trial {missing}: its search trials are numbered"):
            trial_by_id(search, missing)


def test_a_study_whose_owed_runs_sit_in_the_search_study_resumes_and_reports_as_it_was(tmp_path):
    """The layout of studies made before owed runs had their own study: everything in one study."""
    p = _spec(tmp_path)
    assert _bench("run", "--study", str(p), cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path}/runs/owed/study.db"
    search = optuna.load_study(study_name="owed", storage=url)
    owed = optuna.load_study(study_name=owed_name("owed"), storage=url)
    confirm_before = pd.read_csv(tmp_path / "runs/owed/confirm.csv")
    search.add_trials(owed.trials)  # the old layout: the owed runs numbered after the search's
    optuna.delete_study(study_name=owed_name("owed"), storage=url)
    n_before = len(search.trials)
    r = _bench("run", "--study", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    search = optuna.load_study(study_name="owed", storage=url)
    assert len(search.trials) == n_before  # nothing owed, nothing re-trained
    assert owed_name("owed") not in [s.study_name for s in optuna.get_all_study_summaries(url)] or \
        not optuna.load_study(study_name=owed_name("owed"), storage=url).trials
    after = pd.read_csv(tmp_path / "runs/owed/confirm.csv")
    cols = ["arm", "seeds", "p", "verdict"]
    pd.testing.assert_frame_equal(after[[c for c in cols if c in after]], confirm_before[[c for c in cols if c in after]])


def test_a_told_owed_run_is_printed_under_the_number_reports_list_it_by():
    """`bench run` prints each trial as it ends; a confirmation run told in its own study is trial n there,
    listed everywhere else as OWED_BASE + n — printed as "trial 0 (confirm …)" it read as search trial 0."""
    import optuna

    from bench import printing
    from bench.spec import StudySpec
    from bench.storage import OWED_BASE

    spec = StudySpec.model_validate({"name": "p", "dataset": "ring", "metric": "modes_captured",
                                     "space": {"models": ["mlp2d_small"], "regularizers": ["none"]}})
    cfg = {"model": "mlp2d_small", "objective": "ns", "regularizer": "none", "lam": 0.0, "lr": 1e-3}
    attrs = {"config": cfg, "status": "completed", "confirm_arm": "mlp2d_small/ns/none", "confirm_seed": 2}
    owed = optuna.trial.create_trial(value=5.0, user_attrs=attrs)
    search = optuna.trial.create_trial(value=5.0, user_attrs={"config": cfg, "status": "completed"})
    owed.number, search.number = 3, 0  # as study.tell returns them: each numbered in its own study
    assert printing.trial_line(spec, owed).startswith(f"trial {OWED_BASE + 3} (confirm mlp2d_small/ns/none seed 2): ")
    assert printing.trial_line(spec, search).startswith("trial 0: mlp2d_small ns none")
