"""The benchmark: a suite of studies (tasks) run or resumed by one command, their confirmation seeds put
on one scale, and the regularizers aggregated across tasks the way Agarwal et al. (2021, rliable) ask
results over few runs to be reported: interquartile mean with stratified-bootstrap intervals,
performance profiles, probability of improvement over `none`, optimality gap.

Data flow: suite (TOML: the studies) → each study's record (bench.api: run or resumed) → one row per
confirmation run: task (study × model family), arm, regularizer, seed, raw study metric (a diverged run
at the worst) → normalized score (0 = the dataset's uniform-noise chance row, 1 = real data against
real data at the study's sample count) → per-regularizer aggregates → reports/benchmark/.

rliable's own `metrics` module gives the point estimates; its `library` module (intervals, profiles)
imports `arch`, which fails under pandas 3 (7.x) or breaks rliable's calls (8.0), so the stratified
bootstrap and the profiles are written here after rliable's definitions and tested against them
(tests/bench/test_benchmark.py: point values equal rliable.metrics; interval coverage by simulation).
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench import records, render, stats
from stabgen.errors import StabgenError

SUITES = Path(__file__).parent / "suites"
# the sample count the registry's chance rows were measured at (stabgen.datasets): a study scored on other
# N compares with a chance row of another N (mode counts and FID depend on N); normalization.csv says both
CHANCE_N = {"image": 5000, "points": 2500}
N_BOOT = 2000
TAUS = np.linspace(-0.5, 1.25, 36)  # normalized-score thresholds of the performance profiles


class Suite(BaseModel):
    """A suite file: its studies (shipped names, or spec paths relative to the suite file)."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    budget: str = Field("", description="the budget the suite runs at, in words (the report's header states it)")
    studies: list[str] = Field(min_length=1)


def load_suite(suite: str) -> tuple[str, Suite, list[str]]:
    """(name, suite, the study arguments `bench run --study` takes): a shipped suite's name or a path."""
    p = Path(suite)
    if not (p.suffix == ".toml" or p.exists()):
        p = SUITES / f"{suite}.toml"
        if not p.is_file():
            known = ", ".join(sorted(x.stem for x in SUITES.glob("*.toml")))
            raise StabgenError(f"no suite named {suite!r} (shipped: {known}); or pass a path to a suite .toml")
    if not p.is_file():
        raise StabgenError(f"suite {p} {'is a directory' if p.is_dir() else 'does not exist'}; pass a suite .toml file")
    try:
        s = Suite.model_validate(tomllib.loads(p.read_bytes().decode("utf-8")))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise StabgenError(f"{p}: not a valid TOML suite ({str(e).splitlines()[0]})") from None
    except ValidationError as e:
        err = e.errors()[0]
        raise StabgenError(f"{p}: {'.'.join(map(str, err['loc'])) or '(top level)'}: {err['msg']}") from None
    here = p.parent
    studies = [str(here / x) if x.endswith(".toml") and not Path(x).is_absolute() else x for x in s.studies]
    return p.stem, s, studies


# --- one scale for every task ----------------------------------------------------------------------

@dataclass(frozen=True)
class Scale:
    """A task's normalization: 0 at `chance` (what uniform noise scores), 1 at `floor` (real data
    against real data of the same size), in the metric's direction."""

    chance: float
    floor: float

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (x - self.chance) / (self.floor - self.chance)


def normalized(raw: np.ndarray, scale: Scale) -> np.ndarray:
    """Normalized scores; a diverged or undefined run (±∞ or NaN raw) takes the task's worst: 0 (chance)
    or the lowest finite score of the task if that is lower — the worst value, kept finite so that means
    and bootstraps stay defined (house rule: never dropped)."""
    s = scale(raw)
    finite = s[np.isfinite(s)]
    worst = min(0.0, float(finite.min())) if finite.size else 0.0
    return np.where(np.isfinite(s), s, worst)


def chance_value(dataset: str, metric: str) -> float:
    """The dataset's uniform-noise chance row for the metric (stabgen.datasets: measured, recomputed by
    tests/stabgen/test_gates.py)."""
    from stabgen.datasets import DATASETS

    row = DATASETS.get(dataset).chance.get("uniform noise", {})
    if metric not in row:
        raise StabgenError(f"dataset {dataset!r} has no uniform-noise chance row for {metric!r}: a benchmark task "
                           f"needs one to normalize (add it to its chance rows)")
    return float(row[metric])


def real_floor(dataset: str, metric: str, n: int, data_dir: str | None, score_real, cache: Path) -> float:
    """Real data scored as if generated: the best a model can do at this sample count (for image data
    the test split's reference against n train images; for 2D mixtures n draws of the mixture itself).
    Cached in `cache` (a JSON file) per dataset, metric and n."""
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    key = f"{dataset}/{metric}/{n}"
    if key not in known:
        known[key] = _measure_floor(dataset, metric, n, data_dir, score_real)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    return float(known[key])


def _measure_floor(dataset: str, metric: str, n: int, data_dir: str | None, score_real) -> float:
    """`score_real(dataset, split, n)`: every metric of n real train images against the split's
    reference (bench.api.score_samples with real_vs="train")."""
    import torch

    from stabgen.datasets import DATASETS

    ds = DATASETS.get(dataset)
    if ds.kind == "points":  # n draws of the mixture itself: equal weights, each mode's own σ
        from stabgen.metrics.modes import mixture_modes

        src, g = ds.source(data_dir), torch.Generator().manual_seed(1)
        k = torch.randint(src.centers.shape[0], (n,), generator=g)
        real = src.centers[k].double() + src.sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)
        return float(mixture_modes(real, src.centers, src.sigma)[metric])
    # score_samples names the domain classifier's metrics without the prefix a trial records them under
    res, key = score_real(dataset, ds_split(ds), n), metric.removeprefix("domain_")
    if key == metric or key not in res:
        raise StabgenError(f"{dataset}: no real-vs-real floor for metric {metric!r} (the floor is scored on the "
                           f"domain classifier's features: {', '.join('domain_' + k for k in res)})")
    return float(res[key])


