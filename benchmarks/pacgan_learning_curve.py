"""PacGAN's GAN row on a CPU budget: how many steps, at which learning rate, until the high-quality share
passes the quality gate (90 %)? Trains the plain GAN on ring and grid for each learning rate (one
population per dataset: every lr and seed at once), evaluates PacGAN's counting every --every steps,
and writes reports/papers/pacgan2018/learning_curve.{csv,png}: high-quality share and modes captured
against the step. This is how a `bench reproduce pacgan2018` budget that passes the gate is chosen.
With a decaying --schedule the share at step s of a longer run is not that of an s-step run, so
--steps takes several budgets (one population each) and the figure marks each run's last step.

    python benchmarks/pacgan_learning_curve.py --steps 20000 --lrs 3e-4,1e-3 --seeds 7
    python benchmarks/pacgan_learning_curve.py --steps 5000,10000,20000 --schedule linear --seeds 7,1007
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from stabgen.datasets import DATASETS, EvalRequest
from stabgen.schedules import SCHEDULES
from stabgen.train import train_population
from stabgen.trial import TrialConfig

OUT = Path("reports/papers/pacgan2018")
GATE = 90.0


def curve(dataset: str, model: str, steps: int, every: int, lrs: list[float], seeds: list[int],
          schedule: str = "constant") -> pd.DataFrame:
    ds = DATASETS.get(dataset)
    evaluate = ds.build_evaluator(EvalRequest("test", 2500, "cpu", None, "modes_captured"))
    cfgs = [TrialConfig(dataset=dataset, model=model, lr=lr, beta1=0.8, beta2=0.999, batch_size=100, steps=steps,
                        z_dim=2, eval_every=min(every, steps), log_every=100, seed=s, lr_schedule=schedule)
            for lr in lrs for s in seeds]
    t0 = time.perf_counter()
    results = train_population(cfgs, ds.source(None), "cpu", evaluate=evaluate)
    seconds = time.perf_counter() - t0
    return pd.DataFrame([{"dataset": dataset, "model": model, "schedule": schedule, "steps": steps, "lr": c.lr,
                          "seed": c.seed, "step": e["step"],
                          "high_quality_pct": 100 * e.get("high_quality", 0.0), "modes_captured": e.get("modes_captured"),
                          "status": r.status, "population_seconds": round(seconds, 1)}
                         for c, r in zip(cfgs, results) for e in r.evals])


def plot(df: pd.DataFrame, out: Path) -> None:
    import matplotlib

    from bench.figures import save, styled, subplots

    with styled():
        fig, axes = subplots(2, 2, figsize=(11, 7), sharex=True)
        for j, dataset in enumerate(("ring", "grid")):
            d = df[df.dataset == dataset]
            if d.empty:  # this dataset not run (yet): an empty panel
                continue
            runs = list(d.groupby(["schedule", "steps", "lr", "seed"]))
            colors = matplotlib.colormaps["tab20"].colors  # one colour per run (tab10 repeats after ten)
            for i, ((schedule, steps, lr, seed), g) in enumerate(runs):
                label = f"lr {lr:g} {schedule}, {steps:,} steps, seed {seed}"
                line, = axes[0][j].plot(g.step, g.high_quality_pct, marker="o", ms=3, label=label, lw=1,
                                        color=colors[i % len(colors)])
                axes[1][j].plot(g.step, g.modes_captured, marker="o", ms=3, lw=1, color=line.get_color())
                last = g[g.step == g.step.max()]  # the run's result (a decayed run ends here, not later)
                axes[0][j].plot(last.step, last.high_quality_pct, marker="*", ms=10, color=line.get_color())
            axes[0][j].axhline(GATE, ls="--", color="grey", label=f"quality gate {GATE:g} %")
            axes[1][j].axhline(8 if dataset == "ring" else 25, ls=":", color="grey", label="all modes")
            axes[0][j].set_title(f"{dataset}: GAN ({d.model.iloc[0]}), PacGAN counting on 2,500 samples")
            axes[0][j].set_ylabel("% high-quality samples")
            axes[1][j].set_ylabel("modes captured")
            axes[1][j].set_xlabel("step")
            axes[0][j].legend(fontsize=6)
        save(fig, out, "learning_curve")


def replot() -> None:
    """Redraw the figure from the committed csv (no training)."""
    plot(pd.read_csv(OUT / "learning_curve.csv").fillna({"schedule": "constant"}), OUT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="20000", help="one or more step budgets, comma-separated")
    ap.add_argument("--schedule", default="constant", help="lr schedule (stabgen.schedules)")
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("--lrs", default="3e-4,1e-3")
    ap.add_argument("--seeds", default="7")
    ap.add_argument("--model", default="mlp2d_small")
    ap.add_argument("--dataset", default=None, help="ring or grid (default: both)")
    a = ap.parse_args()
    try:
        budgets = [int(x) for x in a.steps.split(",")]
    except ValueError:
        ap.error(f"--steps must be integers, comma-separated, got {a.steps!r}")
    if min(budgets) < 1 or a.every < 1:
        ap.error("--steps and --every must be positive")
    if a.schedule not in SCHEDULES:
        ap.error(f"unknown --schedule {a.schedule!r}; known: {', '.join(SCHEDULES.names())}")
    torch.set_num_threads(1)
    lrs, seeds = [float(x) for x in a.lrs.split(",")], [int(x) for x in a.seeds.split(",")]
    datasets = [a.dataset] if a.dataset else ["ring", "grid"]
    new = pd.concat([curve(d, a.model, n, a.every, lrs, seeds, a.schedule) for d in datasets for n in budgets])
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "learning_curve.csv"
    if path.exists():  # other runs' rows stay (another dataset, schedule or budget, run by another process)
        old = pd.read_csv(path)
        old["schedule"] = old["schedule"].fillna("constant") if "schedule" in old else "constant"
        if "steps" not in old:
            old["steps"] = old.groupby(["dataset", "lr", "seed"]).step.transform("max")
        ran = old.set_index(["dataset", "schedule", "steps"]).index.isin(
            new.set_index(["dataset", "schedule", "steps"]).index.unique())
        new = pd.concat([old[~ran], new])
    new.to_csv(path, index=False)
    plot(new, OUT)
    print(new.groupby(["dataset", "schedule", "steps", "lr", "step"])[["high_quality_pct", "modes_captured"]]
          .mean().round(1).to_string())


if __name__ == "__main__":
    main()
