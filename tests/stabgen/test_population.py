"""Population training: a member computes what it would compute alone, and nothing else leaks in.

The acceptance check of population training: a member and a solo run of the same config and seed
agree over 100 steps in float64 (to 1e-9 — the only differences are summation orders inside batched
vs. single matmuls), and a member forced to NaN leaves every other member's results bit-identical.
"""

import math

import pytest
import scipy.stats
import torch

from helpers import image_data, random_images

from stabgen.errors import StabgenError
from stabgen.datasets import load_source
from stabgen.train import sample_members, train, train_population
from stabgen.stacked import Adam, Stacked
from stabgen.streams import GOLDEN, Streams, splitmix64
from stabgen.trial import TrialConfig, sampler, sample_output

F64 = torch.float64


@pytest.fixture(scope="module")
def images():
    return image_data(random_images(256))


def _splitmix_reference(x: int) -> int:
    m = (1 << 64) - 1
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def test_splitmix64_matches_python_integers():
    """torch's int64 multiply must wrap modulo 2⁶⁴ and our shifts must be logical."""
    xs = [0, 1, 12345, 2**63 - 1, 2**63, 2**64 - 1, GOLDEN, 0xDEADBEEFCAFEBABE]
    signed = torch.tensor([x - 2**64 if x >= 2**63 else x for x in xs], dtype=torch.int64)
    got = [v % 2**64 for v in splitmix64(signed).tolist()]
    assert got == [_splitmix_reference(x) for x in xs]


def test_streams_are_uniform_normal_and_independent_of_the_population():
    s = Streams([0, 1, 2**40 + 5])
    u = s.uniform((20000,), F64)
    n = s.normal((20000,), F64)
    for k in range(3):
        assert scipy.stats.kstest(u[k].numpy(), "uniform").pvalue > 1e-3
        assert scipy.stats.kstest(n[k].numpy(), "norm").pvalue > 1e-3
    assert torch.corrcoef(n).fill_diagonal_(0).abs().max() < 0.05  # members are not correlated
    ints = s.integers(10, (20000,))
    assert all(scipy.stats.chisquare(torch.bincount(r, minlength=10).numpy()).pvalue > 1e-3 for r in ints)
    alone, crowd = Streams([7]), Streams([3, 7, 9])
    for _ in range(3):  # draw by draw, member 1 of the crowd is the solo stream
        assert torch.equal(alone.normal((5, 4)), crowd.normal((5, 4))[1:2])


def test_adam_matches_torch_per_member():
    torch.manual_seed(0)
    settings = [(1e-2, 0.5, 0.999), (3e-3, 0.0, 0.9), (1e-1, 0.9, 0.99)]
    start = torch.randn(3, 6, dtype=F64)
    flat = start.clone()
    opt = Adam([flat], *(torch.tensor(col, dtype=F64) for col in zip(*settings)))
    refs = [start[k].clone().requires_grad_(True) for k in range(3)]
    ref_opts = [torch.optim.Adam([p], lr=lr, betas=(b1, b2)) for p, (lr, b1, b2) in zip(refs, settings)]
    for _ in range(20):
        grads = [(p ** 3).sum() for p in refs]
        for p, o, loss in zip(refs, ref_opts, grads):
            o.zero_grad()
            loss.backward()
            o.step()
        opt.step([3 * flat ** 2], torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(flat, torch.stack([p.detach() for p in refs]), rtol=1e-12, atol=1e-14)


def test_adam_leaves_masked_members_untouched():
    flat = torch.ones(2, 3, dtype=F64)
    opt = Adam([flat], torch.tensor([0.1, 0.1], dtype=F64), torch.tensor([0.5, 0.5], dtype=F64),
               torch.tensor([0.9, 0.9], dtype=F64))
    opt.step([torch.tensor([[1.0, 2.0, 3.0], [math.nan, 1.0, 1.0]], dtype=F64)], torch.tensor([True, False]))
    assert torch.equal(flat[1], torch.ones(3, dtype=F64)) and not torch.equal(flat[0], flat[1])
    assert torch.isfinite(opt.m[0]).all() and torch.isfinite(opt.v[0]).all()
    # the masked member keeps its moments and its step count too (so its bias correction is its own):
    # after one step with both active, member 1 is masked for two steps
    opt.step([torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], dtype=F64)], torch.tensor([True, True]))
    m1, v1, p1 = opt.m[0][1].clone(), opt.v[0][1].clone(), flat[1].clone()
    for _ in range(2):
        opt.step([torch.tensor([[1.0, 2.0, 3.0], [7.0, 7.0, 7.0]], dtype=F64)], torch.tensor([True, False]))
    assert torch.equal(opt.m[0][1], m1) and torch.equal(opt.v[0][1], v1) and torch.equal(flat[1], p1)
    assert (v1 > 0).all() and opt.t.flatten().tolist() == [4.0, 1.0]


