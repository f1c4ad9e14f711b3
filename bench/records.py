"""Trial records: the Optuna storage is the source of truth; trial folders hold the bulky files.

Per trial, user attributes in the storage: config, status (completed / diverged / pruned),
confirm_arm / confirm_of / confirm_seed on confirmation runs (bench.confirm),
diverged_step, seconds, device, metrics (final domain metrics with their N) and trial_dir.
Inception evaluations run after the search, on the best trials, and are kept as study user
attributes `inception/<trial number>` (finished trials are immutable in Optuna).
Files under runs/<study>/trials/<number>/: config.json, history.csv, evals.csv, metrics.json,
samples.png and generator.pt.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import optuna
import pandas as pd
import numpy as np
import torch
from optuna.trial import TrialState

from bench import stats
from bench.arms import label_of
from bench.storage import all_trials, given_up as given_up_trials
from stabgen.datasets import DATASETS, DEFAULT_DATASET, DatasetSpec
from stabgen.models import MODELS
from stabgen.trial import TrialResult

INCEPTION_ATTR = "inception/"


def write_trial_dir(path: Path, result: TrialResult, sample_grid: torch.Tensor | None,
                    modes: tuple[torch.Tensor, float] | None = None) -> None:
    """The trial's files; `modes` (centres, σ) of a 2D mixture are drawn under its samples."""
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
        _scatter(sample_grid, path / "samples.png", modes)
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


def draw_points(ax, points, modes: tuple[torch.Tensor, float] | None = None) -> None:
    """2D samples over the true modes (red ×) and their 3σ discs — the region PacGAN's counting calls
    high quality — so a reader sees at a glance whether samples sit on the modes."""
    import numpy as np
    from matplotlib.patches import Circle

    p = np.asarray(points.cpu() if isinstance(points, torch.Tensor) else points, dtype=float)
    if modes is not None:
        centers, sigma = modes
        for c in np.asarray(centers.cpu() if isinstance(centers, torch.Tensor) else centers, dtype=float):
            ax.add_patch(Circle(tuple(c), 3 * sigma, color="tab:red", alpha=0.25, lw=0))
            ax.plot(*c, "x", color="tab:red", ms=4, mew=1)
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.4, color="black")
    ax.set_aspect("equal")


def _scatter(points: torch.Tensor, out: Path, modes: tuple[torch.Tensor, float] | None = None) -> None:
    from matplotlib.figure import Figure  # no pyplot: no backend chosen, nothing left open

    fig = Figure(figsize=(4, 4))
    draw_points(fig.subplots(), points, modes)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def _num(x) -> float:
    return float(x) if x is not None else math.nan


def command_line() -> str:
    """The command that is running, as reports name it (built here only)."""
    return " ".join(["bench", *sys.argv[1:]])


def display_lam(regularizer: str, lam) -> str:
    """λ as tables show it: scientific notation, '—' where the regularizer takes none."""
    return "—" if regularizer == "none" or not lam or lam != lam else f"{lam:.2e}"


def study_dataset(study: optuna.Study) -> DatasetSpec:
    return DATASETS.get(study.user_attrs.get("spec", {}).get("dataset", DEFAULT_DATASET))


