"""The device a run uses (checked in one line) and the hardware a number was measured on, named for
every record and benchmark result."""

from __future__ import annotations

import platform
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
    return f"{cpu_name()} ({platform.machine()}), {torch.get_num_threads()} torch threads"


def slug(description: str) -> str:
    """A file-name form of describe()'s text: benchmark results are named after their hardware."""
    return "".join(c if c.isalnum() else "-" for c in description.lower()).strip("-")


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """A device torch can use here, or a one-line error saying what is available."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise StabgenError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise StabgenError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise StabgenError(f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type != "cpu":
        raise StabgenError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    return device
