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

    # a fixed SVG id salt: regenerating a report from the same records rewrites no committed figure
    with matplotlib.rc_context({"svg.hashsalt": "stabgen"}), sns.axes_style("whitegrid"), \
            sns.plotting_context("notebook"):
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


def _search_only(df: pd.DataFrame) -> pd.DataFrame:
    """Proposed search trials only (no seed re-runs; confirmation runs never reach the figures)."""
    return df[df["seed_rerun_of"].isna()] if "seed_rerun_of" in df else df


def study_worst(df: pd.DataFrame, metric: str, direction: str) -> float:
    """The worst finite value of the study: what a diverged, pruned or undefined trial counts as in
    expectations, which an infinite value would make infinite at every n."""
    v = df.loc[df["status"] == "completed", metric].dropna()
    v = v[np.isfinite(v)]
    return float(v.max() if direction == "minimize" else v.min()) if len(v) else np.nan


def expected_best(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    """Dodge et al. 2019: the expected best value after n search trials of each arm (closed form,
    bootstrap band over the arm's trials), against n and against n × the arm's mean seconds per
    trial. Diverged, pruned and undefined trials count as the study's worst finite value."""
    from bench import stats

    d = _search_only(df)
    w = study_worst(d, metric, direction)
    if np.isnan(w):
        return None
    fig, axes = subplots(1, 2, figsize=(11, 4), sharey=True)
    for arm, g in d.groupby("arm"):
        v = np.where((g["status"] == "completed") & g[metric].notna(), g[metric].fillna(w), w).astype(float)
        n = np.arange(1, len(v) + 1)
        curve = stats.expected_best(v, len(v), direction)
        lo, hi = stats.expected_best_band(v, len(v), direction)
        secs = n * float(g["seconds"].fillna(0).mean())
        for ax, x in zip(axes, (n, secs)):
            ax.plot(x, curve, marker="o", ms=3, label=f"{arm} ({len(v)})")
            ax.fill_between(x, lo, hi, alpha=0.2)
    axes[0].set_xlabel("search trials of the arm (n)")
    axes[1].set_xlabel("compute seconds (n × mean s/trial)")
    axes[0].set_ylabel(f"expected best {metric}")
    axes[0].legend(fontsize=7)
    fig.suptitle("expected best after n trials (Dodge et al. 2019), 95 % bootstrap band")
    return fig


def robustness(df: pd.DataFrame, metric: str, direction: str) -> pd.DataFrame:
    """Per λ-regularizer: of its sampled (λ, lr), the share that converged (completed, finite) and the
    share within 10 % of the regularizer's best; the λ region of the latter (min, max, width in decades)."""
    d = _search_only(df)
    d = d[(d["regularizer"] != "none") & (d["lam"].fillna(0) > 0)]
    rows = []
    for reg, g in d.groupby("regularizer"):
        ok = (g["status"] == "completed") & g[metric].notna() & np.isfinite(g[metric].fillna(np.nan))
        vals = g.loc[ok, metric]
        if vals.empty:
            rows.append({"regularizer": reg, "sampled": len(g), "converged": 0.0, "within_10pct": 0.0,
                         "lam_low": np.nan, "lam_high": np.nan, "lam_decades": np.nan})
            continue
        best = vals.min() if direction == "minimize" else vals.max()
        near = ok & ((g[metric] - best).abs() <= 0.1 * abs(best))
        lam = g.loc[near, "lam"]
        rows.append({"regularizer": reg, "sampled": len(g), "converged": float(ok.mean()),
                     "within_10pct": float(near.mean()), "lam_low": float(lam.min()), "lam_high": float(lam.max()),
                     "lam_decades": float(np.log10(lam.max() / lam.min()))})
    return pd.DataFrame(rows)


def lambda_robustness(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    """How forgiving each regularizer is about λ: shares converged / within 10 % of its best, and
    the λ of the trials within 10 % (the region's width in decades in the label)."""
    r = robustness(df, metric, direction)
    if r.empty:
        return None
    fig, axes = subplots(1, 2, figsize=(11, 4))
    long = r.melt(id_vars="regularizer", value_vars=["converged", "within_10pct"], var_name="share", value_name="v")
    sns.barplot(data=long, x="regularizer", y="v", hue="share", ax=axes[0])
    axes[0].set_ylim(0, 1.25)
    axes[0].set_ylabel("share of sampled (λ, lr)")
    axes[0].legend(fontsize=8, ncols=2, loc="upper center")
    for i, row in r.reset_index(drop=True).iterrows():
        if not np.isnan(row["lam_low"]):
            axes[1].plot([row["lam_low"], row["lam_high"]], [i, i], lw=6, solid_capstyle="butt", marker="o", ms=7)
            axes[1].text(row["lam_high"], i, f"  {row['lam_decades']:.1f} decades", va="center", fontsize=8)
    axes[1].set_xscale("log")
    axes[1].set_yticks(range(len(r)), r["regularizer"])
    axes[1].set_xlabel("λ of the trials within 10 % of the best")
    fig.suptitle("λ-robustness per regularizer (search trials)")
    return fig


def divergence_survival(df: pd.DataFrame, metric: str, direction: str) -> Figure | None:
    """Kaplan–Meier curves of time to divergence per arm: a diverged trial is an event at its step,
    every other trial right-censored at the steps it ran (scipy.stats.ecdf)."""
    from bench import stats

    d = _search_only(df)
    if d.empty:
        return None
    fig, ax = subplots(figsize=(7, 4.2))
    for arm, g in d.groupby("arm"):
        dur = np.where(g["status"] == "diverged", g["diverged_step"].fillna(g["steps"]), g["steps"]).astype(float)
        t, p = stats.survival(dur, (g["status"] == "diverged").to_numpy())
        ax.step(t, p, where="post", label=f"{arm} ({int((g['status'] == 'diverged').sum())}/{len(g)} diverged)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("P(not diverged)")
    ax.legend(fontsize=7)
    ax.set_title("time to divergence (Kaplan–Meier, censored at the budget)")
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
    "expected_best": expected_best,
    "lambda_robustness": lambda_robustness,
    "divergence_survival": divergence_survival,
}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """PNG (for the page) and SVG (for papers) of one figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.tight_layout()
    for p in paths:  # no creation date in the files (the same records give the same bytes)
        fig.savefig(p, dpi=110, metadata={"Date": None} if p.suffix == ".svg" else {"Software": None})
    return paths
