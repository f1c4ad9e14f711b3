"""The Optuna storage: where a study lives, how it is opened or created, how its URL is printed, how
running trials keep their heartbeats, and when a rerun may resume it.

The storage is the record and the only coordination between workers (SQLite by default under the
runs folder, PostgreSQL for many machines). Optuna's verbosity and warnings are quieted only inside
`quiet()`, around the calls that need it, never for the importing session.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import random
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import optuna

from bench.arms import ARM_ATTR
from bench.space import CONFIRM, REEVAL
from bench.strategies import PRUNERS, make_sampler
from stabgen.errors import StabgenError

StudySpec = Any  # a bench.spec.StudySpec


ENV_STORAGE = "STABGEN_STORAGE"


def default_url(runs_dir: Path, study: str) -> str:
    """Where `bench run` keeps a study unless told otherwise."""
    return f"sqlite:///{Path(runs_dir) / study / 'study.db'}"


def resolve_url(option: str | None, spec_storage: str | None, runs_dir: Path, study: str) -> str:
    """The storage a command uses: --storage, else $STABGEN_STORAGE (so a password need not appear on
    a command line, in `ps` or in job logs), else the spec's, else the SQLite file under runs_dir."""
    return check_url(driver_url(option or os.environ.get(ENV_STORAGE) or spec_storage or default_url(runs_dir, study)))


SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")  # the databases Optuna's RDBStorage is used with


def check_url(url: str) -> str:
    """The storage URL, or one line saying why it cannot hold a study — before anything is opened, created
    or printed: an unknown scheme, an in-memory SQLite (the study would vanish when the command ends, and
    no worker could share it), a SQLite path under a file or at a folder, a SQLite file that is corrupt."""
    scheme = url.split("://")[0].split("+")[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise StabgenError(f"cannot open storage {redact(url)}: unknown scheme {scheme or url!r}; use "
                           f"sqlite:///PATH/study.db, postgresql://… or mysql://…")
    if scheme != "sqlite":
        return url
    path = url.split("://", 1)[1].removeprefix("/").split("?")[0]
    if path in ("", ":memory:") or path.startswith(":memory:"):
        raise StabgenError(f"storage {url} is in memory: the study would vanish when this command ends; pass "
                           f"--storage sqlite:///PATH/study.db (or leave --storage out for runs/STUDY/study.db)")
    p = Path(path)
    if p.is_dir():
        raise StabgenError(f"no study storage at {p}: it is a folder, not a SQLite file; pass --storage "
                           f"sqlite:///{p}/study.db")
    above = next((a for a in p.parents if a.exists()), None)
    if above is not None and not above.is_dir():
        raise StabgenError(f"cannot open storage {url}: {above} is a file, not a folder; pass --storage with "
                           f"a path under a folder")
    if p.is_file():
        _check_sqlite_file(p)
    return url


def _check_sqlite_file(p: Path) -> None:
    """A SQLite file that SQLite itself finds intact (read-only: the file is never touched)."""
    import sqlite3

    problem = None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True, timeout=60)) as db:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
            problem = None if result == "ok" else result
    except sqlite3.DatabaseError as e:
        # a hot journal (a writer killed mid-transaction) needs a write to roll back, which a read-only
        # open cannot do: SQLite recovers it when Optuna opens the file, so it is no corruption; nor is a lock
        problem = None if any(w in str(e) for w in ("readonly", "locked", "busy")) else str(e)
    if problem is not None:
        raise StabgenError(f"storage {p} is not a readable SQLite database ({problem.splitlines()[0][:80]}); restore "
                           f"it from a copy, or pass --storage with another file (nothing was written to it)")


def driver_url(url: str) -> str:
    """A PostgreSQL URL as written (`postgresql://…`, `postgres://…`) bound to the driver that is
    installed: SQLAlchemy 2.1 maps the bare scheme to psycopg 3, while stabgen's `postgres` extra installs
    psycopg2-binary (issue 33: the README's recipe failed). An explicit `+driver` is kept as given."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            try:
                import psycopg  # noqa: F401  (psycopg 3: what SQLAlchemy picks for the bare scheme)
                return "postgresql://" + url.removeprefix(scheme)
            except ImportError:
                return "postgresql+psycopg2://" + url.removeprefix(scheme)
    return url


CONNECT_TIMEOUT = 10  # seconds before an unreachable or silent PostgreSQL server is refused in one line


def engine_kwargs(url: str) -> dict:
    """Connection settings: PostgreSQL gives up after CONNECT_TIMEOUT seconds (a port where another
    service listens otherwise hangs for minutes); SQLite waits up to 60 s for another worker's lock."""
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {}


