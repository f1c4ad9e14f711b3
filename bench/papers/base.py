"""What every paper reproduction shares: its types, the registry, claim tests, training and writing.

Each reproduction is one module registered in PAPERS. It runs its experiment at a budget and returns
a Reproduction — tables (ours next to the paper's numbers), claims with a verdict each, figures —
which `write` turns into reports/papers/NAME/README.md with the command, hardware, budget and seeds
at the top. Budgets: `tiny` checks the pipeline end to end in seconds (its numbers mean nothing),
`small` fits a 2-core CPU in minutes, `paper` is the paper's own budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from bench.search import RunOptions
from stabgen.registry import Registry

Budget = Literal["tiny", "small", "paper"]
BUDGETS: tuple[str, ...] = ("tiny", "small", "paper")


@dataclass
class Claim:
    text: str
    verdict: str  # reproduced / not reproduced / inconclusive (bench.stats.claim_verdict), or inconclusive (why)
    evidence: str


@dataclass
class Context:
    """What a reproduction may use: where to write, which device, where the data is."""

    out_dir: Path
    device: str = "cpu"
    data_dir: str | None = None
    inception_weights: str | None = None
    worker: bool = False  # one more process on a reproduction already running: its search draws its own stream
    runs_dir: Path = RunOptions.runs_dir  # where its trainings are cached and its studies stored
    # --jobs N|auto: local processes. A searched reproduction (lucic2018) runs its studies as `bench run
    # --jobs` does (None: one process; the CLI passes its default, auto); fixed configs (train_many) take N processes (None or auto: one per core)
    jobs: int | str | None = None


@dataclass
class Reproduction:
    title: str
    budget: str
    setup: str  # what ran: models, steps, seeds, samples
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # PNG paths relative to the output folder
    notes: list[str] = field(default_factory=list)
    # seconds of computation over every invocation, where the work resumes from storage (the header's
    # wall time covers only the invocation that wrote the report)
    compute_s: float | None = None


@dataclass(frozen=True)
class Paper:
    """One reproduction, registered once: what it runs at a budget (`reproduce`) and the work that budget
    asks for, which `--plan` prices (`plan`: bench.papers.plan.Work groups)."""

    reproduce: Callable[[str, Context], Reproduction]
    plan: Callable[[str], list]


# a third-party reproduction registers through the entry-point group stabgen.papers (a Paper object)
PAPERS: Registry[Paper] = Registry("reproduction", group="stabgen.papers")


def claims_vs_baseline(family: dict[str, tuple], baseline, direction: str, names: tuple[str, str],
                       claimed: str = "better", margin: float | None = None, untested: dict[str, str] | None = None,
                       notes: dict[str, str] | None = None) -> list[Claim]:
    """Claims "arm X is `claimed` (better/worse) than the baseline", one per arm of `family`
    (name → (claim text, values) or (claim text, values, its own baseline's values)), each arm tested
    on its own against its baseline, paired by seed (values aligned by seed, divergences already the
    worst value: bench.stats.scored): one-sided Wilcoxon signed-rank with exact permutation p, Holm
    across the family — every claim of one question — each direction and the equivalence test (TOST
    against `margin`, metric units) corrected separately. The verdict is the house rule
    (bench.stats.claim_verdict); an inconclusive one says how many seeds would settle it. An arm in
    `untested` (name → the verdict in words, e.g. a baseline below its quality gate) is not tested
    and leaves the Holm family; `notes` (name → text) are appended to an arm's evidence."""
    from bench import stats

    untested, notes = untested or {}, notes or {}
    res = {k: stats.paired(np.asarray(v[1], dtype=float), np.asarray(v[2] if len(v) > 2 else baseline, dtype=float),
                           direction, margin)
           for k, v in family.items() if k not in untested}
    keys = list(res)
    p_for = stats.holm([res[k].p_better if claimed == "better" else res[k].p_worse for k in keys])
    p_against = stats.holm([res[k].p_worse if claimed == "better" else res[k].p_better for k in keys])
    p_eq = stats.holm([res[k].p_equivalent for k in keys]) if margin else [math.nan] * len(keys)
    tested = {k: (pf, pa, pe) for k, pf, pa, pe in zip(keys, p_for, p_against, p_eq)}
    out = []
    for k, (text, a, *own) in family.items():
        b = np.asarray(own[0] if own else baseline, dtype=float)
        if k in untested:
            out.append(Claim(text, untested[k], f"median {_g(np.median(a))} ({names[0]}) vs {_g(np.median(b))} "
                             f"({names[1]}) over {len(b)} seeds; not tested" + (f"; {notes[k]}" if k in notes else "")))
            continue
        r, (pf, pa, pe) = res[k], tested[k]
        verdict = stats.claim_verdict(pf, pa, pe)
        # the p the verdict rests on: the opposite direction's where the claim is significantly wrong
        against = verdict == "not reproduced" and pa < stats.ALPHA / 2
        p_raw = (r.p_better if (claimed == "better") != against else r.p_worse)
        ev = (f"median {_g(np.median(a))} ({names[0]}) vs {_g(np.median(b))} ({names[1]}) over {r.n} paired seeds; "
              f"P(improvement) {r.prob_improvement:.2f} [{_g(r.prob_improvement_ci[0])}, {_g(r.prob_improvement_ci[1])}], "
              f"Hodges–Lehmann Δ {_g(r.hodges_lehmann)} [{_g(r.hodges_lehmann_ci[0])}, {_g(r.hodges_lehmann_ci[1])}]; "
              f"one-sided signed-rank p ({'opposite direction' if against else 'claimed direction'}) = {p_raw:.3g}, "
              f"Holm {(pa if against else pf):.3g} (over {len(keys)}; each direction at α/2 = {stats.ALPHA / 2:g})"
              + (f"; TOST ±{margin:g}: Holm p = {pe:.3g}" if margin else ""))
        if verdict == "inconclusive":
            ev += f"; {stats.describe_needed(r.seeds_needed, r.n)}"
        out.append(Claim(text, verdict, ev + (f"; {notes[k]}" if k in notes else "")))
    return out


def _g(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return ("∞" if v > 0 else "−∞") if math.isinf(v) else f"{v + 0.0:.3g}"  # + 0.0: −0 prints as 0


def _train_group(args: tuple) -> list[dict]:
    """Fixed configs that may share a population (stabgen.train.group_key) trained together to their
    final evaluation, one dict per config in order (a process-pool task: `threads` torch threads).
    A population member computes what its solo run computes (tests/stabgen/test_population.py), and K small
    nets in one batched pass cost far less than K passes: 10 seeds of PacGAN's 2D MLPs are ~2.3×
    cheaper per training on one CPU core than 10 solo runs."""
    import torch

    from stabgen.datasets import DATASETS, EvalRequest
    from stabgen.train import train_population

    cfgs, device, data_dir, n_eval, metric, threads = args
    torch.set_num_threads(threads)
    ds = DATASETS.get(cfgs[0].dataset)
    evaluate = ds.build_evaluator(EvalRequest("test", n_eval, device, data_dir, metric))
    return [_outcome(r, ds.kind, device)
            for r in train_population(cfgs, ds.source(data_dir), device, evaluate=evaluate)]


def _outcome(result, kind: str, device: str) -> dict:
    """What a reproduction keeps of one training: status, history, evaluations, final metrics and,
    for 2D data, the samples themselves (for the figures)."""
    import torch

    from stabgen.trial import sample_output, sampler

    cfg = result.config
    out = {"status": result.status, "diverged_step": result.diverged_step, "seconds": result.seconds,
           "history": result.history, "evals": result.evals, **(result.final if result.status != "diverged" else {})}
    if kind == "points" and result.status != "diverged":
        out["samples"] = sampler(result.modules["generator"], cfg.z_dim, cfg.seed, torch.device(device),
                                 output=sample_output(kind))(SAMPLES_KEPT).cpu().tolist()
    return out


def populations(configs: list, todo: list[int], workers: int, most: int = 64) -> list[list[int]]:
    """The indices in `todo` split into populations: configs that may train together (equal
    stabgen.train.group_key), each group cut into near-equal parts of at most `most` members and
    into at least `workers` parts overall where it can be, so that no process idles."""
    from stabgen.train import group_key

    groups: dict[tuple, list[int]] = {}
    for i in todo:
        groups.setdefault(group_key(configs[i]), []).append(i)
    size = min(most, max(1, math.ceil(len(todo) / max(1, workers))))
    out = []
    for idx in groups.values():
        parts = math.ceil(len(idx) / size)
        out += [idx[j::parts] for j in range(parts)]
    return out


def longest_first(configs: list, pops: list[list[int]]) -> list[list[int]]:
    """Populations in order of their work, the largest first (LPT scheduling: the last to start is a
    short one, so no process idles while another finishes a long one). Work is steps × samples drawn
    per step (batch size, which already counts a PacGAN's packs) summed over the members: a GAN at
    batch 400 costs what PacGAN4 at 4 × 100 does, and both four times a batch-100 GAN."""
    return sorted(pops, key=lambda idx: -sum(configs[i].steps * configs[i].batch_size for i in idx))


def _cache_file(cache: Path, cfg, n_eval: int, metric: str) -> Path:
    """One file per (config, evaluation): a config that changes in any field is a new training."""
    import hashlib
    import json

    key = json.dumps({"config": cfg.to_dict(), "n_eval": n_eval, "metric": metric}, sort_keys=True)
    return cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


SAMPLES_KEPT = 1000  # 2D points kept per training for the sample figures


def train_many(configs: list, ctx: Context, n_eval: int, metric: str, workers: int | None = None,
               cache: Path | None = None) -> list[dict]:
    """Train fixed configs (no search: a paper's own settings) as populations (`populations`),
    several processes at once on CPU; one progress task counts the finished trainings. With `cache`
    (a folder), each finished training is kept there as its population ends and found again by a
    rerun: an interrupted reproduction resumes."""
    import json
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing as mp

    from stabgen import progress

    results: list[dict | None] = [None] * len(configs)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(configs):
            f = _cache_file(cache, c, n_eval, metric)
            if f.exists():
                results[i] = json.loads(f.read_text())
    todo = [i for i, r in enumerate(results) if r is None]

    def keep(i: int, res: dict) -> None:
        results[i] = res
        if cache is not None:
            tmp = _cache_file(cache, configs[i], n_eval, metric).with_suffix(".tmp")
            tmp.write_text(json.dumps(res, default=float))
            tmp.replace(tmp.with_suffix(".json"))  # whole or absent, even after a kill

    # the cores this process may use (taskset, a batch system's cgroup); macOS has no affinity call
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = workers or (ctx.jobs if isinstance(ctx.jobs, int) else None) or (
        1 if ctx.device != "cpu" else max(1, min(cores, len(todo))))
    # on a CPU a population of 64 MLP GANs trains at half the member-steps/s of 16 (issue 31's
    # measurement on the 2-core EPYC: K = 16 0.99×, K = 64 0.52× of one solo run); a GPU wants them wide
    most = 16 if ctx.device == "cpu" else 64
    pops = longest_first(configs, populations(configs, todo, workers, most))
    workers = max(1, min(workers, len(pops)))
    threads = max(1, cores // workers)
    tasks = [(idx, ([configs[i] for i in idx], ctx.device, ctx.data_dir, n_eval, metric, threads)) for idx in pops]
    done_before = f", {len(configs) - len(todo)} kept from before" if len(todo) < len(configs) else ""
    with progress.task(f"{len(todo)} trainings in {len(pops)} population{'s' if len(pops) != 1 else ''} "
                       f"({workers} process{'es' if workers > 1 else ''}{done_before})", total=len(todo)) as bar:
        def done(idx: list[int], outs: list[dict]) -> None:
            for i, res in zip(idx, outs):
                keep(i, res)
            bar.advance(len(idx))

        if workers == 1:
            for idx, t in tasks:
                done(idx, _train_group(t))
            return results
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_train_group, t): idx for idx, t in tasks}
            for f in as_completed(futures):
                done(futures[f], f.result())
        return results


def write(rep: Reproduction, name: str, ctx: Context, command: str, hardware: str, seconds: float) -> Path:
    """reports/papers/NAME/README.md: header, claims and verdicts first, then tables and figures."""
    lines = [f"# Reproduction: {rep.title}", "",
             f"- **command**: `{command}`", f"- **hardware**: {hardware}",
             f"- **budget**: `{rep.budget}`" + (" — a pipeline check; its numbers mean nothing" if rep.budget == "tiny"
                                               else ""),
             f"- **setup**: {rep.setup}", f"- **wall time**: {seconds:.0f} s" + (f" (this invocation; {rep.compute_s:,.0f} s of compute over every "
                                                   "invocation)" if rep.compute_s is not None else ""),
             "", "## Claims", "",
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
