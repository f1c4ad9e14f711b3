import math

import torch

from stabgen.train import train
from stabgen.trial import TrialConfig


def test_same_seed_same_run(tiny_images):
    cfg = TrialConfig(model="gan", regularizer="gp", lam=1.0, steps=30, batch_size=16, log_every=10)
    a, b = train(cfg, tiny_images), train(cfg, tiny_images)
    assert a.history == b.history and a.status == "completed" and a.steps_done == 30


def test_every_family_and_regularizer_runs(tiny_images):
    for model, regs in (("gan", ["none", "l1", "l2", "feature_norm", "gp", "r1"]),
                        ("vae", ["none", "l1", "l2", "feature_norm"])):
        for reg in regs:
            res = train(TrialConfig(model=model, regularizer=reg, lam=0.1, steps=5, batch_size=8, log_every=5),
                        tiny_images)
            assert res.status == "completed", (model, reg)
            assert all(math.isfinite(v) for v in res.history[-1].values())


def test_regularizer_penalty_reaches_the_loss(tiny_images):
    """λ·penalty is added: with a huge λ on L2, generator weights shrink far more than without."""
    def weight_norm(lam):
        res = train(TrialConfig(regularizer="l2", lam=lam, steps=20, batch_size=8, lr=1e-2), tiny_images)
        return sum(p.norm() ** 2 for p in res.modules["generator"].parameters() if p.dim() > 1).item()
    assert weight_norm(100.0) < 0.5 * weight_norm(0.0)


def test_nan_ends_trial_as_diverged_with_step(tiny_images):
    res = train(TrialConfig(lr=1e30, steps=50, batch_size=8), tiny_images)
    assert res.status == "diverged" and 1 <= res.diverged_step <= 50
    assert res.steps_done == res.diverged_step


def test_evaluate_and_prune_hooks(tiny_images):
    seen = []

    def evaluate(sample, final):
        x = sample(12)
        assert x.dtype == torch.uint8 and x.shape == (12, 1, 28, 28)
        return {"score": float(x.float().mean()), "final": final}

    res = train(TrialConfig(steps=40, eval_every=10, batch_size=8), tiny_images, evaluate=evaluate,
                on_eval=lambda step, m: seen.append(step) or step >= 20)
    assert seen == [10, 20] and res.status == "pruned" and res.steps_done == 20


def test_fixed_noise_sampler_is_repeatable(tiny_images):
    from stabgen.trial import sampler
    res = train(TrialConfig(steps=3, batch_size=8), tiny_images)
    s = sampler(res.modules["generator"], 64, seed=0, device=torch.device("cpu"))
    assert torch.equal(s(10), s(10)) and torch.equal(s(20)[:10], s(10))
