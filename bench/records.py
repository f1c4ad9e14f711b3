"""Trial records: the Optuna storage is the source of truth; trial folders hold the bulky files.

Per trial, user attributes in the storage: config, status (completed / diverged / pruned),
diverged_step, seconds, device, metrics (final domain metrics with their N) and trial_dir.
Inception evaluations run after the search, on the best trials, and are kept as study user
attributes `inception/<trial number>` (finished trials are immutable in Optuna).
Files under runs/<study>/trials/<number>/: config.json, history.csv, evals.csv, metrics.json,
samples.png and generator.pt.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd
import torch
from torchvision.utils import save_image

from stabgen.train import TrialResult

INCEPTION_ATTR = "inception/"


def write_trial_dir(path: Path, result: TrialResult, sample_grid: torch.Tensor | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2) + "\n")
    pd.DataFrame(result.history).to_csv(path / "history.csv", index=False)
    pd.DataFrame(result.evals).to_csv(path / "evals.csv", index=False)
    summary = {"status": result.status, "steps_done": result.steps_done,
               "diverged_step": result.diverged_step, "seconds": round(result.seconds, 2),
               "final": result.final}
    (path / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if sample_grid is not None:
        save_image(sample_grid.float() / 255.0, path / "samples.png", nrow=8)
    if result.status != "diverged" and result.modules is not None:
        torch.save(result.modules["generator"].state_dict(), path / "generator.pt")


def _num(x) -> float:
    return float(x) if x is not None else math.nan


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per finished trial with config, status and every recorded metric."""
    incep = {int(k.removeprefix(INCEPTION_ATTR)): v for k, v in study.user_attrs.items()
             if k.startswith(INCEPTION_ATTR)}
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        cfg, m = t.user_attrs.get("config", {}), t.user_attrs.get("metrics", {})
        inc = incep.get(t.number, {})
        rows.append({
            "trial": t.number,
            "model": cfg.get("model"), "objective": cfg.get("objective") if cfg.get("model") != "vae" else "",
            "regularizer": cfg.get("regularizer"), "lam": cfg.get("lam"), "lr": cfg.get("lr"),
            "seed": cfg.get("seed"), "steps": t.user_attrs.get("steps_done"),
            "status": t.user_attrs.get("status", t.state.name.lower()),
            "diverged_step": t.user_attrs.get("diverged_step"),
            "domain_fid": _num(m.get("domain_fid")), "domain_kid": _num(m.get("domain_kid")),
            "precision": _num(m.get("domain_precision")), "recall": _num(m.get("domain_recall")),
            "density": _num(m.get("domain_density")), "coverage": _num(m.get("domain_coverage")),
            "classes": m.get("classes_covered"), "class_kl": _num(m.get("class_kl")),
            "n": m.get("domain_n_fake"),
            "inception_fid": _num(inc.get("fid")), "inception_kid": _num(inc.get("kid")),
            "inception_n": inc.get("n_fake"),
            "seconds": t.user_attrs.get("seconds"), "device": t.user_attrs.get("device"),
        })
    return pd.DataFrame(rows)


def leaderboard(study: optuna.Study, metric: str = "domain_fid") -> pd.DataFrame:
    """Trials ranked by the study metric (lower is better); diverged and pruned trials last."""
    df = trials_frame(study)
    if df.empty:
        return df
    df["_bad"] = df["status"] != "completed"
    df = df.sort_values(["_bad", metric, "trial"], na_position="last").drop(columns="_bad")
    df.insert(0, "rank", range(1, len(df) + 1))
    df["diverged"] = df["status"].eq("diverged").map({True: "yes", False: "no"})
    return df.reset_index(drop=True)


DISPLAY = ["rank", "trial", "model", "regularizer", "lam", "lr", "domain_fid", "inception_fid",
           "domain_kid", "precision", "recall", "coverage", "classes", "diverged", "status"]


def display_frame(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings: λ/lr in scientific notation, missing values as '—'."""
    out = lb[DISPLAY].copy()
    out["lam"] = [("—" if r == "none" else f"{v:.2e}") for r, v in zip(lb["regularizer"], lb["lam"])]
    out["lr"] = lb["lr"].map(lambda v: f"{v:.2e}")
    out["classes"] = lb["classes"].map(lambda v: "—" if v is None or v != v else f"{int(v)}/10")
    out["status"] = [f"diverged@{int(s)}" if st == "diverged" else st
                     for st, s in zip(lb["status"], lb["diverged_step"])]
    for col, fmt in (("domain_fid", "{:.2f}"), ("inception_fid", "{:.1f}"), ("domain_kid", "{:.4f}"),
                     ("precision", "{:.3f}"), ("recall", "{:.3f}"), ("coverage", "{:.3f}")):
        out[col] = lb[col].map(lambda v, f=fmt: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f.format(v))
    return out


def write_leaderboard(lb: pd.DataFrame, out_dir: Path, header: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / "leaderboard.csv", out_dir / "leaderboard.md"
    lb.to_csv(csv, index=False)
    md.write_text(header + "\n\n" + display_frame(lb).to_markdown(index=False, disable_numparse=True) + "\n")
    return [csv, md]
