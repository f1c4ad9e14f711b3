"""`bench report`: a study's storage (+ its trial folders) → tables, statistics, figures, one page.

A pure function of what the study recorded, so it can be rebuilt at any time and from any machine
that reaches the storage. Search and confirmation are kept apart (docs/statistics.md):
- search (candidates): per config (trials sharing every sampled parameter; seed re-runs are the same
  config), ranked by the median over its seeds with divergences as the worst value, the divergence
  rate beside it, each metric's mean over completed seeds with a 95 % bootstrap CI; per regularizer a
  description (no test: search trials are not independent samples of an arm); the budget,
  robustness and survival figures;
- confirmation (the verdicts): bench.confirm.table — each arm's best config on the same fresh seeds,
  tested paired by seed against the baseline arm.
"""

from __future__ import annotations

import html
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from pydantic import ValidationError

from bench import artifacts, confirm, records, stats
from bench.space import CONFIRM_SEEDS
from bench.spec import StudySpec
from bench.storage import load_study, redact
from stabgen.datasets import DATASETS
from stabgen.errors import StabgenError

TOP_SAMPLES = 6


@dataclass
class StudyRecord:
    """A study as the report sees it: the Optuna study, its spec, and one row per finished trial."""

    study: optuna.Study
    spec: StudySpec
    storage: str
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    report: "Report | None" = None  # the last report built from it by `bench run` (api.run_study)

    @property
    def metrics(self) -> dict[str, str]:
        """The dataset's report columns → direction: the study metric always, others where some trial has one."""
        cols = DATASETS.get(self.spec.dataset).columns
        return {m: c.direction for m, c in cols.items()
                if m == self.spec.metric or (m in self.trials and self.trials[m].notna().any())}


def open_record(study_name: str, storage: str | None, runs_dir: Path = Path("runs")) -> StudyRecord:
    """Load a study by name from its storage (default: the SQLite file `bench run` writes)."""
    study, storage = load_study(study_name, storage, runs_dir)
    return record_of(study, storage)


def record_of(study: optuna.Study, storage: str) -> StudyRecord:
    """A study as the report sees it, from an open study."""
    if "spec" not in study.user_attrs:
        raise StabgenError(f"study {study.study_name!r} records no spec (not made by `bench run`)")
    try:
        spec = StudySpec.model_validate(study.user_attrs["spec"])
    except ValidationError as e:
        raise StabgenError(f"study {study.study_name!r} was made by a spec this version cannot read "
                           f"({e.errors()[0]['loc']}: {e.errors()[0]['msg']})") from None
    trials = records.trials_frame(study)
    if not trials.empty and spec.metric not in trials:  # a metric outside the dataset's columns
        trials[spec.metric] = math.nan
    if not trials.empty and "trial_dir" in trials:  # folders written on other machines: from the artifact store
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        trials["trial_dir"] = [_reachable(study, by_number.get(int(n)), d) for n, d in zip(trials["trial"], trials["trial_dir"])]
    return StudyRecord(study, spec, storage, trials)


def _reachable(study: optuna.Study, trial, folder):
    """The trial's folder if it is on this machine, else its local copy from the artifact store."""
    if trial is None or not isinstance(folder, str) or not folder or (Path(folder) / "config.json").is_file():
        return folder
    local = artifacts.local_folder(study, trial)
    return str(local) if local is not None else folder


# --- tables ----------------------------------------------------------------------------------------

def _varying(df: pd.DataFrame) -> list[str]:
    """The config columns worth showing: always the main five, the others where they vary."""
    return records.CONFIG_KEYS + [c for c in records.SEARCHED if c in df and df[c].nunique(dropna=True) > 1]


RANKING = ("configs and arms are ranked by the median of the study metric over their seeds, a diverged, "
           "pruned or metric-undefined seed counting as the worst value (so instability ranks a config down, "
           "never out of sight); ties by the mean over completed seeds; the divergence rate stands beside it")


