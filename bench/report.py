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

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from pydantic import ValidationError

from bench import artifacts, confirm, records, render, stats
from bench.space import CONFIRM_SEEDS
from bench.spec import StudySpec
from bench.storage import all_trials, load_study, redact
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


def open_record(study_name: str, storage: str | None, runs_dir: Path) -> StudyRecord:
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
        by_number = {t.number: t for t in all_trials(study)}
        trials["trial_dir"] = [_reachable(study, by_number.get(int(n)), d) for n, d in zip(trials["trial"], trials["trial_dir"])]
    return StudyRecord(study, spec, storage, trials)


def _reachable(study: optuna.Study, trial, folder):
    """The trial's folder if it is on this machine, else its local copy from the artifact store."""
    if trial is None or not isinstance(folder, str) or not folder or (Path(folder) / "config.json").is_file():
        return folder
    local = artifacts.local_folder(study, trial)
    return str(local) if local is not None else folder


# --- tables ----------------------------------------------------------------------------------------

RANKING = ("configs and arms are ranked by the median of the study metric over their seeds, a diverged, "
           "pruned or metric-undefined seed counting as the worst value (so instability ranks a config down, "
           "never out of sight); ties by the mean over completed seeds; the divergence rate stands beside it")


def config_table(rec: StudyRecord) -> pd.DataFrame:
    """One row per search config: its score (median over seeds, divergences = worst; see RANKING),
    each metric's mean and 95 % bootstrap CI over completed seeds, seeds, divergence rate and
    compute seconds; ranked by the score."""
    df, spec = records.search_rows(rec.trials), rec.spec
    if df.empty:
        return pd.DataFrame()
    keys = records.varying_keys(df)
    rows = []
    for _, g in df.groupby("config_id", sort=False):
        ok = g[g["status"] == "completed"]
        row = {**g.iloc[0][keys].to_dict(), "trials": ",".join(str(t) for t in g["trial"]), "seeds": len(g),
               "score": float(np.median(records.scores(g, spec.metric, spec.direction))) if spec.metric in g
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
    df, metric, direction = records.search_rows(rec.trials), rec.spec.metric, rec.spec.direction
    if df.empty or metric not in df:
        return pd.DataFrame()
    rows = []
    df = df.assign(_arm=records.arm_labels(df, rec.spec.confirm.arm))  # per arm: families are never pooled
    for arm, g in df.groupby("_arm"):
        done = g.loc[g["status"] == "completed", metric].dropna()
        multi = g.groupby("config_id")[metric].agg(["count", "std"])
        seed_std = multi.loc[multi["count"] > 1, "std"]
        rows.append({"arm": arm, "trials": len(g), "completed": len(done),
                     "best": (done.min() if direction == "minimize" else done.max()) if len(done) else math.nan,
                     "median": float(np.median(records.scores(g, metric, direction))),
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
        page.write_text(render.render_html(report, rec))
        report.files.append(page)
    return report


def _draw_figures(rec: StudyRecord, report: Report, figs_mod) -> None:
    spec, fig_dir = rec.spec, report.out_dir / "figures"
    search = records.search_rows(rec.trials)  # confirmation runs feed the verdicts, never these figures
    if not search.empty:
        search = search.assign(arm=records.arm_labels(search, spec.confirm.arm))
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
                               f"{spec.metric} {render.cell(row[spec.metric])}", f"samples/{dst.name}"))


def _header(rec: StudyRecord, command: str) -> dict[str, str]:
    df, spec = rec.trials, rec.spec
    search = df[df["seed_rerun_of"].isna() & df["confirm_arm"].isna()] if not df.empty else df
    n_conf = len(records.confirm_rows(df))
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
        **_inception_line(rec),
        "metric": f"{spec.metric} ({spec.direction}) on N={spec.eval.samples} samples vs "
                  f"{spec.dataset}/{spec.eval.split}; CIs: 95 % percentile bootstrap over seeds "
                  f"({stats.N_RESAMPLES} resamples; with 2–3 seeds it is close to the range of the values), "
                  f"— where a config has one seed",
    }


def _inception_line(rec) -> dict[str, str]:
    """What the Inception column is, where it has values: TF-Inception on how many samples, which weights,
    of which trials — search trials only, so no verdict rests on it."""
    scored = {k: v for k, v in rec.study.user_attrs.items() if k.startswith(records.INCEPTION_ATTR)}
    if not scored:
        return {}
    ns = sorted({f"{v.get('n_fake')} fake vs {v.get('n_real')} real" for v in scored.values()})
    weights = sorted({v.get("weights", "not recorded (scored before the weights were)") for v in scored.values()})
    return {"inception": f"TF-Inception FID/KID/precision/recall (torch-fidelity, pool3 features) of {len(scored)} "
                         f"search trial(s), the best by the study metric: {'; '.join(ns)} "
                         f"{rec.spec.dataset}/{rec.spec.eval.split}; weights {', '.join(weights)}; no verdict uses it"}


def _gate_text(spec) -> str:
    gate = DATASETS.get(spec.dataset).gate
    return gate.text if gate is not None else "none declared for this dataset"


def _write_tables(rec: StudyRecord, configs: pd.DataFrame, regs: pd.DataFrame, conf: pd.DataFrame, out_dir: Path,
                  header: dict[str, str]) -> list[Path]:
    shown, shown_regs = render.display_configs(configs, rec), render.display_regularizers(regs)
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
        md += (f"## Confirmation (the verdicts)\n\n{render.CONFIRM_NOTE}\n\n"
               + render.display_confirm(conf, rec).to_markdown(index=False, disable_numparse=True) + "\n\n")
    md += "## Search: configs (candidates)\n\n" + shown.to_markdown(index=False, disable_numparse=True)
    if not shown_regs.empty:
        md += f"\n\n## Search: per arm\n\n{render.REGS_NOTE}\n\n" + shown_regs.to_markdown(
            index=False, disable_numparse=True)
    paths["md"].write_text(md + "\n")
    caption = render.latex_escape(f"{rec.spec.name}: {header['metric']}")  # to_latex escapes cells, not captions
    paths["tex"].write_text(render.LATEX_NEEDS + render.latex_symbols(shown.to_latex(
        index=False, escape=True, caption=caption, label=f"tab:{rec.spec.name.replace('_', '-')}")))
    paths["html"].write_text(render.html_page(f"Leaderboard: {rec.spec.name}", render.header_html(header)
                                        + shown.to_html(index=False, border=0, classes="table")))
    return [*paths.values(), *extra]


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
        shown[m] = [render.display_ci(v, lo, hi, render.column_format(recs[0], m))
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
