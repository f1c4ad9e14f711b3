"""Mode metrics: does the generator cover every mode of the data, and evenly?

Class histograms (MNIST, Fashion-MNIST): each sample's class is the domain classifier's argmax;
we report the classes covered and KL(p_gen ‖ p_data) over the 10 classes (finite whenever the
data distribution has every class, as it does).
2D mixtures (ring of 8, grid of 25) — PacGAN 2018's counting, as in its reference code: a sample
belongs to its nearest mode; it is *high quality* if its distance to that mode is under 3σ; a mode
is *captured* if it has at least one high-quality sample; reverse KL is KL(p_hq ‖ uniform) over the
high-quality samples' mode histogram.
Stacked MNIST: the mode of a 3-channel sample is the triple of per-channel digit predictions
(1,000 modes); modes with ≥ 1 sample are captured; KL(p_gen ‖ uniform).
"""

from __future__ import annotations

import math

import torch


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p ‖ q) in nats for histograms (normalized here); 0·log 0 = 0."""
    p = p.double() / p.sum()
    q = q.double() / q.sum()
    mask = p > 0
    return float((p[mask] * (p[mask] / q[mask]).log()).sum())


def class_histogram_metrics(pred: torch.Tensor, data_counts: torch.Tensor, min_count: int = 1) -> dict:
    """pred: predicted class per generated sample; data_counts: class counts of the real data."""
    k = data_counts.numel()
    hist = torch.bincount(pred.long().cpu(), minlength=k)
    return {"classes_covered": int((hist >= min_count).sum()), "num_classes": k,
            "class_kl": kl(hist, data_counts.cpu()), "class_histogram": hist.tolist()}


def mixture_modes(samples: torch.Tensor, centers: torch.Tensor, sigma: float, threshold: float = 3.0) -> dict:
    """PacGAN counting for an isotropic Gaussian mixture with the given centres and σ."""
    d = torch.cdist(samples.double(), centers.double()) / sigma
    dist, nearest = d.min(dim=1)
    hq = dist < threshold
    counts = torch.bincount(nearest[hq], minlength=centers.shape[0])
    n_hq = int(hq.sum())
    uniform = torch.ones(centers.shape[0])
    return {"modes_captured": int((counts > 0).sum()), "num_modes": int(centers.shape[0]),
            "high_quality": n_hq / samples.shape[0],
            "reverse_kl": kl(counts, uniform) if n_hq else math.nan,
            "mode_counts": counts.tolist()}


def stacked_modes(channel_preds: torch.Tensor) -> dict:
    """channel_preds: [N, 3] digit predicted per channel → modes of 1,000 and KL to uniform."""
    codes = channel_preds[:, 0] * 100 + channel_preds[:, 1] * 10 + channel_preds[:, 2]
    counts = torch.bincount(codes.long().cpu(), minlength=1000)
    return {"modes_captured": int((counts > 0).sum()), "num_modes": 1000,
            "kl": kl(counts, torch.ones(1000))}
