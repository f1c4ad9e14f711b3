"""The one training loop: K trials of one architecture in one pass (`train_population`); a solo
trial is a population of one (`train`), so both run the same code.

Members share architecture, objective, regularizer type and every structural setting; they differ
in the continuous hyperparameters (λ, lr, β1, β2, seed, obj_lam, clip value, β). Parameters live
stacked (stabgen.stacked), each member has its own Adam state and random stream, so member k
computes exactly what it would compute alone. A member whose loss, gradient or parameters go
non-finite is frozen (its update masked out) and reported diverged at that step; a member pruned
by `on_eval` stops updating; the rest go on. Evaluation samples every member in one batched pass.

The step functions (FAMILY_STEPS) take (K,)-shaped everything: losses per member, hyperparameters
per member, so the same code serves one trial and a population. A step is *capturable*: it reads the
step number only from `pop.clock` (a device scalar the loop sets), changes state only in place and
never reads a device value on the host, so on CUDA the whole step (forwards, penalties, backward,
Adam, masks) runs as one replayed CUDA graph (stabgen.graphs) — the same code, eager on CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Callable, Sequence

import torch

from stabgen import progress, sources
from stabgen.data import ImageData
from stabgen.errors import StabgenError
from stabgen.graphs import GraphedStep, capture, precision
from stabgen.models.vae import vae_terms
from stabgen.objectives import OBJECTIVES
from stabgen.registry import Registry
from stabgen.regularizers import REGULARIZERS, RegContext, Regularizer
from stabgen.schedules import SCHEDULES
from stabgen.stacked import Adam, Stacked, member_norm
from stabgen.streams import Streams
from stabgen.trial import Evaluate, OnEval, TrialConfig, TrialResult, build, fixed_noise, sample_output

# what may differ between members of one population; every other TrialConfig field must agree
PER_MEMBER = ("seed", "lam", "lr", "beta1", "beta2", "obj_lam", "clip_value", "beta")


def group_key(cfg: TrialConfig) -> tuple:
    """Configs with equal keys can train together in one population."""
    return tuple((f.name, getattr(cfg, f.name)) for f in fields(cfg) if f.name not in PER_MEMBER)


def check_compatible(cfgs: Sequence[TrialConfig]) -> None:
    if not cfgs:
        raise StabgenError("a population needs at least one trial config")
    first = dict(group_key(cfgs[0]))
    for i, c in enumerate(cfgs[1:], 1):
        for name, value in group_key(c):
            if first[name] != value:
                raise StabgenError(f"config {i} has {name}={value!r} but config 0 has {first[name]!r}; "
                                   f"a population may differ only in {', '.join(PER_MEMBER)}")


@dataclass
class Hyper:
    """Each member's continuous hyperparameters as (K,) tensors on the training device."""

    lr: torch.Tensor
    beta1: torch.Tensor
    beta2: torch.Tensor
    lam: torch.Tensor
    obj_lam: torch.Tensor
    clip_value: torch.Tensor
    beta: torch.Tensor

    @classmethod
    def of(cls, cfgs: Sequence[TrialConfig], device: torch.device, dtype: torch.dtype) -> "Hyper":
        return cls(**{f.name: torch.tensor([float(getattr(c, f.name)) for c in cfgs], device=device, dtype=dtype)
                      for f in fields(cls)})


@dataclass
class Population:
    """What a step function works on: shared settings, stacked nets, per-member state."""

    cfg: TrialConfig  # the shared settings (member 0's config)
    nets: Stacked
    hyper: Hyper
    noise: Streams
    source: sources.Source
    reg: Regularizer
    dtype: torch.dtype
    active: torch.Tensor  # (K,) bool: not diverged, not pruned — only these members update (set in place)
    clock: torch.Tensor  # () float64: the current step number, 1-based (set in place by the loop)

    @property
    def k(self) -> int:
        return self.nets.k

    def batch(self) -> torch.Tensor:
        return self.source.batch(self.cfg.batch_size, self.noise).to(self.dtype)

    def latents(self) -> torch.Tensor:
        return self.noise.normal((self.cfg.batch_size, self.cfg.z_dim), self.dtype)

    def lr_scale(self) -> torch.Tensor | None:
        """This step's learning-rate multiplier (stabgen.schedules), None for a constant lr."""
        schedule = SCHEDULES.get(self.cfg.lr_schedule)
        return None if schedule is None else schedule((self.clock - 1) / self.cfg.steps)


