"""`bench`: run studies, list what can be searched, train the domain classifiers.

Errors a user can fix (bad spec, unknown names, missing data, unreachable storage) print one
line on stderr and exit with code 2; completed trials are already in the storage by then.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stabgen.errors import StabgenError

app = typer.Typer(
    help="stabgen's harness: search regularizers, λ and learning rates for stable GAN/VAE training "
         "with Optuna, and rank the results on trustworthy metrics.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()


StudyOpt = Annotated[str, typer.Option("--study", "-s", help="Study name from studies/ (e.g. mnist_reg, smoke) "
                                      "or a path to your own TOML spec.")]
TrialsOpt = Annotated[Optional[int], typer.Option(help="Total finished trials wanted in the study (default: the "
                                                  "spec's n_trials), shared by all workers. Rerunning resumes.")]
StepsOpt = Annotated[Optional[int], typer.Option(help="Training steps per trial (default: the spec's).")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")]
StorageOpt = Annotated[Optional[str], typer.Option(help="Optuna storage URL, e.g. postgresql://user:pw@host/db "
                                                   "(default: the spec's storage, else "
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


def _options(spec, trials, steps, device, storage, data_dir, inception_weights, runs_dir, heartbeat,
             tensorboard=False):
    from bench import records, search

    if tensorboard:
        records.tensorboard_writer_class()  # fails now, in one line, not after the first trial

    opts = search.RunOptions(
        trials=trials or spec.n_trials, steps=steps, device=search.check_device(device or search.default_device()),
        storage=storage or spec.storage or f"sqlite:///{runs_dir / spec.name / 'study.db'}", runs_dir=runs_dir,
        data_dir=str(data_dir) if data_dir else None,
        inception_weights=str(inception_weights) if inception_weights else None, heartbeat=heartbeat,
        tensorboard=tensorboard,
    )
    if opts.storage.startswith("sqlite:///"):
        Path(opts.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    search.open_study(spec, opts.storage, heartbeat=heartbeat)  # fails fast, in one line, on a bad storage
    return opts


@app.command()
def run(study: StudyOpt, trials: TrialsOpt = None, steps: StepsOpt = None, device: DeviceOpt = None,
        storage: StorageOpt = None, data_dir: DataDirOpt = None, inception_weights: InceptionOpt = None,
        runs_dir: RunsDirOpt = Path("runs"), heartbeat: HeartbeatOpt = 10.0,
        tensorboard: TensorboardOpt = False) -> None:
    """Run (or resume) a study: sample configs with Optuna, train, evaluate, print the leaderboard.

    Each trial's samples, history and metrics land in RUNS_DIR/STUDY/trials/N/; the leaderboard in
    RUNS_DIR/STUDY/leaderboard.{csv,md}. Interrupt and rerun the same command to resume; start
    `bench worker` processes on the same storage to share the work.
    """
    from bench import spec as spec_mod

    spec = spec_mod.load(study)
    opts = _options(spec, trials, steps, device, storage, data_dir, inception_weights, runs_dir, heartbeat,
                    tensorboard)
    with _resumable_on_interrupt():
        _run_and_report(spec, opts, study)


@app.command()
def worker(study: StudyOpt, storage: StorageOpt = None, trials: TrialsOpt = None, steps: StepsOpt = None,
           device: DeviceOpt = None, data_dir: DataDirOpt = None, runs_dir: RunsDirOpt = Path("runs"),
           heartbeat: HeartbeatOpt = 10.0, tensorboard: TensorboardOpt = False) -> None:
    """Work on a shared study until its global trial budget is met, then exit (no report).

    Start as many as you like, on as many machines as reach the storage (PostgreSQL for several
    machines; SQLite only on one). `bench report` or `bench run` afterwards writes the leaderboard.
    """
    from bench import search, spec as spec_mod

    spec = spec_mod.load(study)
    opts = _options(spec, trials, steps, device, storage, data_dir, None, runs_dir, heartbeat, tensorboard)
    console.print(f"worker on {spec.name} · storage {search.redact(opts.storage)} · budget {opts.trials} trials "
                  f"· {search.hardware(opts.device)}")
    with _resumable_on_interrupt():
        study_ = search.run(spec, opts, on_trial_end=lambda t: console.print(_trial_line(spec, t)),
                            log=console.print, worker=True)
    console.print(f"done: {search.n_finished(study_)} finished trials in the study")


@app.command()
def report(
    study: Annotated[str, typer.Option("--study", "-s", help="Study name (as in its storage).")],
    storage: StorageOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: reports/STUDY).")] = None,
    runs_dir: RunsDirOpt = Path("runs"),
) -> None:
    """Build a study's report from its storage: leaderboard.{md,csv,tex,html} with bootstrap CIs over
    seeds, per-regularizer tests against `none`, seaborn figures (PNG + SVG) and index.html.

    Rebuildable at any time; needs no TensorBoard and no server (open index.html in a browser).
    """
    from bench import report as report_mod

    rec = report_mod.open_record(_study_name(study), storage, runs_dir)
    r = report_mod.build(rec, out or Path("reports") / rec.spec.name, report_mod.command_line())
    shown = report_mod.display_configs(r.configs, rec)
    _print_table(shown.head(15) if not shown.empty else shown, f"{rec.spec.name}: configs (mean [95% CI])")
    if not r.regularizers.empty:
        _print_table(report_mod.display_regularizers(r.regularizers), "regularizers against none")
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"wrote {len(r.files)} files; open {r.out_dir / 'index.html'}")


@app.command()
def leaderboard(
    studies: Annotated[list[str], typer.Argument(help="Study names (e.g. a GAN and a VAE study of one dataset).")],
    storage: StorageOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    out: Annotated[Optional[Path], typer.Option(help="Also write OUT.csv and OUT.md.")] = None,
) -> None:
    """One table across several studies on the metrics they share, one row per config."""
    from bench import report as report_mod

    recs = [report_mod.open_record(_study_name(s), storage, runs_dir) for s in studies]
    table, shared = report_mod.cross_study(recs)
    shown = table[["rank", "study", *[c for c in table.columns if c in ("model", "objective", "regularizer")],
                   "seeds", *shared]].copy()
    for m in shared:
        shown[m] = [report_mod.display_ci(v, lo, hi) for v, lo, hi in
                    zip(table[m], table[f"{m}_ci_low"], table[f"{m}_ci_high"])]
    _print_table(shown.astype(str), f"{' + '.join(studies)} on {', '.join(shared)}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out.with_suffix(".csv"), index=False)
        out.with_suffix(".md").write_text(f"# {' + '.join(studies)}\n\n`{report_mod.command_line()}`\n\n"
                                          + shown.to_markdown(index=False, disable_numparse=True) + "\n")
        console.print(f"wrote {out.with_suffix('.csv')}, {out.with_suffix('.md')}")


@app.command()
def reproduce(
    name: Annotated[str, typer.Argument(help="mescheder2018, pacgan2018, lucic2018 or seed-feature-reg")],
    budget: Annotated[str, typer.Option(help="tiny (a pipeline check in seconds; numbers mean nothing), small "
                                        "(minutes on a 2-core CPU) or paper (the paper's own budget).")] = "small",
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: reports/papers/NAME).")] = None,
    device: DeviceOpt = None, data_dir: DataDirOpt = None, inception_weights: InceptionOpt = None,
) -> None:
    """Reproduce a paper's table: ours next to the paper's numbers, a verdict per claim, figures, and
    the command, hardware, budget and seeds at the top of reports/papers/NAME/README.md."""
    from bench import papers
    from bench.search import check_device, default_device, hardware

    if budget not in papers.BUDGETS:
        raise StabgenError(f"unknown budget {budget!r}; choose one of {', '.join(papers.BUDGETS)}")
    dev = check_device(device or default_device())
    ctx = papers.Context(out_dir or Path("reports") / "papers" / name, dev, str(data_dir) if data_dir else None,
                         str(inception_weights) if inception_weights else None, log=console.print)
    with _resumable_on_interrupt():
        rep, path = papers.run(name, budget, ctx, " ".join(["bench", *sys.argv[1:]]), hardware(dev))
    table = Table(title=f"{rep.title} · budget {budget}")
    for col in ("claim", "verdict"):
        table.add_column(col)
    for c in rep.claims:
        table.add_row(c.text, c.verdict)
    out.print(table)
    console.print(f"wrote {path}")


def _study_name(study: str) -> str:
    """A study is named like its spec file: accept `mnist_reg` or `studies/mnist_reg.toml`."""
    return Path(study).stem if study.endswith(".toml") else study


@contextlib.contextmanager
def _resumable_on_interrupt():
    """Ctrl-C: Optuna has already marked the running trial FAIL; finished trials stay in the storage."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted: finished trials are saved in the storage; rerun the same command to resume",
              file=sys.stderr)
        raise typer.Exit(130) from None


