"""How the CLI prints what bench.api returns: tables (rich on a terminal, whole Markdown when piped, or
csv/json with the raw numbers), a run's header and per-trial lines, a report's and a benchmark's tables,
a reproduction's claims, a metrics result. The library's log records and progress are shown through
bench.ui for one command (`shown`). stdout carries the tables; stderr everything else."""

from __future__ import annotations

import contextlib
import json
from enum import Enum
from typing import Iterator

from rich.console import Console
from rich.table import Table

from bench import ui

console = Console(stderr=True, soft_wrap=True)  # a line in a log stays one line
out = Console(soft_wrap=True)


@contextlib.contextmanager
def shown(quiet: bool = False) -> Iterator[None]:
    """The library's log records and progress on stderr for one command (bench.ui)."""
    with ui.shown(console, quiet):
        yield


class Format(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


def print_plan(table, what: str, device: str | None, fmt: Format) -> None:
    """A plan's table and its total (what --plan prints; nothing ran)."""
    from bench.plan import total_line
    from stabgen.hardware import check_device, default_device, describe

    print_table(table, f"{what}: the plan (nothing run)", fmt)
    out.print(total_line(table, describe(check_device(device or default_device()))), markup=False, highlight=False)


def print_report(r, rec, fmt: Format, head: int | None = None) -> None:
    from bench import render

    shown = render.display_configs(r.configs, rec)
    if not r.confirmation.empty:
        print_table(render.display_confirm(r.confirmation, rec),
                     f"{rec.spec.name}: confirmation on {confirm_words(rec.spec.confirm)} (the verdicts)", fmt,
                     raw=r.confirmation)
    print_table(shown.head(head) if head and not shown.empty else shown,
                 f"{rec.spec.name}: search configs (mean [95% CI]; ranked by score = median, diverged = worst)", fmt,
                 raw=r.configs)
    if not r.regularizers.empty:
        print_table(render.display_regularizers(r.regularizers), "search trials per arm (no test)", fmt,
                     raw=r.regularizers)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}")


LEFT = ("model", "regularizer", "status", "arm", "verdict", "name", "applies to", "description")


def print_table(df, title: str, fmt: Format | None = None, raw=None) -> None:
    """A rich table on a terminal; piped or logged, the whole table as Markdown (no cell squeezed to …);
    csv and json print `raw` (the unformatted numbers) where given, else the table shown."""
    fmt = fmt or Format.table
    if fmt in (Format.csv, Format.json):
        data = raw if raw is not None else df
        if fmt is Format.csv:
            out.print(f"# {title}\n" + data.to_csv(index=False), markup=False, highlight=False, soft_wrap=True)
        else:
            rows = json.loads(data.to_json(orient="records", default_handler=str))
            out.print(json.dumps({"table": title, "rows": rows}, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)
        return
    if fmt is Format.md or not out.is_terminal:
        out.print(f"\n{title}\n", markup=False, highlight=False)
        out.print(df.astype(str).to_markdown(index=False, disable_numparse=True), markup=False, highlight=False,
                  soft_wrap=True)
        return
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col), justify="left" if col in LEFT else "right")
    for row in df.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    out.print(table)


def trial_line(spec, trial) -> str:
    """One line per finished trial: its config and outcome."""
    from bench import records
    from stabgen.models import MODELS

    cfg = trial.user_attrs.get("config", {})
    status = trial.user_attrs.get("status", trial.state.name.lower())
    metrics = trial.user_attrs.get("metrics", {})
    lam = records.display_lam(cfg.get("regularizer", "none"), cfg.get("lam"))
    lam = f" λ={lam}" if lam != "—" else ""
    step = f" at step {trial.user_attrs.get('diverged_step')}" if status == "diverged" else ""
    obj = f" {cfg.get('objective')}" if cfg.get("model") and MODELS.get(cfg["model"]).family == "gan" else ""
    vals = ""
    if not step and trial.state.name == "COMPLETE":
        vals = ", " + ", ".join(f"{m} {v:.3g}" for m, v in zip(spec.metrics, trial.values))
    elif not step and metrics.get(spec.metric) is not None:
        vals = f", {spec.metric} {metrics[spec.metric]:.2f}"
    conf = (f" (confirm {trial.user_attrs['confirm_arm']} seed {trial.user_attrs['confirm_seed']})"
            if "confirm_arm" in trial.user_attrs else "")
    return (f"trial {_listed_number(trial)}{conf}: {cfg.get('model')}{obj} {cfg.get('regularizer')}{lam} "
            f"lr={cfg.get('lr', 0):.2e} → {status}{step}{vals}")


