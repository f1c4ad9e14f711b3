"""The harness as a Python API (for notebooks and scripts); `bench` on the command line calls these.

    from bench import api
    spec = api.load_spec("smoke")                       # a name from studies/ or a path to a TOML file
    rec = api.run_study(spec, runs_dir="runs", device="cpu")
    rec.trials                                          # pandas: one row per trial
    api.leaderboard(rec)                                # pandas: one row per search config, CIs over seeds
    api.confirmation(rec)                               # pandas: the verdicts, one row per arm
    gen = api.load_generator(rec, trial=0)              # the trial's generator (nn.Module)
    api.build_report(rec, "reports/smoke")              # tables, figures and index.html

Nothing here changes global state of the session that imports it (no logging, warning, matplotlib
or seaborn settings outlive the call that needs them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Callable

import optuna
import pandas as pd
import torch

from bench import records, report, search, spec as spec_mod, storage
from bench.inception import inception_eval
from bench.report import StudyRecord
from bench.search import RunOptions
from bench import jobs as jobs_mod
from bench.spec import StudySpec
from stabgen.errors import StabgenError
from stabgen.hardware import check_device, default_device

JOBS_ENV = jobs_mod.ENV  # the variable the CLI reads --jobs from when the command line leaves it out

ARTIFACT_SCHEMES = ("file", "s3", "gs")  # what bench.artifacts.make_store opens

__all__ = ["benchmark", "plan", "reproduce", "work", "registry_table", "train_classifier", "command_line",
           "describe_run", "load_spec", "options", "run_study", "open_study", "trials", "leaderboard", "confirmation", "load_generator",
           "build_report", "score_samples", "check_storage", "cross_leaderboard", "StudyRecord", "RunOptions", "StudySpec"]


def load_spec(study: str | Path, confirm_seeds: int | None = None) -> StudySpec:
    """A validated spec: a name from studies/ or a path to the user's own TOML file. `confirm_seeds`
    sizes the confirmation from the CLI as a fixed design of that many seeds per arm (confirm.stages = 1);
    it becomes part of the study's spec (as an edit of the file would)."""
    spec = spec_mod.load(str(study))
    if confirm_seeds is None:
        return spec
    if not 0 <= confirm_seeds <= 1000:
        raise StabgenError(f"--confirm-seeds must be an integer in 0..1000, got {confirm_seeds}")
    try:
        return StudySpec.model_validate({**spec.model_dump(), "confirm": {**spec.confirm.model_dump(),
                                                                          "seeds": confirm_seeds, "stages": 1}})
    except ValueError as e:
        raise StabgenError(f"--confirm-seeds {confirm_seeds}: {str(e).splitlines()[-1].strip()}") from None


