"""Do the metrics agree (bench.agreement): rankings by median in each metric's direction, Kendall τ equal to
scipy's on those rankings (hand-computed here too), a verdict flagged as flipping only when the other
metric's Hodges–Lehmann interval lies wholly the other way, FID at N on the first N features, and the
smallest stable N on a hand-made curve."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau

from bench import agreement as ag
from stabgen.metrics.frechet import fid_from_features


def _runs(values: dict[str, dict[str, list[float]]], directions: dict[str, str], task: str = "s:gan/ns") -> pd.DataFrame:
    """metric → arm → per-seed values, as bench.agreement.metric_runs writes them."""
    rows = []
    for metric, arms in values.items():
        for arm, vals in arms.items():
            for seed, v in enumerate(vals):
                rows.append({"study": "s", "task": task, "arm": arm, "regularizer": arm.split("/")[-1], "seed": seed,
                             "trial": 0, "metric": metric, "direction": directions[metric], "value": v})
    return pd.DataFrame(rows)


def test_tau_per_metric_in_each_metrics_direction_equals_a_hand_count():
    # medians: fid a 10 < b 20 < c 30 < d 40 (lower better: a best); precision a .9 > b .8 > d .7 > c .6
    fid = {"gan/ns/a": [9, 10, 11], "gan/ns/b": [19, 20, 21], "gan/ns/c": [29, 30, 31], "gan/ns/d": [39, 40, 41]}
    prec = {"gan/ns/a": [.9] * 3, "gan/ns/b": [.8] * 3, "gan/ns/c": [.6] * 3, "gan/ns/d": [.7] * 3}
    kl = {"gan/ns/a": [.4] * 3, "gan/ns/b": [.3] * 3, "gan/ns/c": [.2] * 3, "gan/ns/d": [.1] * 3}  # reversed
    m = _runs({"domain_fid": fid, "precision": prec, "class_kl": kl},
              {"domain_fid": "minimize", "precision": "maximize", "class_kl": "minimize"})
    got = ag.agreement(m, {"s:gan/ns": "domain_fid"}).set_index("metric")["tau"]
    # precision ranks a b d c against a b c d: 5 concordant pairs, 1 discordant of 6 → τ = 4/6
    assert got["precision"] == pytest.approx(4 / 6) and got["domain_fid"] == 1.0 and got["class_kl"] == -1.0
    assert got["precision"] == pytest.approx(kendalltau([4, 3, 2, 1], [4, 3, 1, 2]).statistic)
    suite = ag.suite_agreement(ag.agreement(m, {"s:gan/ns": "domain_fid"})).set_index("metric")
    assert suite.loc["precision", "tasks"] == 1 and suite.loc["class_kl", "min_tau"] == -1.0


def test_a_diverged_run_ranks_last_and_two_arms_leave_the_suite_mean():
    fid = {"gan/ns/a": [10, math.inf, math.inf], "gan/ns/b": [20, 21, 22]}
    m = _runs({"domain_fid": fid, "precision": {"gan/ns/a": [0.1] * 3, "gan/ns/b": [0.9] * 3}},
              {"domain_fid": "minimize", "precision": "maximize"})
    per = ag.agreement(m, {"s:gan/ns": "domain_fid"}).set_index("metric")
    assert per.loc["precision", "tau"] == 1.0  # a's median is inf: worse than b on both
    assert ag.suite_agreement(per.reset_index()).empty  # 2 arms: τ is ±1 by construction, not evidence


def test_a_verdict_flips_only_where_the_other_metrics_interval_lies_the_other_way():
    seeds = 8
    fid = {"gan/ns/r1": [10.0 + s for s in range(seeds)], "gan/ns/none": [20.0 + s for s in range(seeds)]}
    worse_prec = {"gan/ns/r1": [0.5] * seeds, "gan/ns/none": [0.8 + 0.01 * s for s in range(seeds)]}
    noisy_kid = {"gan/ns/r1": [1.0, 3.0] * 4, "gan/ns/none": [2.0] * seeds}
    m = _runs({"domain_fid": fid, "precision": worse_prec, "domain_kid": noisy_kid},
              {"domain_fid": "minimize", "precision": "maximize", "domain_kid": "minimize"})
    claims = pd.DataFrame([{"task": "s:gan/ns", "arm": "gan/ns/r1", "baseline": "gan/ns/none",
                            "verdict": "better than none"},
                           {"task": "s:gan/ns", "arm": "gan/ns/none", "baseline": "gan/ns/none",
                            "verdict": "inconclusive"}])
    got = ag.flips(m, claims)
    assert got["flips_on"].tolist() == ["precision"]  # kid's interval straddles 0; fid agrees; no flag for inconclusive
    claims.loc[0, "verdict"] = "worse than none"
    assert set(ag.flips(m, claims)["flips_on"].iloc[0].split(", ")) == {"domain_fid"}


def test_fid_at_n_uses_the_first_n_of_each_side():
    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(3000, 4, generator=g, dtype=torch.float64), torch.randn(2500, 4, generator=g,
                                                                                        dtype=torch.float64) + 0.3
    got = ag.fid_by_n(fake, real, sizes=(500, 2000, 3000))
    assert list(got) == [500, 2000]  # 3,000 exceeds the real side
    assert got[500] == pytest.approx(fid_from_features(fake[:500], real[:500]))
    assert got[2000] == pytest.approx(fid_from_features(fake[:2000], real[:2000]))
    assert got[2000] == pytest.approx(4 * 0.3 ** 2, rel=0.3)  # the closed form: |Δμ|² with equal covariances


def test_cached_fid_by_n_computes_each_run_once(tmp_path):
    calls = []
    f = lambda: calls.append(1) or {500: 3.0, 1000: math.inf}  # noqa: E731
    assert ag.cached_fid_by_n(tmp_path / "c.json", "s/4", f) == {500: 3.0, 1000: math.inf}
    assert ag.cached_fid_by_n(tmp_path / "c.json", "s/4", f) == {500: 3.0, 1000: math.inf} and len(calls) == 1


def test_sample_size_curve_and_the_smallest_stable_n_by_hand():
    rows = []
    # at N = 500 the ranking of a, b, c, d is reversed; at 1000 one swap (τ 4/6); from 2000 on as at 5000
    order = {500: [4, 3, 2, 1], 1000: [1, 2, 4, 3], 2000: [1, 2, 3, 4], 5000: [1, 2, 3, 4]}
    for n, fids in order.items():
        for arm, v in zip("abcd", fids):
            rows += [{"task": "t", "arm": arm, "seed": s, "n": n, "fid": float(v)} for s in range(3)]
    curve = ag.sample_size_curve(pd.DataFrame(rows)).set_index("n")["tau_vs_largest_n"]
    assert curve[500] == -1.0 and curve[1000] == pytest.approx(4 / 6) and curve[2000] == 1.0
    assert ag.smallest_stable_n(ag.sample_size_curve(pd.DataFrame(rows)))["smallest_n_tau_0.9"].tolist() == [2000]
    flat = pd.DataFrame([{"task": "t", "n": n, "arms": 4, "tau_vs_largest_n": t}
                         for n, t in ((500, 0.95), (1000, 0.5), (2000, 1.0))])
    assert ag.smallest_stable_n(flat)["smallest_n_tau_0.9"].tolist() == [2000]  # stays ≥ 0.9 from 2000 on
    assert np.isnan(ag.smallest_stable_n(flat.assign(tau_vs_largest_n=np.nan))["smallest_n_tau_0.9"].iloc[0])


def test_undefined_values_print_as_a_dash_never_nan():
    from bench.benchmark import _md

    got = _md(pd.DataFrame({"task": ["t"], "n": [np.nan], "tau": [0.5]}), "{:.2f}")
    assert "—" in got and "0.50" in got and "nan" not in got
