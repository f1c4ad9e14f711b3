"""Progress and logs: the library reports every long phase as a stabgen.progress task, the CLI shows it
(bars on a terminal, timestamped lines with an ETA in a log, nothing with --quiet)."""

from __future__ import annotations

import io
import logging

import pytest
import torch
from rich.console import Console

from helpers import Recorder
from stabgen import progress
from stabgen.train import train, train_population
from stabgen.trial import TrialConfig


def test_duration_and_eta():
    assert [progress.duration(s) for s in (0, 59.4, 61, 3600 + 7 * 60, None, float("inf"))] == \
        ["0s", "59s", "1m01s", "1h07m", "?", "?"]
    t = progress.Task("x", total=10, t0=100.0)
    assert t.eta(now=110.0) is None  # nothing done yet: no rate
    t.completed = 4
    assert t.eta(now=110.0) == pytest.approx(15.0)  # 4 in 10 s → 6 more in 15 s
    assert progress.Task("y", total=None, completed=3, t0=0.0).eta(now=5.0) is None


def test_default_listener_is_silent_and_tasks_nest():
    with progress.task("outer", total=2) as a:  # nothing installed: no output, no error
        a.advance()
    rec = Recorder()
    with progress.listening(rec):
        with progress.task("outer", total=2) as a, progress.task("inner", total=3) as b:
            b.advance(3)
            a.advance()
    assert [t.description for t in rec.tasks] == ["outer", "inner"] and rec.open == 0
    assert rec.tasks[1].completed == 3


def test_log_lines_say_progress_and_eta_at_milestones():
    now = [0.0]
    logger = logging.getLogger("test.progress.lines")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        lines = progress.LogLines(logger, min_seconds=5, every=0.25, interval=1e9, clock=lambda: now[0])
        with progress.listening(lines), progress.task("trials", total=8) as t:
            for _ in range(8):
                now[0] += 2.0  # a trial every 2 s
                t.advance()
        out = stream.getvalue().splitlines()
    finally:
        logger.removeHandler(handler)
    # silent for the first 5 s, then after each further quarter of the total; then "done"
    assert out == ["trials: 3/8 · 6s elapsed · ETA 10s", "trials: 5/8 · 10s elapsed · ETA 6s",
                   "trials: 7/8 · 14s elapsed · ETA 2s", "trials: done, 8 in 16s"]
    partial = progress.Task("whole run, in trainings", total=15, completed=5.0617, t0=0.0)
    assert progress.LogLines.line(partial, 21.0) == "whole run, in trainings: 5.1/15 · 21s elapsed · ETA 41s"


def test_training_reports_its_steps(tiny_images):
    rec = Recorder()
    with progress.listening(rec):
        train(TrialConfig(steps=12, batch_size=8, log_every=4), tiny_images)
        train_population([TrialConfig(steps=6, batch_size=8, seed=s) for s in (1, 2)], tiny_images)
    (solo, pop) = rec.tasks
    assert solo.total == 12 and solo.completed == 12 and "(seed 0)" in solo.description
    assert pop.total == 6 and pop.completed == 6 and "×2" in pop.description


def test_on_log_gets_the_logged_losses_during_training(tiny_images):
    """The hook TensorBoard writes through: each log step's values per member, as they happen."""
    seen = []
    res = train(TrialConfig(steps=12, batch_size=8, log_every=4), tiny_images,
                on_log=lambda step, vals, active: seen.append((step, vals, active)))
    assert [s for s, _, _ in seen] == [4, 8, 12] and all(a == [True] for _, _, a in seen)
    assert [{k: v[0] for k, v in vals.items()} for _, vals, _ in seen] == \
        [{k: v for k, v in row.items() if k != "step"} for row in res.history]


def test_feature_extraction_counts_its_images():
    from stabgen.metrics import fidelity

    g = torch.Generator().manual_seed(0)
    fake = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=g)
    real = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8, generator=g)
    rec = Recorder()
    with progress.listening(rec):
        fidelity.compute(fake, real, "classifier", ("fid",), dataset="mnist")
    got = {t.description: (t.completed, t.total) for t in rec.tasks}
    assert got == {"classifier features of 40 samples": (40, 40), "classifier features of 30 real images": (30, 30)}
    # one image read, one count: 1, 2, …, 40 (torch-fidelity's extra first look at an image stays at 40)
    steps = [c for d, c in rec.updates if d == "classifier features of 40 samples"]
    assert steps[:40] == list(range(1, 41)) and set(steps[40:]) <= {40}
    rec = Recorder()
    with progress.listening(rec):  # the Inception Score needs no real images: none are read
        fidelity.compute(fake, real, "classifier", ("isc",), dataset="mnist")
    assert [t.description for t in rec.tasks] == ["classifier features of 40 samples"]


def test_cli_ui_routes_logs_and_quiet_keeps_only_warnings():
    from bench import ui

    log = logging.getLogger("bench.test_progress")
    for quiet, expect_info in ((False, True), (True, False)):
        console = Console(file=io.StringIO(), force_terminal=False)
        with ui.shown(console, quiet=quiet):
            log.info("an info line")
            with progress.task("phase", total=1) as t:
                t.advance()
            console.print("cli chatter")
        text = console.file.getvalue()
        assert ("an info line" in text) is expect_info and ("cli chatter" in text) is expect_info
    assert logging.getLogger("bench").handlers == []  # nothing left behind after the command


def test_cli_ui_quiet_still_shows_warnings(capfd):
    from bench import ui

    with ui.shown(Console(file=io.StringIO()), quiet=True):
        logging.getLogger("bench.test_progress").warning("Inception evaluation skipped: no weights")
    assert "Inception evaluation skipped" in capfd.readouterr().err


def test_features_count_their_images():
    from stabgen.metrics import fidelity

    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    rec = Recorder()
    with progress.listening(rec):
        fidelity.features(images, dataset="mnist")
    assert [(t.description, t.completed, t.total) for t in rec.tasks] == [("classifier features of 12 images", 12, 12)]
    steps = [c for _, c in rec.updates]  # one image read, one count (the extra first look stays at 12)
    assert steps[:12] == list(range(1, 13)) and set(steps[12:]) <= {12}