RING = dict(dataset="ring", model="mlp2d_small")
CASES = [  # (data and model, objective, regularizer, extra config)
    (RING, "ns", "r1", {}),
    (RING, "wgan_gp", "spectral_norm", {}),
    (RING, "wgan", "lecam", {"n_critic": 2}),
    (RING, "dragan", "instance_noise", {}),
    (RING, "ls", "orthogonal", {}),
    ({"model": "gan"}, "hinge", "consistency", {}),
    ({"model": "vae"}, "ns", "feature_norm", {"kl_warmup": 10}),
]


@pytest.mark.parametrize("data,objective,reg,extra", CASES, ids=[c[2] for c in CASES])
def test_member_equals_solo_over_100_steps_float64(images, data, objective, reg, extra):
    base = dict(**data, objective=objective, regularizer=reg, steps=100, batch_size=8, log_every=1, **extra)
    cfgs = [TrialConfig(**base, lam=lam, lr=lr, beta1=b1, seed=s)
            for lam, lr, b1, s in [(0.5, 1e-3, 0.5, 1), (2.0, 2e-4, 0.0, 2), (0.1, 5e-4, 0.9, 3)]]
    source = load_source("ring") if data is RING else images
    pop = train_population(cfgs, source, dtype=F64)
    solo = train(cfgs[1], source, dtype=F64)
    assert pop[1].status == solo.status == "completed" and len(solo.history) == 100
    for a, b in zip(pop[1].history, solo.history):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9), (a["step"], key)
    for name, value in solo.modules.state_dict().items():
        torch.testing.assert_close(pop[1].modules.state_dict()[name], value, rtol=1e-9, atol=1e-9)
    assert pop[0].history[-1] != pop[1].history[-1]  # the members did differ


def test_conv_member_with_batch_norm_equals_solo(images):
    """InfoGAN nets (batch norm in G and D, stacked running statistics) under vmap. Grouped vs.
    single convolutions sum in other orders (and the order depends on the thread count): losses and
    gradient norms agree to 1e-6 relative in float64 (about 1e-7 typically). Weights: Adam's
    g/√v turns summation noise in a near-zero gradient entry into a step of up to lr, so a handful
    of the 13M weights differ by more than noise (biases right before a batch norm, whose true
    gradient is 0, random-walk on it): every weight is within 1e-6 (0.1 % of one step at lr 1e-3)
    and the mean difference over all of them is below 1e-9."""
    base = dict(model="infogan", regularizer="gp", d_bn=True, steps=3, batch_size=4, log_every=1)
    cfgs = [TrialConfig(**base, lam=1.0, seed=1), TrialConfig(**base, lam=10.0, lr=1e-3, seed=2)]
    pop = train_population(cfgs, images, dtype=F64)
    solo = train(cfgs[1], images, dtype=F64)
    for a, b in zip(pop[1].history, solo.history):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9)
    diffs = []
    for name, value in solo.modules.state_dict().items():  # running means and vars included
        member = pop[1].modules.state_dict()[name]
        torch.testing.assert_close(member, value, rtol=0, atol=1e-6)
        if value.is_floating_point():
            diffs.append((member - value).abs().flatten())
    assert torch.cat(diffs).mean() < 1e-9


