"""Progress of long phases (training, feature extraction, trials, reproductions), told to whoever listens.

The library says *what* it is doing — `with progress.task("Inception features", total=n) as t: t.advance()`
— and the application decides how to show it, as with `logging`: bench's CLI draws rich bars with an
ETA on a terminal and writes one line per milestone with an ETA when its output goes to a log;
`--quiet`, and any program that installs nothing, shows nothing. The default listener does nothing,
so a task costs one no-op call per advance (the training loop advances once per step).
Why not rich or tqdm in the library: the library must not draw on a terminal it does not own (a
notebook, a worker's log, a test); only the CLI knows where output goes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol


class Listener(Protocol):
    """Shows tasks: `start` returns a handle that `update` and `stop` receive."""

    def start(self, task: "Task") -> object: ...

    def update(self, handle: object, task: "Task") -> None: ...

    def stop(self, handle: object, task: "Task") -> None: ...


class Silent:
    """The default: shows nothing."""

    def start(self, task: "Task") -> None:
        return None

    def update(self, handle: object, task: "Task") -> None:
        pass

    def stop(self, handle: object, task: "Task") -> None:
        pass


_listener: contextvars.ContextVar[Listener] = contextvars.ContextVar("stabgen_progress", default=Silent())


@dataclass
class Task:
    """One phase: `completed` of `total` units (None: unknown), started at `t0` (perf_counter seconds)."""

    description: str
    total: float | None
    completed: float = 0.0
    t0: float = field(default_factory=time.perf_counter)
    _listener: Listener = field(default_factory=Silent, repr=False)
    _handle: object = field(default=None, repr=False)
    stopped: bool = False  # set when its block ends: a listener never hears of a task it has let go

    def advance(self, n: float = 1) -> None:
        self.completed += n
        if not self.stopped:
            self._listener.update(self._handle, self)

    def update(self, completed: float | None = None, total: float | None = None,
               description: str | None = None) -> None:
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
        if not self.stopped:  # rich's Progress raises KeyError on a removed task (the TTY crash, issue 33)
            self._listener.update(self._handle, self)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the mean rate so far (None before any progress or without a total)."""
        elapsed = (now if now is not None else time.perf_counter()) - self.t0
        if not self.total or self.completed <= 0 or elapsed <= 0:
            return None
        return max(0.0, elapsed * (self.total - self.completed) / self.completed)


@contextlib.contextmanager
def task(description: str, total: float | None = None) -> Iterator[Task]:
    """A phase of `total` units; the listener of the current context shows it until the block ends."""
    listener = _listener.get()
    t = Task(description, total, _listener=listener)
    t._handle = listener.start(t)
    try:
        yield t
    finally:
        if not t.stopped:
            t.stopped = True
            listener.stop(t._handle, t)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Show the tasks started inside this block (and in the threads it copies its context to)."""
    token = _listener.set(listener)
    try:
        yield listener
    finally:
        _listener.reset(token)


def duration(seconds: float | None) -> str:
    """12s, 3m05s, 2h07m: how ETAs and elapsed times print."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class LogLines:
    """For output that is not a terminal (a worker's log, a CI job): one `logging` line per task when it
    has run `min_seconds`, then at each further `every` fraction of its total (quarters) or `interval` seconds,
    with done/total, elapsed time and ETA — so a long phase in a log is never silent."""

    def __init__(self, logger: logging.Logger | None = None, min_seconds: float = 5.0, every: float = 0.25,
                 interval: float = 60.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.logger = logger or logging.getLogger("stabgen.progress")
        self.min_seconds, self.every, self.interval, self.clock = min_seconds, every, interval, clock

    def start(self, task: Task) -> dict:
        task.t0 = self.clock()
        return {"said_at": None, "said_fraction": 0.0}

    def update(self, handle: dict, task: Task) -> None:
        now = self.clock()
        if now - task.t0 < self.min_seconds:
            return
        fraction = task.completed / task.total if task.total else 0.0
        last = handle["said_at"]
        if last is None or now - last >= self.interval or fraction - handle["said_fraction"] >= self.every:
            handle["said_at"], handle["said_fraction"] = now, fraction
            self.logger.info(self.line(task, now))

    def stop(self, handle: dict, task: Task) -> None:
        if handle["said_at"] is not None:  # a task that spoke says that it ended
            self.logger.info(f"{task.description}: done, {task.completed:g} in {duration(self.clock() - task.t0)}")

    @staticmethod
    def line(task: Task, now: float) -> str:
        of = f"/{task.total:g}" if task.total else ""
        done = f"{task.completed:g}" if float(task.completed).is_integer() else f"{task.completed:.1f}"  # a task
        # counted in trainings moves within one (bench.search.RunMeter): a tenth is what a reader needs
        return (f"{task.description}: {done}{of} · {duration(now - task.t0)} elapsed · "
                f"ETA {duration(task.eta(now))}")
