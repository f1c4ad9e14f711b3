"""`bench`: run studies, list what can be searched, train the domain classifiers.

Errors a user can fix (bad spec, unknown names, missing data, unreachable storage) print one
line on stderr and exit with code 2; completed trials are already in the storage by then.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from bench import ui
from stabgen.errors import StabgenError

app = typer.Typer(
    help="stabgen's harness: search regularizers, λ and learning rates for stable GAN/VAE training "
         "with Optuna, and rank the results on trustworthy metrics.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # a line in a log stays one line
out = Console(soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("stabgen")
        except PackageNotFoundError:  # run from a checkout that was never installed
            v = "unknown (not installed)"
        print(f"stabgen {v}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print stabgen's version and exit.")] = False) -> None:
    """stabgen's harness (also installed as `stabgen`)."""


StudyOpt = Annotated[str, typer.Option("--study", "-s", help="Name of a shipped study (bench/studies/, e.g. mnist_reg, smoke) "
                                      "or a path to your own TOML spec.")]
TrialsOpt = Annotated[Optional[int], typer.Option(help="Search trials per arm (the per-arm search; default: the "
                                                  "spec's search.per_arm), or in all for a joint search (default: "
                                                  "n_trials); shared by all workers. Rerunning resumes.")]
JobsOpt = Annotated[Optional[str], typer.Option(
    "--jobs", help="Local worker processes sharing the study (each with its share of the torch threads): N, or "
    "auto (measured once per machine and model, then cached; one process on a GPU). Default 1.")]
ConfirmSeedsOpt = Annotated[Optional[int], typer.Option(
    "--confirm-seeds", help="A fixed confirmation of N seeds per arm (default: the spec's confirm.seeds and "
    "stages); recorded in the study's spec, like an edit of the file.")]
StepsOpt = Annotated[Optional[int], typer.Option(help="Training steps per trial (default: the spec's).")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto (default), cpu, cuda or cuda:N. auto: cpu without CUDA; "
                                                  "else the GPU of this worker's local rank (LOCAL_RANK, SLURM_LOCALID) "
                                                  "or, without one, of its slot among this node's workers, so workers "
                                                  "spread over the node's GPUs (CUDA_VISIBLE_DEVICES honoured).")]
StorageOpt = Annotated[Optional[str], typer.Option(help="Optuna storage URL, e.g. postgresql://user:pw@host/db "
                                                   "(default: $STABGEN_STORAGE — keeps a password off the "
                                                   "command line —, else the spec's storage, else "
                                                   "sqlite:///RUNS_DIR/STUDY/study.db).")]
DataDirOpt = Annotated[Optional[Path], typer.Option(help="Folder holding mnist/ and fashion-mnist/ idx files "
                                                    "(else $STABGEN_DATA_DIR, ~/.cache/stabgen, download).")]
InceptionOpt = Annotated[Optional[Path], typer.Option(help="TF-Inception weights file for the final Inception FID "
                                                      "(else $STABGEN_INCEPTION_WEIGHTS or torch-fidelity's "
                                                      "download).")]
RunsDirOpt = Annotated[Path, typer.Option(help="Where trial folders and leaderboards go.")]
TensorboardOpt = Annotated[bool, typer.Option("--tensorboard", help="Also write each trial's losses, gradient "
                                              "norms and metrics as TensorBoard events (TRIAL_DIR/tensorboard).")]
HeartbeatOpt = Annotated[float, typer.Option(help="Seconds between a running trial's heartbeats; a trial silent "
                                             "for 3 heartbeats (a killed worker's) is failed and queued again.")]


class Format(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", help="How tables print: table (rich on a terminal, Markdown "
                                           "when piped or logged), md, csv (blank line between tables, each "
                                           "under a '# title' line) or json (one JSON object per table and line; "
                                           "csv and json carry the raw numbers).")]
