"""Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in GANs" — Table 1, 2D ring and grid.

Ring: 8 Gaussians on the unit circle, σ 0.01; grid: 25 Gaussians, σ 0.05. Adam(lr, β1 = 0.8),
batch 100 packs (so PacGANm's D sees 100·m samples per step), 2,500 evaluation samples counted the
paper's way (a mode is captured if a sample is within 3σ of it; high quality = within 3σ of any;
reverse KL of the captured-mode histogram). GAN and PacGAN2/3/4; a GAN at batch 100·m beside each
PacGANm (its D sees as many samples per step: is it the packing or the batch?); our regularizers as
extra rows at the tiny budget.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from bench import stats
from bench.papers.base import PAPERS, Paper, Claim, Context, Reproduction, claims_vs_baseline, train_many
from bench.papers.plan import Work
from stabgen.trial import TrialConfig

log = logging.getLogger(__name__)

# (variant, dataset) → paper's (modes, s.e., high-quality %, s.e., reverse KL, s.e.) over 10 trials
PAPER = {
    ("GAN", "ring"): (6.3, 0.5, 98.2, 0.2, 0.45, 0.09), ("GAN", "grid"): (17.3, 0.8, 94.8, 0.7, 0.70, 0.07),
    ("PacGAN2", "ring"): (7.9, 0.1, 95.6, 2.0, 0.07, 0.03), ("PacGAN2", "grid"): (23.8, 0.7, 91.3, 0.8, 0.13, 0.04),
    ("PacGAN3", "ring"): (7.8, 0.1, 97.7, 0.3, 0.10, 0.02), ("PacGAN3", "grid"): (24.6, 0.4, 94.2, 0.4, 0.06, 0.02),
    ("PacGAN4", "ring"): (7.8, 0.1, 95.9, 1.4, 0.07, 0.02), ("PacGAN4", "grid"): (24.8, 0.2, 93.6, 0.6, 0.04, 0.01),
}
PACKED = ("PacGAN2", "PacGAN3", "PacGAN4")
# the batch-matched control of each PacGANm: a GAN whose D sees the same 100·m samples per step, unpacked
CONTROLS = {f"PacGAN{m}": f"GAN (batch {100 * m})" for m in (2, 3, 4)}
VARIANTS = {"GAN": {}, "PacGAN2": {"pack": 2}, "PacGAN3": {"pack": 3}, "PacGAN4": {"pack": 4},
            **{c: {"batch": 100 * m} for m, c in zip((2, 3, 4), CONTROLS.values())},
            "GAN + R1 (λ=1)": {"regularizer": "r1", "lam": 1.0},
            "GAN + spectral norm": {"regularizer": "spectral_norm"}}
PACGAN = ("GAN", *PACKED, *CONTROLS.values())
BUDGETS = {  # the paper: 400 epochs of 100,000 samples at batch 100 = 400,000 steps, 10 trials
    "tiny": {"model": "mlp2d_small", "steps": 30, "trials": 1, "lr": 1e-3, "eval_every": 30},
    # 2-core CPU, chosen from the learning curve (learning_curve.png): with the lr decayed linearly to 0,
    # 40,000 steps put 95–98 % of ring samples near a mode, while the grid needs more (88–89 % at 40,000);
    # the PacGAN rows and their batch-matched GANs (7 variants × 2 datasets × 10 seeds, one population each)
    "small": {"model": "mlp2d_small", "steps": {"ring": 40_000, "grid": 80_000}, "trials": 10, "lr": 1e-3,
              "eval_every": 5_000, "lr_schedule": "linear", "variants": PACGAN},
    "paper": {"model": "pacgan", "steps": 400_000, "trials": 10, "lr": 1e-4, "eval_every": 50_000},
}
MODEL_WORDS = {"mlp2d_small": "G and D 2×128 (ReLU / LeakyReLU)", "mlp2d": "G 3×400 ReLU, D 3×200 LeakyReLU",
               "pacgan": "the paper's: G 4×400 with batch norm, D 3×200 LinearMaxout of 5 pieces"}
CHANCE_BOXES = {"ring": 1.5, "grid": 5.0}  # uniform noise on [−a, a]²: the data's box and a margin
N_EVAL = 2500
QUALITY_GATE = 90.0  # % high-quality samples the GAN row must reach before mode counts are compared (paper: 98.2 / 94.8)
MODE_METRICS = ("modes_captured", "high_quality", "reverse_kl")


def steps(b: dict, dataset: str) -> int:
    """A budget's steps on `dataset` (one number for both, or one per dataset)."""
    return b["steps"][dataset] if isinstance(b["steps"], dict) else b["steps"]