# step number (1-based, informational: a captured step replays, so steps read the time from pop.clock)
# → losses, each (K,)
Step = Callable[[int], dict[str, torch.Tensor]]
FAMILY_STEPS: Registry[Callable[[Population], Step]] = Registry("model family")


def _update(opt: Adam, pop: Population, total: torch.Tensor, nets: Sequence[str]) -> torch.Tensor:
    """Gradients of each member's total loss, one masked Adam step; returns the (K,) gradient norms.
    A member whose loss or gradient is not finite is not updated (it will be marked diverged)."""
    grads = pop.nets.grads(total.sum(), nets)
    norm = member_norm(grads)
    opt.step(grads, pop.active & torch.isfinite(total) & torch.isfinite(norm), pop.lr_scale())
    return norm


@FAMILY_STEPS.register("gan")
def gan_step(pop: Population) -> Step:
    """n_critic D updates then one G update. λ·penalty joins the loss the regularizer declares; the
    objective's own penalty (wgan_gp, dragan) is weighted by obj_lam; wgan clips D after each step."""
    cfg, nets, h, reg = pop.cfg, pop.nets, pop.hyper, pop.reg
    obj = OBJECTIVES.get(cfg.objective)
    built_in = REGULARIZERS.get(obj.penalty)() if obj.penalty else None
    gen, features, decode = nets.fn("generator"), nets.fn("generator", "features"), nets.fn("generator", "decode")
    disc = nets.fn("discriminator")
    d_flat = nets.flat["discriminator"]
    opt_d = Adam([d_flat], h.lr, h.beta1, h.beta2)
    opt_g = Adam([nets.flat["generator"]], h.lr, h.beta1, h.beta2)

    def step(it: int) -> dict[str, torch.Tensor]:
        progress = (pop.clock - 1) / cfg.steps
        see = lambda x: reg.d_inputs(x, progress, h.lam, pop.noise)  # noqa: E731  (instance noise hook)
        for _ in range(cfg.n_critic):
            real = pop.batch()
            z = pop.latents()
            with torch.no_grad():
                fake = gen(z)
            d_real, d_fake = disc(see(real)), disc(see(fake))
            loss_d = obj.d_loss(d_real, d_fake)
            ctx = RegContext(nets, real, fake, pop.noise, d_real=d_real, d_fake=d_fake)
            pen_d = reg.penalty(ctx) if reg.loss == "discriminator" else ctx.zeros()
            pen_obj = built_in.penalty(ctx) if built_in else ctx.zeros()
            gnorm_d = _update(opt_d, pop, loss_d + h.lam * pen_d + h.obj_lam * pen_obj, ["discriminator"])
            if obj.clip:
                with torch.no_grad():
                    c = h.clip_value[:, None]
                    d_flat.copy_(torch.clamp(d_flat, -c, c))

        z = pop.latents()
        hidden = features(z)
        fake = decode(hidden)
        loss_g = obj.g_loss(disc(see(fake)))
        pen_g = reg.penalty(RegContext(nets, real, fake, pop.noise, features=hidden)) \
            if reg.loss == "generator" else loss_g.new_zeros(pop.k)
        gnorm_g = _update(opt_g, pop, loss_g + h.lam * pen_g, ["generator"])
        return {"loss_d": loss_d, "loss_g": loss_g, "penalty": pen_d + pen_g + pen_obj,
                "grad_norm_d": gnorm_d, "grad_norm_g": gnorm_g}

    return step