def redact(url: str) -> str:
    """A storage URL safe to print: the password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a parseable URL: print nothing of it that could be a secret
        return url.split("@")[-1]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Optuna at ERROR level and its experimental/heartbeat warnings hidden, restored afterwards: the
    CLI reports trial outcomes itself, and population rounds keep heartbeats outside Study.optimize
    on purpose (`heartbeats` below)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
            yield
    finally:
        optuna.logging.set_verbosity(level)


def open_study(spec: StudySpec, storage: str, heartbeat: float, seed_offset: int = 0) -> optuna.Study:
    """Create or load the spec's study; a bad URL, driver or server fails in one line."""
    storage = driver_url(storage)
    if storage.startswith("sqlite:///"):
        folder = Path(storage.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StabgenError(f"cannot open storage {redact(storage)}: cannot create its folder {folder} "
                               f"({e.strerror}); pass --storage with a writable path") from None
    with quiet():
        for attempt in range(6):
            try:
                return _open_study(spec, storage, seed_offset, heartbeat)
            except Exception as e:
                if attempt < 5 and _creation_race(e):  # workers starting at once on an empty database
                    time.sleep(0.2 + random.random())
                    continue
                raise _storage_error(e, storage) from None
    raise AssertionError("unreachable")


def _open_study(spec: StudySpec, storage: str, seed_offset: int, heartbeat: float) -> optuna.Study:
    rdb = optuna.storages.RDBStorage(
        storage, engine_kwargs=engine_kwargs(storage),
        heartbeat_interval=max(1, round(heartbeat)), grace_period=max(2, round(3 * heartbeat)),
        heartbeat_stale_trial_callback=retry_stale)
    return optuna.create_study(study_name=spec.name, storage=rdb, directions=spec.directions,
                               sampler=make_sampler(spec, spec.seed + seed_offset),
                               pruner=PRUNERS.get(spec.pruner)(spec), load_if_exists=True)


# --- the owed runs' study --------------------------------------------------------------------------
# Seed re-runs and confirmation runs (the "owed" runs: fixed configs on fixed seeds) live in a study of
# their own beside the search, `<name>:confirmation` in the same storage (a study name never holds ":",
# so it cannot collide). Why: Optuna's best trial (Study.best_trial, optuna-dashboard's "best trial",
# which asks the storage) is the best COMPLETE trial of a study; in the search's study a lucky
# confirmation seed would be it. Reports list an owed run as OWED_BASE + its number there, and its
# trial folder is runs/STUDY/trials/<that id>. Studies made before this keep their owed runs in the
# search's study; every reader takes both (all_trials), so they resume and report as they were.
OWED_SUFFIX = ":confirmation"
OWED_POPULATION_CPU = 16  # queued runs that train at once on a CPU (bench.search.owed_population, bench.plan)
# ... and in each one-thread --jobs worker, which also asks no more than its share of what is queued: --jobs auto
# times the study's model at 1, 8, 16 and 32 members per process and takes the fastest (bench.jobs.population);
# this is the size where nothing was timed (--jobs N). Why 8: at one thread a population of 8 trains mnist_reg's
# models as fast as solo runs do (332/234/422 against 360/240/401 member-steps/s, GAN/GAN+R1/VAE, two processes
# on a 2-core EPYC), while the 2D ring's small nets gain from larger ones (ring_seeds --jobs auto: 649 s with
# populations of 16 and no shares, 848 s with 8 and shares, 867 s with solo runs)
OWED_POPULATION_JOBS = 8
OWED_BASE = 1_000_000


def owed_name(study_name: str) -> str:
    return study_name + OWED_SUFFIX


def is_owed_study(study: optuna.Study) -> bool:
    return study.study_name.endswith(OWED_SUFFIX)


def owed_study(study: optuna.Study, create: bool = True) -> optuna.Study | None:
    """The search study's owed-runs study (same storage, same directions; its sampler is never asked for
    a value: every owed run is queued with all its parameters). None if it does not exist and not `create`."""
    cached = getattr(study, "_stabgen_owed", None)
    if cached is not None:
        return cached
    name = owed_name(study.study_name)
    with quiet():
        for attempt in range(6):
            try:
                if create:
                    owed = optuna.create_study(study_name=name, storage=study._storage, directions=study.directions,
                                               sampler=optuna.samplers.RandomSampler(seed=0), load_if_exists=True)
                else:
                    owed = optuna.load_study(study_name=name, storage=study._storage,
                                             sampler=optuna.samplers.RandomSampler(seed=0))
                break
            except KeyError:  # load_study: none yet
                return None
            except Exception as e:
                if attempt < 5 and _creation_race(e):
                    time.sleep(0.2 + random.random())
                    continue
                raise
    study._stabgen_owed = owed
    return owed


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's number as reports list it: an owed run's is OWED_BASE + its number in the owed study."""
    return trial.number + (OWED_BASE if is_owed_study(trial.study) else 0) if isinstance(trial, optuna.Trial) \
        else trial.number


def all_trials(study: optuna.Study, states: tuple | None = None) -> list[optuna.trial.FrozenTrial]:
    """The search study's trials and its owed runs (renumbered OWED_BASE + n; copies, so the storage's
    frozen trials are never changed), in that order."""
    mine = study.get_trials(deepcopy=False, states=states)
    owed = owed_study(study, create=False)
    if owed is None:
        return mine
    extra = []
    for t in owed.get_trials(deepcopy=False, states=states):
        t = copy.copy(t)
        t.number = OWED_BASE + t.number
        extra.append(t)
    return mine + extra


def trial_by_id(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """The trial a report lists as `number` (an owed run: from the owed study); one line if there is none."""
    owed = owed_study(study, create=False) if number >= OWED_BASE else None
    trials = owed.trials if owed is not None else study.trials if number < OWED_BASE else []
    index = number - OWED_BASE if number >= OWED_BASE else number
    if not 0 <= index < len(trials):
        raise StabgenError(f"study {study.study_name!r} has no trial {number}: its search trials are numbered "
                           f"0–{len(study.trials) - 1}, its re-runs and confirmation runs from {OWED_BASE:,}")
    return trials[index]


def given_up(study: optuna.Study) -> set[int]:
    """Trials (as reports list them) whose config was retried MAX_RETRIES times, in either study."""
    out = set(study.user_attrs.get(GIVEN_UP, []))
    owed = owed_study(study, create=False)
    if owed is not None:
        out |= {OWED_BASE + n for n in owed.user_attrs.get(GIVEN_UP, [])}
    return out


RETRY_ATTRS = (ARM_ATTR, REEVAL, "seed_index", CONFIRM, "confirm_of", "confirm_seed", "config")


def requeue(study: optuna.Study, trial: optuna.Trial | optuna.trial.FrozenTrial, retries: int = 0) -> None:
    """Queue an interrupted or stale trial again with its parameters and seed (its `config`, which
    TrialRunner.start reuses), so a resumed study trains the same config — not a fresh draw. `retries`
    counts the stale ones in a row (bench.storage.retry_stale); an interruption (^C) does not count."""
    attrs = {k: trial.user_attrs[k] for k in RETRY_ATTRS if k in trial.user_attrs}
    params = {**queued_params(study, trial), **trial.params}
    if params or attrs:
        study.enqueue_trial(params, user_attrs={**attrs, "retry_of": trial.number, "retries": retries})


def queued_params(study: optuna.Study, trial: optuna.Trial | optuna.trial.FrozenTrial) -> dict:
    """The parameters a queued trial was given (Optuna keeps them as its "fixed_params" until each is
    suggested). Why: a worker killed after `ask` but before training suggests them leaves a trial with no
    params; its retry must still pin the arm (queue_arms), or the sampler draws another arm's config under
    this arm's label and the arm is never searched (the kill -9 benchmark test caught it on CI)."""
    frozen = trial if isinstance(trial, optuna.trial.FrozenTrial) else study.get_trials(deepcopy=False)[trial.number]
    return dict(frozen.system_attrs.get("fixed_params", {}))