def config_table(rec: StudyRecord) -> pd.DataFrame:
    """One row per search config: its score (median over seeds, divergences = worst; see RANKING),
    each metric's mean and 95 % bootstrap CI over completed seeds, seeds, divergence rate and
    compute seconds; ranked by the score."""
    df, spec = confirm.search_rows(rec.trials), rec.spec
    if df.empty:
        return pd.DataFrame()
    keys = _varying(df)
    rows = []
    for _, g in df.groupby("config_id", sort=False):
        ok = g[g["status"] == "completed"]
        row = {**g.iloc[0][keys].to_dict(), "trials": ",".join(str(t) for t in g["trial"]), "seeds": len(g),
               "score": float(np.median(confirm.scores(g, spec.metric, spec.direction))) if spec.metric in g
               else math.nan,
               "divergence_rate": float((g["status"] == "diverged").mean()),
               "seconds": float(g["seconds"].mean()), "device": g["device"].iloc[0]}
        for m in rec.metrics:
            vals = ok[m].dropna().astype(float).tolist()
            lo, hi = stats.bootstrap_ci(vals)
            row.update({m: sum(vals) / len(vals) if vals else math.nan, f"{m}_ci_low": lo, f"{m}_ci_high": hi})
        rows.append(row)
    out = pd.DataFrame(rows)
    if spec.metric in out:
        sign = 1 if spec.direction == "minimize" else -1
        out = out.assign(_s=sign * out["score"], _m=sign * out[spec.metric]).sort_values(
            ["_s", "_m"], na_position="last").drop(columns=["_s", "_m"])
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def regularizer_table(rec: StudyRecord) -> pd.DataFrame:
    """Per arm (bench.arms: model, objective, regularizer), a description of its search trials: how many, how many completed, diverged
    and were pruned, the best completed value, the median with divergences as the worst value, and
    the mean seed std of its multi-seed configs. No test here: search trials of an adaptive sampler
    are not independent draws of an arm (the confirmation table tests arms)."""
    df, metric, direction = confirm.search_rows(rec.trials), rec.spec.metric, rec.spec.direction
    if df.empty or metric not in df:
        return pd.DataFrame()
    rows = []
    df = df.assign(_arm=confirm.arm_labels(df, rec.spec.confirm.arm))  # per arm: families are never pooled
    for arm, g in df.groupby("_arm"):
        done = g.loc[g["status"] == "completed", metric].dropna()
        multi = g.groupby("config_id")[metric].agg(["count", "std"])
        seed_std = multi.loc[multi["count"] > 1, "std"]
        rows.append({"arm": arm, "trials": len(g), "completed": len(done),
                     "best": (done.min() if direction == "minimize" else done.max()) if len(done) else math.nan,
                     "median": float(np.median(confirm.scores(g, metric, direction))),
                     "divergence_rate": float((g["status"] == "diverged").mean()),
                     "pruned_rate": float((g["status"] == "pruned").mean()),
                     "seed_std": float(seed_std.mean()) if len(seed_std) else math.nan})
    out = pd.DataFrame(rows)
    sign = 1 if direction == "minimize" else -1
    return out.assign(_k=sign * out["median"]).sort_values("_k").drop(columns="_k").reset_index(drop=True)


def confirm_table(rec: StudyRecord) -> pd.DataFrame:
    """The confirmation verdicts (bench.confirm.table) for the study's current plan."""
    plan = rec.study.user_attrs.get(confirm.PLAN_ATTR)
    if not plan or rec.trials.empty or rec.spec.confirm.seeds == 0:
        return pd.DataFrame()
    return confirm.table(rec.trials, rec.spec, {k: int(v) for k, v in plan["arms"].items()})