def _recorded(recorded: dict, c) -> object:
    """A column's value: an Inception column from the post-hoc Inception step, else from the trial's own
    final metrics (a study searching by inception_fid evaluates every trial on Inception)."""
    if c.source == "inception" and c.key not in recorded["inception"]:
        return recorded["metrics"].get(f"inception_{c.key}")
    return recorded[c.source].get(c.key)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per finished trial: config, status, and every column of its dataset (DatasetSpec.columns)."""
    ds = study_dataset(study)
    incep = {int(k.removeprefix(INCEPTION_ATTR)): v for k, v in study.user_attrs.items()
             if k.startswith(INCEPTION_ATTR)}
    rows = []
    given_up = given_up_trials(study)  # configs retried MAX_RETRIES times: failed, the worst value
    # the search's trials, then its seed re-runs and confirmation runs (their own study: bench.storage)
    for t in all_trials(study, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if t.state == TrialState.FAIL and t.number not in given_up:
            continue
        cfg, m = t.user_attrs.get("config", {}), t.user_attrs.get("metrics", {})
        recorded = {"metrics": m, "inception": incep.get(t.number, {})}
        gan = cfg.get("model") and MODELS.get(cfg["model"]).family == "gan"
        rows.append({
            "trial": t.number,
            "model": cfg.get("model"), "objective": cfg.get("objective") if gan else "",
            "regularizer": cfg.get("regularizer"), "lam": cfg.get("lam"), "lr": cfg.get("lr"),
            "seed": cfg.get("seed"), "steps": t.user_attrs.get("steps_done"),
            "seed_rerun_of": t.user_attrs.get("reeval_of"),
            "confirm_arm": t.user_attrs.get("confirm_arm"), "confirm_of": t.user_attrs.get("confirm_of"),
            "confirm_seed": t.user_attrs.get("confirm_seed"),
            "status": "failed" if t.state == TrialState.FAIL else t.user_attrs.get("status", t.state.name.lower()),
            "diverged_step": t.user_attrs.get("diverged_step"),
            **{name: _num(_recorded(recorded, c)) for name, c in ds.columns.items()},
            "n": m.get("domain_n_fake", m.get("n_samples")),
            "inception_n": recorded["inception"].get("n_fake", m.get("inception_n_fake")),
            "seconds": t.user_attrs.get("seconds"), "device": t.user_attrs.get("device"),
            **{k: cfg.get(k) for k in SEARCHED if k in cfg},
            "config_id": json.dumps(t.params, sort_keys=True),  # seed re-runs share their source's params
            "completed_at": t.datetime_complete, "trial_dir": t.user_attrs.get("trial_dir"),
        })
    return pd.DataFrame(rows)


# config fields a search may vary besides model/objective/regularizer/λ/lr (shown where they vary)
SEARCHED = ("obj_lam", "clip_value", "n_critic", "beta", "beta1", "beta2", "batch_size")
CONFIG_KEYS = ["model", "objective", "regularizer", "lam", "lr"]


def ranked(df: pd.DataFrame, metric: str, direction: str = "minimize") -> pd.DataFrame:
    """Trials ranked by the study metric in its direction; diverged, pruned and undefined last."""
    if df.empty:
        return df
    if metric not in df:
        df = df.assign(**{metric: math.nan})
    key = df[metric] if direction == "minimize" else -df[metric]
    df = df.assign(_bad=df["status"] != "completed", _key=key)
    df = df.sort_values(["_bad", "_key", "trial"], na_position="last").drop(columns=["_bad", "_key"])
    df.insert(0, "rank", range(1, len(df) + 1))
    return df.reset_index(drop=True)


def load_generator(trial: optuna.trial.FrozenTrial, device: str = "cpu",
                   study: optuna.Study | None = None) -> torch.nn.Module:
    """A finished trial's generator, rebuilt from its config and the weights in its trial folder —
    or, when that folder is on another machine, from the study's artifact store (bench.artifacts)."""
    from bench import artifacts
    from stabgen.errors import StabgenError
    from stabgen.trial import TrialConfig

    cfg = TrialConfig(**trial.user_attrs["config"])
    folder = artifacts.local_folder(study, trial, want=("generator.pt",)) if study is not None else None
    path = (folder or Path(trial.user_attrs.get("trial_dir", ""))) / "generator.pt"
    if not path.is_file():
        raise StabgenError(f"trial {trial.number} has no generator weights at {path} "
                           f"(diverged, or its folder is on another machine and the study has no artifact store)")
    gen = MODELS.get(cfg.model).build(DATASETS.get(cfg.dataset).shape, cfg.z_dim, d_bn=cfg.d_bn)["generator"]
    gen.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return gen.to(device).eval()


def pareto_frame(study: optuna.Study, metrics: list[str]) -> pd.DataFrame:
    """The Pareto-optimal completed trials of a multi-objective study (Optuna's best_trials)."""
    rows = []
    for t in sorted(study.best_trials, key=lambda t: t.values[0]):
        cfg = t.user_attrs.get("config", {})
        rows.append({"trial": t.number, "model": cfg.get("model"), "regularizer": cfg.get("regularizer"),
                     "lam": cfg.get("lam"), "lr": cfg.get("lr"), **dict(zip(metrics, t.values))})
    return pd.DataFrame(rows)


def varying_keys(df: pd.DataFrame) -> list[str]:
    """The config columns worth grouping and showing by: always the main five, the others where they vary."""
    return CONFIG_KEYS + [c for c in SEARCHED if c in df and df[c].nunique(dropna=True) > 1]


# --- the trial frame's two kinds of rows (search and confirmation) and their scores --------------------

def scores(df: pd.DataFrame, metric: str, direction: str) -> np.ndarray:
    """Each run's value with every run that did not complete with a finite value at the worst."""
    if df.empty:
        return np.array([], dtype=float)
    return stats.scored(df[metric].tolist(), (df["status"] == "completed").tolist(), direction)


def search_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Search trials and their seed re-runs (what selection and the search tables see)."""
    return df[df["confirm_arm"].isna()] if "confirm_arm" in df and not df.empty else df


def confirm_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["confirm_arm"].notna()] if "confirm_arm" in df and not df.empty else df.iloc[0:0]


def arm_labels(df: pd.DataFrame, kind: str) -> pd.Series:
    """Each row's arm label (bench.arms) under `kind`."""
    return pd.Series([label_of(r, kind) for r in df.to_dict("records")], index=df.index, dtype=object)