ArtifactsOpt = Annotated[Optional[str], typer.Option(help="Where trial files go for other machines to read: a folder "
                                                     "every node sees, s3://BUCKET or gs://BUCKET (default: the store "
                                                     "the study records, else RUNS_DIR/STUDY/artifacts).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only the tables (stdout), warnings and errors: "
                                        "no progress, no per-trial lines.")]
AllowChangeOpt = Annotated[bool, typer.Option("--allow-spec-change", help="Resume a study although the given spec "
                                              "differs from the one it was started with (the old one is kept in "
                                              "the study's spec_history).")]


@app.command()
def run(study: StudyOpt, trials: TrialsOpt = None, steps: StepsOpt = None, confirm_seeds: ConfirmSeedsOpt = None,
        jobs: JobsOpt = None, device: DeviceOpt = None,
        storage: StorageOpt = None, data_dir: DataDirOpt = None, inception_weights: InceptionOpt = None,
        runs_dir: RunsDirOpt = Path("runs"), heartbeat: HeartbeatOpt = 10.0,
        tensorboard: TensorboardOpt = False, allow_spec_change: AllowChangeOpt = False,
        artifacts: ArtifactsOpt = None, format: FormatOpt = Format.table,
        no_inception: Annotated[bool, typer.Option("--no-inception", help="Skip the TF-Inception scoring of the top "
                                                   "trials after the search (the spec's inception_top_k).")] = False,
        plan: Annotated[bool, typer.Option("--plan", help="Only say what it costs: every kind of training (search, "
                                       "seed re-runs, confirmation at its first look, Inception), priced on this "
                                       "device by a short timed run of each. Trains and stores nothing.")] = False,
        figures: Annotated[bool, typer.Option("--figures", help="Also draw the report's figures and "
                                              "RUNS_DIR/STUDY/index.html (as `bench report` does).")] = False,
        quiet: QuietOpt = False) -> None:
    """Run (or resume) a study: sample configs with Optuna, train, evaluate, print the leaderboard.

    Each trial's samples, history and metrics land in RUNS_DIR/STUDY/trials/N/; the report's tables
    (leaderboard.{csv,md,tex,html} per config, trials.csv per trial, regularizers.csv) in
    RUNS_DIR/STUDY/. Interrupt and rerun the same command to resume; start `bench worker` processes
    on the same storage to share the work.
    """
    from bench import api

    if plan:
        return _print_plan(api.plan(study, device=device, data_dir=_str(data_dir),
                                    inception_weights=_str(inception_weights), inception=not no_inception), study, device, format)
    spec = api.load_spec(study, confirm_seeds)
    opts = api.options(spec, trials, steps, device, storage, runs_dir, _str(data_dir), _str(inception_weights),
                       heartbeat, tensorboard, allow_spec_change, artifacts, jobs, inception=not no_inception)
    api.check_storage(spec, opts)  # a bad storage, data or weights file fails in one line, before anything is printed
    with _resumable_on_interrupt(), ui.shown(console, quiet):
        _run_and_report(spec, opts, figures, format)


@app.command()
def worker(study: StudyOpt, storage: StorageOpt = None, trials: TrialsOpt = None, steps: StepsOpt = None,
           confirm_seeds: ConfirmSeedsOpt = None, device: DeviceOpt = None, data_dir: DataDirOpt = None, runs_dir: RunsDirOpt = Path("runs"),
           heartbeat: HeartbeatOpt = 10.0, tensorboard: TensorboardOpt = False,
           allow_spec_change: AllowChangeOpt = False, artifacts: ArtifactsOpt = None, quiet: QuietOpt = False) -> None:
    """Work on a shared study until its global trial budget is met, then exit (no report).

    Start as many as you like, on as many machines as reach the storage (PostgreSQL for several
    machines; SQLite only on one). `bench report` or `bench run` afterwards writes the leaderboard.
    """
    from bench import api, search, storage as storage_mod
    from stabgen.hardware import describe

    spec = api.load_spec(study, confirm_seeds)
    opts = api.options(spec, trials, steps, device, storage, runs_dir, _str(data_dir), None, heartbeat, tensorboard,
                       allow_spec_change, artifacts)
    api.check_storage(spec, opts)  # fails fast, in one line
    with _resumable_on_interrupt(), ui.shown(console, quiet):
        console.print(f"worker on {spec.name} · storage {storage_mod.redact(opts.storage)} · budget "
                      f"{_search_budget(spec, opts)} · {describe(opts.device)}")
        study_ = search.run(spec, opts, on_trial_end=lambda t: console.print(_trial_line(spec, t)), worker=True)
        console.print(f"done: {search.n_finished(study_)} finished trials in the study")


