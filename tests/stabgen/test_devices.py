"""Where `--device auto` puts a worker. The slot locks are real (several processes on this node); the
GPU count is patched, since CI has no GPU — the CUDA path itself runs in benchmarks/gpu_check.sh."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest
import torch

from stabgen import hardware
from stabgen.errors import StabgenError
from helpers import ROOT


@pytest.fixture
def gpus(monkeypatch, tmp_path):
    """A node with 4 visible GPUs, a private slot folder, no launcher variables."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(hardware, "_slot_lock", None)
    monkeypatch.setattr(hardware.tempfile, "gettempdir", lambda: str(tmp_path))
    for var in ("LOCAL_RANK", "SLURM_LOCALID", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "STABGEN_WORKERS_PER_GPU"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / f"stabgen-slots-{os.getuid()}"


def test_without_cuda_auto_is_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.check_device("auto") == "cpu"


@pytest.mark.parametrize("var", hardware.RANK_VARS)
def test_a_launchers_local_rank_picks_the_gpu(gpus, monkeypatch, var):
    monkeypatch.setenv(var, "6")
    assert hardware.check_device("auto") == "cuda:2"  # rank 6 on 4 GPUs


def test_workers_without_a_rank_spread_over_the_gpus_by_slot(gpus):
    gpus.mkdir(parents=True)
    held = []
    for slot in (0, 1):  # two other live workers on this node hold slots 0 and 1
        fd = os.open(gpus / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(fd)
    try:
        assert hardware.check_device("auto") == "cuda:2" and hardware.node_slot() == 2
        assert hardware.workers_per_gpu() == 1
    finally:
        for fd in held:
            os.close(fd)


def test_a_dead_workers_slot_is_free_again(gpus, tmp_path):
    """A worker killed with SIGKILL leaves its lock file, but the kernel has dropped its lock."""
    code = ("import os, signal, sys, tempfile; sys.path.insert(0, %r); from stabgen import hardware; "
            "tempfile.gettempdir = lambda: %r; print(hardware.node_slot(), flush=True); os.kill(os.getpid(), signal.SIGKILL)"
            % (str(os.getcwd()), str(tmp_path)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == -9 and r.stdout.strip() == "0" and (gpus / "slot-0.lock").exists()
    assert hardware.node_slot() == 0


def test_workers_sharing_a_gpu_split_its_memory(gpus, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "8")
    assert hardware.workers_per_gpu() == 2  # 8 tasks on 4 GPUs
    monkeypatch.setenv("STABGEN_WORKERS_PER_GPU", "3")
    assert hardware.workers_per_gpu() == 3
    monkeypatch.setenv("STABGEN_WORKERS_PER_GPU", "0")
    with pytest.raises(StabgenError, match="STABGEN_WORKERS_PER_GPU='0' must be a positive integer"):
        hardware.workers_per_gpu()


def test_held_slots_on_one_gpu_are_counted(gpus):
    gpus.mkdir(parents=True)
    fds = []
    for slot in range(4):  # slots 0–3 held: this worker takes 4, i.e. GPU 0 again, shared with slot 0
        fd = os.open(gpus / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fds.append(fd)
    try:
        assert hardware.check_device("auto") == "cuda:0" and hardware.workers_per_gpu() == 2
    finally:
        for fd in fds:
            os.close(fd)


def test_the_slurm_example_parses_and_refuses_to_run_without_a_storage(tmp_path):

    script = ROOT / "examples" / "slurm-array.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "STABGEN_STORAGE"}
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode != 0 and "export STABGEN_STORAGE=" in r.stderr


@pytest.mark.parametrize("threads, words", [(1, "1 torch thread"), (2, "2 torch threads")])
def test_a_cpu_is_described_with_its_torch_thread_count(threads, words):
    """The hardware line of every report and results file name (a --jobs worker trains on 1 thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert hardware.describe("cpu").endswith(f"), {words}")
    finally:
        torch.set_num_threads(before)