def display_confirm(table: pd.DataFrame, rec: StudyRecord) -> pd.DataFrame:
    """The confirmation table for reading: each arm's family and baseline, median [CI], gate,
    P(improvement) [CI], the Hodges–Lehmann effect [exact CI] the test is about, p's, the verdict."""
    if table.empty:
        return table
    fmt = column_format(rec, rec.spec.metric)
    out = table[["rank", "arm", "model", "objective", "regularizer", "baseline", "config_trial"]].copy()
    out["objective"] = out["objective"].map(lambda v: v if isinstance(v, str) and v else "—")
    out["λ"] = [records.display_lam(r, v) for r, v in zip(table["regularizer"], table["lam"])]
    out["lr"] = table["lr"].map(lambda v: f"{v:.2e}")
    out["seeds"] = table["seeds"]
    out["diverged"] = table["diverged"].map(lambda v: f"{v:.0%}")
    out[f"median {rec.spec.metric}"] = [display_ci(v, lo, hi, fmt) for v, lo, hi in
                                        zip(table["median"], table["median_ci_low"], table["median_ci_high"])]
    if table["p"].notna().any():
        out["P(improvement)"] = [display_ci(v, lo, hi, "{:.2f}") for v, lo, hi in zip(
            table["prob_improvement"], table["prob_improvement_ci_low"], table["prob_improvement_ci_high"])]
        out["HL Δ (arm − baseline)"] = [display_ci(v, lo, hi, fmt) for v, lo, hi in zip(
            table["hodges_lehmann"], table["hodges_lehmann_ci_low"], table["hodges_lehmann_ci_high"])]
        out["p"] = table["p"].map(lambda v: _fmt(v, "{:.3g}"))
        out["p_holm"] = table["p_holm"].map(lambda v: _fmt(v, "{:.3g}"))
        if "p_equivalent_holm" in table:
            out["p_equiv_holm"] = table["p_equivalent_holm"].map(lambda v: _fmt(v, "{:.3g}"))
    if "gate" in table and (table["gate"] != "none").any():
        out.insert(out.columns.get_loc("seeds") + 2, "gate", table["gate"])
    out["verdict"] = table["verdict"]
    return out.astype(str)


def _fmt(v, spec: str = "{:.4g}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"  # a median or bound that falls on diverged runs
    return spec.format(v + 0.0) if isinstance(v, (int, float)) else str(v)  # + 0.0: −0 prints as 0


def display_ci(mean: float, low: float, high: float, fmt: str = "{:.4g}") -> str:
    """`mean [low, high]`, or just the mean where there is no interval (one seed), in the column's format."""
    return f"{_fmt(mean, fmt)} [{_fmt(low, fmt)}, {_fmt(high, fmt)}]" if not math.isnan(low) else _fmt(mean, fmt)


def column_format(rec: StudyRecord, metric: str) -> str:
    """How a metric column is written: the dataset's Column.fmt (e.g. high_quality as a percentage)."""
    col = DATASETS.get(rec.spec.dataset).columns.get(metric)
    return col.fmt if col else "{:.4g}"


def display_configs(configs: pd.DataFrame, rec: StudyRecord) -> pd.DataFrame:
    """The config table for reading: `mean [low, high]` per metric, λ/lr in scientific notation."""
    if configs.empty:
        return configs
    keys = [k for k in _varying(rec.trials) if k in configs]
    out = configs[["rank", *keys]].copy()
    out["lam"] = [records.display_lam(r, v) for r, v in zip(configs["regularizer"], configs["lam"])]
    out["lr"] = configs["lr"].map(lambda v: f"{v:.2e}")
    for m in rec.metrics:
        out[m] = [display_ci(v, lo, hi, column_format(rec, m)) for v, lo, hi in zip(configs[m], configs[f"{m}_ci_low"],
                                                              configs[f"{m}_ci_high"])]
    out["seeds"] = configs["seeds"]
    out["score"] = configs["score"].map(lambda v: _fmt(v, column_format(rec, rec.spec.metric)))
    out["diverged"] = configs["divergence_rate"].map(lambda v: f"{v:.0%}")
    out["s/trial"] = configs["seconds"].map(lambda v: _fmt(v, "{:.0f}"))
    return out


def display_regularizers(regs: pd.DataFrame) -> pd.DataFrame:
    if regs.empty:
        return regs
    out = regs.copy()
    for col in out.columns:
        if col == "divergence_rate":
            out[col] = out[col].map(lambda v: f"{v:.0%}")
        elif col == "pruned_rate":
            out[col] = out[col].map(lambda v: f"{v:.0%}")
        elif out[col].dtype.kind == "f":
            out[col] = out[col].map(_fmt)
    return out.astype(str).replace({"nan": "—"})


# --- the page -------------------------------------------------------------------------------------

@dataclass
class Report:
    out_dir: Path
    header: dict[str, str]
    configs: pd.DataFrame
    regularizers: pd.DataFrame
    confirmation: pd.DataFrame
    figures: dict[str, str]  # name → png path relative to out_dir
    samples: list[tuple[str, str]]  # (caption, png path relative to out_dir)
    notes: list[str]
    files: list[Path]


# what a report writes: cleared before each build, so nothing of an earlier report outlives it (a stale
# confirm.csv or sample grid would read as this study's); nothing else in the folder is touched
OWN_FILES = ("leaderboard.csv", "leaderboard.md", "leaderboard.tex", "leaderboard.html", "trials.csv",
             "regularizers.csv", "confirm.csv", "pareto.csv", "robustness.csv", "index.html")
OWN_FOLDERS = ("figures", "samples")


def clear_stale(out_dir: Path) -> None:
    for name in OWN_FILES:
        (out_dir / name).unlink(missing_ok=True)
    for name in OWN_FOLDERS:
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)