@app.command()
def benchmark(
    suite: Annotated[str, typer.Option("--suite", help="A shipped suite (core: five CPU tasks; gpu: conv nets, "
                                       "Stacked MNIST, paper-length budgets) or a path to a suite .toml.")] = "core",
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUNS_DIR/benchmark/SUITE; the "
                                                "committed reports/benchmark only when named here).")] = None,
    jobs: JobsOpt = None, device: DeviceOpt = None, data_dir: DataDirOpt = None,
    inception_weights: InceptionOpt = None, runs_dir: RunsDirOpt = Path("runs"),
    no_inception: Annotated[bool, typer.Option("--no-inception", help="Skip the TF-Inception scoring in every "
                                               "study.")] = False,
    format: FormatOpt = Format.table, quiet: QuietOpt = False,
    plan: Annotated[bool, typer.Option("--plan", help="Only say what it costs: every kind of training (search, "
                                       "seed re-runs, confirmation at its first look, Inception), priced on this "
                                       "device by a short timed run of each. Trains and stores nothing.")] = False,
) -> None:
    """Run or resume every study of a suite and rank the regularizers across its tasks: normalized scores
    (0 chance, 1 real data), interquartile mean with stratified-bootstrap intervals, performance profiles,
    probability of improvement over none, and every claim with Holm over the whole benchmark.

    Each study is an ordinary `bench run` (its own storage under RUNS_DIR/STUDY); interrupt and rerun
    the same command to resume — finished studies train nothing again.
    """
    from bench import api, benchmark as bm_mod, records

    if plan:
        return _print_plan(api.plan(suite=suite, device=device, data_dir=_str(data_dir),
                                    inception_weights=_str(inception_weights), inception=not no_inception),
                           f"suite {suite}", device, format)
    with _resumable_on_interrupt(), ui.shown(console, quiet):
        bm = api.benchmark(suite, out, records.command_line(), jobs=jobs, device=device,
                           data_dir=_str(data_dir), inception_weights=_str(inception_weights), runs_dir=runs_dir,
                           inception=not no_inception)
        _print_table(bm_mod.display(bm.leaderboard), f"{bm.name}: regularizers across {bm.runs['task'].nunique()} "
                     "tasks (normalized: 0 chance, 1 real data)", format, raw=bm.leaderboard)
        console.print(f"wrote {len(bm.files)} files to {bm.files[0].parent}")


@app.command()
def report(
    study: Annotated[str, typer.Option("--study", "-s", help="Study name (as in its storage).")],
    storage: StorageOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUNS_DIR/STUDY/report; the "
                                                "committed reports/ are written only when named here).")] = None,
    runs_dir: RunsDirOpt = Path("runs"),
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
) -> None:
    """Build a study's report from its storage: leaderboard.{md,csv,tex,html} with bootstrap CIs over
    seeds, the confirmation verdicts (confirm.csv: each arm against the baseline on paired seeds), seaborn
    figures (PNG + SVG) and index.html.

    Rebuildable at any time; needs no TensorBoard and no server (open index.html in a browser).
    """
    from bench import api, records

    with ui.shown(console, quiet):
        rec = api.open_study(study, storage, runs_dir)
        r = api.build_report(rec, out or runs_dir / rec.spec.name / "report", records.command_line())
        _print_report(r, rec, format, head=15)
        console.print(f"wrote {len(r.files)} files; open {r.out_dir / 'index.html'}")


