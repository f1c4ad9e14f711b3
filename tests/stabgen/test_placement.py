"""What the generic placement contract (stabgen.testing.check_placement, run over every registry
entry by tests/stabgen/test_contracts.py) cannot say: spectral norm's bound on every D layer, instance noise
reaching D's inputs only, WGAN clipping every D weight — each on one real training step."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from helpers import image_data, random_images

from stabgen import sources
from stabgen.regularizers import REGULARIZERS, SpectralNormed
from stabgen.train import train_population
from stabgen.trial import TrialConfig

IMAGES = sources.ImageSource(image_data(random_images(64)))
LAM = 10.0


def one_step(cfg: TrialConfig, **changed):
    """Members (cfg, cfg with `changed`) after one step from the same state: their modules and histories."""
    res = train_population([cfg, replace(cfg, **changed)], IMAGES, "cpu", dtype=torch.float64)
    return [r.modules for r in res], [r.history[0] for r in res]


def params(modules, net: str) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in modules[net].parameters()])


def differs(a, b, net: str) -> bool:
    return not torch.equal(params(a, net), params(b, net))


BASE = dict(dataset="mnist", steps=1, batch_size=8, log_every=1, eval_every=1, lr=1e-3, seed=3)


def test_spectral_norm_bounds_every_discriminator_layer():
    cfg = TrialConfig(model="gan", regularizer="spectral_norm", **BASE)
    (m0, _), _ = one_step(cfg)
    layers = [m for m in m0["discriminator"].modules() if isinstance(m, SpectralNormed)]
    assert len(layers) >= 2  # every Linear of the MLP discriminator is wrapped
    m0.eval()
    for layer in layers:  # what D uses has largest singular value 1 (power-iteration estimate), whatever the raw σ
        raw = torch.linalg.svdvals(layer.layer.weight.detach().flatten(1))[0]
        used = torch.linalg.svdvals(layer.weight().detach().flatten(1))[0]
        assert used <= 1 + 2e-2 and used == pytest.approx(1.0, abs=2e-2) and raw != pytest.approx(1.0, abs=2e-2)
    plain = TrialConfig(model="gan", regularizer="none", **BASE)
    (p0, _), _ = one_step(plain)
    assert not any(isinstance(m, SpectralNormed) for m in p0["discriminator"].modules())


def test_instance_noise_reaches_d_and_nothing_else():
    """σ₀ = λ changes what D sees (so D's update), adds no loss term, and leaves the real batch and
    G's samples as they were (the noise is applied inside D's inputs only)."""
    cfg = TrialConfig(model="gan", regularizer="instance_noise", lam=0.0, **BASE)
    (m0, m1), (h0, h1) = one_step(cfg, lam=2.0)
    assert differs(m0, m1, "discriminator")
    assert h0["penalty"] == h1["penalty"] == 0.0
    reg = REGULARIZERS.get("instance_noise")()
    x = torch.zeros(2, 4, 3)
    from stabgen.streams import Streams
    seen = reg.d_inputs(x, 0.0, torch.tensor([0.0, 2.0]), Streams([1, 1]))
    assert torch.equal(seen[0], x[0]) and not torch.equal(seen[1], x[1]) and torch.equal(x, torch.zeros(2, 4, 3))


def test_wgan_clips_every_discriminator_weight():
    cfg = TrialConfig(model="gan", objective="wgan", clip_value=0.01, **BASE)
    (m0, _), (h0, _) = one_step(cfg)
    assert params(m0, "discriminator").abs().max() <= 0.01 + 1e-12
