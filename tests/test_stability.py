import math

import pytest
import torch

from stabgen.metrics.frechet import fid_infinity, frechet_distance
from stabgen.metrics.stability import over_seeds, trial_stability


def test_trial_stability_from_history():
    hist = [{"step": s, "loss_d": (-1) ** s, "loss_g": 1.0, "grad_norm_d": float(s), "grad_norm_g": 1.0}
            for s in range(1, 11)]
    evals = [{"step": 5, "domain_fid": 30.0}, {"step": 10, "domain_fid": 20.0}, {"step": 15, "domain_fid": 25.0}]
    m = trial_stability(hist, evals, "completed", None, window=10)
    assert m["domain_fid_best"] == 20 and m["domain_fid_final"] == 25
    assert m["domain_fid_std_last"] == pytest.approx(torch.tensor([30.0, 20, 25]).std(unbiased=False).item())
    assert m["loss_d_osc"] == pytest.approx(2.0) and m["loss_g_osc"] == 0.0
    assert m["grad_norm_d_max"] == 10 and m["grad_norm_d_mean"] == pytest.approx(5.5)
    assert m["diverged"] is False


def test_over_seeds_counts_diverged_runs_in_the_rate_only():
    m = over_seeds([10.0, 12.0, math.nan, 14.0], [False, False, True, False])
    assert m["n_seeds"] == 4 and m["divergence_rate"] == 0.25
    assert m["mean"] == 12.0 and m["std"] == pytest.approx(2.0)


def test_fid_infinity_removes_the_small_sample_bias():
    # fake ~ N(0.5, I), real ~ N(0, I) in 8-D: the true FID is ‖Δμ‖² = 8 · 0.25 = 2
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200_000, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(5000, 8, generator=g, dtype=torch.float64) + 0.5
    true = frechet_distance(torch.full((8,), 0.5), torch.eye(8), torch.zeros(8), torch.eye(8))
    assert true == pytest.approx(2.0)
    res = fid_infinity(fake, real, min_n=200)
    assert res["fid_n"][0] > res["fid_n"][-1]  # FID_N shrinks with N
    assert abs(res["fid_inf"] - true) < abs(res["fid_n"][0] - true)
    assert res["fid_inf"] == pytest.approx(true, abs=0.05)


def test_config_summary_groups_seeds():
    import pandas as pd
    from bench.records import config_summary
    base = {"model": "gan", "objective": "ns", "regularizer": "gp", "lam": 1.0, "lr": 1e-3}
    lb = pd.DataFrame([{**base, "seed": 0, "domain_fid": 10.0, "status": "completed"},
                       {**base, "seed": 1, "domain_fid": 14.0, "status": "completed"},
                       {**base, "seed": 2, "domain_fid": float("nan"), "status": "diverged"},
                       {**base, "lam": 2.0, "seed": 0, "domain_fid": 30.0, "status": "completed"}])
    s = config_summary(lb, "domain_fid")
    first = s[s["lam"] == 1.0].iloc[0]
    assert first["seeds"] == 3 and first["domain_fid_mean"] == 12.0 and first["divergence_rate"] == pytest.approx(1 / 3)
    assert first["domain_fid_std"] == pytest.approx(2 ** 0.5 * 2)
    assert s[s["lam"] == 2.0].iloc[0]["seeds"] == 1
