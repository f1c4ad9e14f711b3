"""CUDA against CPU: the same population, metrics and evaluations on both devices (issue: prove it on
a GPU). Marked `cuda`: deselected where no CUDA device exists (tests/conftest.py), run by
benchmarks/gpu_check.sh on a machine with one.

Training compares in float64, where the CUDA and CPU kernels differ only in summation order, so
50 steps stay within rel 1e-6; the per-member random streams are integer arithmetic and give the same
draws on both devices. The CUDA run uses the default path — the step replayed as a CUDA graph — so the
comparison also covers capture; a second test compares graph replay with eager CUDA directly."""

from __future__ import annotations

import pytest
import torch

from stabgen.data import ImageData
from stabgen.metrics import fidelity
from stabgen.metrics.evaluate import DomainEvaluator
from stabgen.train import train_population
from stabgen.trial import TrialConfig
from helpers import assert_metrics_match, blobs, image_data, random_images

pytestmark = pytest.mark.cuda
F64 = torch.float64


def _images(n: int = 256, seed: int = 0) -> ImageData:
    return image_data(random_images(n, seed=seed), "t")


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def _assert_runs_agree(x, y, rel: float) -> None:
    for rx, ry in zip(x, y):
        assert rx.status == ry.status and len(rx.history) == len(ry.history)
        for hx, hy in zip(rx.history, ry.history):
            for key in hx:
                assert _close(hx[key], hy[key], rel), (key, hx["step"], hx[key], hy[key])
        for name, value in rx.modules.state_dict().items():
            other = ry.modules.state_dict()[name].cpu()
            if value.is_floating_point():
                assert torch.allclose(value, other, rtol=rel, atol=rel * value.abs().max().item()), name
            else:
                assert torch.equal(value, other), name


@pytest.mark.parametrize("reg, lam", [("r1", 1.0), ("spectral_norm", 0.0)])
def test_a_population_on_cuda_equals_the_cpu_run_in_float64(reg, lam):
    cfgs = [TrialConfig(model="gan", regularizer=reg, lam=lam * (1 + i), lr=2e-4 * (1 + i), seed=i, steps=50,
                        batch_size=32, log_every=1) for i in range(3)]
    images = _images()
    cpu = train_population(cfgs, images, "cpu", dtype=F64)
    gpu = train_population(cfgs, images, "cuda", dtype=F64)  # graphs on: the default for CUDA
    _assert_runs_agree(cpu, gpu, 1e-6)


@pytest.mark.parametrize("case", [dict(model="gan", regularizer="r1", lam=1.0),
                                  dict(model="gan", regularizer="lecam", lam=1.0),
                                  dict(model="gan", regularizer="instance_noise", lam=0.5),
                                  dict(model="dcgan", regularizer="gp", objective="wgan", d_bn=True, n_critic=2),
                                  dict(model="vae", regularizer="feature_norm", lam=0.1, kl_warmup=10)],
                         ids=lambda c: f"{c['model']}-{c['regularizer']}")
def test_graph_replay_equals_eager_cuda(case):
    """The replayed step launches the kernels the eager step launches, on the same memory."""
    cfgs = [TrialConfig(**case, seed=i, steps=40, batch_size=16, log_every=1) for i in range(4)]
    images = _images()
    eager = train_population(cfgs, images, "cuda", graphs=False)
    graphed = train_population(cfgs, images, "cuda", graphs=True)
    _assert_runs_agree(eager, graphed, 1e-6)


def test_domain_metrics_on_cuda_equal_the_cpu_values():
    fake, real = blobs(600, 1), blobs(600, 2, shift=2)
    wanted = ("fid", "kid", "prc", "dc")
    ours = lambda device: fidelity.compute(fake, real, "classifier", wanted, device=device, dataset="mnist")  # noqa: E731
    assert_metrics_match(ours, ours("cpu"), on=["cuda"])


def test_batched_evaluation_on_cuda_equals_per_member_evaluation():
    from stabgen.data import RealRef

    real = ImageData("blobs", "synthetic", blobs(500, 2, shift=2), torch.zeros(500, dtype=torch.long))
    # a reference over synthetic images: its own split name keys its own feature cache
    ref = RealRef("mnist", "synthetic-blobs", 500, load=lambda split, data_dir: real)
    counts = torch.full((10,), 50)
    ev = DomainEvaluator(ref, counts, device="cuda")
    sets = [blobs(500, s, shift=s % 3) for s in (1, 3, 4)]
    samples = [lambda n, x=x: x[:n] for x in sets]
    together = ev.many(samples, True)
    for sample, got in zip(samples, together):
        alone = ev(sample, True)
        assert got.keys() == alone.keys()
        for key, value in alone.items():
            assert got[key] == (pytest.approx(value, rel=1e-5, abs=1e-7) if isinstance(value, float) else value), key


def test_bench_metrics_on_cuda_equal_the_cpu_values():
    """`bench metrics --device cuda` (evaluate_samples): every metric, class coverage and FID∞ as on the
    CPU; the classifier that predicts the classes is on the device the samples are sent to."""
    from stabgen.data import RealRef
    from stabgen.metrics.evaluate import evaluate_samples

    real = ImageData("blobs", "synthetic", blobs(400, 2, shift=2), torch.zeros(400, dtype=torch.long))
    ref = RealRef("mnist", "synthetic-blobs-400", 400, load=lambda split, data_dir: real)
    counts, fake = torch.full((10,), 40), blobs(400, 5, shift=-3)
    ours = lambda device: evaluate_samples(fake, ref, counts, device=device, fid_inf=True)  # noqa: E731
    assert_metrics_match(ours, ours("cpu"), on=["cuda"])


def test_a_cuda_result_says_tf32_and_graphs():
    cfg = TrialConfig(model="gan", regularizer="none", steps=6, batch_size=4)
    assert train_population([cfg], _images(), "cuda", tf32=True)[0].arithmetic == "float32, TF32 matmuls, CUDA graphs"
    assert train_population([cfg], _images(), "cuda", tf32=False, graphs=False)[0].arithmetic == "float32"
