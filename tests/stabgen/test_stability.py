import math

import pytest
import torch

from stabgen.metrics.frechet import fid_infinity, frechet_distance
from stabgen.metrics.stability import trial_stability


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


def test_fid_infinity_refuses_when_samples_do_not_exceed_the_feature_dimension():
    """With N ≤ d every FID_N would reuse all N samples: no 1/N line exists, so refuse (not plain FID)."""
    from stabgen.errors import StabgenError

    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 16, generator=g, dtype=torch.float64)
    for n in (10, 16, 17):
        with pytest.raises(StabgenError, match="more samples than the feature dimension"):
            fid_infinity(torch.randn(n, 16, generator=g, dtype=torch.float64), real)
    assert len(fid_infinity(torch.randn(18, 16, generator=g, dtype=torch.float64), real)["n"]) == 2


def test_config_table_groups_seeds_and_counts_divergence_in_the_rate():
    """One row per config (seed re-runs share config_id): the mean over completed seeds, the diverged
    seed in the divergence rate; ranked by the metric (the leaderboard `bench run` and `bench report` write)."""
    import pandas as pd

    from bench.report import StudyRecord, config_table
    from bench.spec import load

    base = {"model": "mlp2d_small", "objective": "ns", "regularizer": "gp", "lam": 1.0, "lr": 1e-3,
            "seconds": 1.0, "device": "cpu", "config_id": "a"}
    trials = pd.DataFrame([{**base, "trial": 0, "reverse_kl": 0.10, "status": "completed"},
                           {**base, "trial": 1, "reverse_kl": 0.14, "status": "completed"},
                           {**base, "trial": 2, "reverse_kl": float("nan"), "status": "diverged"},
                           {**base, "trial": 3, "lam": 2.0, "config_id": "b", "reverse_kl": 0.05,
                            "status": "completed"}])
    rec = StudyRecord(None, load("ring_reg"), "memory", trials)
    t = config_table(rec)
    assert list(t["lam"]) == [2.0, 1.0] and list(t["rank"]) == [1, 2]  # ranked by mean reverse KL
    a = t.iloc[1]
    assert a["seeds"] == 3 and a["reverse_kl"] == pytest.approx(0.12) and a["divergence_rate"] == pytest.approx(1 / 3)
    assert a["reverse_kl_ci_low"] <= 0.12 <= a["reverse_kl_ci_high"] and a["trials"] == "0,1,2"
    assert math.isnan(t.iloc[0]["reverse_kl_ci_low"])  # one seed: no interval


def test_trial_stability_defaults_and_edge_cases_by_hand():
    """The defaults (last 20 logged steps, last 3 evaluations), non-finite rows and evaluations
    skipped (±inf rows dropped, None/NaN/missing metric ignored), a diverged status and its step,
    and a two-row window (the shortest with a spread), each against numbers worked out here."""
    import numpy as np

    from stabgen.metrics.stability import stability_objective

    hist = [{"step": s, "loss_d": float(s % 3), "grad_norm_d": 1.0} for s in range(1, 26)]
    # steps 21 and 5 dropped: -inf (a WGAN critic's loss running away) inside the window, +inf before it
    hist[20]["loss_d"], hist[4]["grad_norm_d"] = -math.inf, math.inf
    evals = [{"step": 5, "domain_fid": 9.0}, {"step": 10, "domain_fid": None}, {"step": 12},
             {"step": 15, "domain_fid": math.nan}, {"step": 20, "domain_fid": 4.0}, {"step": 25, "domain_fid": 6.0},
             {"step": 30, "domain_fid": 5.0}]
    m = trial_stability(hist, evals, "diverged", 26)
    assert m["diverged"] is True and m["diverged_step"] == 26
    assert m["domain_fid_evals"] == 4 and m["domain_fid_best"] == 4.0 and m["domain_fid_final"] == 5.0
    assert m["domain_fid_std_last"] == pytest.approx(np.std([4.0, 6.0, 5.0]))  # the last 3 finite ones, not 4
    kept = [s for s in range(1, 26) if s not in (5, 21)]
    window = [float(s % 3) for s in kept[-20:]]  # the last 20 finite rows: steps 4, 6…20, 22…25
    assert m["loss_d_std"] == pytest.approx(np.std(window, ddof=1))
    assert m["loss_d_osc"] == pytest.approx(np.mean(np.abs(np.diff(window))))
    assert m["grad_norm_d_max"] == 1.0 and m["grad_norm_d_mean"] == 1.0  # the inf row is not a maximum
    assert stability_objective("late_std", m, "domain_fid") == pytest.approx(np.std([4.0, 6.0, 5.0]))
    assert stability_objective("loss_osc", m, "domain_fid") == pytest.approx(m["loss_d_osc"])
    assert stability_objective("loss_osc", {"loss_osc": 0.5}, "domain_fid") == 0.5  # the VAE's total loss
    assert stability_objective("late_std", {"domain_fid_std_last": math.nan}, "domain_fid") is None
    assert stability_objective("late_std", {}, "domain_fid") is None
    two = trial_stability([{"step": 1, "loss_g": 1.0}, {"step": 2, "loss_g": 4.0}], [], "completed", None)
    assert two["loss_g_std"] == pytest.approx(np.std([1.0, 4.0], ddof=1)) and two["loss_g_osc"] == 3.0
    assert two["diverged"] is False and two["diverged_step"] is None and "domain_fid_best" not in two
    one = trial_stability([{"step": 1, "loss_g": 1.0}], [], "completed", None)
    assert "loss_g_std" not in one and "loss_g_osc" not in one


def test_fid_infinity_fits_a_line_in_one_over_n_like_numpy_polyfit():
    """The default grid (15 sizes from max(M // 5, d + 1) to M), each FID_N on the replayed random
    subset, and the fit checked against numpy.polyfit of FID_N on 1/N (slope and intercept)."""
    import numpy as np

    g = torch.Generator().manual_seed(1)
    real = torch.randn(3000, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(1003, 4, generator=g, dtype=torch.float64) * 1.2 + 0.3
    res = fid_infinity(fake, real, seed=7)
    assert res["n"] == sorted(set(np.round(np.linspace(200, 1003, 15)).astype(int).tolist()))
    assert len(res["n"]) == 15
    from stabgen.metrics.frechet import statistics
    perm = torch.Generator().manual_seed(7)
    first = fake[torch.randperm(1003, generator=perm)[:200]]
    assert res["fid_n"][0] == pytest.approx(frechet_distance(*statistics(first), *statistics(real)), rel=1e-12)
    slope, intercept = np.polyfit(1.0 / np.array(res["n"], dtype=float), np.array(res["fid_n"]), 1)
    assert res["fid_inf"] == pytest.approx(intercept, rel=1e-9) and res["slope"] == pytest.approx(slope, rel=1e-9)