def ds_split(ds) -> str:
    return "test" if "test" in ds.splits else next(iter(ds.splits))


# --- the runs of every task ---------------------------------------------------------------------------

def task_runs(rec) -> pd.DataFrame:
    """One row per confirmation run of a study's confirmed arms: task (study × model family), arm,
    regularizer, seed, the raw study metric (diverged: the worst), the arm's gate and its verdict."""
    table = _confirm_table(rec)
    if table.empty:
        return pd.DataFrame()
    spec, df = rec.spec, rec.trials
    runs = records.confirm_rows(df)
    arms = {r.arm: int(r.config_trial) for r in table.itertuples()}
    runs = runs[[arms.get(a) == int(o) for a, o in zip(runs["confirm_arm"], runs["confirm_of"])]]
    runs = runs.assign(raw=records.scores(runs, spec.metric, spec.direction))
    info = table.set_index("arm")
    out = pd.DataFrame({
        "study": spec.name, "dataset": spec.dataset, "metric": spec.metric, "direction": spec.direction,
        "arm": runs["confirm_arm"].to_numpy(), "seed": runs["confirm_seed"].astype(int).to_numpy(),
        "status": runs["status"].to_numpy(), "raw": runs["raw"].to_numpy(), "trial": runs["trial"].to_numpy()})
    out["family"] = ["/".join(a.split("/")[:-1]) for a in out["arm"]]
    out["regularizer"] = [a.split("/")[-1] for a in out["arm"]]
    out["task"] = out["study"] + ":" + out["family"]
    out["arm_key"] = out["study"] + ":" + out["arm"]
    for col in ("gate", "verdict", "p", "p_holm", "baseline", "level"):
        out[col] = out["arm"].map(info[col]) if col in info else math.nan
    return out.sort_values(["task", "arm", "seed"]).reset_index(drop=True)


def _confirm_table(rec) -> pd.DataFrame:
    from bench.report import confirm_table

    return confirm_table(rec)


def with_scores(runs: pd.DataFrame, scales: dict[str, Scale]) -> pd.DataFrame:
    """`runs` with each task's normalized score (column `score`)."""
    parts = []
    for task, g in runs.groupby("task", sort=False):
        parts.append(g.assign(score=normalized(g["raw"].to_numpy(), scales[task])))
    return pd.concat(parts, ignore_index=True) if parts else runs.assign(score=[])