@FAMILY_STEPS.register("vae")
def vae_step(pop: Population) -> Step:
    """One ELBO update (KL weighted by β, ramped over kl_warmup steps); the regularizer acts on the
    decoder (the generator)."""
    cfg, nets, h, reg = pop.cfg, pop.nets, pop.hyper, pop.reg
    encode, features, logits = nets.fn("encoder"), nets.fn("generator", "features"), nets.fn("generator", "logits")
    opt = Adam(list(nets.flat.values()), h.lr, h.beta1, h.beta2)

    def step(it: int) -> dict[str, torch.Tensor]:
        real = pop.batch()
        t = vae_terms(encode, features, logits, real, pop.latents())
        kl_weight = h.beta * torch.clamp(pop.clock / cfg.kl_warmup, max=1.0) if cfg.kl_warmup else h.beta
        loss = t["recon"] + kl_weight * t["kl"]
        pen = reg.penalty(RegContext(nets, real, t["output"], pop.noise, features=t["features"]))
        gnorm = _update(opt, pop, loss + h.lam * pen, list(nets.flat))
        return {"loss": loss, "recon": t["recon"], "kl": t["kl"], "penalty": pen, "grad_norm": gnorm}

    return step


@torch.no_grad()
def sample_members(nets: Stacked, seeds: Sequence[int], z_dim: int, n: int,
                   output: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype,
                   chunk: int = 1000) -> torch.Tensor:
    """n fixed-noise samples from every member at once, (K, n, …) on the CPU: member k's latents are
    those its solo sampler (stabgen.train.sampler) uses, so evaluations compare like with like."""
    device = next(iter(nets.flat.values())).device
    z = torch.stack([fixed_noise(s, n, z_dim) for s in seeds]).to(dtype)
    gen = nets.fn("generator")
    nets.train(False)
    try:
        return torch.cat([output(gen(zc.to(device))).cpu() for zc in z.split(chunk, dim=1)], dim=1)
    finally:
        nets.train(True)


def evaluate_members(evaluate: Evaluate, samples: list[Callable[[int], torch.Tensor]], final: bool) -> list[dict]:
    """Every member's metrics: in one go where the evaluator can share work across members (a
    stabgen.metrics.evaluate.Evaluator's `many`), else one member at a time."""
    if not samples:  # every member diverged or was pruned since the last log step
        return []
    many = getattr(evaluate, "many", None)
    return many(samples, final) if many is not None else [evaluate(s, final) for s in samples]


OnMemberEval = Callable[[int, int, dict], bool]  # (member, step, metrics) → True to prune that member
# (step, {name: (K,) values on the host}, active members): the logged losses as they are logged — a
# host sync per log step, paid only by callers that ask (TensorBoard during training)
OnLog = Callable[[int, dict[str, list[float]], list[bool]], None]


def _start(cfgs: list[TrialConfig], data, device: torch.device, dtype: torch.dtype) -> Population:
    """Validate the configs, build every member's networks and state on the device."""
    for c in cfgs:
        c.validate()
    check_compatible(cfgs)
    if isinstance(data, ImageData):
        data = sources.ImageSource(data)
    source = data.to(device)
    nets = Stacked([build(c, source.shape, device).to(dtype) for c in cfgs])
    active = torch.ones(len(cfgs), dtype=torch.bool, device=device)
    clock = torch.zeros((), dtype=torch.float64, device=device)
    return Population(cfgs[0], nets, Hyper.of(cfgs, device, dtype), Streams([c.seed for c in cfgs], device),
                      source, REGULARIZERS.get(cfgs[0].regularizer)(), dtype, active, clock)


