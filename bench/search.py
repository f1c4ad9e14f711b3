"""Spec → Optuna study: one trial = sample a config, train it, evaluate it, record it.

The search space is *conditional* in a way TPE handles well: each model family has its own
regularizer parameter (`regularizer_gan`, `regularizer_vae`) listing only the regularizers that
apply to it, and each regularizer has its own λ parameter (`lam_<name>`) that exists only when
that regularizer is chosen — λ for L2 and λ for a gradient penalty live on different scales and
must not share a density estimate. Likewise an objective's own λ (`obj_lam_wgan_gp`), the clip
value (wgan only), n_critic (GANs only) and β (VAEs only) exist only where they apply. The storage (SQLite by default) is the record; rerunning
resumes the same study until it holds the requested number of finished trials.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import torch

from bench import records
from bench.spec import StudySpec
from stabgen import data as data_mod
from stabgen.errors import StabgenError
from stabgen.hardware import describe
from stabgen.metrics import fidelity
from stabgen.metrics.evaluate import evaluator_for
from stabgen.metrics.stability import trial_stability
from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS
from stabgen import sources
from stabgen.train import TrialConfig, sample_output, sampler, train

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass
class RunOptions:
    trials: int
    steps: int
    device: str
    storage: str
    runs_dir: Path
    data_dir: str | None = None
    inception_weights: str | None = None


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """A device torch can use here, or a one-line error saying what is available."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise StabgenError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise StabgenError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise StabgenError(f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type != "cpu":
        raise StabgenError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    return device


hardware = describe  # what records and leaderboards name as the hardware


def redact(url: str) -> str:
    """A storage URL safe to print: the password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a parseable URL: print nothing of it that could be a secret
        return url.split("@")[-1]


def _float(trial: optuna.Trial, name: str, r) -> float:
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def suggest_config(trial: optuna.Trial, spec: StudySpec, steps: int) -> TrialConfig:
    """Sample one config; every parameter exists only where it means something (see module doc)."""
    sp, t = spec.space, spec.train
    seed = spec.seed + trial.number
    if REEVAL in trial.user_attrs:  # a seed re-run: same params, a seed no search trial uses
        seed = spec.seed + 100_000 * trial.user_attrs["seed_index"] + trial.user_attrs[REEVAL]
    model = trial.suggest_categorical("model", sp.models)
    family = MODELS.get(model).family
    extra: dict = {}
    if family == "gan":
        objective = extra["objective"] = trial.suggest_categorical("objective", sp.objectives)
        obj = OBJECTIVES.get(objective)
        if obj.penalty:
            extra["obj_lam"] = _float(trial, f"obj_lam_{objective}", sp.obj_lam)
        if obj.clip:
            extra["clip_value"] = _float(trial, "clip", sp.clip)
        extra["n_critic"] = trial.suggest_categorical("n_critic", sp.n_critic) if len(sp.n_critic) > 1 else sp.n_critic[0]
    elif sp.beta is not None:
        extra["beta"] = _float(trial, "beta", sp.beta)
    reg = trial.suggest_categorical(f"regularizer_{family}", sp.regularizers_for(family))
    lam = _float(trial, f"lam_{reg}", sp.lam) if reg != "none" and REGULARIZERS.get(reg).uses_lambda else 0.0
    lr = _float(trial, "lr", sp.lr)
    return TrialConfig(dataset=spec.dataset, model=model, regularizer=reg, lam=lam, lr=lr, beta1=t.beta1,
                       beta2=t.beta2, batch_size=t.batch_size, steps=steps, z_dim=t.z_dim,
                       seed=seed, eval_every=min(t.eval_every, steps),
                       kl_warmup=t.kl_warmup, d_bn=t.d_bn, **extra)


def open_study(spec: StudySpec, storage: str, seed_offset: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the CLI reports trial outcomes itself
    sampler = {"tpe": lambda: optuna.samplers.TPESampler(seed=spec.seed + seed_offset, multivariate=True,
                                                         group=True),
               "random": lambda: optuna.samplers.RandomSampler(seed=spec.seed + seed_offset)}[spec.sampler]()
    pruner = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner}[spec.pruner]()
    try:
        rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=10, grace_period=30)
        return optuna.create_study(study_name=spec.name, storage=rdb, direction=spec.direction,
                                   sampler=sampler, pruner=pruner, load_if_exists=True)
    except (ImportError, ValueError, RuntimeError) as e:
        hint = " (for PostgreSQL: pip install psycopg2-binary)" if "import" in str(e).lower() else ""
        raise StabgenError(f"cannot open storage {redact(storage)}: {str(e).splitlines()[0]}{hint}") from None
    except Exception as e:  # sqlalchemy's OperationalError and friends: unreachable / unwritable
        if type(e).__module__.startswith("sqlalchemy"):
            raise StabgenError(f"cannot open storage {redact(storage)}: "
                               f"{str(getattr(e, 'orig', e)).splitlines()[0]}") from None
        raise


REEVAL = "reeval_of"  # user attr of a seed re-run: the number of the trial whose config it repeats


def n_finished(study: optuna.Study) -> int:
    """Finished search trials (seed re-runs do not count against the trial budget)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED) if REEVAL not in t.user_attrs)