def options(spec: StudySpec, trials: int | None = None, steps: int | None = None, device: str | None = None,
            storage_url: str | None = None, runs_dir: str | Path = RunOptions.runs_dir, data_dir: str | None = None,
            inception_weights: str | None = None, heartbeat: float = RunOptions.heartbeat, tensorboard: bool = False,
            allow_spec_change: bool = False, artifacts: str | None = None, jobs: int | str | None = None,
            inception: bool = True) -> RunOptions:
    """Run options with the defaults `bench run` uses, each bad value refused in one line."""
    for name, v, most in (("trials", trials, 10**6), ("steps", steps, 10**9)):
        if v is not None and v < 1:
            raise StabgenError(f"--{name} must be a positive integer, got {v}")
        if v is not None and v > most:
            raise StabgenError(f"--{name} {v} is beyond any run this tool is meant for (at most {most:,}); "
                               f"pass a smaller number")
    if not (heartbeat > 0 and math.isfinite(heartbeat)):
        raise StabgenError(f"--heartbeat must be a positive number of seconds, got {heartbeat}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise StabgenError(f"--data-dir {data_dir} {'is not a folder' if Path(data_dir).exists() else 'does not exist'}; "
                           f"pass the folder that holds mnist/ and fashion-mnist/ (or leave it out)")
    if artifacts and "://" in artifacts and artifacts.split("://")[0] not in ARTIFACT_SCHEMES:
        raise StabgenError(f"--artifacts {artifacts}: unknown scheme {artifacts.split('://')[0]!r}; use a folder, "
                           f"file://PATH, s3://BUCKET or gs://BUCKET")
    if tensorboard:
        records.tensorboard_writer_class()  # fails now, in one line, not after the first trial
    runs_dir = Path(runs_dir)
    if artifacts and "://" not in artifacts and Path(artifacts).exists() and not Path(artifacts).is_dir():
        raise StabgenError(f"artifact store {artifacts} is a file, not a folder; pass --artifacts FOLDER")
    return RunOptions(trials=trials or spec.per_arm or spec.n_trials, steps=steps, device=check_device(device or default_device()),
                      storage=storage.resolve_url(storage_url, spec.storage, runs_dir, spec.name),
                      runs_dir=runs_dir, data_dir=data_dir, inception_weights=inception_weights, heartbeat=heartbeat,
                      tensorboard=tensorboard, allow_spec_change=allow_spec_change, artifacts=artifacts,
                      jobs=jobs_mod.parse(jobs), inception=inception)


def _finished(study: optuna.Study) -> int:
    """Finished trials of the study and its owed runs (what a run adds when it trains anything)."""
    return sum(t.state.is_finished() for t in storage.all_trials(study))


def run_study(spec: StudySpec | str | Path, opts: RunOptions | None = None, *, command: str | None = None,
              figures: bool = False, on_trial_start: Callable[[int], None] | None = None,
              on_step: Callable[[int, int], None] | None = None, on_trial_end: Callable | None = None,
              on_ready: Callable[[], None] | None = None, **option_kw) -> StudyRecord:
    """Run (or resume) a study, evaluate its best trials with Inception, and write its report (tables;
    figures too with `figures=True`) into RUNS_DIR/STUDY. Returns the study as the report sees it.
    Messages go to the `bench` and `stabgen` loggers; progress to a stabgen.progress listener;
    `on_ready` is called once everything was checked (data, weights, storage, spec) and before training."""
    spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    opts = opts or options(spec, **option_kw)
    study = check_storage(spec, opts)  # the one open of the storage in this process, the one spec check
    if on_ready is not None:
        on_ready()
    t0, finished_before = time.perf_counter(), _finished(study)
    # "auto" resolved: every process knows how many share the work, and the population size they train queued
    # runs in (measured for auto only: --jobs N starts at once, with bench.storage's default size)
    if opts.jobs == "auto":
        processes, threads, _, population = jobs_mod.measured(opts.jobs, spec, opts.device, opts.data_dir)
    else:
        (processes, threads), population = jobs_mod.layout(opts.jobs, spec, opts.device, opts.data_dir), None
    opts = dataclasses.replace(opts, jobs=processes, population=population)
    with jobs_mod.helpers(spec, opts, processes, threads):  # --jobs: workers beside this process
        study = search.run(spec, opts, on_trial_start, on_step, on_trial_end, study=study)
    if opts.inception:
        try:
            inception_eval(study, spec, opts.device, opts.data_dir, opts.inception_weights)
        except StabgenError as e:  # the search results stand; say why the Inception column is empty
            logging.getLogger(__name__).warning(f"Inception evaluation skipped: {e}")
    command = command or f"bench run --study {spec.name}"
    storage.record_command(study, command)
    if _finished(study) > finished_before:  # a resume that trains nothing keeps the last training run's figures
        study.set_user_attr("last_processes", processes)  # the report's hardware line: how many trained side by side
        study.set_user_attr("last_wall_seconds", round(time.perf_counter() - t0, 1))
    rec = report.record_of(study, opts.storage)
    rec.report = report.build(rec, opts.runs_dir / spec.name, command, figures=figures)
    return rec


