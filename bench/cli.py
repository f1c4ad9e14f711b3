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

from bench import api, printing
from bench.printing import Format, console
from stabgen.errors import StabgenError

app = typer.Typer(
    help="stabgen's harness: search regularizers, λ and learning rates for stable GAN/VAE training "
         "with Optuna, and rank the results on trustworthy metrics.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)


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
JobsOpt = Annotated[str, typer.Option(
    "--jobs", envvar=api.JOBS_ENV, show_envvar=True,
    help="Local worker processes sharing the study (each with its share of the torch threads): N, or auto — "
    "every core busy: one process per core or one with every thread, whichever trains the study's model "
    "faster here (timed once per machine and model, about 40 s, then cached; one process on a GPU). 1: one "
    "process. With --plan: the plan also prices the run with these processes.")]
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
        jobs: JobsOpt = "auto", device: DeviceOpt = None,
        storage: StorageOpt = None, data_dir: DataDirOpt = None, inception_weights: InceptionOpt = None,
        runs_dir: RunsDirOpt = api.RunOptions.runs_dir, heartbeat: HeartbeatOpt = api.RunOptions.heartbeat,
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
    if plan:
        return printing.print_plan(api.plan(study, device=device, data_dir=_str(data_dir),
                                            inception_weights=_str(inception_weights), inception=not no_inception,
                                            jobs=jobs),
                                   study, device, format)
    spec = api.load_spec(study, confirm_seeds)
    opts = api.options(spec, trials, steps, device, storage, runs_dir, _str(data_dir), _str(inception_weights),
                       heartbeat, tensorboard, allow_spec_change, artifacts, jobs, inception=not no_inception)
    t0 = time.perf_counter()
    with _resumable_on_interrupt(), printing.shown(quiet):
        rec = api.run_study(spec, opts, command=api.command_line() if sys.argv[1:] else None, figures=figures,
                            on_ready=lambda: printing.run_header(spec, api.describe_run(spec, opts)),
                            on_trial_end=lambda trial: console.print(printing.trial_line(spec, trial)))
        printing.print_report(rec.report, rec, format)
        console.print(f"wrote {opts.runs_dir / spec.name}/leaderboard.{{csv,md,tex,html}}, trials.csv · "
                      f"wall time {time.perf_counter() - t0:.1f}s")


@app.command()
def worker(study: StudyOpt, storage: StorageOpt = None, trials: TrialsOpt = None, steps: StepsOpt = None,
           confirm_seeds: ConfirmSeedsOpt = None, device: DeviceOpt = None, data_dir: DataDirOpt = None, runs_dir: RunsDirOpt = api.RunOptions.runs_dir,
           heartbeat: HeartbeatOpt = api.RunOptions.heartbeat, tensorboard: TensorboardOpt = False,
           allow_spec_change: AllowChangeOpt = False, artifacts: ArtifactsOpt = None, quiet: QuietOpt = False) -> None:
    """Work on a shared study until its global trial budget is met, then exit (no report).

    Start as many as you like, on as many machines as reach the storage (PostgreSQL for several
    machines; SQLite only on one). `bench report` or `bench run` afterwards writes the leaderboard.
    """
    spec = api.load_spec(study, confirm_seeds)
    opts = api.options(spec, trials, steps, device, storage, runs_dir, _str(data_dir), None, heartbeat, tensorboard,
                       allow_spec_change, artifacts)
    with _resumable_on_interrupt(), printing.shown(quiet):
        done = api.work(spec, opts, on_trial_end=lambda t: console.print(printing.trial_line(spec, t)),
                        on_ready=lambda: printing.worker_header(spec, api.describe_run(spec, opts)))
        console.print(f"done: {done} finished trials in the study")


@app.command()
def benchmark(
    suite: Annotated[str, typer.Option("--suite", help="A shipped suite (core: five CPU tasks; gpu: conv nets, "
                                       "Stacked MNIST, paper-length budgets) or a path to a suite .toml.")] = "core",
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUNS_DIR/benchmark/SUITE; the "
                                                "committed reports/benchmark only when named here).")] = None,
    jobs: JobsOpt = "auto", device: DeviceOpt = None, data_dir: DataDirOpt = None,
    inception_weights: InceptionOpt = None, runs_dir: RunsDirOpt = api.RunOptions.runs_dir,
    no_inception: Annotated[bool, typer.Option("--no-inception", help="Skip the TF-Inception scoring in every "
                                               "study.")] = False,
    format: FormatOpt = Format.table, quiet: QuietOpt = False,
    plan: Annotated[bool, typer.Option("--plan", help="Only say what it costs: every kind of training (search, "
                                       "seed re-runs, confirmation at its first look, Inception), priced on this "
                                       "device by a short timed run of each. Trains and stores nothing.")] = False,
    report_only: Annotated[bool, typer.Option("--report-only", help="Train nothing: the benchmark of the studies "
                                              "that have finished, labelled PARTIAL while others have not.")] = False,
) -> None:
    """Run or resume every study of a suite and rank the regularizers across its tasks: normalized scores
    (0 chance, 1 real data), interquartile mean with stratified-bootstrap intervals, performance profiles,
    probability of improvement over none, and every claim with Holm over the whole benchmark.

    Each study is an ordinary `bench run` (its own storage under RUNS_DIR/STUDY); interrupt and rerun
    the same command to resume — finished studies train nothing again.
    """
    if plan:
        return printing.print_plan(api.plan(suite=suite, device=device, data_dir=_str(data_dir),
                                            inception_weights=_str(inception_weights), inception=not no_inception,
                                            jobs=jobs),
                                   f"suite {suite}", device, format)
    with _resumable_on_interrupt(), printing.shown(quiet):
        bm = api.benchmark(suite, out, api.command_line(), report_only=report_only, jobs=jobs, device=device,
                           data_dir=_str(data_dir), inception_weights=_str(inception_weights), runs_dir=runs_dir,
                           inception=not no_inception)
        printing.print_benchmark(bm, format)