def test_a_nan_member_leaves_the_others_unchanged(images):
    base = dict(model="gan", regularizer="r1", steps=60, batch_size=8, log_every=5, eval_every=20)
    evaluate = lambda sample, final: {"mean": float(sample(16).float().mean())}  # noqa: E731
    ok = [TrialConfig(**base, lam=1.0, seed=1), TrialConfig(**base, lam=0.5, seed=2), TrialConfig(**base, lam=0.1, seed=3)]
    forced = [ok[0], TrialConfig(**base, lam=0.5, seed=2, lr=math.inf), ok[2]]  # lr = ∞ → NaN at once
    clean, mixed = train_population(ok, images, evaluate=evaluate), train_population(forced, images, evaluate=evaluate)
    assert mixed[1].status == "diverged" and mixed[1].diverged_step == 1 and mixed[1].evals == []
    # steps are counts: integers in every record (a float step prints "1.0" in trials.csv and the reports)
    assert type(mixed[1].diverged_step) is int and type(mixed[1].steps_done) is int and type(mixed[0].steps_done) is int
    assert type(mixed[1].history[-1]["step"]) is int
    assert not all(math.isfinite(v) for v in mixed[1].history[-1].values())
    for k in (0, 2):
        assert mixed[k].status == clean[k].status == "completed"
        assert mixed[k].history == clean[k].history and mixed[k].evals == clean[k].evals
        for name, value in clean[k].modules.state_dict().items():
            assert torch.equal(mixed[k].modules.state_dict()[name], value)


def test_pruning_one_member_leaves_the_others_unchanged(images):
    base = dict(model="gan", steps=40, batch_size=8, eval_every=10)
    cfgs = [TrialConfig(**base, lr=lr, seed=s) for lr, s in [(1e-3, 1), (2e-4, 2), (5e-4, 3)]]
    evaluate = lambda sample, final: {"mean": float(sample(16).float().mean())}  # noqa: E731
    seen = []

    def on_eval(member, step, metrics):
        seen.append((member, step))
        return member == 1 and step >= 20
    pruned = train_population(cfgs, images, evaluate=evaluate, on_eval=on_eval)
    plain = train_population(cfgs, images, evaluate=evaluate)
    assert pruned[1].status == "pruned" and pruned[1].steps_done == 20 and len(pruned[1].evals) == 2
    assert (1, 30) not in seen and (0, 40) in seen
    for k in (0, 2):
        assert pruned[k].history == plain[k].history and pruned[k].evals == plain[k].evals
    # the pruned member keeps the weights of the step it was pruned at: those of a 20-step run (its gradients
    # stay finite, so only the mask stops its updates)
    cut = train_population([TrialConfig(**{**c.to_dict(), "steps": 20}) for c in cfgs], images, evaluate=evaluate)
    for name, value in cut[1].modules.state_dict().items():
        assert torch.equal(pruned[1].modules.state_dict()[name], value), name


def test_members_are_evaluated_in_one_call_per_evaluation(images):
    """An Evaluator's `many` gets every active member at once (what lets feature extraction run once
    for the population) and gives each member what evaluating it alone gives."""
    from stabgen.metrics.evaluate import Evaluator

    class Means(Evaluator):
        calls: list = []

        def many(self, samples, final):
            self.calls.append((len(samples), final))
            return [{"mean": float(s(16).float().mean())} for s in samples]

    base = dict(model="gan", steps=30, batch_size=8, eval_every=10)
    cfgs = [TrialConfig(**base, lr=lr, seed=s) for lr, s in [(1e-3, 1), (2e-4, 2), (5e-4, 3)]]
    ev = Means()
    together = train_population(cfgs, images, evaluate=ev, on_eval=lambda m, step, _: m == 2 and step == 10)
    one_by_one = train_population(cfgs, images, evaluate=lambda sample, final: ev(sample, final),
                                  on_eval=lambda m, step, _: m == 2 and step == 10)
    assert ev.calls[:3] == [(3, False), (2, False), (2, True)]  # member 2 pruned after step 10
    assert [r.evals for r in together] == [r.evals for r in one_by_one]


def test_no_evaluation_when_every_member_has_stopped(images):
    """Members that all diverged between log steps leave nothing to evaluate: the evaluator is not
    called with an empty population (torch.cat of no samples would raise)."""
    from stabgen.metrics.evaluate import Evaluator

    class Strict(Evaluator):
        def many(self, samples, final):
            assert samples, "evaluated an empty population"
            return [{"n": 0} for _ in samples]

    base = dict(model="gan", steps=30, batch_size=8, log_every=20, eval_every=5)
    cfgs = [TrialConfig(**base, lr=math.inf, seed=s) for s in (1, 2)]
    results = train_population(cfgs, images, evaluate=Strict())
    assert [(r.status, r.diverged_step, r.evals) for r in results] == [("diverged", 1, [])] * 2


