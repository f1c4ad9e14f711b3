"""Name the hardware a number was measured on, for every record and benchmark result."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


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