def writable_folder(out_dir: Path) -> None:
    """Create the output folder, or say in one line why it cannot be (a file there, no permission)."""
    above = next((a for a in [out_dir, *out_dir.parents] if a.exists()), None)
    if above is not None and not above.is_dir():
        raise StabgenError(f"cannot write the report to {out_dir}: {above} is a file, not a folder; pass --out FOLDER")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StabgenError(f"cannot write the report to {out_dir} ({e.strerror}); pass --out with a writable "
                           f"folder") from None


def build(rec: StudyRecord, out_dir: Path, command: str, figures: bool = True) -> Report:
    """The report of a study: tables always (leaderboard.{csv,md,tex,html}, trials.csv, regularizers.csv,
    pareto.csv for multi-objective studies); with `figures`, also the figures, sample grids and index.html."""
    writable_folder(out_dir)
    clear_stale(out_dir)
    configs, regs, conf = config_table(rec), regularizer_table(rec), confirm_table(rec)
    header = _header(rec, command)
    report = Report(out_dir, header, configs, regs, conf, {}, [], [],
                    _write_tables(rec, configs, regs, conf, out_dir, header))
    if figures:
        from bench import figures as figs_mod  # seaborn: only where figures are drawn

        with figs_mod.styled():
            _draw_figures(rec, report, figs_mod)
        _copy_samples(rec, report)
        page = out_dir / "index.html"
        page.write_text(render_html(report, rec))
        report.files.append(page)
    return report