@dataclass
class _Log:
    """What the loop records per member between evaluations (tensors stay on the device)."""

    k: int
    device: torch.device
    names: list[str] = field(default_factory=list)
    rows: list[tuple[int, torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (step, (L, K), active)
    diverged_losses: torch.Tensor | None = None
    evals: list[list[dict]] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)  # step at which a member was pruned (0: never)

    def __post_init__(self) -> None:
        self.diverged_at = torch.zeros(self.k, dtype=torch.long, device=self.device)
        self.evals = [[] for _ in range(self.k)]
        self.stopped = [0] * self.k


def _evaluate_round(pop: Population, cfgs: list[TrialConfig], evaluate: Evaluate, it: int, last: bool,
                    rec: _Log, on_eval: "OnMemberEval | None", kept: torch.Tensor) -> None:
    """Evaluate the active members on their fixed latents (sampled once per n for all of them)."""
    output = sample_output(pop.source.kind)
    active = pop.active.tolist()
    cache: dict[int, torch.Tensor] = {}

    def sample_of(m: int) -> Callable[[int], torch.Tensor]:
        def sample(n: int) -> torch.Tensor:
            if n not in cache:
                cache[n] = sample_members(pop.nets, [c.seed for c in cfgs], pop.cfg.z_dim, n, output, pop.dtype)
            return cache[n][m]
        return sample

    members = [m for m in range(pop.k) if active[m]]
    for m, out in zip(members, evaluate_members(evaluate, [sample_of(m) for m in members], last)):
        metrics = {"step": it, **out}
        rec.evals[m].append(metrics)
        if on_eval is not None and on_eval(m, it, metrics) and not last:
            kept[m], rec.stopped[m] = False, it


def train_population(cfgs: Sequence[TrialConfig], data, device: torch.device | str = "cpu", *,
                     evaluate: Evaluate | None = None, on_eval: OnMemberEval | None = None,
                     on_step: Callable[[int], None] | None = None, on_log: OnLog | None = None,
                     dtype: torch.dtype = torch.float32, graphs: bool | None = None,
                     tf32: bool | None = None) -> list[TrialResult]:
    """Train every config in one pass on a source (stabgen.sources) or an ImageData split; one
    TrialResult per config, in order. Nothing syncs with the host between log steps (`on_log`, when
    given, receives each log step's losses on the host). Progress: one stabgen.progress task.
    graphs: replay the step as a CUDA graph (default: on for CUDA, $STABGEN_CUDA_GRAPHS=0 turns it
    off; never on CPU). tf32: TF32 matmuls and convolutions on CUDA (default $STABGEN_TF32, off)."""
    cfgs, device = list(cfgs), torch.device(device)
    with precision(device, tf32) as tf32_on:
        results, graphed = _train(cfgs, data, device, evaluate, on_eval, on_step, on_log, dtype, graphs)
    arithmetic = [str(dtype).removeprefix("torch.")] + (["TF32 matmuls"] if tf32_on else []) \
        + (["CUDA graphs"] if graphed else [])
    for r in results:
        r.arithmetic = ", ".join(arithmetic)
    return results


def _train(cfgs: list[TrialConfig], data, device: torch.device, evaluate: Evaluate | None,
           on_eval: OnMemberEval | None, on_step: Callable[[int], None] | None, on_log: OnLog | None,
           dtype: torch.dtype, graphs: bool | None) -> tuple[list[TrialResult], bool]:
    """The loop; also says whether the step ran as a CUDA graph."""
    pop = _start(cfgs, data, device, dtype)
    cfg, k = pop.cfg, pop.k
    what = f"train {cfg.model} {cfg.regularizer}" + (f" ×{k}" if k > 1 else f" (seed {cfg.seed})")
    with progress.task(what, total=cfg.steps) as bar:
        results, graphed = _loop(pop, cfgs, evaluate, on_eval, on_step, on_log, graphs, bar)
    return results, graphed


def _loop(pop: Population, cfgs: list[TrialConfig], evaluate: Evaluate | None, on_eval: OnMemberEval | None,
          on_step: Callable[[int], None] | None, on_log: OnLog | None, graphs: bool | None,
          bar: progress.Task) -> tuple[list[TrialResult], bool]:
    cfg, k, device = pop.cfg, pop.k, pop.active.device
    step_fn = capture(FAMILY_STEPS.get(cfg.family)(pop), device, graphs)
    alive = torch.ones(k, dtype=torch.bool, device=device)  # not diverged
    kept = torch.ones(k, dtype=torch.bool, device=device)  # not pruned
    rec = _Log(k, device)
    t0 = time.perf_counter()
    it = 0
    for it in range(1, cfg.steps + 1):
        pop.clock.fill_(it)
        losses = step_fn(it)
        rec.names = list(losses)
        vals = torch.stack([v.detach() for v in losses.values()])
        finite = torch.isfinite(vals).all(0)
        if it % 50 == 0:
            finite &= pop.nets.finite()
        newly = pop.active & ~finite
        rec.diverged_at = torch.where(newly, it, rec.diverged_at)
        rec.diverged_losses = vals.clone() if rec.diverged_losses is None else \
            torch.where(newly, vals, rec.diverged_losses)
        alive &= ~newly
        pop.active.copy_(alive & kept)
        last = it == cfg.steps
        if it % cfg.log_every == 0 or last:
            rec.rows.append((it, vals, pop.active.clone()))
            if on_log is not None:
                on_log(it, dict(zip(rec.names, vals.tolist())), pop.active.tolist())
            if not bool(pop.active.any()):
                break
        bar.advance()
        if on_step is not None:
            on_step(it)
        if evaluate is not None and (it % cfg.eval_every == 0 or last):
            _evaluate_round(pop, cfgs, evaluate, it, last, rec, on_eval, kept)
            pop.active.copy_(alive & kept)
            if not bool(pop.active.any()):
                break
    return _results(cfgs, pop, rec, it, time.perf_counter() - t0), isinstance(step_fn, GraphedStep)


def _results(cfgs: list[TrialConfig], pop: Population, rec: _Log, it: int, seconds: float) -> list[TrialResult]:
    """One TrialResult per member: its status, steps, history (log rows while it was active) and evals."""
    finite_now = pop.nets.finite().tolist()
    div = rec.diverged_at.tolist()
    results = []
    for m, c in enumerate(cfgs):
        res = TrialResult(c, "completed", it, None, evals=rec.evals[m], seconds=seconds / pop.k,
                          modules=pop.nets.member(m))
        if div[m]:
            res.status, res.diverged_step, res.steps_done = "diverged", div[m], div[m]
        elif rec.stopped[m]:
            res.status, res.steps_done = "pruned", rec.stopped[m]
        elif not finite_now[m]:
            res.status, res.diverged_step = "diverged", it
        rows = [{"step": s, **dict(zip(rec.names, v[:, m].tolist()))} for s, v, act in rec.rows if act[m]]
        if div[m] and rec.diverged_losses is not None:
            rows.append({"step": div[m], **dict(zip(rec.names, rec.diverged_losses[:, m].tolist()))})
        res.history = rows
        results.append(res)
    return results


def train(cfg: TrialConfig, data, device: torch.device | str = "cpu", *,
          evaluate: Evaluate | None = None, on_eval: OnEval | None = None,
          on_step: Callable[[int], None] | None = None, on_log: OnLog | None = None,
          dtype: torch.dtype = torch.float32, graphs: bool | None = None, tf32: bool | None = None) -> TrialResult:
    """Train one trial on a source (stabgen.sources) or an ImageData split: a population of one,
    through the same step functions and loop as any population."""
    member_eval = (lambda m, step, metrics: on_eval(step, metrics)) if on_eval is not None else None
    return train_population([cfg], data, device, evaluate=evaluate, on_eval=member_eval, on_step=on_step,
                            on_log=on_log, dtype=dtype, graphs=graphs, tf32=tf32)[0]
