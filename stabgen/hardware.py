"""The device a run uses (checked in one line; `auto` places a worker on its node's GPUs) and the
hardware a number was measured on, named for every record and benchmark result."""

from __future__ import annotations

import fcntl
import math
import os
import platform
import tempfile
from pathlib import Path

import torch

from stabgen.errors import StabgenError


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str) -> str:
    """e.g. 'NVIDIA H100 80GB HBM3' or 'AMD EPYC (x86_64), 2 torch threads'."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    n = torch.get_num_threads()
    return f"{cpu_name()} ({platform.machine()}), {n} torch thread{'s' if n != 1 else ''}"


def slug(description: str) -> str:
    """A file-name form of describe()'s text: benchmark results are named after their hardware."""
    return "".join(c if c.isalnum() else "-" for c in description.lower()).strip("-")


def default_device() -> str:
    return auto_device()


RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID")  # torchrun / accelerate, Slurm: this process's rank on its node
_slot_lock: tuple[int, int] | None = None  # (slot, fd) held for the life of the process


def _slot_dir(folder: str | os.PathLike | None = None) -> Path:
    return Path(folder or Path(tempfile.gettempdir()) / f"stabgen-slots-{os.getuid()}")


def node_slot(folder: str | os.PathLike | None = None) -> int:
    """This process's slot among the stabgen workers running on this node: the lowest-numbered lock
    file under a node-local folder that no live process holds. The kernel drops a process's locks
    when it dies (kill -9 included), so a slot is free again as soon as its worker is gone."""
    global _slot_lock
    if _slot_lock is not None:
        return _slot_lock[0]
    where = _slot_dir(folder)
    where.mkdir(parents=True, exist_ok=True)
    for slot in range(4096):
        fd = os.open(where / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _slot_lock = (slot, fd)
        return slot
    raise StabgenError(f"4,096 stabgen workers already hold slots under {where}; stop some, or pass --device")


def auto_device() -> str:
    """The GPU this worker should use, or cpu. CUDA_VISIBLE_DEVICES is honoured (torch numbers only the
    visible GPUs); a launcher's local rank (LOCAL_RANK, SLURM_LOCALID) picks GPU rank mod count; else
    the workers of one node spread over its GPUs by their node slot (node_slot)."""
    if not torch.cuda.is_available():
        return "cpu"
    n = torch.cuda.device_count()
    for var in RANK_VARS:
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            return f"cuda:{int(value) % n}"
    return f"cuda:{node_slot() % n}"


def workers_per_gpu() -> int:
    """How many workers of this node share one GPU, for sizing `population = "auto"`: $STABGEN_WORKERS_PER_GPU,
    else the launcher's tasks per node (LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE) over the GPUs, else the
    workers holding node slots now that map to this one's GPU (at least 1)."""
    value = os.environ.get("STABGEN_WORKERS_PER_GPU", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise StabgenError(f"$STABGEN_WORKERS_PER_GPU={value!r} must be a positive integer")
        return int(value)
    n = max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    for var in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return max(1, math.ceil(int(value) / n))
    if _slot_lock is None:
        return 1
    return max(1, len([s for s in _held_slots() if s % n == _slot_lock[0] % n]))


def _held_slots(folder: str | os.PathLike | None = None) -> list[int]:
    """Slots some live process holds (ours included)."""
    where = _slot_dir(folder)
    held = []
    for f in where.glob("slot-*.lock"):
        slot = int(f.stem.removeprefix("slot-"))
        if _slot_lock is not None and slot == _slot_lock[0]:
            held.append(slot)
            continue
        fd = os.open(f, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            held.append(slot)
        finally:
            os.close(fd)
    return held


def check_device(device: str) -> str:
    """A device torch can use here (`auto` resolved by auto_device), or a one-line error saying what
    is available."""
    if device == "auto":
        return auto_device()
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise StabgenError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise StabgenError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise StabgenError(f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type != "cpu":
        raise StabgenError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


class BusyElsewhere:
    """`with BusyElsewhere() as b: …` then b.share: the share of the machine's CPU time that other processes
    used during the block (0: they were idle; 1: they kept every core busy), from the kernel's counters
    (/proc/stat, all CPUs) less this process's own CPU time and its waited-for children's (os.times). Why:
    `--plan` prices by wall time, and under steady load every timed probe is slow alike, which no fastest-of-
    repeats can see (a ring_seeds price moved 16 % at load 1.6, issue 31); the plan says how busy it was.
    Hand-read because psutil would be a dependency for one counter. share is None without /proc/stat."""

    share: float | None = None

    def __enter__(self) -> "BusyElsewhere":
        self._start = _cpu_counters()
        return self

    def __exit__(self, *exc) -> None:
        end = _cpu_counters()
        if self._start is None or end is None:
            return
        wall, busy, own = (e - s for e, s in zip(end[:3], self._start[:3]))
        cpus = end[3]
        if wall > 0:
            self.share = min(1.0, max(0.0, (busy - own) / (wall * cpus)))


def _cpu_counters() -> tuple[float, float, float, int] | None:
    """(now, CPU-seconds every CPU spent busy since boot, this process's and its reaped children's CPU-seconds,
    the CPUs counted) — /proc/stat's first line: user nice system idle iowait irq softirq steal …; busy is
    all but idle and iowait (guest time is already inside user)."""
    import time

    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    fields = [int(x) for x in lines[0].split()[1:9]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system, max(1, cpus)