def finite_or_null(d: dict) -> dict:
    """The record's view of a metrics dict: NaN/Inf (undefined) become None, never numbers."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def make_objective(spec: StudySpec, opts: RunOptions, source,
                   on_step: Callable[[int, int], None] | None = None) -> Callable[[optuna.Trial], float]:
    evaluate = evaluator_for(spec.dataset, spec.eval.split, spec.eval.samples, opts.device, opts.data_dir,
                             spec.metric)

    def objective(trial: optuna.Trial) -> float:
        cfg = suggest_config(trial, spec, opts.steps)
        trial.set_user_attr("config", cfg.to_dict())
        trial.set_user_attr("device", hardware(opts.device))

        def on_eval(step: int, metrics: dict) -> bool:
            value = metrics.get(spec.metric)
            if value is None or not math.isfinite(value):
                return False  # undefined here (no high-quality sample yet): nothing to report or prune on
            trial.report(value, step)
            return trial.should_prune()

        result = train(cfg, source, opts.device, evaluate=evaluate, on_eval=on_eval,
                       on_step=(lambda s: on_step(trial.number, s)) if on_step else None)
        trial_dir = opts.runs_dir / spec.name / "trials" / str(trial.number)
        grid = None
        if result.status != "diverged":
            n_show = 64 if source.kind == "image" else 2500
            grid = sampler(result.modules["generator"], cfg.z_dim, cfg.seed, torch.device(opts.device),
                           output=sample_output(source.kind))(n_show)
        records.write_trial_dir(trial_dir, result, grid)
        stab = trial_stability(result.history, result.evals, result.status, result.diverged_step, spec.metric)
        # a diverged trial has no final model: its last pre-divergence evaluation stays in evals.csv only;
        # an undefined value (NaN) is recorded as null, never as a number
        final = finite_or_null(result.final) if result.status != "diverged" else {}
        stab = finite_or_null(stab)
        for k, v in {"status": result.status, "diverged_step": result.diverged_step,
                     "steps_done": result.steps_done, "seconds": round(result.seconds, 2),
                     "metrics": final, "stability": stab, "trial_dir": str(trial_dir)}.items():
            trial.set_user_attr(k, v)
        if result.status != "completed":  # diverged or pruned: TPE learns the region is bad
            raise optuna.TrialPruned(f"{result.status} at step {result.diverged_step or result.steps_done}")
        value = final.get(spec.metric)
        if value is None:  # e.g. reverse KL with no high-quality sample
            trial.set_user_attr("status", "metric_undefined")
            raise optuna.TrialPruned(f"{spec.metric} is undefined for this trial's samples")
        return float(value)

    return objective


def run(spec: StudySpec, opts: RunOptions, on_trial_start=None, on_step=None, on_trial_end=None) -> optuna.Study:
    """Run (or resume) the study until it holds `opts.trials` finished trials."""
    probe = open_study(spec, opts.storage)
    done = n_finished(probe)
    study = open_study(spec, opts.storage, seed_offset=len(probe.trials))  # fresh RNG stream on resume
    if "spec" not in study.user_attrs:
        study.set_user_attr("spec", spec.model_dump(mode="json"))
    optuna.storages.fail_stale_trials(study)
    remaining = opts.trials - done
    if remaining <= 0 and not pending_reruns(study, spec):
        return study
    source = sources.load_source(spec.dataset, opts.data_dir).to(opts.device)
    objective = make_objective(spec, opts, source, on_step)

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial_end:
            on_trial_end(trial)

    def wrapped(trial: optuna.Trial) -> float:
        if on_trial_start:
            on_trial_start(trial.number)
        return objective(trial)

    if remaining > 0:
        study.optimize(wrapped, n_trials=remaining, callbacks=[callback], catch=())
    reruns = pending_reruns(study, spec)
    for params, attrs in reruns:
        study.enqueue_trial(params, user_attrs=attrs)
    if reruns:
        study.optimize(wrapped, n_trials=len(reruns), callbacks=[callback], catch=())
    return study


def pending_reruns(study: optuna.Study, spec: StudySpec) -> list[tuple[dict, dict]]:
    """Seed re-runs still owed: `extra` per top-`top_k` completed search trial, minus those that
    finished or are queued (so a resumed study neither repeats nor forgets any)."""
    k, extra = spec.seeds.top_k, spec.seeds.extra
    if not k or not extra:
        return []
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    search = [t for t in done if REEVAL not in t.user_attrs]
    search.sort(key=lambda t: t.value if spec.direction == "minimize" else -t.value)
    have = {(t.user_attrs[REEVAL], t.user_attrs.get("seed_index")) for t in study.get_trials(deepcopy=False)
            if REEVAL in t.user_attrs and t.state != optuna.trial.TrialState.FAIL}
    return [(t.params, {REEVAL: t.number, "seed_index": i}) for t in search[:k] for i in range(1, extra + 1)
            if (t.number, i) not in have]


def inception_eval(study: optuna.Study, spec: StudySpec, opts: RunOptions, log=print) -> None:
    """Inception FID/KID/PR for the top-k completed trials that lack one (results kept in the study)."""
    k = spec.eval.inception_top_k
    if k == 0 or spec.dataset not in data_mod.DATASETS:  # Inception: the grey image datasets only
        return
    lb = records.leaderboard(study, spec.metric, spec.direction)
    if lb.empty:
        return
    top = lb[lb["status"] == "completed"].head(k)
    ref = fidelity.RealRef(spec.dataset, spec.eval.split, spec.eval.inception_samples, data_dir=opts.data_dir)
    for _, row in top.iterrows():
        key = f"{records.INCEPTION_ATTR}{int(row['trial'])}"
        if key in study.user_attrs:
            continue
        trial = study.trials[int(row["trial"])]
        cfg = TrialConfig(**trial.user_attrs["config"])
        gen = MODELS.get(cfg.model).build(data_mod.IMAGE_SHAPES[cfg.dataset], cfg.z_dim)["generator"]
        weights = Path(trial.user_attrs["trial_dir"]) / "generator.pt"
        gen.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        t0 = time.perf_counter()
        fake = sampler(gen.to(opts.device), cfg.z_dim, cfg.seed, torch.device(opts.device))(spec.eval.inception_samples)
        m = fidelity.compute(fake, ref, "inception", ("fid", "kid", "prc"), device=opts.device,
                             inception_weights=opts.inception_weights)
        m["seconds"] = round(time.perf_counter() - t0, 1)
        study.set_user_attr(key, m)
        log(f"trial {int(row['trial'])}: Inception FID {m['fid']:.2f} (N={m['n_fake']} fake vs "
            f"{m['n_real']} real {spec.dataset}/{spec.eval.split}, {m['seconds']}s)")