MAX_RETRIES = 3  # a config whose trial went stale this many times in a row is given up (and reported)
GIVEN_UP = "given_up"  # study attribute: the numbers of the trials whose config was given up


def retry_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's heartbeat callback for a killed worker's trial (already FAIL): its config is queued again
    with its seed (requeue), up to MAX_RETRIES times in a row; then the study records it as
    given up, and the report lists that trial as failed — the worst value, never a config that silently
    vanishes (issue 33: Optuna's RetryHeartbeatStaleTrialCallback(max_retry=2) dropped it unsaid)."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries < MAX_RETRIES:
        requeue(study, trial, retries=retries + 1)
        return
    study.set_user_attr(GIVEN_UP, sorted({*study.user_attrs.get(GIVEN_UP, []), trial.number}))


def single_machine(study: optuna.Study) -> bool:
    """The study's storage is a SQLite file, so every worker that writes to it runs on this machine. Only
    then is a recorded "host:pid" judged by its pid: on a shared server two containers may carry the same
    host name, and a live worker of the other would look dead from here."""
    storage = getattr(study._storage, "_backend", study._storage)  # Optuna wraps an RDBStorage in a cache
    return isinstance(storage, optuna.storages.InMemoryStorage) or str(getattr(storage, "url", "")).startswith("sqlite")


def dead_here(worker: str | None) -> bool:
    """`worker` ("host:pid", what a trial or a claim records) is a process of this machine that no longer
    runs (killed, or its session ended). Another machine's processes are never judged from here; callers
    ask only for single-machine storages (single_machine)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def sweep_orphans(study: optuna.Study, grace: float) -> int:
    """Fail and queue again (retry_stale) the RUNNING trials no heartbeat will ever fail. Why: Optuna
    counts a trial stale only once it has a heartbeat, and a worker killed between `ask` and its first
    heartbeat left one RUNNING forever — every resumed worker then waited for it. Orphans: on a SQLite
    storage, a trial whose worker is a dead process of this machine; on any storage, one that never got a
    worker (it is recorded right after `ask`) though it started more than `grace` seconds ago (a worker
    on a shared server is otherwise left to its heartbeat). Returns how many were swept."""
    from optuna.exceptions import UpdateFinishedTrialError

    now, n, local = datetime.datetime.now(), 0, single_machine(study)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        started = t.datetime_start is not None and (now - t.datetime_start).total_seconds() > grace
        if not ((local and dead_here(worker)) if worker else started):
            continue
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another worker swept it first
            continue
        retry_stale(study, study._storage.get_trial(t._trial_id))
        n += 1
    return n


def _creation_race(e: Exception) -> bool:
    """Two processes creating Optuna's tables (or the same study) at the same moment: the loser sees a
    unique-constraint violation; opening again finds what the winner created."""
    text = str(getattr(e, "orig", e)).lower()
    return type(e).__name__ in ("IntegrityError", "DuplicatedStudyError") or "duplicate key" in text \
        or "already exists" in text


def _storage_error(e: Exception, storage: str) -> Exception:
    """A one-line StabgenError for what the user can fix (driver, URL, server); anything else as is."""
    if isinstance(e, (ImportError, ValueError, RuntimeError)):
        hint = (" (install its driver: pip install psycopg2-binary for PostgreSQL, pymysql for MySQL)"
                if "import" in str(e).lower() else "")
        return StabgenError(f"cannot open storage {redact(storage)}: {str(e).splitlines()[0]}{hint}")
    if type(e).__module__.startswith(("sqlalchemy", "optuna")):  # OperationalError and friends
        return StabgenError(f"cannot open storage {redact(storage)}: {str(getattr(e, 'orig', e)).splitlines()[0]}")
    return e


def load_study(study_name: str, storage: str | None, runs_dir: Path) -> tuple[optuna.Study, str]:
    """An existing study (what reports read), or one line saying where nothing was found."""
    storage = resolve_url(storage, None, runs_dir, study_name)
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise StabgenError(f"no study storage at {storage.removeprefix('sqlite:///')}; run `bench run --study "
                           f"{study_name}` first, or pass --storage URL / --runs-dir")
    with quiet():
        try:
            rdb = optuna.storages.RDBStorage(driver_url(storage), engine_kwargs=engine_kwargs(storage))
            return optuna.load_study(study_name=study_name, storage=rdb), storage
        except KeyError:
            raise StabgenError(f"storage {redact(storage)} holds no study named {study_name!r}") from None
        except Exception as e:
            raise StabgenError(f"cannot open storage {redact(storage)}: {str(e).splitlines()[0]}") from None


def spec_changes(stored: dict, given: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two spec dumps."""
    out = []
    for key in sorted(set(stored) | set(given)):
        a, b, name = stored.get(key), given.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += spec_changes(a, b, name + ".")
        elif a != b:
            out.append(name)
    return out


FIXED_FIELDS = ("space.", "dataset", "metric", "direction", "pareto_with", "sampler")  # never resumable with change


def record_spec(study: optuna.Study, spec: StudySpec, allow_change: bool = False) -> None:
    """Store the spec with a new study; on resume refuse (one line, nothing touched) a spec that
    differs from the stored one, unless `allow_change`, which keeps the old one in `spec_history`."""
    given = spec.model_dump(mode="json")
    stored = study.user_attrs.get("spec")
    if study.metric_names is None:  # what optuna-dashboard and optuna.visualization label the values with
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use: no warning for users
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.metrics))
    if stored is None:
        study.set_user_attr("spec", given)
        return
    try:
        stored_full = type(spec).model_validate(stored).model_dump(mode="json")  # defaults filled in
    except Exception:  # written by an older, incompatible spec format
        stored_full = stored
    changed = spec_changes(stored_full, given)
    if not changed:
        return
    if not allow_change:
        raise StabgenError(f"study {spec.name!r} was started with another spec ({', '.join(changed)} changed); "
                           f"rerun with the original spec, use a new study name, or pass --allow-spec-change")
    fixed = [c for c in changed if c.startswith(FIXED_FIELDS)]
    if fixed:  # Optuna fixes each parameter's distribution in the study: no override can change them
        raise StabgenError(f"study {spec.name!r}: {', '.join(fixed)} cannot change within one study (Optuna keeps "
                           f"each parameter's distribution); use a new study name")
    study.set_user_attr("spec_history", [*study.user_attrs.get("spec_history", []), stored])
    study.set_user_attr("spec", given)