@app.command()
def leaderboard(
    studies: Annotated[list[str], typer.Argument(help="Study names (e.g. a GAN and a VAE study of one dataset).")],
    storage: StorageOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    out: Annotated[Optional[Path], typer.Option(help="Also write OUT.csv and OUT.md.")] = None,
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
) -> None:
    """One table across several studies on the metrics they share, one row per config."""
    from bench import api, records

    with ui.shown(console, quiet):
        recs = [api.open_study(s, storage, runs_dir) for s in studies]
        shown, shared, paths = api.cross_leaderboard(recs, out, records.command_line())
        _print_table(shown, f"{' + '.join(studies)} on {', '.join(shared)}", format)
        if paths:
            console.print(f"wrote {', '.join(str(p) for p in paths)}")


@app.command()
def reproduce(
    name: Annotated[str, typer.Argument(help="mescheder2018, pacgan2018, lucic2018 or seed-feature-reg")],
    budget: Annotated[str, typer.Option(help="tiny (a pipeline check in seconds; numbers mean nothing), small "
                                        "(minutes on a 2-core CPU) or paper (the paper's own budget).")] = "small",
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: runs/papers/NAME; the "
                                                    "committed reports/papers/NAME only when named here).")] = None,
    device: DeviceOpt = None, data_dir: DataDirOpt = None, inception_weights: InceptionOpt = None,
    quiet: QuietOpt = False,
    plan: Annotated[bool, typer.Option("--plan", help="Only say what the budget costs: its trainings, steps and "
                                       "samples, and the wall time on this device estimated from a short timed "
                                       "run of each kind of config. Writes nothing.")] = False,
    worker: Annotated[bool, typer.Option("--worker", help="Join the same reproduction running in another process "
                                         "on this storage (studies: lucic2018): the trials are shared, this "
                                         "worker's random search draws from its own stream.")] = False,
) -> None:
    """Reproduce a paper's table: ours next to the paper's numbers, a verdict per claim, figures, and
    the command, hardware, budget and seeds at the top of reports/papers/NAME/README.md."""
    from bench import papers, records
    from stabgen.hardware import check_device, default_device, describe

    if budget not in papers.BUDGETS:
        raise StabgenError(f"unknown budget {budget!r}; choose one of {', '.join(papers.BUDGETS)}")
    dev = check_device(device or default_device())
    if plan:
        from bench.papers import plan as plan_mod

        works = plan_mod.PLANS.get(name)(budget)
        with ui.shown(console, quiet):
            table = plan_mod.estimate(works, dev, _str(data_dir), _str(inception_weights))
        _print_table(table, f"{name} · budget {budget}: the plan (nothing run)")
        out.print(plan_mod.total_line(table, describe(dev)), markup=False, highlight=False)
        return
    ctx = papers.Context(out_dir or Path("runs") / "papers" / name, dev, str(data_dir) if data_dir else None,
                         str(inception_weights) if inception_weights else None, worker)
    with _resumable_on_interrupt(), ui.shown(console, quiet):
        rep, path = papers.run(name, budget, ctx, records.command_line(), describe(dev))
    table = Table(title=f"{rep.title} · budget {budget}")
    for col in ("claim", "verdict"):
        table.add_column(col)
    for c in rep.claims:
        table.add_row(c.text, c.verdict)
    out.print(table)
    console.print(f"wrote {path}")


class Terminated(KeyboardInterrupt):
    """SIGTERM (Slurm's time limit, `timeout`, `kill`): handled as ^C is, exit code 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def _resumable_on_interrupt():
    """^C or SIGTERM: the running trial is failed and its config queued again (bench.storage.requeue),
    finished trials stay in the storage; rerunning the command resumes."""
    import signal

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"{what}: finished trials are saved in the storage and the running one is queued again; rerun "
              f"the same command to resume", file=sys.stderr)
        raise typer.Exit(143 if isinstance(e, Terminated) else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _trial_line(spec, trial) -> str:
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
    return (f"trial {trial.number}{conf}: {cfg.get('model')}{obj} {cfg.get('regularizer')}{lam} "
            f"lr={cfg.get('lr', 0):.2e} → {status}{step}{vals}")


def _confirm_words(c) -> str:
    """The confirmation design in words: fixed, or sequential with its looks."""
    if c.stages == 1:
        return f"{c.seeds} fresh seeds"
    return f"fresh seeds, {c.seeds} per look for the arms still open, up to {c.seeds * c.stages}"


def _search_budget(spec, opts) -> str:
    """The search budget in words: per arm × arms (the fair default), or a joint search's total."""
    if spec.joint:
        return f"{opts.trials} trials (joint search: exploration, no verdicts)"
    n_arms = spec.search_budget(opts.trials) // opts.trials
    return f"{opts.trials} trials per arm × {n_arms} arms"


