"""How the CLI shows what the library says: log records and progress tasks (stabgen.progress).

On a terminal: rich's log handler and live bars (description, bar, done/total, elapsed, ETA) on
stderr. Piped or logged (a Slurm job, CI): timestamped log lines, and a line per progress milestone
with its ETA (stabgen.progress.LogLines), so nothing is drawn into a file. `--quiet`: warnings and
errors only, no progress. stdout carries only the tables.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stabgen import progress

LOGGERS = ("stabgen", "bench")


class RichBars:
    """stabgen.progress listener drawing rich bars; the ETA is the task's own (mean rate since it began:
    steadier than a moving window for phases whose units take a minute each, such as trials)."""

    def __init__(self, console: Console) -> None:
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), console=console,
                             transient=True)

    def start(self, task: progress.Task) -> object:
        return self.bars.add_task(task.description, total=task.total, completed=task.completed, eta="?")

    def update(self, handle: object, task: progress.Task) -> None:
        self.bars.update(handle, description=task.description, total=task.total, completed=task.completed,
                         eta=progress.duration(task.eta()))

    def stop(self, handle: object, task: progress.Task) -> None:
        self.bars.remove_task(handle)


def _handler(console: Console, quiet: bool) -> logging.Handler:
    if quiet:  # the console is silenced; warnings and errors still reach stderr
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        return h
    if console.is_terminal:
        return RichHandler(console=console, show_time=False, show_path=False, markup=False,
                           rich_tracebacks=False)
    h = logging.StreamHandler(console.file)
    h.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    return h


@contextlib.contextmanager
def shown(console: Console, quiet: bool = False) -> Iterator[None]:
    """Route the library's log records and progress to `console` (stderr) for one command."""
    handler = _handler(console, quiet)
    level = logging.WARNING if quiet else logging.INFO
    saved = [(logging.getLogger(n), logging.getLogger(n).level, logging.getLogger(n).propagate) for n in LOGGERS]
    for logger, _, _ in saved:
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False  # one line per record, whatever the root logger does
    was_quiet, console.quiet = console.quiet, quiet
    try:
        if quiet:
            yield
        elif console.is_terminal:
            bars = RichBars(console)
            with bars.bars, progress.listening(bars):
                yield
        else:
            with progress.listening(progress.LogLines(logging.getLogger("stabgen.progress"))):
                yield
    finally:
        console.quiet = was_quiet
        for logger, lvl, prop in saved:
            logger.removeHandler(handler)
            logger.setLevel(lvl)
            logger.propagate = prop