def _trial_line(spec, trial) -> str:
    """One line per finished trial: its config and outcome."""
    from stabgen.models import MODELS

    cfg = trial.user_attrs.get("config", {})
    status = trial.user_attrs.get("status", trial.state.name.lower())
    metrics = trial.user_attrs.get("metrics", {})
    lam = f" λ={cfg.get('lam'):.3g}" if cfg.get("regularizer") not in (None, "none") and cfg.get("lam") else ""
    step = f" at step {trial.user_attrs.get('diverged_step')}" if status == "diverged" else ""
    obj = f" {cfg.get('objective')}" if cfg.get("model") and MODELS.get(cfg["model"]).family == "gan" else ""
    vals = ""
    if not step and trial.state.name == "COMPLETE":
        vals = ", " + ", ".join(f"{m} {v:.3g}" for m, v in zip(spec.metrics, trial.values))
    elif not step and metrics.get(spec.metric) is not None:
        vals = f", {spec.metric} {metrics[spec.metric]:.2f}"
    return (f"trial {trial.number}: {cfg.get('model')}{obj} {cfg.get('regularizer')}{lam} "
            f"lr={cfg.get('lr', 0):.2e} → {status}{step}{vals}")


def _run_and_report(spec, opts, study_arg: str) -> None:
    from bench import records, search

    hw = search.hardware(opts.device)
    budget = f"{opts.steps} steps" if opts.steps else spec.budget_label()
    console.print(f"[bold]{spec.name}[/]{': ' + spec.description if spec.description else ''}\n"
                  f"storage {search.redact(opts.storage)} · {opts.trials} trials × {budget} · {hw}")
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        trials_bar = progress.add_task("trials", total=opts.trials, completed=0)
        steps_bar = progress.add_task("steps", total=opts.steps or spec.train.steps)

        def on_trial_start(number: int) -> None:
            progress.reset(steps_bar, description=f"trial {number}")

        def on_step(number: int, step: int) -> None:
            if step % 20 == 0:
                progress.update(steps_bar, completed=step)

        def on_trial_end(trial) -> None:
            progress.update(trials_bar, advance=1)
            progress.console.print(_trial_line(spec, trial))

        study = search.run(spec, opts, on_trial_start, on_step, on_trial_end, log=progress.console.print)
    try:
        search.inception_eval(study, spec, opts, log=console.print)
    except StabgenError as e:  # the search results stand; say why the Inception column is empty
        console.print(f"[yellow]Inception evaluation skipped:[/] {e}")
    lb = records.leaderboard(study, spec.metric, spec.direction)
    wall = time.perf_counter() - t0
    command = " ".join(["bench", *sys.argv[1:]]) if sys.argv[1:] else f"bench run --study {study_arg}"
    images = spec.dataset in ("mnist", "fashion-mnist")
    evals = (f"domain metrics on N={spec.eval.samples} ({spec.dataset}/{spec.eval.split})" if images
             else f"{spec.metric} on N={spec.eval.samples} samples ({spec.dataset})")
    if images and spec.eval.inception_top_k:
        evals += f" · Inception on N={spec.eval.inception_samples} for the top {spec.eval.inception_top_k}"
    header = (f"# Leaderboard: {spec.name}\n\n`{command}` · {search.n_finished(study)} trials × "
              f"{budget} · seeds {spec.seed}+trial · {hw} · {evals} · wall {wall:.0f}s")
    study.set_user_attr("commands", list(dict.fromkeys([*study.user_attrs.get("commands", []), command])))
    paths = records.write_leaderboard(lb, opts.runs_dir / spec.name, header, spec.metric, spec.direction)
    if spec.multi_objective:
        paths.append(records.write_pareto(study, spec, opts.runs_dir / spec.name))
    _print_table(records.display_frame(lb) if not lb.empty else lb, f"{spec.name} leaderboard")
    summary = records.config_summary(lb, spec.metric, spec.direction)
    if not summary.empty and (summary["seeds"] > 1).any():
        _print_table(summary[summary["seeds"] > 1].round(4).astype(str), "configs over seeds (mean ± std)")
    console.print(f"wrote {', '.join(str(p) for p in paths)} · wall time {wall:.1f}s")