def test_batched_sampling_uses_each_members_solo_latents(images):
    cfgs = [TrialConfig(steps=2, batch_size=8, seed=s) for s in (4, 9)]
    results = train_population(cfgs, images)
    nets = Stacked([r.modules for r in results])
    both = sample_members(nets, [4, 9], 64, 10, sample_output("image"), torch.float32)
    for k, r in enumerate(results):
        alone = sampler(r.modules["generator"], 64, seed=cfgs[k].seed, device=torch.device("cpu"))(10)
        assert torch.equal(both[k], alone)


@pytest.mark.parametrize("change,field", [(dict(model="vae"), "model"), (dict(batch_size=16), "batch_size"),
                                          (dict(regularizer="l2"), "regularizer")])
def test_incompatible_configs_are_refused_naming_the_field(images, change, field):
    a = TrialConfig(steps=2, batch_size=8)
    b = TrialConfig(**{**a.to_dict(), **change})
    with pytest.raises(StabgenError, match=f"{field}=.*a population may differ only in") as e:
        train_population([a, b], images)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("model, reg, d_bn", [("dcgan", "none", True), ("dcgan", "r1", False),
                                             ("gan", "spectral_norm", False)])
def test_a_nan_injected_mid_run_freezes_only_its_member(images, monkeypatch, model, reg, d_bn):
    """Member 1's discriminator weights are set to NaN after step 6 of 12 (conv nets with batch norm,
    a conv net with R1, spectral-norm buffers): it is reported diverged at step 7 and the other
    members' histories, weights, running statistics and power-iteration buffers are bit-identical
    to a run without the injection."""
    import stabgen.train as train_mod

    real_get = train_mod.FAMILY_STEPS.get

    def poisoned(family):
        build_step = real_get(family)

        def make(pop):
            step = build_step(pop)

            def wrapped(it):
                out = step(it)
                if it == 6:
                    with torch.no_grad():
                        pop.nets.flat["discriminator"][1].fill_(math.nan)
                return out
            return wrapped
        return make

    base = dict(model=model, regularizer=reg, lam=1.0, d_bn=d_bn, steps=12, batch_size=4, log_every=1)
    cfgs = [TrialConfig(**base, seed=s) for s in (1, 2, 3)]
    clean = train_population(cfgs, images, dtype=torch.float32)
    monkeypatch.setattr(train_mod.FAMILY_STEPS, "get", poisoned)
    mixed = train_population(cfgs, images, dtype=torch.float32)
    assert mixed[1].status == "diverged" and mixed[1].diverged_step == 7
    # its own update at the step it diverged was masked out: the generator keeps its last finite weights
    # (benchmarks/mutation_wiring.py: diverged_member_updated)
    assert all(torch.isfinite(p).all() for p in mixed[1].modules["generator"].parameters())
    for k in (0, 2):
        assert mixed[k].status == "completed" and mixed[k].history == clean[k].history
        for name, value in clean[k].modules.state_dict().items():
            assert torch.equal(mixed[k].modules.state_dict()[name], value), name


def test_an_empty_population_is_refused_in_one_line(images):
    with pytest.raises(StabgenError, match="^a population needs at least one trial config$"):
        train_population([], images)


def test_the_refusal_names_the_config_that_differs(images):
    a = TrialConfig(steps=2, batch_size=8)
    with pytest.raises(StabgenError) as refused:
        train_population([a, TrialConfig(**{**a.to_dict(), "seed": 5}), TrialConfig(**{**a.to_dict(), "batch_size": 16})],
                         images)
    assert str(refused.value) == ("config 2 has batch_size=16 but config 0 has 8; a population may differ only in "
                                  "seed, lam, lr, beta1, beta2, obj_lam, clip_value, beta")


def test_each_member_is_charged_its_share_of_the_wall_time(images):
    """TrialResult.seconds: the loop's wall time over K (what a study records as a trial's cost)."""
    import time

    cfgs = [TrialConfig(steps=20, batch_size=8, seed=s) for s in (1, 2, 3)]
    t0 = time.perf_counter()
    results = train_population(cfgs, images)
    wall = time.perf_counter() - t0
    assert len({r.seconds for r in results}) == 1 and 0 < 3 * results[0].seconds <= wall