def _draw_figures(rec: StudyRecord, report: Report, figs_mod) -> None:
    spec, fig_dir = rec.spec, report.out_dir / "figures"
    search = confirm.search_rows(rec.trials)  # confirmation runs feed the verdicts, never these figures
    if not search.empty:
        search = search.assign(arm=confirm.arm_labels(search, spec.confirm.arm))
    drawn = {name: draw(search, spec.metric, spec.direction) if not search.empty else None
             for name, draw in figs_mod.FIGURES.items()}
    if not search.empty:
        rob = figs_mod.robustness(search, spec.metric, spec.direction)
        if not rob.empty:
            rob.to_csv(report.out_dir / "robustness.csv", index=False)
            report.files.append(report.out_dir / "robustness.csv")
    try:
        sign = 1 if spec.direction == "minimize" else -1  # PED-ANOVA ranks parameters for *low* targets
        imp = optuna.importance.get_param_importances(
            rec.study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
            target=lambda t: sign * t.values[0])
    except (ValueError, RuntimeError, ZeroDivisionError) as e:
        imp = {}
        report.notes.append(f"param_importances: Optuna could not compute them ({str(e).splitlines()[0]})")
    drawn["param_importances"] = figs_mod.param_importances(imp)
    for name, fig in drawn.items():
        if fig is None:
            if name != "param_importances":
                report.notes.append(f"{name}: nothing to draw for this study")
            continue
        report.files += figs_mod.save(fig, fig_dir, name)
        report.figures[name] = f"figures/{name}.png"


def _copy_samples(rec: StudyRecord, report: Report) -> None:
    """The sample grids of the top trials, copied beside the page (or a note where they are elsewhere)."""
    spec = rec.spec
    done = rec.trials[rec.trials["status"] == "completed"] if not rec.trials.empty else rec.trials
    if spec.metric not in done:
        return
    for _, row in done.sort_values(spec.metric, ascending=spec.direction == "minimize").head(TOP_SAMPLES).iterrows():
        src = Path(str(row["trial_dir"])) / "samples.png"
        if not src.exists():
            report.notes.append(f"samples of trial {row['trial']}: {src} is not on this machine")
            continue
        dst = report.out_dir / "samples" / f"trial-{row['trial']}.png"
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dst)
        report.files.append(dst)
        report.samples.append((f"trial {row['trial']}: {row['model']} {row['regularizer']} · "
                               f"{spec.metric} {_fmt(row[spec.metric])}", f"samples/{dst.name}"))


def _header(rec: StudyRecord, command: str) -> dict[str, str]:
    df, spec = rec.trials, rec.spec
    search = df[df["seed_rerun_of"].isna() & df["confirm_arm"].isna()] if not df.empty else df
    n_conf = len(confirm.confirm_rows(df))
    devices = sorted(set(df["device"].dropna())) if not df.empty else []
    steps = sorted(set(df["steps"].dropna().astype(int))) if not df.empty else []
    return {
        "study": spec.name + (f" — {spec.description}" if spec.description else ""),
        "report command": command,
        "study made by": "; ".join(rec.study.user_attrs.get("commands", [])) or f"bench run --study {spec.name}",
        "storage": redact(rec.storage),
        "hardware": (", ".join(devices) or "—") + (f"; the last bench run trained in {jobs} processes side by side"
                                                    if (jobs := rec.study.user_attrs.get("last_processes", 1)) > 1 else ""),
        "budget": (f"{len(search)} search trials + {len(df) - len(search) - n_conf} seed re-runs + {n_conf} "
                   f"confirmation runs; "
                   f"{spec.budget_label()} per trial (steps run: {min(steps) if steps else 0}–"
                   f"{max(steps) if steps else 0}); sampler {spec.sampler}, pruner {spec.pruner}; "
                   f"{df['seconds'].sum() if not df.empty else 0:.0f} compute seconds in all"
                   + (f"; wall time of the last bench run {rec.study.user_attrs['last_wall_seconds']:.0f} s"
                      if "last_wall_seconds" in rec.study.user_attrs else "")),
        "seeds": f"search trial k uses seed {spec.seed}+k; re-runs: per_config={spec.seeds.per_config}, "
                 f"top_k={spec.seeds.top_k}, extra={spec.seeds.extra}; confirmation: {spec.confirm.seeds} fresh seeds "
                 f"({spec.seed}+{CONFIRM_SEEDS:,}+i, the same for every {spec.confirm.arm})",
        "ranking": RANKING,
        "tests": (f"confirmation runs only, each arm against the {spec.confirm.baseline!r} arm of its own family "
                  f"({'joint search: no verdicts' if spec.joint else f'{spec.per_arm} search trials per arm'}), "
                  f"paired by seed, after the quality gate ({_gate_text(spec)}): two-sided Wilcoxon signed-rank, exact "
                  f"permutation p (divergences as the worst value, ties split), Holm across every tested arm at "
                  f"α = {stats.ALPHA}; Hodges–Lehmann estimate with its exact CI; P(improvement) with a 95 % "
                  f"paired percentile-bootstrap CI"
                  + (f"; TOST equivalence within ±{spec.confirm.margin:g}" if spec.confirm.margin else "")
                  + "; size and power measured in benchmarks/results/calibration.json"),
        "metric": f"{spec.metric} ({spec.direction}) on N={spec.eval.samples} samples vs "
                  f"{spec.dataset}/{spec.eval.split}; CIs: 95 % percentile bootstrap over seeds "
                  f"({stats.N_RESAMPLES} resamples; with 2–3 seeds it is close to the range of the values), "
                  f"— where a config has one seed",
    }