def _listed_number(trial) -> int:
    """The number reports list a trial under: a seed re-run or confirmation run just told is numbered in its
    own study (bench.storage), listed as OWED_BASE + n — "trial 0 (confirm …)" read as search trial 0."""
    from bench.space import CONFIRM, REEVAL
    from bench.storage import OWED_BASE

    owed = (CONFIRM in trial.user_attrs or REEVAL in trial.user_attrs) and trial.number < OWED_BASE
    return trial.number + OWED_BASE if owed else trial.number


def confirm_words(c) -> str:
    """The confirmation design in words: fixed, or sequential with its looks."""
    if c.stages == 1:
        return f"{c.seeds} fresh seeds"
    return f"fresh seeds, {c.seeds} per look for the arms still open, up to {c.seeds * c.stages}"


def run_header(spec, info: dict[str, str]) -> None:
    """`bench run`'s first lines: the study, its storage, budget and device (bench.api.describe_run)."""
    console.print(f"[bold]{spec.name}[/]{': ' + spec.description if spec.description else ''}\n"
                  f"storage {info['storage']} · {info['budget']} × {info['steps']} · {info['device']}\n"
                  f"work: {info['work']}")


def worker_header(spec, info: dict[str, str]) -> None:
    console.print(f"worker on {spec.name} · storage {info['storage']} · budget {info['budget']} · {info['device']}")


def print_benchmark(bm, fmt: Format) -> None:
    """The benchmark's leaderboard of regularizers (bench.benchmark.display) and where its files went."""
    from bench.benchmark import display

    partial = f"PARTIAL ({bm.header['PARTIAL']}) · " if "PARTIAL" in bm.header else ""
    print_table(display(bm.leaderboard), f"{partial}{bm.name}: regularizers across {bm.runs['task'].nunique()} tasks "
                "(normalized: 0 chance, 1 real data)", fmt, raw=bm.leaderboard)
    console.print(f"wrote {len(bm.files)} files to {bm.files[0].parent}")


def print_reproduction(rep, budget: str, path) -> None:
    """A reproduction's claims, each with its verdict."""
    table = Table(title=f"{rep.title} · budget {budget}")
    for col in ("claim", "verdict"):
        table.add_column(col)
    for c in rep.claims:
        table.add_row(c.text, c.verdict)
    out.print(table)
    console.print(f"wrote {path}")


METRIC_KEYS = ("fid", "fid_inf", "kid", "kid_std", "precision", "recall", "density", "coverage", "vendi", "is",
               "is_std", "classes_covered", "class_kl", "seconds")


def print_metrics(res: dict, split: str, extractor: str, as_json: bool) -> None:
    """`bench metrics`: one JSON object, or a line naming what was compared and a table of the metrics."""
    if as_json:
        out.print_json(json.dumps(res))
        return
    out.print(f"{res['samples']} vs {res['dataset']}/{split} · extractor {extractor} · N = {res['n_fake']} fake, "
              f"{res['n_real']} real")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in METRIC_KEYS:
        if key in res:
            table.add_row(key, f"{res[key]:.4g}" if isinstance(res[key], float) else str(res[key]))
    out.print(table)
    if "is_unavailable" in res:
        console.print(f"IS not reported: {res['is_unavailable']}")
