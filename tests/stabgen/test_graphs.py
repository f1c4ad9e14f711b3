"""The conditions under which a population step can be captured as a CUDA graph, checked on CPU.

A CUDA graph replays the kernels recorded at capture on the same memory, with the Python arguments
of that one call. So a step may (1) read the step number only from pop.clock, (2) read no tensor
that it rebinds between calls (state must change in place), (3) never copy a device value to the
host. Each test here fails when one of these is broken (rebinding LeCam's EMAs, a Python step
counter in the streams, a branch on progress, `it` instead of pop.clock)."""

from __future__ import annotations

import pytest
import torch

from helpers import ROOT, image_data, random_images
from torch.utils._python_dispatch import TorchDispatchMode

from stabgen import graphs
from stabgen.data import ImageData
from stabgen.streams import Streams
from stabgen.train import train_population
from stabgen.trial import TrialConfig

F64 = torch.float64
CASES = [dict(model="gan", regularizer="r1", lam=1.0),
         dict(model="gan", regularizer="lecam", lam=1.0),
         dict(model="gan", regularizer="instance_noise", lam=0.5),
         dict(model="gan", regularizer="spectral_norm", objective="hinge"),
         dict(model="gan", regularizer="gp", objective="wgan", n_critic=2),
         dict(model="gan", regularizer="dragan", objective="wgan_gp", obj_lam=1.0),
         dict(model="dcgan", regularizer="consistency", d_bn=True),
         dict(model="vae", regularizer="feature_norm", kl_warmup=5)]


@pytest.fixture(scope="module")
def images() -> ImageData:
    return image_data(random_images(32), "t")


class Reads(TorchDispatchMode):
    """Records, op by op, the storages a step reads that it did not create itself, and any read of
    a tensor's value on the host (aten._local_scalar_dense: .item(), bool(), int())."""

    def __init__(self) -> None:
        super().__init__()
        self.made: set[int] = set()
        self.outside: list[tuple[str, int]] = []
        self.host_reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if "_local_scalar_dense" in name:
            self.host_reads.append(name)
        for t in torch.utils._pytree.tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor) and t.numel():
                ptr = t.untyped_storage().data_ptr()
                if ptr not in self.made:
                    self.outside.append((name, ptr))
        out = func(*args, **kwargs)
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel():
                self.made.add(t.untyped_storage().data_ptr())
        return out


def reads_per_step(cfgs, images) -> list[Reads]:
    """Train through the real loop with each step call recorded (where a graph would be captured)."""
    import stabgen.train as train_mod

    calls: list[Reads] = []

    def recording(step, device, graphs=None):
        def call(it):
            with Reads() as reads:
                out = step(it)
            calls.append(reads)
            return out
        return call

    real = train_mod.capture
    try:
        train_mod.capture = recording
        train_population(cfgs, images, dtype=F64)
    finally:
        train_mod.capture = real
    return calls


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']}-{c['regularizer']}")
def test_a_step_reads_the_same_memory_every_call_and_nothing_on_the_host(images, case):
    """Steps 2 and 3 of the real loop read exactly the storages (op by op) that a replayed graph
    would read; none reads a value on the host. (Step 1 creates lazy state, as the eager warm-up
    before capture does.)"""
    cfgs = [TrialConfig(**case, seed=s, steps=3, batch_size=4) for s in (1, 2)]
    first, second, third = reads_per_step(cfgs, images)
    assert first.host_reads == second.host_reads == third.host_reads == []
    assert second.outside == third.outside


@pytest.mark.parametrize("case", [c for c in CASES if c["model"] in ("gan", "vae")],
                         ids=lambda c: f"{c['model']}-{c['regularizer']}")