def configs(budget: str) -> list[tuple[str, str, TrialConfig]]:
    """(variant, dataset, config) of every training, the GAN rows first (they decide the quality
    gate, so an interrupted run has its answer first)."""
    b = BUDGETS[budget]
    out = []
    for name in b.get("variants", VARIANTS):
        for dataset in ("ring", "grid"):
            n = steps(b, dataset)
            base = TrialConfig(model=b["model"], lr=b["lr"], beta1=0.8, beta2=0.999, batch_size=100, steps=n,
                               z_dim=2, eval_every=b["eval_every"], log_every=max(10, n // 200),
                               lr_schedule=b.get("lr_schedule", "constant"))
            fields = dict(VARIANTS[name])
            batch = fields.pop("batch", None)
            for trial in range(b["trials"]):
                cfg = replace(base, dataset=dataset, seed=1000 * trial + 7, **fields)
                out.append((name, dataset, replace(cfg, batch_size=batch or 100 * cfg.pack)))
    return out


def plan(budget: str) -> list[Work]:
    """One kind of work per variant × dataset: its seeds' trainings."""
    groups: dict[tuple[str, str], list[TrialConfig]] = {}
    for variant, dataset, cfg in configs(budget):
        groups.setdefault((variant, dataset), []).append(cfg)
    return [Work(f"{variant} on {dataset}", cfgs[0], len(cfgs), N_EVAL, math.ceil(cfgs[0].steps / cfgs[0].eval_every),
                 "modes_captured", population=len(cfgs)) for (variant, dataset), cfgs in groups.items()]


def chance_samples(kind: str, dataset: str, seed: int, n: int = N_EVAL):
    """What scores a generator that learned no mode: `uniform` noise over the data's box, or `blurred`,
    the mixture itself with every σ ten times wider (the right places, no sharpness)."""
    import torch

    from stabgen.sources import GRID, RING

    mix = {"ring": RING, "grid": GRID}[dataset]
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        a = CHANCE_BOXES[dataset]
        return (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * a
    k = torch.randint(mix.centers.shape[0], (n,), generator=g)
    return mix.centers[k].double() + 10 * mix.sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)


def chance_rows(trials: int) -> pd.DataFrame:
    """The chance baselines under PacGAN's counting, `trials` draws of N_EVAL samples each."""
    from stabgen.metrics.modes import mixture_modes
    from stabgen.sources import GRID, RING

    rows = []
    for dataset, mix in (("ring", RING), ("grid", GRID)):
        for kind, label in (("uniform", f"uniform noise on [−{CHANCE_BOXES[dataset]:g}, {CHANCE_BOXES[dataset]:g}]²"),
                            ("blurred", "blurred mixture (σ × 10)")):
            res = [mixture_modes(chance_samples(kind, dataset, 1000 * t + 7), mix.centers, mix.sigma)
                   for t in range(trials)]
            ms = [_mean_se([r[m] * (100 if m == "high_quality" else 1) for r in res]) for m in MODE_METRICS]
            rows.append({"dataset": dataset, "variant": f"chance: {label}", "trials": trials, "diverged": 0,
                         "modes (ours)": _pm(*ms[0]), "HQ % (ours)": _pm(*ms[1]), "rev-KL (ours)": _pm(*ms[2], 2)})
    return pd.DataFrame(rows)


def _mean_se(x: list[float]) -> tuple[float, float]:
    a = np.array([v for v in x if v is not None and math.isfinite(v)], dtype=float)
    if len(a) == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan


def _pm(m: float, se: float, digits: int = 1) -> str:
    if math.isnan(m):
        return "—"
    return f"{m:.{digits}f} ± {se:.{digits}f}" if not math.isnan(se) else f"{m:.{digits}f}"


def reproduce(budget: str, ctx: Context) -> Reproduction:
    runs = configs(budget)
    b = BUDGETS[budget]
    log.info(f"pacgan2018: {len(runs)} trainings × {_steps_words(b)} steps")
    results = train_many([c for _, _, c in runs], ctx, N_EVAL, "modes_captured",
                         cache=ctx.runs_dir / "papers" / "pacgan2018" / budget)  # resumable
    df = pd.DataFrame([{"variant": v, "dataset": d, "seed": c.seed, "status": r["status"],
                        "seconds": r["seconds"], **{m: r.get(m) for m in MODE_METRICS}}
                       for (v, d, c), r in zip(runs, results)])
    df["high_quality"] = df["high_quality"] * 100  # percent, as in the paper
    df.to_csv(ctx.out_dir / "runs.csv", index=False)

    rows, within = [], []
    for (variant, dataset), g in df.groupby(["variant", "dataset"], sort=False):
        ours = [_mean_se(g[m].tolist()) for m in MODE_METRICS]
        paper = PAPER.get((variant, dataset))
        row = {"dataset": dataset, "variant": variant, "trials": len(g),
               "diverged": int((g["status"] == "diverged").sum()),
               "modes (ours)": _pm(*ours[0]), "HQ % (ours)": _pm(*ours[1]), "rev-KL (ours)": _pm(*ours[2], 2)}
        if paper:
            row.update({"modes (paper)": _pm(paper[0], paper[1]), "HQ % (paper)": _pm(paper[2], paper[3]),
                        "rev-KL (paper)": _pm(paper[4], paper[5], 2)})
            if variant == "GAN":
                for (m, se), pm, pse, name in zip(ours, paper[0::2], paper[1::2], MODE_METRICS):
                    tol = 3 * math.sqrt((se if not math.isnan(se) else 0) ** 2 + pse ** 2)
                    within.append((dataset, name, m, pm, tol, abs(m - pm) <= tol))
        rows.append(row)
    table = pd.concat([pd.DataFrame(rows), chance_rows(b["trials"])], ignore_index=True).fillna("—")

    claims = _claims(df)
    checks = [f"{d} {m}: ours {o:.3g} vs paper {p:.3g} (3 s.e. = {t:.2g}) {'✓' if ok else '✗'}"
              if not math.isnan(o) else f"{d} {m}: undefined for all our trials (no high-quality sample) ✗"
              for d, m, o, p, t, ok in within]
    claims.append(Claim("Our GAN rows land within 3 s.e. of the paper's",
                        "reproduced" if within and all(w[-1] for w in within) else "not reproduced",
                        "; ".join(checks)))
    notes = _notes(budget)
    figs = [_plot(df, ctx.out_dir), _plot_samples(runs, results, ctx.out_dir), _plot_curves(runs, results, ctx.out_dir)]
    return Reproduction(
        title="Lin et al. 2018 (PacGAN) — Table 1: 2D ring and grid",
        budget=budget,
        setup=(f"{len(df)} trainings: {', '.join(df.variant.unique())} on ring and grid, {b['trials']} trial(s) "
               f"each (seeds 7, 1007, …), {_steps_words(b)} steps, Adam(lr {b['lr']:g}, β1 0.8"
               + (f", {b['lr_schedule']} decay to 0" if b.get("lr_schedule", "constant") != "constant" else "")
               + f"), batch 100 packs, z ∈ R², {N_EVAL} evaluation samples, PacGAN counting; the seeds of a "
               f"variant trained as one population; {df.seconds.sum():,.0f} s of training in all (the sum over "
               f"trainings, however many processes ran them)."),
        tables=[("Ours next to the paper (mean ± s.e. over trials)", table)],
        claims=claims, figures=figs, notes=notes)


def _by_seed(d: pd.DataFrame, variant: str, metric: str = "modes_captured", direction: str = "maximize") -> np.ndarray:
    """A variant's `metric` in seed order (the same seeds for every variant), diverged = worst."""
    g = d[d.variant == variant].sort_values("seed")
    return stats.scored(g[metric].tolist(), (g["status"] == "completed").tolist(), direction)


# Table 1's two columns a claim is made on: the packed D captures more modes and a lower reverse KL
QUESTIONS = (("modes_captured", "maximize", "captures more modes than"),
             ("reverse_kl", "minimize", "has a lower reverse KL than"))


def _hq(d: pd.DataFrame, variant: str) -> float:
    """A row's mean share of high-quality samples in % (a diverged seed: 0 %; no seeds: NaN)."""
    g = d[d.variant == variant]
    return float(g["high_quality"].fillna(0).mean()) if len(g) else math.nan


def _why_untested(d: pd.DataFrame, base: str, metric: str, dataset: str) -> str | None:
    """Why a claim against the `base` row cannot be tested at this budget, in words: the row below the
    quality gate (its mode counts are near chance), or at the metric's best value on every seed."""
    from stabgen.datasets import DATASETS

    hq = _hq(d, base)
    if not hq >= QUALITY_GATE:
        return (f"no verdict: the {base} row puts {hq:.1f} % of samples within 3σ of a mode, below the quality gate "
                f"of {QUALITY_GATE:g} % (the paper's GAN: {PAPER[('GAN', dataset)][2]} %)")
    values = _by_seed(d, base, metric, "maximize" if metric == "modes_captured" else "minimize")
    best = DATASETS.get(dataset).ceilings.get("modes_captured") if metric == "modes_captured" else 0.0
    at_best = values >= best if metric == "modes_captured" else values <= best
    if len(values) and bool(np.all(at_best)):
        return (f"untestable at this budget: the {base} row is already at {best:g} on every seed (the paper's GAN: "
                f"{PAPER[('GAN', dataset)][0 if metric == 'modes_captured' else 4]}), nothing is left to improve")
    return None


def _claims(df: pd.DataFrame) -> list[Claim]:
    """Each PacGANm against the GAN, and against the GAN at its own batch (100·m), on its own, paired by
    seed; Holm over every claim of one question (both datasets, the three packings); judged only where
    the row it is compared with passes the quality gate and is not already at the metric's best."""
    out = []
    for control in (False, True):
        for metric, direction, words in QUESTIONS:
            family, untested = {}, {}
            for dataset in ("ring", "grid"):
                d = df[df.dataset == dataset]
                for v in PACKED:
                    base = CONTROLS[v] if control else "GAN"
                    if not ({v, base} <= set(d.variant)):
                        continue
                    key = f"{v}/{dataset}"
                    family[key] = (f"{v} {words} the {'GAN at the same batch, ' + base if control else 'GAN'} "
                                   f"({dataset})", _by_seed(d, v, metric, direction), _by_seed(d, base, metric, direction))
                    if why := _why_untested(d, base, metric, dataset):
                        untested[key] = why
                    elif _hq(d, v) < QUALITY_GATE:  # house rule: a row below the gate did not train
                        untested[key] = (f"did not train at this budget: {v} puts {_hq(d, v):.1f} % of samples within "
                                         f"3σ of a mode, below the {QUALITY_GATE:g} % gate")
            out += claims_vs_baseline(family, None, direction,
                                      ("PacGAN", "GAN at its batch" if control else "GAN"), untested=untested)
    return out


def _steps_words(b: dict) -> str:
    return (", ".join(f"{v:,} ({k})" for k, v in b["steps"].items()) if isinstance(b["steps"], dict)
            else f"{b['steps']:,}")


def _notes(budget: str) -> list[str]:
    """How the budget deviates from the paper's setup, and how to read the table."""
    b = BUDGETS[budget]
    return [
        f"Deviations from the paper's setup: {_steps_words(b)} steps instead of 400,000 (400 epochs × 1,000), "
        +  (f"{b['trials']} trials instead of 10, " if b["trials"] != 10 else "") + f"model `{b['model']}` "
        + f"({MODEL_WORDS[b['model']]})" + ("" if b["model"] == "pacgan" else
                                            " instead of G 4×400 with batch norm and D 3×200 maxout (5 pieces)")
        + (f", lr {b['lr']:g} instead of 1e-4 so that the short run can learn at all" if b["lr"] != 1e-4 else "")
        + (", decayed linearly to 0 over the run (the paper's is constant)" if b.get("lr_schedule") == "linear" else "")
        + ("" if "variants" not in b else ", no regularizer rows (the paper has none)")
        + f". Any gap between our GAN row and the paper's starts here: a GAN that has trained "
          f"{400_000 / max(steps(b, d) for d in ('ring', 'grid')):,.0f}× fewer steps or more has not yet spread over (or collapsed onto) the modes the way "
          "the paper's did." if budget != "paper" else "Setup as in the paper: its networks (`pacgan`: G 4×400 "
          "with batch norm, no hidden bias; D 3×200 LinearMaxout of 5 pieces; weights N(0, 0.02²)), Adam(1e-4, "
          "β1 0.8), batch 100, z ~ N(0, I₂), 400,000 steps, 10 trials.",
        "Chance rows: uniform noise over the data's box and the mixture blurred to 10σ, counted the same way "
        "(nearest mode, high quality within 3σ, a mode captured by one high-quality sample): what a generator "
        "that learned no mode scores. Mode counts near these rows say nothing about mode collapse.",
        "The rows `GAN (batch 100·m)` are ours: a GAN whose D sees as many samples per step as PacGANm's "
        "(m packs of 100), unpacked; a PacGANm that beats the GAN but not its batch-matched GAN gains from the "
        "batch, not from packing.",
        "s.e. = standard deviation over trials / √trials, as in the paper; 3 s.e. of a difference combines "
        "ours and the paper's. High quality in % of the 2,500 samples.",
    ] + (["The regularizer rows (R1, spectral norm) are ours; the paper has no such rows."] if "variants" not in b
         else [])


def _plot_samples(runs: list, results: list[dict], out_dir) -> str:
    """Each variant's first trial: its samples over the true modes and their 3σ discs, ring and grid."""
    from bench.figures import save, subplots
    from bench.records import draw_points
    from stabgen.sources import GRID, RING

    firsts: dict[tuple[str, str], list] = {}
    for (variant, dataset, _), r in zip(runs, results):
        firsts.setdefault((variant, dataset), r.get("samples"))
    variants = list(dict.fromkeys(v for v, _, _ in runs))
    fig, axes = subplots(2, len(variants), figsize=(2.8 * len(variants), 6), squeeze=False)
    for i, (dataset, mix) in enumerate((("ring", RING), ("grid", GRID))):
        for j, variant in enumerate(variants):
            ax = axes[i][j]
            pts = firsts.get((variant, dataset))
            draw_points(ax, np.asarray(pts if pts else np.zeros((0, 2))), (mix.centers, mix.sigma))
            a = CHANCE_BOXES[dataset]
            ax.set_xlim(-a, a)
            ax.set_ylim(-a, a)
            ax.set_title(f"{variant} · {dataset}" + ("" if pts else " (diverged)"), fontsize=8)
    fig.suptitle("First trial's samples (black) over the modes (×) and their 3σ discs (red: high quality)")
    save(fig, out_dir, "samples")
    return "samples.png"


def _plot_curves(runs: list, results: list[dict], out_dir) -> str:
    """High-quality share and modes captured at every evaluation, mean ± s.e. over the seeds of each
    variant: the run's own learning curve (did the budget let every variant converge?)."""
    from bench.figures import save, subplots

    rows = [{"variant": v, "dataset": d, "step": e["step"], "hq": 100 * (e.get("high_quality") or 0.0),
             "modes": e.get("modes_captured")} for (v, d, _), r in zip(runs, results) for e in r.get("evals", [])]
    df = pd.DataFrame(rows, columns=["variant", "dataset", "step", "hq", "modes"])
    fig, axes = subplots(2, 2, figsize=(11, 7), squeeze=False)
    for j, dataset in enumerate(("ring", "grid")):
        for variant, g in df[df.dataset == dataset].groupby("variant", sort=False):
            for i, col in enumerate(("hq", "modes")):
                m = g.groupby("step")[col].agg(["mean", "sem"]).reset_index()
                line, = axes[i][j].plot(m.step, m["mean"], marker="o", ms=3, lw=1, label=variant)
                axes[i][j].fill_between(m.step, m["mean"] - m["sem"].fillna(0), m["mean"] + m["sem"].fillna(0),
                                        color=line.get_color(), alpha=0.2)
        axes[0][j].axhline(QUALITY_GATE, ls="--", color="grey", label=f"quality gate {QUALITY_GATE:g} %")
        axes[1][j].axhline(8 if dataset == "ring" else 25, ls=":", color="grey", label="all modes")
        axes[0][j].set_title(f"{dataset}: % high-quality samples (mean ± s.e. over seeds)")
        axes[1][j].set_title(f"{dataset}: modes captured")
        axes[1][j].set_xlabel("step")
        axes[0][j].legend(fontsize=7)
    save(fig, out_dir, "curves")
    return "curves.png"


def _plot(df: pd.DataFrame, out_dir) -> str:
    import seaborn as sns

    from bench.figures import save, subplots

    fig, axes = subplots(1, 2, figsize=(12, 4))
    for ax, dataset in zip(axes, ("ring", "grid")):
        d = df[df.dataset == dataset]
        sns.stripplot(data=d, x="variant", y="modes_captured", ax=ax, size=7, jitter=0.15)
        ax.axhline(8 if dataset == "ring" else 25, ls="--", color="grey")
        ax.set_title(f"{dataset}: modes captured per trial (dashed: all modes)")
        ax.tick_params(axis="x", rotation=25)
    save(fig, out_dir, "modes")
    return "modes.png"


PAPERS.register("pacgan2018")(Paper(reproduce=reproduce, plan=plan))