def _run_and_report(spec, opts, figures: bool, fmt: "Format" = None) -> None:
    """`bench run`: progress while the search runs, then the report's leaderboard."""
    from bench import api, records
    from bench.storage import redact
    from stabgen.hardware import describe

    budget = f"{opts.steps} steps" if opts.steps else spec.budget_label()
    console.print(f"[bold]{spec.name}[/]{': ' + spec.description if spec.description else ''}\n"
                  f"storage {redact(opts.storage)} · {_search_budget(spec, opts)} × {budget} · {describe(opts.device)}")
    t0 = time.perf_counter()
    rec = api.run_study(spec, opts, command=records.command_line() if sys.argv[1:] else None, figures=figures,
                        on_trial_end=lambda trial: console.print(_trial_line(spec, trial)))
    _print_report(rec.report, rec, fmt or Format.table)
    console.print(f"wrote {opts.runs_dir / spec.name}/leaderboard.{{csv,md,tex,html}}, trials.csv · "
                  f"wall time {time.perf_counter() - t0:.1f}s")


def _print_plan(table, what: str, device: str | None, fmt: "Format") -> None:
    """A plan's table and its total (what --plan prints; nothing ran)."""
    from bench.plan import total_line
    from stabgen.hardware import check_device, default_device, describe

    _print_table(table, f"{what}: the plan (nothing run)", fmt)
    out.print(total_line(table, describe(check_device(device or default_device()))), markup=False, highlight=False)


def _print_report(r, rec, fmt: "Format", head: int | None = None) -> None:
    from bench import render

    shown = render.display_configs(r.configs, rec)
    if not r.confirmation.empty:
        _print_table(render.display_confirm(r.confirmation, rec),
                     f"{rec.spec.name}: confirmation on {_confirm_words(rec.spec.confirm)} (the verdicts)", fmt,
                     raw=r.confirmation)
    _print_table(shown.head(head) if head and not shown.empty else shown,
                 f"{rec.spec.name}: search configs (mean [95% CI]; ranked by score = median, diverged = worst)", fmt,
                 raw=r.configs)
    if not r.regularizers.empty:
        _print_table(render.display_regularizers(r.regularizers), "search trials per arm (no test)", fmt,
                     raw=r.regularizers)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}")


LEFT = ("model", "regularizer", "status", "arm", "verdict", "name", "applies to", "description")


def _print_table(df, title: str, fmt: "Format" = None, raw=None) -> None:
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