def test_a_step_takes_the_time_from_the_clock_not_its_argument(images, case):
    """A replay passes the capture's `it` forever: a run whose steps all receive it = 1 must equal
    the plain run (the clock still advances)."""
    cfgs = [TrialConfig(**case, seed=s, steps=6, batch_size=4, log_every=1) for s in (1, 2)]
    plain = train_population(cfgs, images, dtype=F64)
    import stabgen.train as train_mod

    real = train_mod.capture
    try:
        train_mod.capture = lambda step, device, graphs=None: (lambda it: step(1))
        frozen = train_population(cfgs, images, dtype=F64)
    finally:
        train_mod.capture = real
    assert [r.history for r in frozen] == [r.history for r in plain]


def test_the_stream_counter_is_a_device_tensor_advanced_in_place():
    s = Streams([1, 2])
    counter = s.counter
    a = s.uniform((3,))
    s.uniform((3,))
    assert s.counter is counter and s.draws == 2 and counter.untyped_storage().data_ptr() == \
        s.counter.untyped_storage().data_ptr()
    assert torch.equal(Streams([1, 2]).uniform((3,)), a)


def test_graphs_apply_only_on_cuda_and_can_be_turned_off(monkeypatch):
    step = lambda it: {}  # noqa: E731
    assert graphs.capture(step, torch.device("cpu")) is step
    assert graphs.capture(step, torch.device("cpu"), graphs=True) is step
    assert isinstance(graphs.capture(step, torch.device("cuda")), graphs.GraphedStep)
    assert graphs.capture(step, torch.device("cuda"), graphs=False) is step
    monkeypatch.setenv("STABGEN_CUDA_GRAPHS", "0")
    assert graphs.capture(step, torch.device("cuda")) is step
    monkeypatch.setenv("STABGEN_CUDA_GRAPHS", "maybe")
    from stabgen.errors import StabgenError
    with pytest.raises(StabgenError, match="STABGEN_CUDA_GRAPHS='maybe' is not a switch"):
        graphs.capture(step, torch.device("cuda"))


def test_tf32_is_scoped_and_never_claimed_on_cpu(monkeypatch):
    before = torch.backends.cuda.matmul.allow_tf32
    with graphs.precision(torch.device("cuda"), True) as on:
        assert on and torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before
    with graphs.precision(torch.device("cpu"), True) as on:
        assert not on
    monkeypatch.setenv("STABGEN_TF32", "1")
    with graphs.precision(torch.device("cuda")) as on:
        assert on
    monkeypatch.setenv("STABGEN_TF32", "0")
    with graphs.precision(torch.device("cuda")) as on:
        assert not on


def test_a_result_says_which_arithmetic_ran(images):
    """CPU: the dtype only — no TF32 and no graphs there, whatever was asked."""
    cfg = TrialConfig(model="gan", regularizer="none", steps=2, batch_size=4)
    assert train_population([cfg], images, dtype=F64, tf32=True, graphs=True)[0].arithmetic == "float64"
    assert train_population([cfg], images)[0].arithmetic == "float32"


def test_the_device_check_scripts_parse_and_refuse_bad_arguments():
    import subprocess

    root = ROOT
    for script in ("gpu_check.sh", "gpu_prepare.sh"):
        assert subprocess.run(["bash", "-n", str(root / "benchmarks" / script)]).returncode == 0, script
    bad = subprocess.run(["bash", str(root / "benchmarks" / "gpu_check.sh"), "--speed", "max"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "unknown argument --speed" in bad.stderr


def test_the_committed_dry_run_summary_judges_no_target():
    """A CPU dry run of benchmarks/gpu_check.sh is committed; its summary must not read as a measurement."""
    import importlib.util

    root = ROOT / "benchmarks"
    spec = importlib.util.spec_from_file_location("gpu_summary", root / "gpu_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    s = mod.summarize(root / "results" / "gpu-check-dry-run-cpu")
    assert s["dry_run"] and s["populations"] and all(b["met"] is None for b in s["best_ratio"].values())
    assert s["mnist_reg_study"]["met"] is None and s["fid_10k"]["met"] is None
    assert "not judged" in mod.table(s)
    assert all(p["rc"] in (0, 5) for p in s["phases"])  # 5: pytest found only deselected cuda tests
