"""PacGAN's GAN row on a CPU budget: how many steps, at which learning rate, until the high-quality share
passes the quality gate (90 %)? Trains the plain GAN on ring and grid for each learning rate (one
population per dataset: every lr and seed at once), evaluates PacGAN's counting every --every steps,
and writes reports/papers/pacgan2018/learning_curve.{csv,png}: high-quality share and modes captured
against the step. This is how a `bench reproduce pacgan2018` budget that passes the gate is chosen.

    python benchmarks/pacgan_learning_curve.py --steps 20000 --lrs 3e-4,1e-3 --seeds 7
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from stabgen.datasets import DATASETS, EvalRequest
from stabgen.train import train_population
from stabgen.trial import TrialConfig

OUT = Path("reports/papers/pacgan2018")
GATE = 90.0


def curve(dataset: str, model: str, steps: int, every: int, lrs: list[float], seeds: list[int]) -> pd.DataFrame:
    ds = DATASETS.get(dataset)
    evaluate = ds.build_evaluator(EvalRequest("test", 2500, "cpu", None, "modes_captured"))
    cfgs = [TrialConfig(dataset=dataset, model=model, lr=lr, beta1=0.8, beta2=0.999, batch_size=100, steps=steps,
                        z_dim=2, eval_every=every, log_every=100, seed=s) for lr in lrs for s in seeds]
    t0 = time.perf_counter()
    results = train_population(cfgs, ds.source(None), "cpu", evaluate=evaluate)
    seconds = time.perf_counter() - t0
    return pd.DataFrame([{"dataset": dataset, "model": model, "lr": c.lr, "seed": c.seed, "step": e["step"],
                          "high_quality_pct": 100 * e.get("high_quality", 0.0), "modes_captured": e.get("modes_captured"),
                          "status": r.status, "population_seconds": round(seconds, 1)}
                         for c, r in zip(cfgs, results) for e in r.evals])


def plot(df: pd.DataFrame, out: Path) -> None:
    from bench.figures import save, styled, subplots

    with styled():
        fig, axes = subplots(2, 2, figsize=(11, 7), sharex=True)
        for j, dataset in enumerate(("ring", "grid")):
            d = df[df.dataset == dataset]
            if d.empty:  # this dataset not run (yet): an empty panel
                continue
            for (lr, seed), g in d.groupby(["lr", "seed"]):
                axes[0][j].plot(g.step, g.high_quality_pct, marker="o", ms=3, label=f"lr {lr:g}, seed {seed}")
                axes[1][j].plot(g.step, g.modes_captured, marker="o", ms=3, label=f"lr {lr:g}, seed {seed}")
            axes[0][j].axhline(GATE, ls="--", color="grey", label=f"quality gate {GATE:g} %")
            axes[1][j].axhline(8 if dataset == "ring" else 25, ls=":", color="grey", label="all modes")
            axes[0][j].set_title(f"{dataset}: GAN ({d.model.iloc[0]}), PacGAN counting on 2,500 samples")
            axes[0][j].set_ylabel("% high-quality samples")
            axes[1][j].set_ylabel("modes captured")
            axes[1][j].set_xlabel("step")
            axes[0][j].legend(fontsize=7)
        save(fig, out, "learning_curve")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("--lrs", default="3e-4,1e-3")
    ap.add_argument("--seeds", default="7")
    ap.add_argument("--model", default="mlp2d_small")
    ap.add_argument("--dataset", default=None, help="ring or grid (default: both)")
    a = ap.parse_args()
    if a.steps < 1 or a.every < 1:
        ap.error("--steps and --every must be positive")
    torch.set_num_threads(1)
    lrs, seeds = [float(x) for x in a.lrs.split(",")], [int(x) for x in a.seeds.split(",")]
    frames = [curve(d, a.model, a.steps, a.every, lrs, seeds) for d in ([a.dataset] if a.dataset else ["ring", "grid"])]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "learning_curve.csv"
    new = pd.concat(frames)
    if path.exists() and a.dataset:  # one dataset at a time (two processes): keep the other's rows
        new = pd.concat([pd.read_csv(path).query("dataset != @a.dataset"), new])
    new.to_csv(path, index=False)
    plot(new, OUT)
    print(new.groupby(["dataset", "lr", "step"])[["high_quality_pct", "modes_captured"]].mean().round(1).to_string())


if __name__ == "__main__":
    main()
