"""`bench run` as a person runs it in a terminal: rich's live bars on a real pseudo-terminal through
search → confirmation → Inception (issue 33: the hand-over from the search bar to the confirmation bar
crashed with rich's `KeyError: 0` on a TTY only, so piped tests never saw it), and the same run under
TERM=dumb and piped."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from helpers import study_toml
from stabgen import progress

SPEC = study_toml("mnist", n_trials=2, eval="inception_top_k = 1\ninception_samples = 20",
                  confirm="seeds = 2\nstages = 1", regularizers=("none", "gp"))


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    return {**env, "COLUMNS": "120", "LINES": "40", **extra}


def plain(screen: str) -> str:
    """The screen's text without its escape sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)


def _run_in_pty(args: list[str], cwd: Path, env: dict, timeout: float = 600) -> tuple[int, str]:
    """Run a command with stdin/stdout/stderr on a pseudo-terminal (what rich sees as a TTY)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{args} did not finish in {timeout} s under a pty")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    return proc.wait(timeout=600), out.decode("utf-8", "replace")


@pytest.fixture
def spec_file(tmp_path, mnist_dir, inception_weights) -> Path:
    p = tmp_path / "tty.toml"
    p.write_text(SPEC)
    return p


def test_bench_run_on_a_terminal_goes_through_search_confirmation_and_inception(tmp_path, spec_file):
    """A new user's first run as typed: the default --jobs (auto: the model timed on this machine unless
    cached, then one worker process per core beside this one, all drawing on one terminal)."""
    env = {k: v for k, v in _env(TERM="xterm-256color").items() if k != "STABGEN_JOBS"}
    code, screen = _run_in_pty([sys.executable, "-m", "bench.cli", "run", "--study", str(spec_file)], tmp_path, env)
    assert "Traceback" not in screen and "KeyError" not in screen, screen[-3000:]
    assert code == 0, screen[-3000:]
    assert "\x1b[" in screen  # rich drew on a terminal (escape sequences), not log lines
    runs = tmp_path / "runs" / "tty"
    assert (runs / "confirm.csv").exists() and (runs / "leaderboard.csv").exists()
    assert "inception" in (runs / "leaderboard.csv").read_text().lower()
    # the default's layout, said once it was timed (or read from the cache), is the layout that trained
    said = re.search(r"--jobs auto: (\d+) processes × 1 torch thread|--jobs auto: one process", re.sub(r"\s+", " ", plain(screen)))
    assert said, plain(screen)[:3000]
    study = optuna.load_study(study_name="tty", storage=f"sqlite:///{runs / 'study.db'}")
    assert study.user_attrs["last_processes"] == int(said.group(1) or 1)


@pytest.mark.parametrize("how", ["dumb terminal", "piped"])
def test_bench_run_without_a_capable_terminal_prints_log_lines(tmp_path, spec_file, how):
    args = [sys.executable, "-m", "bench.cli", "run", "--study", str(spec_file), "--trials", "1"]
    if how == "dumb terminal":
        code, out = _run_in_pty(args, tmp_path, _env(TERM="dumb"))
    else:
        r = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
        code, out = r.returncode, r.stdout + r.stderr
    assert "Traceback" not in out, out[-3000:]
    assert code == 0, out[-3000:]
    assert (tmp_path / "runs" / "tty" / "confirm.csv").exists()


class _Strict:
    """A listener that, like rich's Progress, refuses a handle it no longer holds."""

    def __init__(self) -> None:
        self.live: set[int] = set()
        self.n = 0

    def start(self, task):
        self.n += 1
        self.live.add(self.n)
        return self.n

    def update(self, handle, task):
        if handle not in self.live:
            raise KeyError(handle)

    def stop(self, handle, task):
        self.live.remove(handle)


def test_a_task_updated_after_its_block_ended_is_not_shown_again():
    """The library half of the TTY crash: a finished task's late update or advance reaches no listener."""
    with progress.listening(_Strict()):
        with progress.task("search", total=2) as t:
            t.advance()
        t.update(completed=2)  # bench.search updated its search task after closing it
        t.advance()
        assert t.completed == 3 and t.stopped
