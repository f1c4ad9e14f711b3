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

from stabgen.models import MODELS
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
    if sample_grid is not None and sample_grid.dtype == torch.uint8:
        from torchvision.utils import save_image  # torchvision costs ≈ 2 s to import: only when saving

        save_image(sample_grid.float() / 255.0, path / "samples.png", nrow=8)
    elif sample_grid is not None:
        _scatter(sample_grid, path / "samples.png")
    if result.status != "diverged" and result.modules is not None:
        torch.save(result.modules["generator"].state_dict(), path / "generator.pt")


def tensorboard_writer_class():
    """TensorBoard's SummaryWriter, or a one-line error saying how to get it (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from stabgen.errors import StabgenError
        raise StabgenError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter


def write_tensorboard(path: Path, result: TrialResult) -> Path:
    """The trial's curves as TensorBoard events in TRIAL_DIR/tensorboard: losses, penalty and gradient
    norms per logged step (train/...), every intermediate and final metric (eval/...)."""
    out = path / "tensorboard"
    with tensorboard_writer_class()(log_dir=str(out)) as w:
        for row in result.history:
            for k, v in row.items():
                if k != "step" and v is not None and math.isfinite(v):
                    w.add_scalar(f"train/{k}", v, row["step"])
        for row in result.evals:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    w.add_scalar(f"eval/{k}", v, row["step"])
        w.add_text("config", "    " + json.dumps(result.config.to_dict(), indent=2).replace("\n", "\n    "))
    return out


def _scatter(points: torch.Tensor, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 4))
    p = points.cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.4, color="black")
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


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
        gan = cfg.get("model") and MODELS.get(cfg["model"]).family == "gan"
        rows.append({
            "trial": t.number,
            "model": cfg.get("model"), "objective": cfg.get("objective") if gan else "",
            "regularizer": cfg.get("regularizer"), "lam": cfg.get("lam"), "lr": cfg.get("lr"),
            "seed": cfg.get("seed"), "steps": t.user_attrs.get("steps_done"),
            "seed_rerun_of": t.user_attrs.get("reeval_of"),
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
            **{k: v for k, v in m.items() if k in MODE_COLUMNS},
            **{k: cfg.get(k) for k in SEARCHED if k in cfg},
            "config_id": json.dumps(t.params, sort_keys=True),  # seed re-runs share their source's params
            "completed_at": t.datetime_complete, "trial_dir": t.user_attrs.get("trial_dir"),
        })
    return pd.DataFrame(rows)


# config fields a search may vary besides model/objective/regularizer/λ/lr (shown where they vary)
SEARCHED = ("obj_lam", "clip_value", "n_critic", "beta", "beta1", "beta2", "batch_size")
MODE_COLUMNS = ("modes_captured", "high_quality", "reverse_kl", "stacked_modes", "stacked_kl")


def leaderboard(study: optuna.Study, metric: str = "domain_fid", direction: str = "minimize") -> pd.DataFrame:
    """Trials ranked by the study metric in its direction; diverged and pruned trials last."""
    df = trials_frame(study)
    if df.empty:
        return df
    if metric not in df:
        df[metric] = math.nan
    df["_bad"] = df["status"] != "completed"
    df["_key"] = df[metric] if direction == "minimize" else -df[metric]
    df = df.sort_values(["_bad", "_key", "trial"], na_position="last").drop(columns=["_bad", "_key"])
    df.insert(0, "rank", range(1, len(df) + 1))
    df["diverged"] = df["status"].eq("diverged").map({True: "yes", False: "no"})
    return df.reset_index(drop=True)


DISPLAY = {
    "image": ["rank", "trial", "model", "objective", "regularizer", "lam", "lr", "domain_fid", "inception_fid",
              "domain_kid", "precision", "recall", "coverage", "classes", "diverged", "status"],
    "points": ["rank", "trial", "model", "objective", "regularizer", "lam", "lr", "modes_captured", "high_quality",
               "reverse_kl", "diverged", "status"],
    "stacked": ["rank", "trial", "model", "objective", "regularizer", "lam", "lr", "stacked_modes", "stacked_kl",
                "diverged", "status"],
}


def display_frame(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings: λ/lr in scientific notation, missing values as '—'."""
    kind = "points" if "modes_captured" in lb else "stacked" if "stacked_modes" in lb else "image"
    for col in DISPLAY[kind]:
        if col not in lb:
            lb = lb.assign(**{col: math.nan})
    out = lb[DISPLAY[kind]].copy()
    out["lam"] = [("—" if r == "none" or not v else f"{v:.2e}") for r, v in zip(lb["regularizer"], lb["lam"])]
    out["lr"] = lb["lr"].map(lambda v: f"{v:.2e}")
    if "classes" in out:
        out["classes"] = lb["classes"].map(lambda v: "—" if v is None or v != v else f"{int(v)}/10")
    out["status"] = [f"diverged@{int(s)}" if st == "diverged" else st
                     for st, s in zip(lb["status"], lb["diverged_step"])]
    formats = {"domain_fid": "{:.2f}", "inception_fid": "{:.1f}", "domain_kid": "{:.4f}", "precision": "{:.3f}",
               "recall": "{:.3f}", "coverage": "{:.3f}", "modes_captured": "{:.0f}", "high_quality": "{:.1%}",
               "reverse_kl": "{:.3f}", "stacked_modes": "{:.0f}", "stacked_kl": "{:.3f}"}
    for col, fmt in formats.items():
        if col in out:
            out[col] = lb[col].map(lambda v, f=fmt: "—" if v is None or (isinstance(v, float) and math.isnan(v))
                                   else f.format(v))
    return out


