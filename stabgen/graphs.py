"""A population step replayed as one CUDA graph, and the matmul precision a run uses.

Small GAN steps are launch-bound on a GPU: hundreds of tiny kernels (forwards, the double backward of
an input-gradient penalty, Adam, masks), each costing more to launch than to run. Capturing the step
once (torch.cuda.graphs) and replaying it launches them all at once. This works because the step
functions of stabgen.train are capturable: the step number comes from a device scalar (pop.clock),
random draws advance a device counter (stabgen.streams), every piece of state (parameters, Adam
moments, batch-norm and spectral-norm buffers, LeCam EMAs, the active mask) changes in place, and
nothing reads a device value on the host inside a step. On CPU there are no graphs: the same step
runs eagerly, and tests/stabgen/test_graphs.py checks the capturability conditions there (a step that
rebinds a state tensor or reads the Python step number fails it); tests marked `cuda` compare a
replayed run with an eager one on the GPU.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from stabgen import settings

Step = Callable[[int], dict[str, torch.Tensor]]


class GraphedStep:
    """Runs `warmup` steps eagerly on a side stream (lazy state, cuBLAS workspaces and autograd's
    caches are created there, as torch.cuda.graphs requires), captures the next step, then replays
    it for every later step. The losses returned are the graph's static outputs: read them (the loop
    copies them with torch.stack) before the next call."""

    def __init__(self, step: Step, warmup: int = 3) -> None:
        self.step, self.warmup, self.calls = step, warmup, 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: dict[str, torch.Tensor] = {}

    def __call__(self, it: int) -> dict[str, torch.Tensor]:
        if self.graph is not None:
            self.graph.replay()
            return self.out
        self.calls += 1
        if self.calls <= self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(it)
            torch.cuda.current_stream().wait_stream(side)
            return out
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self.step(it)
        self.graph = graph
        graph.replay()  # capture records the kernels without running them: this runs step `it`
        return self.out


def capture(step: Step, device: torch.device, graphs: bool | None = None) -> Step:
    """The step as a CUDA graph where that applies (a CUDA device, graphs on), else as it is."""
    on = settings.cuda_graphs() if graphs is None else graphs
    return GraphedStep(step) if on and device.type == "cuda" else step


@contextlib.contextmanager
def precision(device: torch.device, tf32: bool | None = None) -> Iterator[bool]:
    """TF32 matmuls and convolutions inside the block on CUDA when asked (argument, else $STABGEN_TF32;
    restored after; neither: torch's own setting stands). Yields whether TF32 is in effect (never on
    CPU, where TF32 does not exist), so a record can say which arithmetic ran."""
    want = settings.tf32() if tf32 is None else tf32
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if want is not None:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = want
    try:
        yield device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
