import math

import pytest
import torch

from stabgen.metrics.modes import class_histogram_metrics, kl, mixture_modes, stacked_modes
from stabgen.sources import grid_centers, ring_centers


def test_ring_and_grid_centres():
    c = ring_centers()
    assert c.shape == (8, 2) and torch.allclose(c.norm(dim=1), torch.ones(8, dtype=torch.float64))
    g = grid_centers()
    assert g.shape == (25, 2) and set(g[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


def test_generator_emitting_every_ring_centre():
    c = ring_centers()
    samples = c.repeat(2500 // 8 + 1, 1)[:2500]
    m = mixture_modes(samples, c, sigma=0.01)
    assert m["modes_captured"] == 8 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(kl(torch.tensor(m["mode_counts"]), torch.ones(8)))
    assert m["reverse_kl"] < 1e-4


def test_generator_emitting_one_centre():
    c = ring_centers()
    m = mixture_modes(c[3].repeat(2500, 1), c, sigma=0.01)
    assert m["modes_captured"] == 1 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(math.log(8))


def test_high_quality_threshold_is_three_sigma():
    c = ring_centers()
    near = c[0] + torch.tensor([0.029, 0.0], dtype=torch.float64)  # 2.9σ
    far = c[0] + torch.tensor([0.031, 0.0], dtype=torch.float64)  # 3.1σ
    m = mixture_modes(torch.stack([near, far]), c, sigma=0.01)
    assert m["high_quality"] == 0.5 and m["modes_captured"] == 1


def test_no_high_quality_samples_gives_no_kl_number():
    m = mixture_modes(torch.full((10, 2), 50.0, dtype=torch.float64), grid_centers(), sigma=0.05)
    assert m["modes_captured"] == 0 and m["high_quality"] == 0 and math.isnan(m["reverse_kl"])


def test_class_histogram():
    data_counts = torch.tensor([10] * 10)
    pred = torch.tensor([0] * 50 + [1] * 50)
    m = class_histogram_metrics(pred, data_counts)
    assert m["classes_covered"] == 2 and m["class_kl"] == pytest.approx(math.log(5))
    uniform = class_histogram_metrics(torch.arange(10).repeat(7), data_counts)
    assert uniform["classes_covered"] == 10 and uniform["class_kl"] == pytest.approx(0.0, abs=1e-12)


def test_stacked_mnist_modes():
    preds = torch.tensor([[1, 2, 3], [1, 2, 3], [9, 9, 9], [0, 0, 0]])
    m = stacked_modes(preds)
    assert m["modes_captured"] == 3 and m["num_modes"] == 1000
    # p = (.5, .25, .25) on 3 of 1000 modes: Σ p log(1000 p)
    assert m["kl"] == pytest.approx(0.5 * math.log(500) + 2 * 0.25 * math.log(250))


def test_stacked_mnist_counting_on_real_digits(mnist_test):
    from stabgen.metrics.evaluate import stacked_mnist_modes
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(mnist_test), (3, 2000), generator=g)
    stacked = torch.cat([mnist_test.images[i] for i in idx], dim=1)  # [2000, 3, 28, 28]
    m = stacked_mnist_modes(stacked, digits="mnist")
    # 2,000 uniform draws over 1,000 modes cover about 1000·(1 − e^−2) ≈ 865 of them
    assert 800 < m["modes_captured"] < 930 and m["kl"] < 0.7
    one = stacked_mnist_modes(stacked[:1].repeat(50, 1, 1, 1), digits="mnist")
    assert one["modes_captured"] == 1 and one["kl"] == pytest.approx(math.log(1000))


def test_class_histogram_counts_a_class_seen_once_and_names_every_field():
    data_counts = torch.tensor([5, 5, 5, 5])
    m = class_histogram_metrics(torch.tensor([0, 0, 0, 2]), data_counts)  # class 2 seen once: covered
    assert m["classes_covered"] == 2 and m["num_classes"] == 4 and m["class_histogram"] == [3, 0, 1, 0]
    assert class_histogram_metrics(torch.tensor([0, 0, 0, 2]), data_counts, min_count=2)["classes_covered"] == 1


def test_mixture_modes_reports_the_number_of_modes_not_the_dimension():
    assert mixture_modes(ring_centers(), ring_centers(), sigma=0.01)["num_modes"] == 8
    assert mixture_modes(grid_centers()[:3], grid_centers(), sigma=0.05)["num_modes"] == 25