CONFIG_KEYS = ["model", "objective", "regularizer", "lam", "lr"]


def config_summary(lb: pd.DataFrame, metric: str, direction: str = "minimize") -> pd.DataFrame:
    """Per config (everything but the seed): the metric's mean/std over seeds and the divergence
    rate, diverged seeds counted in the rate, not in the mean (stabgen.metrics.stability.over_seeds).
    Ranked by the mean in the metric's direction."""
    from stabgen.metrics.stability import over_seeds

    if lb.empty or metric not in lb:
        return pd.DataFrame()
    rows = []
    keys = "config_id" if "config_id" in lb else CONFIG_KEYS  # same sampled params = same config
    for _, g in lb.groupby(keys, sort=False, dropna=False):
        agg = over_seeds(g[metric].tolist(), (g["status"] == "diverged").tolist())
        rows.append({**g.iloc[0][CONFIG_KEYS].to_dict(), "seeds": agg["n_seeds"], f"{metric}_mean": agg["mean"],
                     f"{metric}_std": agg["std"], "divergence_rate": agg["divergence_rate"]})
    out = pd.DataFrame(rows)
    out = out.sort_values(f"{metric}_mean", ascending=direction == "minimize", na_position="last")
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def write_leaderboard(lb: pd.DataFrame, out_dir: Path, header: str, metric: str = "domain_fid",
                      direction: str = "minimize") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md, cfg = out_dir / "leaderboard.csv", out_dir / "leaderboard.md", out_dir / "configs.csv"
    lb.to_csv(csv, index=False)
    text = header + "\n\n" + display_frame(lb).to_markdown(index=False, disable_numparse=True) + "\n"
    summary = config_summary(lb, metric, direction)
    summary.to_csv(cfg, index=False)
    if not summary.empty and (summary["seeds"] > 1).any():
        text += "\n## Configs over seeds (ranked by the mean)\n\n" + summary.to_markdown(index=False) + "\n"
    md.write_text(text)
    return [csv, md, cfg]


def pareto_frame(study: optuna.Study, metrics: list[str]) -> pd.DataFrame:
    """The Pareto-optimal completed trials of a multi-objective study (Optuna's best_trials)."""
    rows = []
    for t in sorted(study.best_trials, key=lambda t: t.values[0]):
        cfg = t.user_attrs.get("config", {})
        rows.append({"trial": t.number, "model": cfg.get("model"), "regularizer": cfg.get("regularizer"),
                     "lam": cfg.get("lam"), "lr": cfg.get("lr"), **dict(zip(metrics, t.values))})
    return pd.DataFrame(rows)


def write_pareto(study: optuna.Study, spec, out_dir: Path) -> Path:
    path = out_dir / "pareto.csv"
    pareto_frame(study, spec.metrics).to_csv(path, index=False)
    return path
