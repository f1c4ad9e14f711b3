"""What every paper reproduction shares: its types, the registry, claim tests, training and writing.

Each reproduction is one module registered in PAPERS. It runs its experiment at a budget and returns
a Reproduction — tables (ours next to the paper's numbers), claims with a verdict each, figures —
which `write` turns into reports/papers/NAME/README.md with the command, hardware, budget and seeds
at the top. Budgets: `tiny` checks the pipeline end to end in seconds (its numbers mean nothing),
`small` fits a 2-core CPU in minutes, `paper` is the paper's own budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import pandas as pd

from stabgen.registry import Registry

Budget = Literal["tiny", "small", "paper"]
BUDGETS: tuple[str, ...] = ("tiny", "small", "paper")


@dataclass
class Claim:
    text: str
    verdict: Literal["reproduced", "not reproduced", "inconclusive"]
    evidence: str


@dataclass
class Context:
    """What a reproduction may use: where to write, which device, where the data is."""

    out_dir: Path
    device: str = "cpu"
    data_dir: str | None = None
    inception_weights: str | None = None
    log: Callable[[str], None] = print


@dataclass
class Reproduction:
    title: str
    budget: str
    setup: str  # what ran: models, steps, seeds, samples
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # PNG paths relative to the output folder
    notes: list[str] = field(default_factory=list)


PAPERS: Registry[Callable[[str, Context], Reproduction]] = Registry("reproduction")


def one_sided_claim(text: str, a, b, alternative: str, names: tuple[str, str]) -> Claim:
    """A claim "a is less/greater than b" judged by a one-sided Mann-Whitney U over trials:
    reproduced at p < 0.05, inconclusive when the means point the claimed way without significance,
    not reproduced when they point the other way."""
    from scipy import stats as sps

    a, b = pd.Series(a).dropna(), pd.Series(b).dropna()
    if len(a) < 2 or len(b) < 2:
        return Claim(text, "inconclusive", f"too few finished trials for a test ({names[0]} {len(a)}, "
                                           f"{names[1]} {len(b)})")
    p = sps.mannwhitneyu(a, b, alternative=alternative).pvalue
    ev = (f"{names[0]} {a.mean():.4g} (n={len(a)}) vs {names[1]} {b.mean():.4g} (n={len(b)}); "
          f"one-sided Mann-Whitney U p = {p:.3g}")
    if p < 0.05:
        return Claim(text, "reproduced", ev)
    claimed_way = a.mean() < b.mean() if alternative == "less" else a.mean() > b.mean()
    return Claim(text, "inconclusive" if claimed_way else "not reproduced", ev + " (not significant at 0.05)")


def _train_one(args: tuple) -> dict:
    """One fixed config trained to its final evaluation (a process-pool task: 1 torch thread)."""
    import torch

    from stabgen.datasets import DATASETS, EvalRequest
    from stabgen.train import train

    cfg, device, data_dir, n_eval, metric, threads = args
    torch.set_num_threads(threads)
    ds = DATASETS.get(cfg.dataset)
    evaluate = ds.build_evaluator(EvalRequest("test", n_eval, device, data_dir, metric))
    result = train(cfg, ds.source(data_dir), device, evaluate=evaluate)
    return {"status": result.status, "diverged_step": result.diverged_step, "seconds": result.seconds,
            "history": result.history, "evals": result.evals, **(result.final if result.status != "diverged" else {})}


def train_many(configs: list, ctx: Context, n_eval: int, metric: str, workers: int | None = None) -> list[dict]:
    """Train fixed configs (no search: a paper's own settings), several processes at once on CPU."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    workers = workers or (1 if ctx.device != "cpu" else min(os.cpu_count() or 1, len(configs)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    tasks = [(c, ctx.device, ctx.data_dir, n_eval, metric, threads) for c in configs]
    if workers == 1:
        return [_train_one(t) for t in tasks]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(_train_one, tasks))


def write(rep: Reproduction, name: str, ctx: Context, command: str, hardware: str, seconds: float) -> Path:
    """reports/papers/NAME/README.md: header, claims and verdicts first, then tables and figures."""
    lines = [f"# Reproduction: {rep.title}", "",
             f"- **command**: `{command}`", f"- **hardware**: {hardware}",
             f"- **budget**: `{rep.budget}`" + (" — a pipeline check; its numbers mean nothing" if rep.budget == "tiny"
                                               else ""),
             f"- **setup**: {rep.setup}", f"- **wall time**: {seconds:.0f} s", "", "## Claims", "",
             "| claim | verdict | evidence |", "|---|---|---|"]
    lines += [f"| {c.text} | **{c.verdict}** | {c.evidence} |" for c in rep.claims]
    for title, df in rep.tables:
        lines += ["", f"## {title}", "", df.to_markdown(index=False, disable_numparse=True)]
        df.to_csv(ctx.out_dir / f"{_slug(title)}.csv", index=False)
    if rep.figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in rep.figures]
    if rep.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in rep.notes]
    path = ctx.out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")[:60]
