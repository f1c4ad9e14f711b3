"""The roofline benchmark's FLOP count of one MLP GAN step (benchmarks/roofline.py): the hand count equals
torch's FlopCounterMode on the same step without R1 and the profiler's matmul FLOPs with R1 (double backward
included), and both equal the numbers worked out here by hand."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import ROOT

BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def roofline():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("roofline", BENCHMARKS / "roofline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield mod
    sys.path.remove(str(BENCHMARKS))


def test_hand_count_of_one_step_by_hand(roofline):
    # 2·64·(in·out) per matmul; G 64→256→784, D 784→256→1
    g, d = 2 * 64 * (64 * 256 + 256 * 784), 2 * 64 * (784 * 256 + 256)
    d_step = g + 2 * d + 2 * (2 * 2 * 64 * 256 + 2 * 64 * 784 * 256)
    g_step = g + d + 2 * 2 * 64 * 256 + 2 * 2 * 64 * 784 * 256 + 2 * 2 * 64 * 256 * 784 + 2 * 64 * 64 * 256
    assert roofline.step_flops(r1=False) == d_step + g_step == 289_177_600
    assert roofline.step_flops(r1=True) == 289_177_600 + 4 * 2 * 64 * 784 * 256 + 2 * 2 * 64 * 256 == 392_003_584


def test_hand_count_equals_torchs_counters_on_the_same_step(roofline):
    import torch

    images = torch.randint(0, 256, (500, 1, 28, 28), dtype=torch.uint8)
    no_r1 = roofline.counted_flops(roofline.solo_step(images, r1=False), r1=False)
    assert no_r1["flop_counter_mode"] == no_r1["profiler_matmul"] == roofline.step_flops(r1=False)
    with_r1 = roofline.counted_flops(roofline.solo_step(images, r1=True), r1=True)
    assert with_r1["profiler_matmul"] == roofline.step_flops(r1=True)