def test_evaluating_a_batch_norm_population_mid_run_changes_nothing(images):
    """Sampling for an evaluation puts the networks in eval mode (batch norm on its running statistics,
    as the solo sampler does) and back in train mode after: the same run with an evaluation at every
    step trains exactly as one without, and the sampled images are the solo sampler's."""
    base = dict(model="infogan", d_bn=True, steps=3, batch_size=4, log_every=1)
    cfgs = [TrialConfig(**base, seed=1), TrialConfig(**base, seed=2)]
    seen = []

    def evaluate(sample, final):
        seen.append(sample(6))
        return {"mean": float(seen[-1].float().mean())}
    evaluated = train_population([TrialConfig(**base, eval_every=1, seed=c.seed) for c in cfgs], images, evaluate=evaluate)
    plain = train_population(cfgs, images)
    for e, p in zip(evaluated, plain):
        assert e.history == p.history
        for name, value in p.modules.state_dict().items():
            assert torch.equal(e.modules.state_dict()[name], value), name
    alone = sampler(evaluated[1].modules["generator"], 64, seed=2, device=torch.device("cpu"))(6)
    # the last evaluation (member 1, step 3), in eval mode; grouped and single convolutions sum in other orders
    torch.testing.assert_close(seen[-1], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad_from,steps,caught_at", [(30, 120, 50), (55, 60, 60)])
def test_parameters_gone_non_finite_are_caught_by_the_periodic_check_or_at_the_end(images, monkeypatch,
                                                                                   bad_from, steps, caught_at):
    """Losses and gradient norms are checked every step; the parameters themselves every 50 steps and at
    the end (a non-finite weight whose losses still read finite — simulated here by member 1's parameters
    reading non-finite from step `bad_from` on): the member is diverged at that check, the others go on."""
    state = {"it": 0}
    real = Stacked.finite

    def finite(self):
        out = real(self).clone()
        if state["it"] + 1 >= bad_from:  # on_step runs after the check: it holds the step before
            out[1] = False
        return out
    monkeypatch.setattr(Stacked, "finite", finite)
    cfgs = [TrialConfig(steps=steps, batch_size=8, log_every=10, seed=s) for s in (1, 2)]
    results = train_population(cfgs, images, on_step=lambda it: state.update(it=it))
    assert (results[0].status, results[0].steps_done) == ("completed", steps)
    assert (results[1].status, results[1].diverged_step, results[1].steps_done) == ("diverged", caught_at, caught_at)


def test_each_evaluation_is_recorded_with_its_step_and_handed_to_on_eval(images):
    """What the loop keeps of an evaluation (what pruning, curves, records and reports read): each member's
    TrialResult.evals holds {"step": it, **metrics} at every eval_every step and at the last, and on_eval
    gets that same dict; `final` is True at the last evaluation only — through an Evaluator's `many` and
    through a plain function alike — and a float64 population is sampled in float64."""
    from stabgen.metrics.evaluate import Evaluator

    class Many(Evaluator):
        def __init__(self) -> None:
            self.finals = []

        def many(self, samples, final):
            self.finals.append(final)
            return [{"mean": float(s(4).double().mean())} for s in samples]

    finals, seen = [], []

    def plain(sample, final):
        finals.append(final)
        return {"mean": float(sample(4).double().mean())}

    cfgs = [TrialConfig(model="gan", steps=25, batch_size=8, eval_every=10, seed=s) for s in (1, 2)]
    many = Many()
    for ev in (many, plain):
        seen.clear()
        res = train_population(cfgs, images, evaluate=ev, dtype=F64,
                               on_eval=lambda m, step, metrics: seen.append((m, step, metrics)) and False)
        for m, r in enumerate(res):
            assert [e["step"] for e in r.evals] == [10, 20, 25] and set(r.evals[0]) == {"step", "mean"}
            assert all(math.isfinite(e["mean"]) for e in r.evals)
            assert [(s, metrics) for k, s, metrics in seen if k == m] == [(e["step"], e) for e in r.evals]
    assert many.finals == [False, False, True] and finals == [False, False, False, False, True, True]


def test_a_stacked_population_trains_by_default_as_a_module_does():
    """Stacked.train() with no argument is nn.Module.train(): training mode on (batch norm in batch statistics)."""
    nets = Stacked([torch.nn.ModuleDict({"g": torch.nn.BatchNorm1d(3)}) for _ in range(2)])
    nets.train(False)
    assert not nets.template.training
    nets.train()
    assert nets.template.training and all(m.training for m in nets.template.modules())


def test_a_solo_train_is_a_population_of_one_with_every_option_passed_through(images, monkeypatch):
    """train(cfg) is train_population([cfg]): on_step sees every step, on_eval gets (step, the recorded
    metrics), an evaluation needs no on_eval, TF32 is set as asked while it trains; and what a CPU cannot
    observe (CUDA graphs, the device) reaches train_population as given (a spy: there is no GPU here)."""
    import stabgen.train as train_mod

    cfg = TrialConfig(model="gan", steps=6, batch_size=8, eval_every=3, seed=3)
    steps, flags, seen = [], [], []

    def evaluate(sample, final):
        return {"mean": float(sample(4).double().mean())}

    def on_step(it):
        steps.append(it)
        flags.append(torch.backends.cuda.matmul.allow_tf32)

    before = torch.backends.cuda.matmul.allow_tf32
    r = train(cfg, images, evaluate=evaluate, on_step=on_step, tf32=not before,
              on_eval=lambda step, metrics: seen.append((step, metrics)) and False)
    assert steps == [1, 2, 3, 4, 5, 6] and flags == [not before] * 6 and torch.backends.cuda.matmul.allow_tf32 == before
    assert [e["step"] for e in r.evals] == [3, 6] and seen == [(e["step"], e) for e in r.evals]
    assert train(cfg, images, evaluate=evaluate).evals == r.evals  # no on_eval: the same evaluations
    got = {}

    def spy(cfgs, data, device="cpu", **kw):
        got.update(cfgs=cfgs, data=data, device=device, **kw)
        return ["the result"]

    monkeypatch.setattr(train_mod, "train_population", spy)
    log = lambda *a: None  # noqa: E731
    assert train(cfg, images, "cuda:1", graphs=True, tf32=False, dtype=F64, on_log=log, on_step=on_step) == "the result"
    assert got["cfgs"] == [cfg] and got["data"] is images and got["device"] == "cuda:1"
    assert (got["graphs"], got["tf32"], got["dtype"], got["on_log"], got["on_step"]) == (True, False, F64, log, on_step)
    assert got["on_eval"] is None and got["evaluate"] is None


def test_the_loop_asks_for_cuda_graphs_as_its_caller_did(images, monkeypatch):
    """train_population(graphs=…) reaches the step's capture as given (False must turn graphs off on a
    GPU even where $STABGEN_CUDA_GRAPHS says on; a CPU never graphs, so a spy on capture sees it)."""
    import stabgen.train as train_mod

    asked = []
    real = train_mod.capture
    monkeypatch.setattr(train_mod, "capture", lambda step, device, graphs=None: asked.append(graphs) or real(step, device, graphs))
    cfg = TrialConfig(model="gan", steps=2, batch_size=8)
    for graphs in (False, True, None):
        train_population([cfg], images, graphs=graphs)
    assert asked == [False, True, None]


def test_the_loops_record_lives_on_the_populations_device():
    """The loop's per-member record (_Log) keeps its divergence steps as integer tensors on the population's
    device, so the loop never syncs with the host between log steps (on CUDA a CPU tensor here would fail
    beside the device's; the meta device shows it without a GPU)."""
    from stabgen.train import _Log

    rec = _Log(3, torch.device("meta"))
    assert rec.diverged_at.device.type == "meta" and rec.diverged_at.dtype == torch.long and rec.diverged_at.shape == (3,)
    assert rec.evals == [[], [], []] and rec.stopped == [0, 0, 0] and rec.evals[0] is not rec.evals[1]


def _tensors(obj, path: str = "pop", seen: set | None = None):
    """Every tensor a Population holds (its networks' parameters and buffers, the stacked views, its
    hyperparameters, streams, source and flags), with where it sits."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, torch.nn.Module):
        for name, t in [*obj.named_parameters(), *obj.named_buffers()]:
            yield f"{path}.{name}", t
    elif isinstance(obj, (list, tuple, dict)):
        for key, x in (obj.items() if isinstance(obj, dict) else enumerate(obj)):
            yield from _tensors(x, f"{path}[{key!r}]", seen)
    elif type(obj).__module__.startswith("stabgen") and hasattr(obj, "__dict__"):
        for key, x in vars(obj).items():
            yield from _tensors(x, f"{path}.{key}", seen)


def test_a_population_is_built_on_its_device(images):
    """_start puts everything a population holds — the data, every member's networks (built and stacked),
    the hyperparameters, the streams, the active flags and the clock — on the training device. On a GPU a
    piece left on the host fails or syncs every step; the meta device shows it on a CPU-only machine."""
    from stabgen.train import _start

    cfgs = [TrialConfig(model="gan", steps=2, batch_size=8, seed=s) for s in (1, 2)]
    pop = _start(cfgs, images, torch.device("meta"), torch.float32)
    found = dict(_tensors(pop))
    assert {"pop.active", "pop.clock", "pop.source.data.images", "pop.hyper.lr", "pop.noise.keys"} <= set(found)
    assert any(p.startswith("pop.nets.flat") for p in found) and any(p.startswith("pop.nets.template") for p in found)
    assert {p: t.device.type for p, t in found.items() if t.device.type != "meta"} == {}


def test_every_tensor_the_loop_creates_names_the_populations_device(images):
    """The loop's own tensors (active, alive and kept flags, the clock, its record, the hyperparameters, the
    streams' counters) are created on the population's device, named explicitly: a factory call left at
    torch's default device trains on a CPU and fails or syncs on a GPU. A torch function mode sees each
    factory call of the training modules and the device it names."""
    import sys

    from torch.overrides import TorchFunctionMode

    factories = {torch.ones, torch.zeros, torch.full, torch.empty, torch.arange, torch.tensor, torch.as_tensor,
                 torch.rand, torch.randn, torch.randint}
    ours = ("stabgen/train.py", "stabgen/stacked.py", "stabgen/streams.py")

    class Placements(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, str, object]] = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            caller = sys._getframe(1).f_code
            if func in factories and caller.co_filename.replace("\\", "/").endswith(ours):
                self.calls.append((func.__name__, caller.co_name, kwargs.get("device")))
            return func(*args, **kwargs)

    cfgs = [TrialConfig(model="gan", steps=3, batch_size=8, eval_every=2, seed=s) for s in (1, 2)]
    with Placements() as seen:
        train_population(cfgs, images, evaluate=lambda sample, final: {"mean": float(sample(4).float().mean())})
    for factory, fn in [("ones", "_start"), ("zeros", "_start"), ("ones", "_loop"), ("zeros", "__post_init__")]:
        # `in`: under mutmut the frame is its copy of the function (x__start__mutmut_orig)
        assert any(name == factory and fn in caller for name, caller, _ in seen.calls), (factory, fn)
    assert [c for c in seen.calls if c[2] != torch.device("cpu")] == []


def test_a_loss_gone_nan_at_a_parameter_check_step_is_caught_and_recorded_as_it_was(images, monkeypatch):
    """Every 50 steps the loop checks the parameters as well as the losses: a loss that reads NaN at step 50
    while the weights are still finite still diverges its member there, and the member's last history row
    holds the losses of step 50 as the step returned them (not those of a later step); each result carries
    its own config."""
    import stabgen.train as train_mod

    real_get = train_mod.FAMILY_STEPS.get
    at_50 = {}

    def poisoned(family):
        build_step = real_get(family)

        def make(pop):
            step = build_step(pop)

            def wrapped(it):
                out = dict(step(it))
                if it == 50:
                    name = next(iter(out))
                    out[name] = out[name].clone()
                    out[name][1] = math.nan
                    at_50.update({k: v[1].item() for k, v in out.items()})
                return out
            return wrapped
        return make

    monkeypatch.setattr(train_mod.FAMILY_STEPS, "get", poisoned)
    cfgs = [TrialConfig(model="gan", steps=60, batch_size=8, log_every=20, seed=s) for s in (1, 2)]
    res = train_population(cfgs, images)
    assert [r.config for r in res] == cfgs
    assert (res[0].status, res[0].steps_done) == ("completed", 60)
    assert (res[1].status, res[1].diverged_step, res[1].steps_done) == ("diverged", 50, 50)
    last = res[1].history[-1]
    assert last["step"] == 50 and set(last) == {"step", *at_50}
    assert all(math.isnan(last[k]) if math.isnan(v) else last[k] == v for k, v in at_50.items())
    assert sum(math.isnan(v) for v in at_50.values()) == 1


def test_a_result_names_tf32_and_cuda_graphs_where_they_ran(images, monkeypatch):
    """TrialResult.arithmetic says what ran: the dtype, "TF32 matmuls" where precision() reports TF32 in
    effect, "CUDA graphs" where the step came back graphed; and the loop trains on the device it was given.
    A CPU has neither TF32 nor graphs, so spies stand in for them: precision() reporting TF32 on, a capture
    that returns a GraphedStep running eagerly, and _start recording the device it gets."""
    import contextlib

    import stabgen.train as train_mod
    from stabgen.graphs import GraphedStep

    class Eager(GraphedStep):
        def __call__(self, it):
            return self.step(it)

    @contextlib.contextmanager
    def tf32_on(device, tf32=None):
        yield True

    devices = []
    real_start = train_mod._start
    monkeypatch.setattr(train_mod, "_start", lambda cfgs, data, device, dtype: devices.append(device)
                        or real_start(cfgs, data, device, dtype))
    cfg = TrialConfig(model="gan", steps=2, batch_size=8)
    assert train_population([cfg], images, "cpu")[0].arithmetic == "float32"
    monkeypatch.setattr(train_mod, "precision", tf32_on)
    assert train_population([cfg], images)[0].arithmetic == "float32, TF32 matmuls"
    monkeypatch.setattr(train_mod, "capture", lambda step, device, graphs=None: Eager(step))
    assert train_population([cfg], images, dtype=F64)[0].arithmetic == "float64, TF32 matmuls, CUDA graphs"
    assert devices == [torch.device("cpu")] * 3


def test_a_stack_owns_its_modules_and_a_parameter_a_loss_does_not_use_gets_a_zero_gradient():
    """Stacked copies the modules it is built from (switching its mode leaves the caller's member 0 as it
    was), and grads() gives d loss/d flat with zeros where a parameter does not reach the loss — as
    torch.autograd.grad with materialize_grads does on the plain modules (here a head the loss skips)."""

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.head = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.head(self.body(x))

        def features(self, x):
            return self.body(x)

    torch.manual_seed(0)
    for k in (1, 2):
        members = [torch.nn.ModuleDict({"d": Two()}) for _ in range(k)]
        nets = Stacked(members)
        nets.train(False)
        assert all(m.training for m in members[0].modules())
        x = torch.randn(k, 4, 3)
        (g,) = nets.grads(nets.fn("d", "features")(x).pow(2).sum(), ["d"])
        for m in range(k):
            want = torch.autograd.grad(members[m]["d"].features(x[m]).pow(2).sum(), list(members[m]["d"].parameters()),
                                       materialize_grads=True)
            torch.testing.assert_close(g[m], torch.cat([w.flatten() for w in want]))
        assert g[:, -3:].eq(0).all()  # the head's weight and bias


def test_a_network_without_parameters_is_skipped_and_a_population_of_one_never_vmaps(monkeypatch):
    """A ModuleDict may hold a network with no parameters (an identity, a fixed transform) before the ones
    with parameters: it gets no flat tensor and the networks after it are still stacked. A population of one
    runs its modules directly on member 0's slices — no functional_call, no vmap (the stacked docstring's
    promise, which is the solo loop's speed): a vmap that raises is never reached."""
    import copy

    import stabgen.stacked as stacked_mod

    def no_vmap(*a, **k):
        raise AssertionError("vmap called for a population of one")

    monkeypatch.setattr(stacked_mod, "vmap", no_vmap)
    torch.manual_seed(0)
    member = torch.nn.ModuleDict({"fixed": torch.nn.Identity(), "d": torch.nn.Linear(3, 1)})
    nets = Stacked([member])
    assert list(nets.flat) == ["d"] and nets.flat["d"].shape == (1, 4)
    x = torch.randn(1, 5, 3)
    torch.testing.assert_close(nets.fn("d")(x)[0], member["d"](x[0]))
    with pytest.raises(AssertionError, match="vmap called"):
        Stacked([member, copy.deepcopy(member)]).fn("d")(torch.randn(2, 5, 3))