def check_storage(spec: StudySpec, opts: RunOptions) -> optuna.Study:
    """Everything a run needs, checked before the study is created or anything printed: the data and
    the Inception weights can be read (preflight), then the study is opened (or created) once — a bad
    URL, driver or server fails here, in one line — and a resumed study whose stored spec differs is
    refused (unless opts.allow_spec_change), as is a runs folder that holds a same-named study of
    another storage, or a budget flag (--steps) other than the one the study trains at. Returns the
    opened study, for the run to work on (no second open)."""
    preflight(spec, opts)
    storage.check_runs_folder(Path(opts.runs_dir) / spec.name, opts.storage)
    study = storage.open_study(spec, opts.storage, heartbeat=opts.heartbeat)
    storage.record_spec(study, spec, opts.allow_spec_change)
    storage.record_budget(study, opts.steps)
    return study


def work(spec: StudySpec, opts: RunOptions, on_trial_end: Callable | None = None,
         on_ready: Callable[[], None] | None = None) -> int:
    """`bench worker`: work on a shared study until its budget is met (no Inception step, no report);
    the number of finished trials in the study when it is."""
    study = check_storage(spec, opts)
    if on_ready is not None:
        on_ready()
    return search.n_finished(search.run(spec, opts, on_trial_end=on_trial_end, worker=True, study=study))


def command_line() -> str:
    """The command that is running, as reports name it."""
    return records.command_line()


def describe_run(spec: StudySpec, opts: RunOptions) -> dict[str, str]:
    """What a run's header says: its storage (password redacted), the search budget in words, the
    steps per trial, the device, and the whole work (search, re-runs, confirmation, Inception scorings)."""
    from stabgen.hardware import describe

    if spec.joint:
        budget = f"{opts.trials} trials (joint search: exploration, no verdicts)"
    else:
        budget = f"{opts.trials} trials per arm × {spec.search_budget(opts.trials) // opts.trials} arms"
    from bench import plan as plan_mod

    w = plan_mod.work_counts(spec, opts.trials)
    more = "more race seeds at most (seed racing)" if spec.search.seeds_per_trial > 1 else "seed re-runs"
    work = [f"{w['search']} search trials"] + ([f"{w['reruns']} {more}"] if w["reruns"] else [])
    if w["confirmation"]:
        cap = f", up to {w['confirmation_cap']} if answers stay open" if w["confirmation_cap"] > w["confirmation"] else ""
        work.append(f"{w['confirmation']} confirmation trainings{cap}")
    if w["inception"] and opts.inception:
        work.append(f"Inception FID of the top {w['inception']}")
    return {"storage": storage.redact(opts.storage), "budget": budget,
            "steps": f"{opts.steps} steps" if opts.steps else spec.budget_label(), "device": _device_words(opts),
            "work": " + ".join(work)}


