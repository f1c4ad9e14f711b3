"""The cost of a run is said up front and the whole run's progress moves within a trial (issue 31.6)."""

from __future__ import annotations

from helpers import Recorder, study_toml
from stabgen import progress


def test_the_whole_run_task_counts_every_training_and_moves_within_a_round(tmp_path, monkeypatch):
    from bench import api

    monkeypatch.chdir(tmp_path)
    (tmp_path / "wr.toml").write_text(study_toml(name="wr", n_trials=2, steps=40, eval_every=20,
                                                 confirm="seeds = 2\nstages = 1", regularizers=("none", "r1")))
    spec = api.load_spec("wr.toml")
    opts = api.options(spec, device="cpu", runs_dir=tmp_path / "runs")
    assert api.describe_run(spec, opts)["work"] == "2 search trials + 4 confirmation trainings"  # n_trials 2 over 2 arms: 1 per arm
    rec = Recorder()
    with progress.listening(rec):
        api.run_study(spec, opts)
    whole = [c for d, c in rec.updates if d == "wr: whole run, in trainings"]
    assert whole == sorted(whole), "the whole run never goes back"
    assert any(0 < c % 1 for c in whole), "it moved within a round, not only when a trial ended"
    task = next(t for t in rec.tasks if t.description == "wr: whole run, in trainings")
    assert task.total == task.completed == 2 + 4 and rec.open == 0
