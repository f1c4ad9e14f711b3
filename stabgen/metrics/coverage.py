"""Density & coverage (Naeem et al. 2020) and improved precision & recall (Kynkäänniemi et al. 2019)
from k-nearest-neighbour balls, in torch and chunked so 10k × 10k features fit on CPU or GPU.

With real features X (N) and fake features Y (M), r_k(x) the distance from x to its k-th nearest
*other* real sample (and likewise s_k(y) among fakes):
  precision = 1/M Σ_j 1[∃i: d(Y_j, X_i) < r_k(X_i)]        recall   = 1/N Σ_i 1[∃j: d(X_i, Y_j) < s_k(Y_j)]
  density   = 1/(kM) Σ_j Σ_i 1[d(Y_j, X_i) < r_k(X_i)]      coverage = 1/N Σ_i 1[min_j d(X_i, Y_j) < r_k(X_i)]
Strict inequalities, as the reference `prdc` package uses; tested against it.
"""

from __future__ import annotations

import torch


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def kth_neighbour_distance(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row (self excluded)."""
    if k >= x.shape[0]:
        raise ValueError(f"k={k} needs more than {x.shape[0]} samples")
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in _chunks(x.shape[0], chunk):
        d = torch.cdist(x[s], x)
        out[s] = d.topk(k + 1, dim=1, largest=False).values[:, -1]  # the self-distance 0 is among them
    return out


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real ones (float64 inside)."""
    real, fake = real.double(), fake.double()
    r_real = kth_neighbour_distance(real, k, chunk)
    r_fake = kth_neighbour_distance(fake, k, chunk)
    in_real_balls = torch.zeros(fake.shape[0], dtype=torch.float64, device=fake.device)  # count per fake
    for s in _chunks(fake.shape[0], chunk):
        in_real_balls[s] = (torch.cdist(fake[s], real) < r_real[None, :]).sum(1).double()
    covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    for s in _chunks(real.shape[0], chunk):
        d = torch.cdist(real[s], fake)
        covered[s] = d.min(1).values < r_real[s]
        recalled[s] = (d < r_fake[None, :]).any(1)
    return {
        "precision": float((in_real_balls > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(in_real_balls.mean() / k),
        "coverage": float(covered.double().mean()),
    }


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5, chunk: int = 1024,
                     r_real: torch.Tensor | None = None) -> dict[str, float]:
    """Density and coverage alone — `prdc`'s two numbers from the one fake-to-real distance matrix, without
    the fakes' own k-NN radii that only recall needs (half of prdc's distances). `r_real`: the real
    radii, computed once per reference by a caller that scores many sample sets against it."""
    real, fake = real.double(), fake.double()
    r_real = kth_neighbour_distance(real, k, chunk) if r_real is None else r_real.double()
    in_real_balls = torch.zeros(fake.shape[0], dtype=torch.float64, device=fake.device)
    nearest_fake = torch.full((real.shape[0],), float("inf"), dtype=torch.float64, device=real.device)
    for s in _chunks(fake.shape[0], chunk):
        d = torch.cdist(fake[s], real)
        in_real_balls[s] = (d < r_real[None, :]).sum(1).double()
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {"density": float(in_real_balls.mean() / k), "coverage": float((nearest_fake < r_real).double().mean())}


def expected_coverage_same_distribution(n: int, m: int, k: int) -> float:
    """E[coverage] when real and fake come from one distribution: 1 − ∏_{i=1..k} (N − i)/(M + N − i)."""
    prod = 1.0
    for i in range(1, k + 1):
        prod *= (n - i) / (m + n - i)
    return 1.0 - prod