def benchmark_holm(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per tested arm of every task: its study's verdict and the two-sided p Holm-corrected over
    every claim of the benchmark (each arm against its family's baseline); a decisive verdict stands only
    if that p is below the level its study held it to."""
    arms = runs.drop_duplicates("arm_key")[["task", "arm", "regularizer", "baseline", "gate", "verdict", "p", "level"]]
    tested = arms[arms["p"].notna()].copy()
    if tested.empty:
        return tested.assign(p_holm_benchmark=[], benchmark_verdict=[])
    tested["p_holm_benchmark"] = stats.holm(tested["p"].to_numpy())
    decisive = tested["verdict"].str.startswith(("better", "worse"))
    tested["benchmark_verdict"] = np.where(decisive & (tested["p_holm_benchmark"] < tested["level"]),
                                           tested["verdict"], np.where(decisive, "inconclusive after the benchmark's "
                                                                      "Holm", tested["verdict"]))
    return tested.reset_index(drop=True)


# --- aggregation as rliable does it -------------------------------------------------------------------

def score_lists(runs: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """regularizer → task → its normalized scores over confirmation seeds (seed order)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for (reg, task), g in runs.sort_values("seed").groupby(["regularizer", "task"], sort=True):
        out.setdefault(reg, {})[task] = g["score"].to_numpy(dtype=float)
    return out


def iqm(tasks: dict[str, np.ndarray]) -> float:
    """Interquartile mean over every run of every task (rliable.metrics.aggregate_iqm: scipy's trim_mean
    at 25 %, over all runs × tasks); tasks may have different run counts here."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.concatenate(list(tasks.values())), proportiontocut=0.25, axis=None))


def optimality_gap(tasks: dict[str, np.ndarray], gamma: float = 1.0) -> float:
    """How far the runs fall short of `gamma` (real data's level) on average (rliable's optimality gap)."""
    x = np.concatenate(list(tasks.values()))
    return float(gamma - np.minimum(x, gamma).mean())


def mean_score(tasks: dict[str, np.ndarray]) -> float:
    return float(np.concatenate(list(tasks.values())).mean())


def probability_of_improvement(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> float:
    """P(a run of X scores above a run of Y on the same task), ties half, averaged over the tasks both
    ran (rliable.metrics.probability_of_improvement, per task the Mann-Whitney U / (m·n))."""
    shared = sorted(set(x) & set(y))
    if not shared:
        return math.nan
    vals = []
    for t in shared:
        a, b = x[t][:, None], y[t][None, :]
        vals.append(float(((a > b) + 0.5 * (a == b)).mean()))
    return float(np.mean(vals))


def profile(tasks: dict[str, np.ndarray], taus: np.ndarray = TAUS) -> np.ndarray:
    """Performance profile: for each τ, the share of runs scoring above τ — per task, then averaged over
    tasks, so every task weighs the same (rliable's `create_performance_profile`)."""
    return np.mean([(v[:, None] > taus[None, :]).mean(0) for v in tasks.values()], axis=0)


def stratified_ci(statistic, *groups: dict[str, np.ndarray], n_boot: int = N_BOOT, seed: int = 0,
                  confidence: float = stats.CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of `statistic(*groups)` under the stratified bootstrap: each task's runs
    resampled with replacement within the task, each group on its own (rliable.library's
    StratifiedBootstrap, which is not importable here: see the module doc)."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        draw = [{t: v[rng.integers(0, len(v), len(v))] for t, v in g.items()} for g in groups]
        vals.append(statistic(*draw))
    lo, hi = np.nanpercentile(vals, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(lo), float(hi)


def leaderboard(runs: pd.DataFrame, baseline: str = "none", n_boot: int = N_BOOT) -> pd.DataFrame:
    """One row per regularizer: tasks, runs, IQM [CI], mean [CI], optimality gap [CI], probability of
    improvement over the baseline on the tasks both ran [CI], ranked by IQM."""
    lists = score_lists(runs)
    rows = []
    for reg, tasks in lists.items():
        row = {"regularizer": reg, "tasks": len(tasks), "runs": int(sum(len(v) for v in tasks.values()))}
        for name, f in (("iqm", iqm), ("mean", mean_score), ("optimality_gap", optimality_gap)):
            row[name] = f(tasks)
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = stratified_ci(f, tasks, n_boot=n_boot)
        base = lists.get(baseline)
        if base is not None and reg != baseline:
            row["p_improvement"] = probability_of_improvement(tasks, base)
            row["p_improvement_ci_low"], row["p_improvement_ci_high"] = stratified_ci(
                probability_of_improvement, tasks, base, n_boot=n_boot)
        else:
            row["p_improvement"] = row["p_improvement_ci_low"] = row["p_improvement_ci_high"] = math.nan
        rows.append(row)
    out = pd.DataFrame(rows).sort_values(["iqm", "regularizer"], ascending=[False, True]).reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out


# --- the whole command ---------------------------------------------------------------------------------

@dataclass
class Benchmark:
    """What `bench benchmark` computed: every confirmation run on one scale, the scales, the per-
    regularizer leaderboard, the benchmark-wide claims, the profiles, and the files written."""

    name: str
    suite: Suite
    header: dict[str, str]
    runs: pd.DataFrame
    scales: pd.DataFrame
    leaderboard: pd.DataFrame
    claims: pd.DataFrame
    profiles: pd.DataFrame
    files: list[Path]
    metrics: pd.DataFrame = None  # every confirmation run × every metric of its dataset (bench.agreement)
    agreement: pd.DataFrame = None  # per task and metric: Kendall τ against the study metric's ranking
    agreement_suite: pd.DataFrame = None  # per metric across the suite
    sample_size: pd.DataFrame = None  # per image task and N: τ of the FID ranking against the largest N


def summarize(name: str, s: Suite, recs: list, command: str, device: str, runs_dir: Path, data_dir: str | None,
              score_real, out_dir: Path | None, seconds: float, run_fids=None, unfinished: list[str] = ()) -> Benchmark:
    """The benchmark of a suite's finished (or partly finished) studies: their confirmation runs on one
    scale, the leaderboard, the claims, the profiles, the metrics' agreement, written to `out_dir`
    (default RUNS_DIR/benchmark/SUITE). bench.api.benchmark runs the studies and calls this;
    `run_fids(rec, trial)` (optional) gives a confirmation run's domain FID at each sample count;
    `unfinished` names the suite's studies left out (a partial benchmark, labelled so)."""
    from stabgen.datasets import DATASETS
    from stabgen.hardware import describe

    t_enter = time.perf_counter()
    runs = pd.concat([task_runs(r) for r in recs], ignore_index=True)
    if runs.empty:
        raise StabgenError(f"suite {name}: no confirmation runs in any study yet")
    cache = runs_dir / "benchmark" / "floors.json"
    scales, rows = {}, []
    for spec in (r.spec for r in recs):
        chance = chance_value(spec.dataset, spec.metric)
        floor = real_floor(spec.dataset, spec.metric, spec.eval.samples, data_dir, score_real, cache)
        for task in runs.loc[runs["study"] == spec.name, "task"].unique():
            scales[task] = Scale(chance, floor)
            rows.append({"task": task, "dataset": spec.dataset, "metric": spec.metric, "direction": spec.direction,
                         "chance (0)": chance, "chance measured at N": CHANCE_N[DATASETS.get(spec.dataset).kind],
                         "real vs real (1)": floor, "samples": spec.eval.samples})
    runs = with_scores(runs, scales)
    lists = score_lists(runs)
    profiles = pd.DataFrame({"tau": TAUS, **{reg: profile(tasks) for reg, tasks in lists.items()}})
    head = _header(name, s, recs, runs, command, describe(device), seconds)
    if unfinished:  # bench benchmark --report-only while studies still train: said first, on every page
        head = {"PARTIAL": f"{len(recs)} of {len(recs) + len(unfinished)} studies finished; not yet: "
                           f"{', '.join(unfinished)} (their tasks are missing from every aggregate)", **head}
    bm = Benchmark(name, s, head, runs,
                   pd.DataFrame(rows), leaderboard(runs), benchmark_holm(runs), profiles, [])
    _agreement(bm, recs, run_fids, runs_dir / "benchmark" / "fid_by_n.json")
    # the invocation's wall time includes the floors and the FID-against-N scoring done here (minutes on a CPU)
    bm.header["wall time"] = _wall(seconds + time.perf_counter() - t_enter)
    bm.files = write(bm, Path(out_dir) if out_dir else runs_dir / "benchmark" / name)
    return bm


def _agreement(bm: Benchmark, recs: list, run_fids, cache: Path) -> None:
    """Do the metrics agree (bench.agreement): τ per task and across the suite, the verdicts that flip
    with a metric (a column of claims.csv, counted per regularizer in the leaderboard), and on image
    tasks scored by domain FID the ranking against the sample count."""
    from bench import agreement as ag
    from stabgen.datasets import DATASETS

    parts, curves = [], []
    for rec in recs:
        study = bm.runs[bm.runs["study"] == rec.spec.name]
        if study.empty:
            continue
        parts.append(ag.metric_runs(study, rec.trials, DATASETS.get(rec.spec.dataset).columns))
        if run_fids is not None and rec.spec.metric == "domain_fid":
            for r in study.itertuples():
                fids = ag.cached_fid_by_n(cache, f"{rec.spec.name}/{r.trial}", lambda: run_fids(rec, int(r.trial)))
                curves += [{"task": r.task, "arm": r.arm, "seed": r.seed, "n": n, "fid": v} for n, v in fids.items()]
    bm.metrics = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    own = dict(zip(bm.runs["task"], bm.runs["metric"]))
    bm.agreement = ag.agreement(bm.metrics, own) if not bm.metrics.empty else pd.DataFrame()
    bm.agreement_suite = ag.suite_agreement(bm.agreement) if not bm.agreement.empty else pd.DataFrame()
    flips = ag.flips(bm.metrics, bm.claims) if not bm.metrics.empty else pd.DataFrame(columns=["task", "arm", "flips_on"])
    bm.claims = bm.claims.merge(flips[["task", "arm", "flips_on"]], on=["task", "arm"], how="left")
    bm.claims["flips_on"] = bm.claims["flips_on"].fillna("").astype(str)
    flipped = bm.claims[bm.claims["flips_on"] != ""].groupby("regularizer").size()
    bm.leaderboard["verdicts_flipping_with_metric"] = bm.leaderboard["regularizer"].map(flipped).fillna(0).astype(int)
    fids = pd.DataFrame(curves)
    bm.sample_size = ag.sample_size_curve(fids) if not fids.empty else pd.DataFrame()


def _header(name: str, s: Suite, recs: list, runs: pd.DataFrame, command: str, hardware: str,
            seconds: float) -> dict[str, str]:
    return {"suite": f"{name} — {s.description}" if s.description else name, "command": command,
            "budget": s.budget or "each study's own spec", "hardware": hardware,
            "studies": ", ".join(f"{r.spec.name} ({r.spec.budget_label()}, {r.spec.eval.samples} samples)" for r in recs),
            "tasks": f"{runs['task'].nunique()} (study × model family), {len(runs)} confirmation runs",
            "normalization": "0 = the dataset's uniform-noise chance row, 1 = real data vs real data of the same size "
                             "(normalization.csv); a diverged run at its task's worst",
            "aggregation": f"interquartile mean over tasks × confirmation seeds, 95 % stratified-bootstrap intervals "
                           f"({N_BOOT} resamples of the seeds within each task); P(improvement) over none on the "
                           f"tasks both ran",
            "wall time": _wall(seconds)}


def _wall(seconds: float) -> str:
    return f"{seconds:.0f} s (this invocation; the studies resume)"


def display(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard for reading: `value [low, high]` per aggregate."""
    def ci(v, lo, hi, fmt="{:.3f}"):
        return "—" if v != v else f"{fmt.format(v + 0.0)} [{fmt.format(lo + 0.0)}, {fmt.format(hi + 0.0)}]"

    out = lb[["rank", "regularizer", "tasks", "runs"]].copy()
    for col, title in (("iqm", "IQM"), ("mean", "mean"), ("optimality_gap", "optimality gap"),
                       ("p_improvement", "P(improvement over none)")):
        out[title] = [ci(v, lo, hi, "{:.2f}" if col == "p_improvement" else "{:.3f}")
                      for v, lo, hi in zip(lb[col], lb[f"{col}_ci_low"], lb[f"{col}_ci_high"])]
    if "verdicts_flipping_with_metric" in lb:
        out["verdicts flipping with a metric"] = lb["verdicts_flipping_with_metric"]
    return out


OWN_FILES = ("leaderboard.csv", "tasks.csv", "normalization.csv", "claims.csv", "profiles.csv", "leaderboard.tex",
             "leaderboard.md", "metrics.csv", "agreement.csv", "agreement_suite.csv", "sample_size.csv",
             "leaderboard.html", "index.html",
             *(f"{n}.{ext}" for n in ("iqm", "profiles", "poi", "tasks", "agreement") for ext in ("png", "svg")))


def write(bm: Benchmark, out: Path) -> list[Path]:
    """leaderboard.{md,csv,tex}, tasks.csv (every confirmation run: task, arm, seed, raw, score),
    normalization.csv, claims.csv (Holm over the whole benchmark), profiles.csv and the figures."""
    from bench.report import writable_folder

    writable_folder(out)
    for stale in OWN_FILES:  # a previous benchmark's files in this folder (figures of dropped regularizers…)
        (out / stale).unlink(missing_ok=True)
    files = [out / "leaderboard.csv", out / "tasks.csv", out / "normalization.csv", out / "claims.csv",
             out / "profiles.csv", out / "leaderboard.tex", out / "leaderboard.md"]
    bm.leaderboard.to_csv(files[0], index=False)
    # raw: the run's own value, empty where it has none (a diverged run: see status; its score is its task's worst)
    bm.runs.drop(columns=["arm_key"]).replace([np.inf, -np.inf], np.nan).to_csv(files[1], index=False)
    bm.scales.to_csv(files[2], index=False)
    bm.claims.to_csv(files[3], index=False)
    bm.profiles.to_csv(files[4], index=False)
    for fname, df in (("metrics.csv", bm.metrics), ("agreement.csv", bm.agreement),
                      ("agreement_suite.csv", bm.agreement_suite), ("sample_size.csv", bm.sample_size)):
        if df is not None and not df.empty:
            df.replace([np.inf, -np.inf], np.nan).to_csv(out / fname, index=False)
            files.append(out / fname)
    shown = display(bm.leaderboard)
    files[5].write_text(render.LATEX_NEEDS + render.latex_symbols(shown.to_latex(index=False, escape=True)))
    lines = [f"# Benchmark: {bm.name}", ""] + [f"- **{k}**: {v}" for k, v in bm.header.items()]
    lines += ["", "## Regularizers across tasks", "", shown.to_markdown(index=False, disable_numparse=True),
              "", "## Every claim, Holm over the whole benchmark", "",
              (bm.claims[[c for c in ("task", "arm", "verdict", "p", "p_holm_benchmark", "benchmark_verdict",
                                      "flips_on") if c in bm.claims]]
               .to_markdown(index=False, disable_numparse=True) if not bm.claims.empty else "(no arm was tested)"),
              "", "## Normalization", "", bm.scales.to_markdown(index=False, disable_numparse=True)]
    lines += _agreement_lines(bm)
    figs = _figures(bm, out)
    if figs:
        lines += ["", "## Figures", ""] + [f"![{FIGURE_CAPTIONS[Path(f).stem]}]({f})" for f in figs]
    files[6].write_text("\n".join(lines) + "\n")
    return files + _pages(bm, out, shown, figs) + [out / f for f in figs]


def _md(df: pd.DataFrame, fmt: str) -> str:
    """A table as Markdown with its floats in `fmt` and an undefined value (τ of tied or too few arms, a
    curve that never stabilizes) as —, never as "nan"."""
    shown = df.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = [("—" if v != v else fmt.format(v)) for v in shown[col]]
    return shown.astype(str).to_markdown(index=False, disable_numparse=True)


def _agreement_lines(bm: Benchmark) -> list[str]:
    """The markdown of the metrics' agreement (bench.agreement)."""
    from bench.agreement import TAU_STABLE, smallest_stable_n

    lines = []
    if bm.agreement is not None and not bm.agreement.empty:
        lines += ["", "## Do the metrics agree?", "",
                  "Kendall's τ between the confirmed arms' rankings (median over seeds) by each metric and by the "
                  "study metric; across the suite, over tasks ranking ≥ 3 arms. A claim `flips_on` a metric when "
                  "that metric's paired Hodges–Lehmann interval lies wholly the other way (claims.csv).", "",
                  (_md(bm.agreement_suite, "{:.2f}") if not bm.agreement_suite.empty
                   else "(no task ranks 3 arms yet)"), "", "Per task: agreement.csv; every run × metric: metrics.csv."]
    if bm.sample_size is not None and not bm.sample_size.empty:
        lines += ["", "## The FID ranking against the sample count", "",
                  f"Each confirmation run's generator scored on its first N samples against N real test images; τ of "
                  f"the arms' ranking at N against the largest N, and the smallest N from which it stays ≥ {TAU_STABLE}.",
                  "", _md(smallest_stable_n(bm.sample_size), "{:.0f}"), "",
                  _md(bm.sample_size.pivot(index="task", columns="n", values="tau_vs_largest_n").reset_index(),
                      "{:.2f}")]
    return lines


def poi_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """P(a run of the row's regularizer scores above a run of the column's on the same task), averaged over
    the tasks both ran (rliable's probability of improvement for every pair); NaN where they share none."""
    lists = score_lists(runs)
    regs = sorted(lists)
    return pd.DataFrame([[probability_of_improvement(lists[a], lists[b]) if a != b else math.nan for b in regs]
                         for a in regs], index=pd.Index(regs, name="regularizer"), columns=regs)


def _figures(bm: Benchmark, out: Path) -> list[str]:
    """IQM with its interval per regularizer, the performance profiles, the probability-of-improvement
    matrix, each task's normalized scores, and (where there is one) the metric-agreement heatmap."""
    from bench.figures import save, styled, subplots

    names = ["iqm", "profiles", "poi", "tasks"]
    with styled():
        _iqm_figure(bm, save, subplots, out)
        _profiles_figure(bm, save, subplots, out)
        _poi_figure(bm, save, subplots, out)
        _tasks_figure(bm, save, subplots, out)
        if bm.agreement is not None and not bm.agreement.empty:
            _agreement_figure(bm, save, subplots, out)
            names.append("agreement")
    return [f"{n}.png" for n in names]


def _iqm_figure(bm: Benchmark, save, subplots, out: Path) -> None:
    lb = bm.leaderboard
    fig, ax = subplots(1, 1, figsize=(6, 0.5 + 0.45 * len(lb)))
    y = np.arange(len(lb))[::-1]
    ax.errorbar(lb["iqm"], y, xerr=[lb["iqm"] - lb["iqm_ci_low"], lb["iqm_ci_high"] - lb["iqm"]], fmt="o", capsize=4)
    ax.set_yticks(y, lb["regularizer"])
    ax.axvline(0, ls=":", color="grey")
    ax.axvline(1, ls="--", color="grey")
    ax.set_xlabel("normalized score, IQM [95 % stratified-bootstrap CI] (0 chance, 1 real data)")
    save(fig, out, "iqm")


def _profiles_figure(bm: Benchmark, save, subplots, out: Path) -> None:
    fig, ax = subplots(1, 1, figsize=(6, 4))
    for reg in bm.leaderboard["regularizer"]:
        ax.plot(bm.profiles["tau"], bm.profiles[reg], label=reg)
    ax.set_xlabel("normalized score τ")
    ax.set_ylabel("share of runs scoring above τ")
    ax.legend(fontsize=8)
    save(fig, out, "profiles")


def _poi_figure(bm: Benchmark, save, subplots, out: Path) -> None:
    import seaborn as sns

    m = poi_matrix(bm.runs)
    fig, ax = subplots(1, 1, figsize=(1.6 + 0.7 * len(m), 1.2 + 0.6 * len(m)))
    sns.heatmap(m, annot=True, fmt=".2f", vmin=0, vmax=1, center=0.5, cmap="RdBu", ax=ax, cbar=False)
    ax.set_xlabel("Y")
    ax.set_ylabel("X")
    ax.set_title("P(X > Y): a run of X above a run of Y, same task", fontsize=10)
    save(fig, out, "poi")


def _tasks_figure(bm: Benchmark, save, subplots, out: Path) -> None:
    import seaborn as sns

    tasks = sorted(bm.runs["task"].unique())
    fig, ax = subplots(1, 1, figsize=(8, 1.0 + 0.55 * len(tasks) * max(1, bm.runs["regularizer"].nunique()) / 3))
    sns.stripplot(data=bm.runs, x="score", y="task", hue="regularizer", dodge=True, order=tasks, ax=ax, size=4,
                  alpha=0.8)
    ax.axvline(0, ls=":", color="grey")
    ax.axvline(1, ls="--", color="grey")
    ax.set_xlabel("normalized score per confirmation run (0 chance, 1 real data)")
    ax.legend(fontsize=7, loc="best")
    save(fig, out, "tasks")


def _agreement_figure(bm: Benchmark, save, subplots, out: Path) -> None:
    import seaborn as sns

    m = bm.agreement.pivot(index="task", columns="metric", values="tau")
    fig, ax = subplots(1, 1, figsize=(1.8 + 0.8 * m.shape[1], 1.2 + 0.45 * m.shape[0]))
    sns.heatmap(m, annot=True, fmt=".2f", vmin=-1, vmax=1, center=0, cmap="RdBu", ax=ax, cbar=False)
    ax.set_title("Kendall τ of each metric's arm ranking against the study metric's", fontsize=10)
    save(fig, out, "agreement")


# --- the pages -----------------------------------------------------------------------------------------

def _pages(bm: Benchmark, out: Path, shown: pd.DataFrame, figs: list[str]) -> list[Path]:
    """leaderboard.html (the table and what made it) and index.html (the whole report, figures included)."""
    import html

    head = render.header_html(bm.header)
    table = shown.to_html(index=False, border=0)
    (out / "leaderboard.html").write_text(render.html_page(f"Benchmark leaderboard: {bm.name}", head + table))
    body = [head, "<h2>Regularizers across tasks</h2>", table]
    if not bm.claims.empty:
        cols = [c for c in ("task", "arm", "verdict", "p", "p_holm_benchmark", "benchmark_verdict", "flips_on")
                if c in bm.claims]
        body += ["<h2>Every claim, Holm over the whole benchmark</h2>", bm.claims[cols].to_html(index=False, border=0)]
    body += ["<h2>Normalization</h2>", bm.scales.to_html(index=False, border=0)]
    if bm.agreement_suite is not None and not bm.agreement_suite.empty:
        body += ["<h2>Do the metrics agree?</h2>", bm.agreement_suite.to_html(index=False, border=0, float_format="%.2f")]
    body.append("<h2>Figures</h2>")
    body += [f"<figure><img src='{html.escape(f)}' alt='{html.escape(Path(f).stem)}'><figcaption>"
             f"{html.escape(FIGURE_CAPTIONS[Path(f).stem])} (<a href='{Path(f).stem}.svg'>SVG</a>)</figcaption></figure>"
             for f in figs]
    body.append("<p class='note'>Every per-seed value: <a href='tasks.csv'>tasks.csv</a> · <a href='metrics.csv'>"
                "metrics.csv</a> · <a href='claims.csv'>claims.csv</a> · <a href='leaderboard.csv'>leaderboard.csv</a></p>")
    (out / "index.html").write_text(render.html_page(f"Benchmark: {bm.name}", "\n".join(body)))
    return [out / "leaderboard.html", out / "index.html"]


FIGURE_CAPTIONS = {
    "iqm": "Interquartile mean of the normalized scores per regularizer, 95 % stratified-bootstrap interval",
    "profiles": "Performance profiles: share of runs (tasks weighted equally) scoring above τ",
    "poi": "Probability of improvement of each regularizer (row) over each other (column) on the tasks both ran",
    "tasks": "Each task's confirmation runs on the normalized scale, by regularizer",
    "agreement": "Kendall τ of each metric's ranking of the confirmed arms against the study metric's, per task",
}
