"""The image datasets' chance rows recomputed: what samples that learned nothing score against the test
split at N = 5,000 (stabgen.datasets), the rows every quality gate and normalization is set against."""

from __future__ import annotations

import pytest
import torch

from stabgen.datasets import DATASETS, EvalRequest

N = 5000


def _chance_images(kind: str, train: torch.Tensor, seed: int) -> torch.Tensor:
    """uniform noise, or the train split's mean image plus N(0, 30²) noise (clamped to uint8)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform noise":
        return torch.randint(0, 256, (N, 1, 28, 28), generator=g, dtype=torch.uint8)
    mean = train.float().mean(0, keepdim=True)
    return (mean + 30 * torch.randn(N, 1, 28, 28, generator=g)).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_image_chance_rows_recompute(name, mnist_dir):
    ds = DATASETS.get(name)
    evaluator = ds.build_evaluator(EvalRequest("test", N, data_dir=str(mnist_dir), metric="domain_fid"))
    train = ds.load_split("train", str(mnist_dir)).images
    for kind, row in ds.chance.items():
        got = evaluator(lambda n, x=_chance_images(kind, train, 1): x[:n], True)
        assert got["domain_fid"] == pytest.approx(row["domain_fid"], rel=0.03), (kind, got["domain_fid"])
        assert got["classes_covered"] == row["classes"], kind
        assert not ds.gate.passes({"domain_fid": got["domain_fid"], "classes": got["classes_covered"]})