def _gate_text(spec) -> str:
    gate = DATASETS.get(spec.dataset).gate
    return gate.text if gate is not None else "none declared for this dataset"


def _write_tables(rec: StudyRecord, configs: pd.DataFrame, regs: pd.DataFrame, conf: pd.DataFrame, out_dir: Path,
                  header: dict[str, str]) -> list[Path]:
    shown, shown_regs = display_configs(configs, rec), display_regularizers(regs)
    top = "\n".join(f"- **{k}**: {v}" for k, v in header.items())
    paths = {ext: out_dir / f"leaderboard.{ext}" for ext in ("csv", "md", "tex", "html")}
    configs.to_csv(paths["csv"], index=False)
    regs.to_csv(out_dir / "regularizers.csv", index=False)
    extra = [out_dir / "regularizers.csv", out_dir / "trials.csv"]
    if not conf.empty:
        conf.to_csv(out_dir / "confirm.csv", index=False)
        extra.append(out_dir / "confirm.csv")
    records.ranked(rec.trials, rec.spec.metric, rec.spec.direction).to_csv(extra[1], index=False)
    if rec.spec.multi_objective:
        extra.append(out_dir / "pareto.csv")
        records.pareto_frame(rec.study, rec.spec.metrics).to_csv(extra[-1], index=False)
    md = f"# Leaderboard: {rec.spec.name}\n\n{top}\n\n"
    if not conf.empty:
        md += (f"## Confirmation (the verdicts)\n\n{CONFIRM_NOTE}\n\n"
               + display_confirm(conf, rec).to_markdown(index=False, disable_numparse=True) + "\n\n")
    md += "## Search: configs (candidates)\n\n" + shown.to_markdown(index=False, disable_numparse=True)
    if not shown_regs.empty:
        md += f"\n\n## Search: per arm\n\n{REGS_NOTE}\n\n" + shown_regs.to_markdown(
            index=False, disable_numparse=True)
    paths["md"].write_text(md + "\n")
    caption = _latex_escape(f"{rec.spec.name}: {header['metric']}")  # to_latex escapes cells, not captions
    paths["tex"].write_text(LATEX_NEEDS + _latex_symbols(shown.to_latex(
        index=False, escape=True, caption=caption, label=f"tab:{rec.spec.name.replace('_', '-')}")))
    paths["html"].write_text(_html_page(f"Leaderboard: {rec.spec.name}", _header_html(header)
                                        + shown.to_html(index=False, border=0, classes="table")))
    return [*paths.values(), *extra]


