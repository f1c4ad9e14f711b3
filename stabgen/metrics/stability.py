"""Stability metrics: how a trial behaved, not just where it ended.

Per trial (from its logged history and evaluations): diverged and at which step; the objective's
trajectory (best, final, std over the last evaluations); loss oscillation over the last window of
logged steps (std and mean |Δ| of each loss); gradient-norm statistics. Per config over seeds:
mean/std of the objective and the divergence rate (diverged runs count, they are not dropped).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

LOSS_COLUMNS = ("loss_d", "loss_g", "loss")
GRAD_COLUMNS = ("grad_norm_d", "grad_norm_g", "grad_norm")


def trial_stability(history: list[dict], evals: list[dict], status: str, diverged_step: int | None,
                    metric: str = "domain_fid", window: int = 20, last_evals: int = 3) -> dict:
    h = pd.DataFrame(history)
    out: dict = {"diverged": status == "diverged", "diverged_step": diverged_step}
    traj = [e[metric] for e in evals if metric in e and e[metric] is not None and math.isfinite(e[metric])]
    if traj:
        tail = traj[-last_evals:]
        out.update({f"{metric}_best": float(min(traj)), f"{metric}_final": float(traj[-1]),
                    f"{metric}_std_last": float(np.std(tail)), f"{metric}_evals": len(traj)})
    if not h.empty:
        finite = h.replace([np.inf, -np.inf], np.nan).dropna()
        w = finite.tail(window)
        for col in LOSS_COLUMNS:
            if col in w and len(w) > 1:
                out[f"{col}_std"] = float(w[col].std())
                out[f"{col}_osc"] = float(w[col].diff().abs().mean())  # mean |Δ| between logged steps
        for col in GRAD_COLUMNS:
            if col in finite and len(finite):
                out[f"{col}_mean"] = float(finite[col].mean())
                out[f"{col}_max"] = float(finite[col].max())
    return out


# Per-trial stability quantities a multi-objective study can minimize next to its metric: a proxy, on
# one seed, for "how reproducible is this config" (the seed-std of a config needs several trials).
# name → (direction, description, how to read it from trial_stability's output for a study metric)
STABILITY_OBJECTIVES: dict[str, tuple[str, str, Callable[[dict, str], float | None]]] = {
    "late_std": ("minimize", "std of the study metric over the trial's last 3 evaluations",
                 lambda stab, metric: stab.get(f"{metric}_std_last")),
    "loss_osc": ("minimize", "mean |Δ| of the critic (GAN) or total (VAE) loss over the last 20 logged steps",
                 lambda stab, metric: stab.get("loss_d_osc", stab.get("loss_osc"))),
}


def stability_objective(name: str, stab: dict, metric: str) -> float | None:
    """The value of a STABILITY_OBJECTIVES entry for one trial (None where undefined)."""
    value = STABILITY_OBJECTIVES[name][2](stab, metric)
    return None if value is None or not math.isfinite(value) else float(value)