def _device_words(opts: RunOptions) -> str:
    """The header's device: with --jobs on a CPU, the processes asked for (auto's choice is said once it is
    measured or read from the cache, bench.jobs.layout), not this process's own thread count."""
    from stabgen.hardware import cpu_name, describe

    if not opts.device.startswith("cpu") or opts.jobs == 1:
        return describe(opts.device)
    if opts.jobs == "auto":
        return f"{cpu_name()}, --jobs auto on {jobs_mod.cores()} cores"
    processes, threads = opts.jobs, max(1, jobs_mod.cores() // opts.jobs)
    return f"{cpu_name()}, {processes} processes × {threads} torch thread{'s' if threads > 1 else ''}"


def preflight(spec: StudySpec, opts: RunOptions) -> None:
    """The files a run reads, read before it stores anything (issue 33: a corrupt MNIST file or a bad
    Inception weights file was found only after training): the dataset's splits, and the TF-Inception
    weights where the study scores its top trials with them."""
    from stabgen.metrics.fidelity import check_inception_weights
    from stabgen.userdata import resolve

    ds = resolve(spec.dataset)
    if opts.inception and spec.eval.inception_top_k > 0 and ds.inception:
        check_inception_weights(opts.inception_weights)
    if ds.load_split is not None:
        for split in dict.fromkeys(("train", spec.eval.split)):
            ds.load_split(split, opts.data_dir)


def open_study(study: str, storage_url: str | None = None, runs_dir: str | Path = RunOptions.runs_dir) -> StudyRecord:
    """An existing study by name (default storage: RUNS_DIR/STUDY/study.db)."""
    return report.open_record(Path(study).stem if str(study).endswith(".toml") else str(study), storage_url,
                              Path(runs_dir))


def trials(rec: StudyRecord) -> pd.DataFrame:
    """One row per finished trial, ranked by the study metric (diverged, pruned and undefined last)."""
    return records.ranked(rec.trials, rec.spec.metric, rec.spec.direction)


def leaderboard(rec: StudyRecord) -> pd.DataFrame:
    """One row per config: each metric's mean and 95 % bootstrap CI over seeds, divergence rate."""
    return report.config_table(rec)


def confirmation(rec: StudyRecord) -> pd.DataFrame:
    """The verdicts: per arm, its best search config re-trained on the same fresh seeds, tested
    paired by seed against the baseline arm (bench.confirm.table; empty before confirmation ran)."""
    return report.confirm_table(rec)


def load_generator(rec: StudyRecord, trial: int, device: str = "cpu") -> torch.nn.Module:
    """A finished trial's generator in eval mode (z of size config.z_dim → samples in [-1, 1])."""
    return records.load_generator(storage.trial_by_id(rec.study, trial), device, study=rec.study)


def build_report(rec: StudyRecord, out_dir: str | Path, command: str = "bench.api.build_report",
                 figures: bool = True) -> report.Report:
    """The study's report in OUT_DIR: what `bench report` writes."""
    return report.build(rec, Path(out_dir), command, figures=figures)


def cross_leaderboard(recs: list[StudyRecord], out: str | Path | None = None,
                      command: str = "bench.api.cross_leaderboard") -> tuple[pd.DataFrame, list[str], list[Path]]:
    """Several studies side by side on the metrics they share (one row per config); OUT.{csv,md} if given."""
    return report.write_cross_study(recs, Path(out) if out else None, command)


def score_samples(dataset: str | None, samples: str | Path | None = None, real_vs: str | None = None, split: str = "train",
                  n: int = 10000, extractor: str = "classifier", device: str | None = None,
                  data_dir: str | None = None, inception_weights: str | None = None, fid_inf: bool = False) -> dict:
    """Every metric of a sample file/folder (or of a real split: the floor a perfect model reaches)
    against n real images of a dataset's split; what `bench metrics` prints."""
    from stabgen.datasets import DEFAULT_DATASET
    from stabgen.metrics.evaluate import evaluate_samples
    from stabgen.samples import load_samples
    from stabgen.userdata import resolve

    ds = resolve(dataset or DEFAULT_DATASET)
    if (samples is None) == (real_vs is None):
        raise StabgenError("give exactly one of --samples PATH or --real-vs SPLIT")
    if not n > 0:
        raise StabgenError(f"--n must be a positive number of images, got {n}")
    if extractor not in ("classifier", "inception"):
        raise StabgenError(f"unknown extractor {extractor!r}; use classifier (domain CNN) or inception (TF-Inception)")
    if not ds.classes or ds.load_split is None:
        raise StabgenError(f"dataset {dataset!r} has no labelled real split to score against")
    if samples is not None:
        fake, source = load_samples(samples)[:n], str(samples)
        if len(fake) < 2:  # FID's covariance, KID's unbiased estimate and the k-NN metrics need two at least
            raise StabgenError(f"{samples}: {len(fake)} sample{'s' if len(fake) != 1 else ''}; the metrics need at "
                               f"least 2 (thousands for a meaningful FID)")
    else:  # a different fixed subset than the reference's, so train-vs-train is not the same images
        fake = ds.reference(real_vs, min(n, ds.split_size(real_vs)), seed=1, data_dir=data_dir).images()
        source = f"{ds.name}/{real_vs} (real)"  # the dataset resolved, also when --dataset was left out
    ref = ds.reference(split, min(n, ds.split_size(split)), data_dir=data_dir)
    t0 = time.perf_counter()
    res = evaluate_samples(fake, ref, ds.class_counts(split, data_dir), extractor,
                           check_device(device or default_device()), inception_weights, fid_inf)
    res.update(samples=source, seconds=round(time.perf_counter() - t0, 2))
    return res


def benchmark(suite: str, out: str | Path | None = None, command: str = "bench.api.benchmark",
              report_only: bool = False, **option_kw):
    """Run or resume every study of a suite (a shipped name: core, gpu; or a suite .toml; a finished
    study trains nothing again) and write the cross-task leaderboard of regularizers (bench.benchmark):
    what `bench benchmark` does. `option_kw` are run_study's options (jobs, device, runs_dir, …).
    `report_only`: train nothing; the benchmark of the studies that have finished, labelled partial
    (with the studies still missing) when some have not."""
    from bench import benchmark as bm

    t0 = time.perf_counter()
    name, s, studies = bm.load_suite(suite)
    specs = [load_spec(x) for x in studies]  # every spec checked before anything trains
    for spec in specs:
        if spec.joint or spec.confirm.seeds == 0:
            raise StabgenError(f"suite {name}: study {spec.name!r} has no confirmation (per-arm search and "
                               f"[confirm] seeds > 0): a benchmark compares confirmed arms only")
    unfinished: list[str] = []
    if report_only:
        runs_dir = Path(option_kw.get("runs_dir", RunOptions.runs_dir))
        recs = [r for r in (finished_record(spec, runs_dir, option_kw.get("storage")) for spec in specs) if r is not None]
        unfinished = [sp.name for sp in specs if sp.name not in {r.spec.name for r in recs}]
        if not recs:
            raise StabgenError(f"suite {name}: no study has finished yet ({', '.join(unfinished)}); "
                               f"`bench benchmark --suite {suite}` trains them")
    else:
        recs = [run_study(spec, command=f"{command} (study {spec.name})", **option_kw) for spec in specs]
    device = check_device(option_kw.get("device") or default_device())
    data_dir = option_kw.get("data_dir")

    def score_real(dataset: str, split: str, n: int) -> dict:
        return score_samples(dataset, real_vs="train", split=split, n=n, data_dir=data_dir, device=device)

    return bm.summarize(name, s, recs, command, device, Path(option_kw.get("runs_dir", RunOptions.runs_dir)), data_dir,
                        score_real, Path(out) if out else None, time.perf_counter() - t0,
                        run_fids=_run_fids(data_dir, device), unfinished=unfinished)


def _sqlite_holds(path: Path, study: str) -> bool:
    """Whether a SQLite file holds an Optuna study of this name, asked read-only (nothing created)."""
    import sqlite3

    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM studies WHERE study_name = ?", (study,)).fetchone() is not None
    except sqlite3.Error:  # empty or not Optuna's: no such table
        return False


def finished_record(spec: StudySpec, runs_dir: Path, storage_url: str | None = None) -> StudyRecord | None:
    """A study's record if it has finished — every search trial and every confirmation run its design
    owes — read without writing anything; None if it has no storage yet or work is still owed."""
    url = storage.resolve_url(storage_url, spec.storage, runs_dir, spec.name)
    if url.startswith("sqlite:///") and not _sqlite_holds(Path(url.removeprefix("sqlite:///")), spec.name):
        return None  # Optuna would create its tables in a file a killed run left empty: read-only first
    from bench import confirm
    from bench.plan import arm_counts
    from bench.space import is_search

    try:
        rec = open_study(spec.name, url, runs_dir)
    except StabgenError:
        return None
    trials = storage.all_trials(rec.study)
    done = sum(1 for t in trials if is_search(t.user_attrs) and t.state in search.FINISHED)
    busy = any(t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING) for t in trials)
    if done < spec.search_budget(arm_counts(spec)["search"]) or busy or confirm.pending(rec.study, spec):
        return None
    return rec