def _print_table(df, title: str) -> None:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col), justify="right" if col not in ("model", "regularizer", "status") else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    out.print(table)


@app.command()
def metrics(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist: the real data (and domain classifier).")] = "mnist",
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
) -> None:
    """Score samples (or a real split) against a dataset: FID, KID, precision/recall, density/coverage,
    IS and class coverage, each with its N and feature extractor named.

    Example: bench metrics --dataset mnist --real-vs test --extractor classifier --n 10000
    """
    import json

    from bench.search import check_device, default_device
    from stabgen.data import DATASETS
    from stabgen.metrics.evaluate import evaluate_samples
    from stabgen.metrics.fidelity import RealRef
    from stabgen.samples import load_samples

    if dataset not in DATASETS:
        raise StabgenError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if (samples is None) == (real_vs is None):
        raise StabgenError("give exactly one of --samples PATH or --real-vs SPLIT")
    dd = str(data_dir) if data_dir else None
    if samples is not None:
        fake = load_samples(samples)[:n]
        source = str(samples)
    else:
        size = 60000 if real_vs == "train" else 10000
        # a different fixed subset than the reference's, so train-vs-train is not the same images
        fake = RealRef(dataset, real_vs, min(n, size), seed=1, data_dir=dd).images()
        source = f"{dataset}/{real_vs} (real)"
    t0 = time.perf_counter()
    res = evaluate_samples(fake, dataset, split, n, extractor, check_device(device or default_device()), dd,
                           str(inception_weights) if inception_weights else None, fid_inf)
    res.update(samples=source, seconds=round(time.perf_counter() - t0, 2))
    if json_out:
        out.print_json(json.dumps(res))
        return
    out.print(f"{source} vs {dataset}/{split} · extractor {extractor} · N = {res['n_fake']} fake, {res['n_real']} real")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("fid", "fid_inf", "kid", "kid_std", "precision", "recall", "density", "coverage", "is", "is_std",
                "classes_covered", "class_kl", "seconds"):
        if key in res:
            table.add_row(key, f"{res[key]:.4g}" if isinstance(res[key], float) else str(res[key]))
    out.print(table)
    if "is_unavailable" in res:
        console.print(f"IS not reported: {res['is_unavailable']}")


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="models, objectives, regularizers or datasets")] = "regularizers",
) -> None:
    """List a registry: each entry with a one-line description and where it applies."""
    from stabgen.models import MODELS
    from stabgen.objectives import OBJECTIVES
    from stabgen.regularizers import REGULARIZERS
    from stabgen.sources import DESCRIPTIONS, KINDS

    rows = {
        "models": lambda: [(n, f"{s.family} · {s.data_kind} data", s.description) for n, s in MODELS.items()],
        "objectives": lambda: [(n, "gan" + (f" · built-in {o.penalty} (obj_lam)" if o.penalty else "")
                                + (" · weight clipping" if o.clip else ""), o.description)
                               for n, o in OBJECTIVES.items()],
        "regularizers": lambda: [(n, ", ".join(sorted(r.families)) + f" · {r.acts_on}", r.description)
                                 for n, r in REGULARIZERS.items()],
        "datasets": lambda: [(n, f"{KINDS[n]} models", d) for n, d in DESCRIPTIONS.items()],
    }
    if what not in rows:
        raise StabgenError(f"cannot list {what!r}; choose one of {', '.join(rows)}")
    table = Table(title=what)
    for col in ("name", "applies to", "description"):
        table.add_column(col)
    for r in rows[what]():
        table.add_row(*r)
    out.print(table)


@app.command("train-classifier")
def train_classifier(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist")] = "mnist",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder holding the idx files.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Weights file (default: the one "
                                                     "shipped in the package).")] = None,
) -> None:
    """Train the domain classifier whose features the domain FID/KID/PR use; writes weights + a card."""
    from stabgen.metrics.classifier import train_classifier as fit

    card = fit(dataset, epochs, str(data_dir) if data_dir else None, seed, device, out_path, log=console.print)
    console.print(card)


def main() -> None:
    """Entry point: typer handles usage errors (exit 2 with usage); our own errors get one line."""
    try:
        app()
    except StabgenError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
