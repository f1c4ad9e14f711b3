"""Paper reproductions: `bench reproduce NAME --budget tiny|small|paper`.

Each reproduction is one module registered in PAPERS (bench.papers.base). It runs its experiment at a
budget and returns a Reproduction — tables (ours next to the paper's numbers), claims with a verdict
each, figures — which `write` turns into reports/papers/NAME/README.md with the command, hardware,
budget and seeds at the top. Budgets: `tiny` checks the pipeline end to end in seconds (its numbers
mean nothing), `small` fits a 2-core CPU in minutes, `paper` is the paper's own budget.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.papers import lucic2018, mescheder2018, pacgan2018, seed_feature_reg  # noqa: F401  (register)
from bench.papers.base import BUDGETS, PAPERS, Claim, Context, Paper, Reproduction, write

__all__ = ["BUDGETS", "PAPERS", "Claim", "Context", "Paper", "Reproduction", "priced_plan", "run"]


def run(name: str, budget: str, ctx: Context, command: str, hardware: str) -> tuple[Reproduction, Path]:
    reproduce = PAPERS.get(name).reproduce
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    from bench.figures import styled

    with styled():
        rep = reproduce(budget, ctx)
    return rep, write(rep, name, ctx, command, hardware, time.perf_counter() - t0)


def priced_plan(name: str, budget: str, device: str, data_dir: str | None = None,
                inception_weights: str | None = None):
    """A reproduction's plan at a budget, priced on this device (bench.papers.plan.estimate); nothing runs.
    (Not named `plan`: that is the submodule's name in this package.)"""
    from bench.papers.plan import estimate

    return estimate(PAPERS.get(name).plan(budget), device, data_dir, inception_weights)