def _run_fids(data_dir: str | None, device: str) -> Callable[[StudyRecord, int], dict[int, float]]:
    """A confirmation run's domain FID at each sample count of bench.agreement.SAMPLE_SIZES: its generator
    draws the largest N once (its own fixed noise) and is scored on the first N against the first N of the
    study's reference (a seeded shuffle of its eval split, as every trial's evaluation uses; features
    extracted once per dataset and split). Unshuffled, MNIST's test split changes writers at 5,000 and FID
    would jump there. A run without a generator (diverged, pruned, failed) is at the worst, inf, at every N."""
    from bench import agreement as ag
    from stabgen.datasets import DATASETS
    from stabgen.metrics import fidelity
    from stabgen.trial import sampler

    real: dict[tuple[str, str], torch.Tensor] = {}

    def run_fids(rec: StudyRecord, trial: int) -> dict[int, float]:
        ds, split = DATASETS.get(rec.spec.dataset), rec.spec.eval.split
        n = min(max(ag.SAMPLE_SIZES), ds.split_size(split))
        t = storage.trial_by_id(rec.study, trial)
        if t.state.name != "COMPLETE" or t.user_attrs.get("status", "completed") != "completed":
            return {k: math.inf for k in ag.SAMPLE_SIZES if k <= n}
        if (ds.name, split) not in real:
            # the study's reference (a seeded shuffle of the split): its first N are every trial's reference at N
            imgs = ds.reference(split, n, data_dir=data_dir).images()
            real[ds.name, split] = fidelity.features(imgs, "classifier", ds.name, device)
        cfg = t.user_attrs["config"]
        fake = sampler(records.load_generator(t, device, study=rec.study), cfg["z_dim"], cfg["seed"],
                       torch.device(device))(n)
        return ag.fid_by_n(fidelity.features(fake, "classifier", ds.name, device), real[ds.name, split])

    return run_fids


