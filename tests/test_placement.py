"""Where each regularizer and objective acts, checked on one real training step (stabgen.train):
two members start from the same state and streams (same seed), one with λ = 0 and one with a large
λ; only the network the regularizer declares may differ after the step, and its penalty is nonzero.
A penalty routed into the wrong loss (e.g. gp into G's) leaves D identical and fails here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from stabgen import sources
from stabgen.data import ImageData
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS, SpectralNormed, applicable
from stabgen.train import train_population
from stabgen.trial import TrialConfig

IMAGES = sources.ImageSource(ImageData(
    "tiny", "train", torch.randint(0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8), torch.zeros(64, dtype=torch.long)))
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
PENALIZED_GAN = [r for r in applicable("gan") if r != "none" and REGULARIZERS.get(r).uses_lambda
                 and REGULARIZERS.get(r).acts_on != "discriminator_inputs_noise"]


@pytest.mark.parametrize("reg", PENALIZED_GAN)
def test_a_gan_penalty_moves_only_the_network_it_declares(reg):
    cfg = TrialConfig(model="gan", regularizer=reg, lam=0.0, **BASE)
    (m0, m1), (h0, h1) = one_step(cfg, lam=LAM)
    assert h1["penalty"] > 0 and h0["penalty"] > 0, "the penalty is computed and nonzero"
    declared = REGULARIZERS.get(reg).loss
    if declared == "discriminator":  # D's update sees λ·penalty (G then trains against another D)
        assert differs(m0, m1, "discriminator")
    else:  # G-side: D's update is identical to the last bit, G's is not
        assert not differs(m0, m1, "discriminator") and differs(m0, m1, "generator")


@pytest.mark.parametrize("reg", [r for r in applicable("vae") if r != "none"])
def test_a_vae_penalty_moves_the_decoder(reg):
    cfg = TrialConfig(model="vae", regularizer=reg, lam=0.0, **BASE)
    (m0, m1), (h0, h1) = one_step(cfg, lam=LAM)
    assert h1["penalty"] > 0 and differs(m0, m1, "generator")
    if REGULARIZERS.get(reg).acts_on == "generator_params":  # weights of the decoder only: the encoder's
        assert not differs(m0, m1, "encoder")                 # gradient does not depend on λ


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


@pytest.mark.parametrize("objective", [o for o in OBJECTIVES.names() if OBJECTIVES.get(o).penalty])
def test_an_objectives_own_penalty_moves_d(objective):
    cfg = TrialConfig(model="gan", objective=objective, obj_lam=0.0, **BASE)
    (m0, m1), (h0, h1) = one_step(cfg, obj_lam=LAM)
    assert h1["penalty"] > 0 and differs(m0, m1, "discriminator")


def test_wgan_clips_every_discriminator_weight():
    cfg = TrialConfig(model="gan", objective="wgan", clip_value=0.01, **BASE)
    (m0, _), (h0, _) = one_step(cfg)
    assert params(m0, "discriminator").abs().max() <= 0.01 + 1e-12


@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_every_objective_updates_both_networks(objective):
    cfg = TrialConfig(model="gan", objective=objective, **BASE)
    res = train_population([cfg], IMAGES, "cpu", dtype=torch.float64)[0]
    from stabgen.trial import build
    start = build(cfg, IMAGES.shape, torch.device("cpu")).double()
    for net in ("generator", "discriminator"):
        assert not torch.equal(params(start, net), params(res.modules, net)), net
