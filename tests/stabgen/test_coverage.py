import numpy as np
import pytest
import torch
from prdc import compute_prdc

from stabgen.metrics.coverage import density_coverage, expected_coverage_same_distribution, kth_neighbour_distance, prdc


def test_identical_distributions():
    """Density is unbiased (E = 1) but one 64-D draw of 2,000 varies by about ±0.1 (the reference
    prdc package gives the same numbers), so the density check is on the mean over seeds;
    coverage is tight enough to check per seed."""
    want_cov = expected_coverage_same_distribution(2000, 2000, 5)
    densities = []
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        real, fake = torch.randn(2000, 64, generator=g), torch.randn(2000, 64, generator=g)
        m = prdc(real, fake, k=5, chunk=700)
        densities.append(m["density"])
        assert abs(m["coverage"] - want_cov) < 0.02, (seed, m)
    assert abs(np.mean(densities) - 1) < 0.05, densities


def test_disjoint_distributions():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(500, 16, generator=g), torch.randn(500, 16, generator=g) + 100
    m = prdc(real, fake, k=5)
    assert m == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_equals_reference_prdc_package():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, 10))
    fake = rng.normal(size=(500, 10)) * 1.2 + 0.3
    ours = prdc(torch.from_numpy(real), torch.from_numpy(fake), k=5, chunk=128)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-6), key


def test_density_coverage_alone_equals_reference_prdc_package():
    """The two numbers without recall's fake radii (what every final evaluation computes), against the
    prdc package — also in chunks that do not divide the fakes, and with the real radii handed in."""
    rng = np.random.default_rng(1)
    real = rng.normal(size=(600, 10))
    fake = rng.normal(size=(500, 10)) * 1.3 + 0.2
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    r = kth_neighbour_distance(torch.from_numpy(real), 5)
    for kw in ({"chunk": 1024}, {"chunk": 77}, {"chunk": 77, "r_real": r}):
        ours = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=5, **kw)
        assert ours["density"] == pytest.approx(float(ref["density"]), abs=1e-9)
        assert ours["coverage"] == pytest.approx(float(ref["coverage"]), abs=1e-9)
    assert 0 < ours["coverage"] < 1 and ours["density"] > 0


def test_expected_coverage_formula():
    # N = M: 1 − ∏(N − i)/(2N − i) → 1 − 2^−k for large N
    assert expected_coverage_same_distribution(10**7, 10**7, 5) == pytest.approx(1 - 2**-5, rel=1e-5)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_equals_prdc_in_float32_with_tied_points(k):
    """Features in float32 (what extractors give) with integer values, duplicated rows and fakes on
    real points, so distances tie everywhere and k-th neighbour radii are hit exactly; integer
    squared distances are exact in both implementations' arithmetic (torch.cdist here, sklearn's
    dot-product form in prdc), so the strict inequalities must agree at every k. (On non-integer
    grids the two round a tie differently: a reference cannot settle those.)"""
    rng = np.random.default_rng(k)
    real = rng.integers(-3, 4, size=(300, 5)).astype(np.float32)
    real[150:200] = real[:50]  # exact duplicates: zero distances and tied radii
    fake = (rng.integers(-3, 4, size=(280, 5)) + rng.integers(0, 2, size=(280, 5))).astype(np.float32)
    fake[:40] = real[:40]  # fakes sitting exactly on real points
    ours = prdc(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk=97)
    ref = compute_prdc(real_features=real.astype(np.float64), fake_features=fake.astype(np.float64), nearest_k=k)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-9), key


def test_expected_coverage_by_hand_for_small_sets():
    # N = 10, M = 10, k = 2: 1 − (9/19)(8/18) = 1 − 72/342; N = 6, M = 4, k = 3: 1 − (5/9)(4/8)(3/7)
    assert expected_coverage_same_distribution(10, 10, 2) == pytest.approx(1 - 72 / 342, rel=1e-12)
    assert expected_coverage_same_distribution(6, 4, 3) == pytest.approx(1 - (5 / 9) * (4 / 8) * (3 / 7), rel=1e-12)


def test_prdc_defaults_to_k_5_and_k_needs_more_samples_than_k():
    from stabgen.metrics.coverage import kth_neighbour_distance

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) + 0.3
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    ours = prdc(torch.from_numpy(real), torch.from_numpy(fake))
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-9), key
    with pytest.raises(ValueError, match="k=5 needs more than 5 samples"):
        kth_neighbour_distance(torch.zeros(5, 2), 5)
