"""Report figures (seaborn on matplotlib Figure objects): each function takes the study's trial
frame and returns a figure, or None when the study holds nothing to draw (e.g. no λ-regularizer).

Figures are made without pyplot, so no backend is chosen and no figure is left open in a user's
session; seaborn's theme applies only inside `styled()` (importing this module changes nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import contextlib
from typing import Iterator

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """seaborn's whitegrid/notebook look for the figures drawn inside; the user's rcParams after."""
    import matplotlib

    with matplotlib.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        yield


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (7, 4.2), **kw):
    """A Figure and its axes, like pyplot.subplots but unmanaged by pyplot (no backend, no registry)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def _done(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return df[(df["status"] == "completed") & df[metric].notna()]


def objective_vs_lambda(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    """Where in λ each regularizer works: one point per completed trial, log λ; the dashed line is
    the median of the unregularized trials."""
    d = _done(df, metric)
    lam = d[(d["regularizer"] != "none") & (d["lam"] > 0)]
    if lam.empty:
        return None
    fig, ax = subplots(figsize=(7, 4.2))
    sns.scatterplot(data=lam, x="lam", y=metric, hue="regularizer", style="model", s=60, ax=ax)
    base = d.loc[d["regularizer"] == "none", metric]
    if len(base):
        ax.axhline(base.median(), ls="--", color="grey", label="none (median)")
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_title(f"{metric} vs λ ({'lower' if direction == 'minimize' else 'higher'} is better)")
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
    return fig


def objective_by_regularizer(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    d = _done(df, metric)
    if d.empty:
        return None
    order = d.groupby("regularizer")[metric].median().sort_values(ascending=direction == "minimize").index
    fig, ax = subplots(figsize=(7, 4.2))
    sns.boxplot(data=d, x="regularizer", y=metric, order=order, color="lightsteelblue", showfliers=False, ax=ax)
    sns.stripplot(data=d, x="regularizer", y=metric, order=order, hue="model", dodge=False, size=5,
                  alpha=0.8, ax=ax)
    ax.set_title(f"{metric} per regularizer (completed trials)")
    ax.tick_params(axis="x", rotation=30)
    return fig


def budget_curves(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    """Best-so-far against trials and against cumulative compute seconds, in completion order."""
    d = df[df["seed_rerun_of"].isna()].sort_values("completed_at")
    if d[metric].notna().sum() == 0:
        return None
    vals = d[metric].to_numpy(dtype=float)
    vals = np.where(np.isnan(vals), np.inf if direction == "minimize" else -np.inf, vals)
    best = np.minimum.accumulate(vals) if direction == "minimize" else np.maximum.accumulate(vals)
    best = np.where(np.isfinite(best), best, np.nan)
    fig, axes = subplots(1, 2, figsize=(10, 3.8), sharey=True)
    axes[0].step(np.arange(1, len(best) + 1), best, where="post")
    axes[0].set_xlabel("finished trials")
    axes[1].step(d["seconds"].fillna(0).cumsum().to_numpy(), best, where="post")
    axes[1].set_xlabel("compute seconds (sum over trials)")
    axes[0].set_ylabel(f"best {metric} so far")
    fig.suptitle("budget curves")
    return fig


def training_curves(df: pd.DataFrame, metric: str, direction: str, top: int = 5) -> Figure | None:
    """Intermediate metric and losses of the top trials, read from their trial folders."""
    d = _done(df, metric).sort_values(metric, ascending=direction == "minimize").head(top)
    curves, losses = [], []
    for _, row in d.iterrows():
        folder = Path(str(row["trial_dir"]))
        label = f"#{row['trial']} {row['model']} {row['regularizer']}"
        if (folder / "evals.csv").exists():
            e = pd.read_csv(folder / "evals.csv")
            if metric in e:
                curves.append(e.assign(trial=label)[["step", metric, "trial"]])
        if (folder / "history.csv").exists():
            h = pd.read_csv(folder / "history.csv")
            col = "loss_d" if "loss_d" in h else "loss" if "loss" in h else None
            if col:
                losses.append(h.assign(trial=label, loss=h[col])[["step", "loss", "trial"]])
    if not curves and not losses:
        return None
    fig, axes = subplots(1, 2, figsize=(11, 3.8))
    if curves:
        sns.lineplot(data=pd.concat(curves, ignore_index=True), x="step", y=metric, hue="trial", marker="o",
                     ax=axes[0])  # ignore_index: seaborn refuses the repeated row labels of stacked CSVs
    if losses:
        sns.lineplot(data=pd.concat(losses, ignore_index=True), x="step", y="loss", hue="trial", ax=axes[1],
                     legend=False)
    axes[1].set_ylabel("critic loss (GAN) / loss (VAE)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"training curves of the top {len(d)} trials")
    return fig


def fidelity_diversity(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    """Precision vs recall and density vs coverage: fidelity against diversity, one point per trial."""
    d = df[df["status"] == "completed"]
    if "precision" not in d or d["precision"].notna().sum() == 0:
        return None
    fig, axes = subplots(1, 2, figsize=(10, 4.2))
    sns.scatterplot(data=d, x="recall", y="precision", hue="regularizer", style="model", s=60, ax=axes[0])
    sns.scatterplot(data=d, x="coverage", y="density", hue="regularizer", style="model", s=60, ax=axes[1],
                    legend=False)
    axes[0].legend(fontsize=7)
    fig.suptitle("fidelity vs diversity (domain features)")
    return fig


def param_importances(importances: dict[str, float]) -> Figure | None:
    if not importances:
        return None
    s = pd.Series(importances).sort_values()
    fig, ax = subplots(figsize=(6, 0.5 + 0.45 * len(s)))
    sns.barplot(x=s.to_numpy(), y=s.index, orient="h", color="steelblue", ax=ax)
    ax.set_xlabel("importance (Optuna PED-ANOVA)")
    ax.set_ylabel("")
    return fig


FIGURES: dict[str, Callable[[pd.DataFrame, str, str], Figure | None]] = {
    "objective_vs_lambda": objective_vs_lambda,
    "objective_by_regularizer": objective_by_regularizer,
    "budget_curves": budget_curves,
    "training_curves": training_curves,
    "fidelity_diversity": fidelity_diversity,
}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """PNG (for the page) and SVG (for papers) of one figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p, dpi=110)
    return paths