CONFIRM_NOTE = ("An arm is a (model, objective, regularizer) and is tested only against the baseline arm of its own "
                "model and objective; every arm, the baseline included, had the same number of search trials. "
                "Each arm's best search config re-trained on the same fresh seeds; only these runs are tested. "
                "Median over seeds (a diverged seed is the worst value) [95 % bootstrap CI]; an arm below the "
                "dataset's quality gate did not train at this budget and is never called better or worse. Against "
                "the baseline, paired by seed: P(improvement) [95 % paired bootstrap CI], the Hodges–Lehmann "
                "estimate (pseudo-median of arm − baseline, the signed-rank test's estimand) [exact 95 % CI], "
                "two-sided Wilcoxon signed-rank with exact permutation p, Holm across every tested arm; the "
                "verdict names the p it rests on.")
REGS_NOTE = ("A description of the search trials (not a test: an adaptive search samples arms unevenly and "
             "its trials are not independent). Median with diverged/pruned/undefined trials as the worst value.")


LATEX_NEEDS = "% \\usepackage{booktabs} (\\toprule, \\midrule, \\bottomrule); compiles with pdflatex as it is\n"
# symbols tables print that pdflatex's default (utf8 + OT1/T1) fonts lack: math mode has them all
_LATEX_SYMBOLS = {"∞": r"$\infty$", "−": r"$-$", "λ": r"$\lambda$", "Δ": r"$\Delta$", "±": r"$\pm$",
                  "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\to$", "σ": r"$\sigma$",
                  "β": r"$\beta$", "≈": r"$\approx$", "·": r"$\cdot$", "∅": r"$\emptyset$"}


def _latex_symbols(tex: str) -> str:
    """Non-ASCII symbols of the tables as math-mode commands (—, – and accented letters pdflatex reads
    as they are)."""
    return "".join(_LATEX_SYMBOLS.get(c, c) for c in tex)


def _latex_escape(text: str) -> str:
    """LaTeX's special characters in running text (what pandas' escape=True does to the cells)."""
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(c, c) for c in text)


# --- HTML ---------------------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:right}th{background:#f3f3f3}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{font-weight:600}img{max-width:100%;border:1px solid #eee}.samples{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0}figcaption{font-size:12px;color:#555}.note{color:#777;font-size:13px}"""

# Counts the images that actually decoded, so a headless browser can tell (data-images-loaded="n/m").
IMAGE_CHECK = """<script>window.addEventListener('load',function(){var i=document.images,n=0;
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}
document.body.setAttribute('data-images-loaded',n+'/'+i.length);});</script>"""


def _html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}{IMAGE_CHECK}</body></html>\n")


def _header_html(header: dict[str, str]) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd><code>{html.escape(v)}</code></dd>" if "command" in k
                            else f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                            for k, v in header.items()) + "</dl>"


CAPTIONS = {
    "objective_vs_lambda": "Objective vs λ per regularizer (log λ); dashed: median of unregularized trials",
    "objective_by_regularizer": "Objective per regularizer: box over completed trials, one dot per trial",
    "budget_curves": "Best-so-far against trials and against compute seconds",
    "training_curves": "Intermediate metric and critic loss of the top trials",
    "fidelity_diversity": "Precision vs recall, density vs coverage",
    "param_importances": "Optuna parameter importances (PED-ANOVA) for the study metric",
    "expected_best": "Expected best value after n search trials per arm (Dodge et al. 2019), with a 95 % bootstrap "
                     "band; diverged/pruned/undefined trials at the study's worst finite value",
    "lambda_robustness": "λ-robustness: share of sampled (λ, lr) that converge and that land within 10 % of the "
                         "regularizer's best, and the λ region of the latter (robustness.csv)",
    "divergence_survival": "Time to divergence per arm: Kaplan–Meier survival, right-censored at the steps run",
}