@app.command()
def report(
    study: Annotated[str, typer.Option("--study", "-s", help="Study name (as in its storage).")],
    storage: StorageOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUNS_DIR/STUDY/report; the "
                                                "committed reports/ are written only when named here).")] = None,
    runs_dir: RunsDirOpt = api.RunOptions.runs_dir,
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
) -> None:
    """Build a study's report from its storage: leaderboard.{md,csv,tex,html} with bootstrap CIs over
    seeds, the confirmation verdicts (confirm.csv: each arm against the baseline on paired seeds), seaborn
    figures (PNG + SVG) and index.html.

    Rebuildable at any time; needs no TensorBoard and no server (open index.html in a browser).
    """
    with printing.shown(quiet):
        rec = api.open_study(study, storage, runs_dir)
        r = api.build_report(rec, out or runs_dir / rec.spec.name / "report", api.command_line())
        printing.print_report(r, rec, format, head=15)
        console.print(f"wrote {len(r.files)} files; open {r.out_dir / 'index.html'}")


@app.command()
def leaderboard(
    studies: Annotated[list[str], typer.Argument(help="Study names (e.g. a GAN and a VAE study of one dataset).")],
    storage: StorageOpt = None,
    runs_dir: RunsDirOpt = api.RunOptions.runs_dir,
    out: Annotated[Optional[Path], typer.Option(help="Also write OUT.csv and OUT.md.")] = None,
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
) -> None:
    """One table across several studies on the metrics they share, one row per config."""
    with printing.shown(quiet):
        recs = [api.open_study(s, storage, runs_dir) for s in studies]
        shown, shared, paths = api.cross_leaderboard(recs, out, api.command_line())
        printing.print_table(shown, f"{' + '.join(studies)} on {', '.join(shared)}", format)
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
    jobs: Annotated[str, typer.Option(
        "--jobs", envvar=api.JOBS_ENV, show_envvar=True, help="Local processes: N, or auto. lucic2018's studies "
        "run as `bench run --jobs` does (auto: measured per machine and model); fixed-config reproductions train "
        "N at once (auto: one per core).")] = "auto",
) -> None:
    """Reproduce a paper's table: ours next to the paper's numbers, a verdict per claim, figures, and
    the command, hardware, budget and seeds at the top of reports/papers/NAME/README.md."""
    if plan:
        with printing.shown(quiet):
            table = api.plan(paper=name, budget=budget, device=device, data_dir=_str(data_dir),
                             inception_weights=_str(inception_weights))
        return printing.print_plan(table, f"{name} · budget {budget}", device, Format.table)
    with _resumable_on_interrupt(), printing.shown(quiet):
        rep, path = api.reproduce(name, budget, out_dir, device, _str(data_dir), _str(inception_weights), worker,
                                  command=api.command_line(), jobs=jobs)
    printing.print_reproduction(rep, budget, path)


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
    with printing.shown(quiet):
        res = api.score_samples(dataset, samples, real_vs, split, n, extractor, device, _str(data_dir),
                                _str(inception_weights), fid_inf)
    printing.print_metrics(res, split, extractor, json_out)


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="models, objectives, regularizers or datasets")] = "regularizers",
    format: FormatOpt = Format.table,
) -> None:
    """List a registry: each entry with a one-line description and where it applies."""
    printing.print_table(api.registry_table(what), what, format)


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
    with printing.shown(quiet):
        console.print(api.train_classifier(dataset, epochs, seed, _str(data_dir), device, out_path))


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
