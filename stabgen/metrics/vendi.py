"""The Vendi score (Friedman & Dieng 2023): the effective number of distinct samples, exp of the
Shannon entropy of the eigenvalues of K/n, with K the cosine-similarity kernel of the samples' features.

Why our own ten lines beside the `vendi-score` package: that package needs scikit-learn at runtime and
works in numpy on the CPU; here the features are already a torch tensor (on the GPU during a trial).
We use its dual form (Appendix of the paper; `vendi_score.vendi.score_dual`): with X the row-normalised
n×d features, X Xᵀ/n and Xᵀ X/n share their non-zero eigenvalues, so a d×d eigenproblem (d = 128 for the
domain classifier) replaces an n×n one (n = 10,000). tests/stabgen/test_metrics.py checks it against the
package on the same features. 1 ≤ Vendi ≤ min(n, d); n copies of one sample score 1.
"""

from __future__ import annotations

import torch


def vendi_score(features: torch.Tensor) -> float:
    """Vendi score (order q = 1) of n feature vectors [n, d] under the cosine kernel, in float64."""
    if features.dim() != 2 or features.shape[0] < 1:
        raise ValueError(f"Vendi needs [n, d] features with n ≥ 1, got {tuple(features.shape)}")
    x = torch.nn.functional.normalize(features.double(), dim=1)
    w = torch.linalg.eigvalsh(x.T @ x / x.shape[0])
    w = w[w > 0]  # eigvalsh gives round-off negatives for a rank-deficient kernel; 0 · log 0 = 0
    return float(torch.exp(-(w * w.log()).sum()))