def render_html(r: Report, rec: StudyRecord) -> str:
    body = [_header_html(r.header)]
    if not r.confirmation.empty:
        body += [f"<h2 id='confirmation'>Confirmation (the verdicts)</h2><p class='note'>{html.escape(CONFIRM_NOTE)}"
                 "</p>", display_confirm(r.confirmation, rec).to_html(index=False, border=0)]
    body += ["<h2>Search: configs (candidates; score = median over seeds, diverged = worst)</h2>",
             display_configs(r.configs, rec).to_html(index=False, border=0)]
    if not r.regularizers.empty:
        body += [f"<h2>Search: per arm</h2><p class='note'>{html.escape(REGS_NOTE)}</p>",
                 display_regularizers(r.regularizers).to_html(index=False, border=0)]
    body.append("<h2>Figures</h2>")
    for name, png in r.figures.items():
        body.append(f"<figure><img src='{html.escape(png)}' alt='{name}'><figcaption>"
                    f"{html.escape(CAPTIONS.get(name, name))} (<a href='figures/{name}.svg'>SVG</a>)"
                    f"</figcaption></figure>")
    if r.samples:
        body.append("<h2>Samples of the top trials</h2><div class='samples'>")
        body += [f"<figure><img src='{html.escape(p)}' alt='{html.escape(c)}' width='260'><figcaption>"
                 f"{html.escape(c)}</figcaption></figure>" for c, p in r.samples]
        body.append("</div>")
    if r.notes:
        body.append("<h2>Notes</h2><ul class='note'>" + "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
                    + "</ul>")
    body.append("<p class='note'>Files: <a href='leaderboard.csv'>leaderboard.csv</a> · "
                "<a href='leaderboard.md'>.md</a> · <a href='leaderboard.tex'>.tex</a> · "
                "<a href='regularizers.csv'>regularizers.csv</a>"
                + (" · <a href='confirm.csv'>confirm.csv</a>" if not r.confirmation.empty else "") + "</p>")
    return _html_page(f"stabgen report: {rec.spec.name}", "\n".join(body))


# --- several studies --------------------------------------------------------------------------------

def cross_study(recs: list[StudyRecord]) -> tuple[pd.DataFrame, list[str]]:
    """One table over several studies on the metrics they share (e.g. a GAN and a VAE study on MNIST),
    one row per config, ranked by the first shared metric."""
    shared = [m for m in recs[0].metrics if all(m in r.metrics for r in recs[1:])]
    if not shared:
        names = ", ".join(r.spec.name for r in recs)
        raise StabgenError(f"studies {names} share no metric (different datasets?); compare studies of one dataset")
    frames = []
    for r in recs:
        c = config_table(r)
        if c.empty:
            continue
        c = c.assign(study=r.spec.name, dataset=r.spec.dataset)
        frames.append(c[["study", "dataset", *records.CONFIG_KEYS, "seeds", "divergence_rate",
                         *[x for m in shared for x in (m, f"{m}_ci_low", f"{m}_ci_high")]]])
    table = pd.concat(frames, ignore_index=True)
    direction = recs[0].metrics[shared[0]]
    table = table.sort_values(shared[0], ascending=direction == "minimize", na_position="last")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True), shared


def write_cross_study(recs: list[StudyRecord], out: Path | None, command: str
                      ) -> tuple[pd.DataFrame, list[str], list[Path]]:
    """The cross-study table for reading (`mean [low, high]`), its shared metrics, and OUT.{csv,md} if asked."""
    table, shared = cross_study(recs)
    shown = table[["rank", "study", *[c for c in table.columns if c in ("model", "objective", "regularizer")],
                   "seeds", *shared]].copy()
    for m in shared:
        shown[m] = [display_ci(v, lo, hi, column_format(recs[0], m))
                    for v, lo, hi in zip(table[m], table[f"{m}_ci_low"], table[f"{m}_ci_high"])]
    shown = shown.astype(str)
    if out is None:
        return shown, shared, []
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    names = " + ".join(r.spec.name for r in recs)
    out.with_suffix(".md").write_text(f"# {names}\n\n`{command}`\n\n"
                                      + shown.to_markdown(index=False, disable_numparse=True) + "\n")
    return shown, shared, [out.with_suffix(".csv"), out.with_suffix(".md")]