def plan(study: str | Path | None = None, suite: str | None = None, device: str | None = None,
         data_dir: str | None = None, inception_weights: str | None = None, inception: bool = True,
         paper: str | None = None, budget: str = "small", jobs: int | str | None = None,
         confirmed: dict[str, int] | None = None) -> pd.DataFrame:
    """What a study (or every study of a suite, or a paper reproduction at a budget) costs on this
    device, priced by short timed runs of each kind of training; nothing runs and nothing is stored
    (`bench run/benchmark/reproduce --plan`). With `jobs` (--jobs N|auto) a column `with --jobs s`: each
    row priced on that layout from its one-thread step times and the layout's measured speed
    (bench.plan.price; the Inception row stays as it is: one process scores), NaN where the layout is not
    measured. `confirmed` (arm label → confirmation seeds a run trained) prices the looks that run made
    (benchmarks/cost.py: the plan of the work that ran, beside the first look's)."""
    from bench.papers.plan import BUSY_ATTR
    from stabgen.hardware import BusyElsewhere

    dev = check_device(device or default_device())
    jobs = jobs_mod.parse(jobs) if jobs is not None else None  # a bad --jobs is refused before any timed run
    with BusyElsewhere() as busy:  # the plan's last line says when other processes kept the CPUs busy meanwhile
        out = _priced(study, suite, dev, data_dir, inception_weights, inception, paper, budget, jobs, confirmed)
    out.attrs[BUSY_ATTR] = busy.share
    return out