@app.command()
def metrics(
    dataset: Annotated[Optional[str], typer.Option(help="A dataset with a domain classifier (bench list datasets): "
                                                   "the real data and the classifier (default: mnist).")] = None,
    samples: Annotated[Optional[Path], typer.Option(help="Your samples: .pt/.npz/.npy tensor file or a folder of "
                                                    "images (uint8, or float in [0,1] or [-1,1]).")] = None,
    real_vs: Annotated[Optional[str], typer.Option(help="Instead of samples, score a real split (train/test) "
                                                   "against the reference: the floor a perfect model reaches.")] = None,
    split: Annotated[str, typer.Option(help="Reference split.")] = "train",
    extractor: Annotated[str, typer.Option(help="classifier (domain CNN) or inception (TF-Inception).")] = "classifier",
    n: Annotated[int, typer.Option(help="Real reference images (and at most this many samples).")] = 10000,
    fid_inf: Annotated[bool, typer.Option("--fid-inf", help="Also estimate FID∞ (Chong & Forsyth 2020).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder holding the idx files.")] = None,
    inception_weights: Annotated[Optional[Path], typer.Option(help="TF-Inception weights file.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Score samples (or a real split) against a dataset: FID, KID, precision/recall, density/coverage,
    IS and class coverage, each with its N and feature extractor named.

    Example: bench metrics --dataset mnist --real-vs test --extractor classifier --n 10000
    """
    import json

    from bench import api

    with ui.shown(console, quiet):
        res = api.score_samples(dataset, samples, real_vs, split, n, extractor, device, _str(data_dir),
                                _str(inception_weights), fid_inf)
    source = res["samples"]
    if json_out:
        out.print_json(json.dumps(res))
        return
    out.print(f"{source} vs {res['dataset']}/{split} · extractor {extractor} · N = {res['n_fake']} fake, {res['n_real']} real")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("fid", "fid_inf", "kid", "kid_std", "precision", "recall", "density", "coverage", "vendi", "is", "is_std",
                "classes_covered", "class_kl", "seconds"):
        if key in res:
            table.add_row(key, f"{res[key]:.4g}" if isinstance(res[key], float) else str(res[key]))
    out.print(table)
    if "is_unavailable" in res:
        console.print(f"IS not reported: {res['is_unavailable']}")


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="models, objectives, regularizers or datasets")] = "regularizers",
    format: FormatOpt = Format.table,
) -> None:
    """List a registry: each entry with a one-line description and where it applies."""
    from stabgen.datasets import DATASETS
    from stabgen.models import MODELS
    from stabgen.objectives import OBJECTIVES
    from stabgen.regularizers import REGULARIZERS

    rows = {
        "models": lambda: [(n, f"{s.family} · {s.data_kind} data", s.description) for n, s in MODELS.items()],
        "objectives": lambda: [(n, "gan" + (f" · built-in {o.penalty} (obj_lam)" if o.penalty else "")
                                + (" · weight clipping" if o.clip else ""), o.description)
                               for n, o in OBJECTIVES.items()],
        "regularizers": lambda: [(n, ", ".join(sorted(r.families)) + f" · {r.acts_on}", r.description)
                                 for n, r in REGULARIZERS.items()],
        "datasets": lambda: [(n, f"{d.kind} models · metrics {', '.join(d.metrics)}", d.description)
                             for n, d in DATASETS.items()],
    }
    if what not in rows:
        raise StabgenError(f"cannot list {what!r}; choose one of {', '.join(rows)}")
    import pandas as pd

    _print_table(pd.DataFrame(rows[what](), columns=["name", "applies to", "description"]), what, format)


@app.command("train-classifier")
def train_classifier(
    dataset: Annotated[Optional[str], typer.Option(help="A dataset with labelled splits (bench list datasets; "
                                                   "default: mnist).")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder holding the idx files.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Weights file (default: the one "
                                                     "shipped in the package).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train the domain classifier whose features the domain FID/KID/PR use; writes weights + a card."""
    from stabgen.datasets import DEFAULT_DATASET
    from stabgen.metrics.classifier import train_classifier as fit
    from stabgen.userdata import resolve

    if epochs < 1:
        raise StabgenError(f"--epochs must be a positive integer, got {epochs}")
    ds = resolve(dataset or DEFAULT_DATASET)
    if ds.load_split is None or not ds.classes:
        raise StabgenError(f"dataset {ds.name!r} has no labelled splits to train a classifier on")
    splits = [ds.load_split(s, _str(data_dir)) for s in ("train", "test")]
    with ui.shown(console, quiet):
        card = fit(ds.name, *splits, epochs, seed, device, out_path)
        console.print(card)


def _str(path: Optional[Path]) -> str | None:
    return str(path) if path else None


def main() -> None:
    """Entry point: typer handles usage errors (exit 2 with usage); our own errors get one line."""
    try:
        app()
    except StabgenError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