def record_budget(study: optuna.Study, steps: int | None) -> None:
    """The training budget flag the study trains at (--steps; None: the spec's), stored by its first run;
    a later run or worker with another is refused in one line (issue 33: workers with different --steps
    silently mixed budgets in one leaderboard)."""
    stored = study.user_attrs.get("run_steps", "unset")
    if stored == "unset":
        study.set_user_attr("run_steps", steps)
        return
    if stored != steps:
        trains = f"--steps {stored}" if stored is not None else "the spec's steps (no --steps)"
        given = f"--steps {steps}" if steps is not None else "no --steps (the spec's)"
        raise StabgenError(f"study {study.study_name!r} trains at {trains}; {given} would mix budgets in one "
                           f"leaderboard: pass the study's, or use a new study name")


def record_command(study: optuna.Study, command: str) -> None:
    """Every command that worked on the study, once each, in order (the report names them)."""
    study.set_user_attr("commands", list(dict.fromkeys([*study.user_attrs.get("commands", []), command])))


@contextlib.contextmanager
def heartbeats(study: optuna.Study, trials: list[optuna.Trial]):
    """Keep every trial of a population alive while it trains: one thread records all K heartbeats
    each interval (Study.optimize runs one thread per trial, which for K = 256 would be 256 threads
    writing to the storage). Storages without heartbeats (in-memory) need nothing."""
    storage = study._storage  # Optuna exposes neither the storage nor trial ids publicly
    interval = storage.get_heartbeat_interval() if hasattr(storage, "record_heartbeat") else None
    if interval is None:
        yield
        return
    ids = [t._trial_id for t in trials]
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial_id in ids:
                try:
                    storage.record_heartbeat(trial_id)
                except Exception:  # a storage blip must not end the beats (the trials would go stale
                    pass           # and be retried while still training); a dead storage fails the tell
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="stabgen-heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


OWNER_FILE = "storage.txt"


def check_runs_folder(folder: Path, storage: str) -> bool:
    """True if RUNS_DIR/STUDY already belongs to this storage, False if to none yet; refused in one line
    if to another (checked before anything is printed or stored)."""
    mark = Path(folder) / OWNER_FILE
    if not mark.is_file():
        return False
    owner = mark.read_text().strip()
    if owner != redact(storage):
        raise StabgenError(f"{folder} holds the trial folders of study {Path(folder).name!r} on another storage "
                           f"({owner}); pass --runs-dir with another folder, or rename the study")
    return True


def claim_runs_folder(folder: Path, storage: str) -> None:
    """RUNS_DIR/STUDY holds one study's trial folders: the first run writes which storage (password
    redacted) it belongs to, and a study of the same name on another storage is refused in one line
    instead of overwriting `trials/0` (issue 33: the README's fresh-storage advice did)."""
    folder = Path(folder)
    mark = folder / OWNER_FILE
    if check_runs_folder(folder, storage):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mark.write_text(redact(storage) + "\n")
    except OSError as e:
        raise StabgenError(f"cannot write to {folder} ({e.strerror}); pass --runs-dir with a writable folder") from None