def _priced(study, suite, dev, data_dir, inception_weights, inception, paper, budget, jobs, confirmed) -> pd.DataFrame:
    """api.plan's table, priced."""
    from bench import plan as plan_mod

    if paper is not None:
        from bench import papers

        return papers.priced_plan(paper, _budget(budget), dev, data_dir, inception_weights)
    if suite is not None:
        from bench.benchmark import load_suite

        _, _, studies = load_suite(suite)
    else:
        studies = [study]
    tables = []
    for s in studies:
        spec = load_spec(s)
        # --jobs: the layout and its measured speed price a second column (bench.plan.study_plan)
        layout = jobs_mod.measured(jobs, spec, dev, data_dir) if jobs is not None else None
        table = plan_mod.study_plan(spec, dev, data_dir, inception_weights, inception, layout,
                                    confirmed).assign(study=spec.name)
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    return out[["study", *[c for c in out.columns if c != "study"]]]


def _budget(budget: str) -> str:
    from bench import papers

    if budget not in papers.BUDGETS:
        raise StabgenError(f"unknown budget {budget!r}; choose one of {', '.join(papers.BUDGETS)}")
    return budget


def reproduce(name: str, budget: str = "small", out_dir: str | Path | None = None, device: str | None = None,
              data_dir: str | None = None, inception_weights: str | None = None, worker: bool = False,
              runs_dir: str | Path = RunOptions.runs_dir, command: str | None = None,
              jobs: int | str | None = None):
    """Reproduce a paper's table (bench.papers: mescheder2018, pacgan2018, lucic2018, seed-feature-reg) at a
    budget (tiny, small, paper): ours beside the paper's numbers and a verdict per claim, written to
    OUT_DIR/README.md (default RUNS_DIR/papers/NAME). Returns (the Reproduction, the README's path).
    `jobs` (--jobs N|auto): local processes; a searched reproduction (lucic2018) runs its studies as
    `bench run --jobs` does (default one process; the CLI's: auto), fixed configs train N at once (default one per core)."""
    from bench import papers
    from stabgen.hardware import describe

    budget = _budget(budget)
    papers.PAPERS.get(name)  # an unknown name fails here, in one line
    jobs = jobs_mod.parse(jobs) if jobs is not None else None  # a bad --jobs fails here, before any training
    dev = check_device(device or default_device())
    ctx = papers.Context(Path(out_dir) if out_dir else Path(runs_dir) / "papers" / name, dev, data_dir,
                         inception_weights, worker, Path(runs_dir), jobs)
    return papers.run(name, budget, ctx, command or f"bench reproduce {name} --budget {budget}", describe(dev))


def registry_table(what: str) -> pd.DataFrame:
    """A registry (models, objectives, regularizers, datasets) as a table: each entry with where it applies
    and a one-line description (`bench list`)."""
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
    return pd.DataFrame(rows[what](), columns=["name", "applies to", "description"])


def train_classifier(dataset: str | None = None, epochs: int = 3, seed: int = 0, data_dir: str | None = None,
                     device: str = "cpu", out_path: str | Path | None = None) -> dict:
    """Train a dataset's domain classifier (the features of the domain FID/KID/PR); writes its weights and
    card (default: the file shipped in the package) and returns the card."""
    from stabgen.datasets import DEFAULT_DATASET
    from stabgen.metrics.classifier import train_classifier as fit
    from stabgen.userdata import resolve

    if epochs < 1:
        raise StabgenError(f"--epochs must be a positive integer, got {epochs}")
    ds = resolve(dataset or DEFAULT_DATASET)
    if ds.load_split is None or not ds.classes:
        raise StabgenError(f"dataset {ds.name!r} has no labelled splits to train a classifier on")
    splits = [ds.load_split(s, data_dir) for s in ("train", "test")]
    return fit(ds.name, *splits, epochs, seed, device, Path(out_path) if out_path else None)
