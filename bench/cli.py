"""`bench`: run studies, list what can be searched, train the domain classifiers.

Errors a user can fix (bad spec, unknown names, missing data, unreachable storage) print one
line on stderr and exit with code 2; completed trials are already in the storage by then.
"""

from __future__ import annotations

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


@app.command()
def run(
    study: Annotated[str, typer.Option("--study", "-s", help="Study name from studies/ (e.g. mnist_reg, smoke) "
                                       "or a path to your own TOML spec.")],
    trials: Annotated[Optional[int], typer.Option(help="Total finished trials wanted in the study "
                                                  "(default: the spec's n_trials). Rerunning resumes.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps per trial (default: the spec's).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")] = None,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL (default: "
                                                   "sqlite:///RUNS_DIR/STUDY/study.db).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder holding mnist/ and fashion-mnist/ idx files "
                                                     "(else $STABGEN_DATA_DIR, ~/.cache/stabgen, download).")] = None,
    inception_weights: Annotated[Optional[Path], typer.Option(help="TF-Inception weights file for the final "
                                                              "Inception FID (else $STABGEN_INCEPTION_WEIGHTS "
                                                              "or torch-fidelity's download).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where trial folders and leaderboards go.")] = Path("runs"),
) -> None:
    """Run (or resume) a study: sample configs with Optuna, train, evaluate, print the leaderboard.

    Each trial's samples, history and metrics land in RUNS_DIR/STUDY/trials/N/; the leaderboard in
    RUNS_DIR/STUDY/leaderboard.{csv,md}. Interrupt and rerun the same command to resume.
    """
    from bench import records, search, spec as spec_mod

    spec = spec_mod.load(study)
    opts = search.RunOptions(
        trials=trials or spec.n_trials, steps=steps or spec.train.steps,
        device=device or search.default_device(),
        storage=storage or f"sqlite:///{runs_dir / spec.name / 'study.db'}", runs_dir=runs_dir,
        data_dir=str(data_dir) if data_dir else None,
        inception_weights=str(inception_weights) if inception_weights else None,
    )
    if opts.storage.startswith("sqlite:///"):
        Path(opts.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    study_ref = [search.open_study(spec, opts.storage)]  # fails fast, in one line, on a bad storage
    hw = search.hardware(opts.device)
    console.print(f"[bold]{spec.name}[/]{': ' + spec.description if spec.description else ''}\n"
                  f"storage {search.redact(opts.storage)} · {opts.trials} trials × {opts.steps} steps · {hw}")
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        trials_bar = progress.add_task("trials", total=opts.trials, completed=search.n_finished(study_ref[0]))
        steps_bar = progress.add_task("steps", total=opts.steps)

        def on_trial_start(number: int) -> None:
            progress.reset(steps_bar, total=opts.steps, description=f"trial {number}")

        def on_step(number: int, step: int) -> None:
            if step % 20 == 0:
                progress.update(steps_bar, completed=step)

        def on_trial_end(trial) -> None:
            progress.update(trials_bar, completed=search.n_finished(study_ref[0]))
            cfg = trial.user_attrs.get("config", {})
            status = trial.user_attrs.get("status", trial.state.name.lower())
            val = trial.user_attrs.get("metrics", {}).get(spec.metric)
            lam = f" λ={cfg.get('lam'):.3g}" if cfg.get("regularizer") not in (None, "none") else ""
            step = f" at step {trial.user_attrs.get('diverged_step')}" if status == "diverged" else ""
            progress.console.print(f"trial {trial.number}: {cfg.get('model')} {cfg.get('regularizer')}{lam} "
                                   f"lr={cfg.get('lr', 0):.2e} → {status}{step}"
                                   + (f", {spec.metric} {val:.2f}" if val is not None and not step else ""))

        study = search.run(spec, opts, on_trial_start, on_step, on_trial_end)
    try:
        search.inception_eval(study, spec, opts, log=console.print)
    except StabgenError as e:  # the search results stand; say why the Inception column is empty
        console.print(f"[yellow]Inception evaluation skipped:[/] {e}")
    lb = records.leaderboard(study, spec.metric)
    wall = time.perf_counter() - t0
    command = " ".join(["bench", *sys.argv[1:]])
    header = (f"# Leaderboard: {spec.name}\n\n`{command}` · {search.n_finished(study)} trials × "
              f"{opts.steps} steps · {hw} · domain metrics on N={spec.eval.samples} ({spec.dataset}/"
              f"{spec.eval.split}) · Inception on N={spec.eval.inception_samples} for the top "
              f"{spec.eval.inception_top_k} · wall {wall:.0f}s")
    paths = records.write_leaderboard(lb, opts.runs_dir / spec.name, header)
    _print_table(records.display_frame(lb) if not lb.empty else lb, f"{spec.name} leaderboard")
    console.print(f"wrote {', '.join(str(p) for p in paths)} · wall time {wall:.1f}s")


def _print_table(df, title: str) -> None:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col), justify="right" if col not in ("model", "regularizer", "status") else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    out.print(table)


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="models, objectives, regularizers or datasets")] = "regularizers",
) -> None:
    """List a registry: each entry with a one-line description and where it applies."""
    from stabgen.data import DATASETS
    from stabgen.models import MODELS
    from stabgen.objectives import OBJECTIVES
    from stabgen.regularizers import REGULARIZERS

    rows = {
        "models": lambda: [(n, s.family, s.description) for n, s in MODELS.items()],
        "objectives": lambda: [(n, "gan", o.description) for n, o in OBJECTIVES.items()],
        "regularizers": lambda: [(n, ", ".join(sorted(r.families)) + f" · {r.acts_on}", r.description)
                                 for n, r in REGULARIZERS.items()],
        "datasets": lambda: [(n, "28×28 grey", "idx files, sha256-verified") for n in DATASETS],
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
