"""Every pair of architecture, objective and regularizer trains a few steps with finite losses;
disallowed combinations are refused with one line.

Where each regularizer and objective acts, and that its penalty is right, is tested elsewhere
(tests/stabgen/test_placement.py, test_regularizers.py, test_objectives.py) on the MLP GAN. What is left for
this grid is that the pieces fit together on every architecture, so it covers every *pair* of
factors — model × regularizer (objective ns), objective × regularizer (MLP GAN), model × objective
(no regularizer) — instead of the full product: 167 GAN cases instead of 455, and each conv net
meets each regularizer and each objective once."""

import math

import pytest
import torch

from helpers import image_data, random_images

from stabgen import sources
from stabgen.datasets import load_source
from stabgen.data import ImageData
from stabgen.errors import StabgenError
from stabgen.models import MODELS
from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import applicable
from stabgen.streams import Streams
from stabgen.train import train
from stabgen.trial import TrialConfig


def _images(channels: int) -> ImageData:
    return image_data(random_images(32, channels))


RING = load_source("ring")
DATA = {("image", 1): ("mnist", sources.ImageSource(_images(1))),
        ("image", 3): ("stacked-mnist", sources.ImageSource(_images(3))),
        ("points", 0): ("ring", RING)}

GAN_MODELS = [m for m, s in MODELS.items() if s.family == "gan"]
GAN_CASES = sorted({(m, "ns", r) for m in GAN_MODELS for r in applicable("gan")}
                   | {("gan", o, r) for o in OBJECTIVES.names() for r in applicable("gan")}
                   | {(m, o, "none") for m in GAN_MODELS for o in OBJECTIVES.names()})
VAE_CASES = [(m, r) for m, s in MODELS.items() if s.family == "vae" for r in applicable("vae")]


def _run(model: str, channels: int = 1, **kw):
    kind = MODELS.get(model).data_kind
    dataset, src = DATA[(kind, channels if kind == "image" else 0)]
    cfg = TrialConfig(dataset=dataset, model=model, steps=2, batch_size=4, log_every=1, lr=1e-4,
                      z_dim=2 if kind == "points" else 16, **kw)
    return train(cfg, src)


@pytest.mark.parametrize("model,objective,reg", GAN_CASES)
def test_every_gan_combination_trains(model, objective, reg):
    res = _run(model, objective=objective, regularizer=reg, lam=0.1, n_critic=2 if objective == "wgan" else 1)
    assert res.status == "completed", res.history
    assert all(math.isfinite(v) for row in res.history for v in row.values())


@pytest.mark.parametrize("model,reg", VAE_CASES)
@pytest.mark.parametrize("beta,warmup", [(1.0, 0), (4.0, 10)])
def test_every_vae_combination_trains(model, reg, beta, warmup):
    res = _run(model, regularizer=reg, lam=0.1, beta=beta, kl_warmup=warmup)
    assert res.status == "completed" and all(math.isfinite(v) for v in res.history[-1].values())


@pytest.mark.parametrize("model", ["infogan", "dcgan", "conv_vae"])
def test_three_channel_stacked_mnist_architectures(model):
    res = _run(model, channels=3, regularizer="none")
    assert res.status == "completed"
    out = res.modules["generator"](torch.randn(2, 16))
    assert out.shape == (2, 3, 28, 28)


def test_batchnorm_in_discriminator_is_switchable():
    on = MODELS.get("infogan").build((1, 28, 28), 16, d_bn=True)["discriminator"]
    off = MODELS.get("infogan").build((1, 28, 28), 16, d_bn=False)["discriminator"]
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in on.modules())
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in off.modules())


def test_infogan_shapes_match_lucic():
    mods = MODELS.get("infogan").build((1, 28, 28), 64)
    convs = [m for m in mods["discriminator"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    fcs = [m for m in mods["discriminator"].modules() if isinstance(m, torch.nn.Linear)]
    assert [f.out_features for f in fcs] == [1024, 1]
    assert mods["generator"](torch.randn(3, 64)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("cfg,msg", [
    (dict(model="vae", regularizer="gp"), "does not apply to vae"),
    (dict(model="mlp2d", dataset="mnist"), "is for points data"),
    (dict(model="infogan", dataset="ring"), "is for image data"),
    (dict(model="gan", objective="wgan2"), "unknown objective"),
    (dict(model="gan", dataset="cifar"), "unknown dataset"),
])
def test_disallowed_combinations_are_one_line_errors(cfg, msg):
    with pytest.raises(StabgenError, match=msg) as e:
        TrialConfig(**cfg).validate()
    assert "\n" not in str(e.value)


def test_ring_and_grid_samplers():
    g = Streams([0])
    x = RING.batch(4000, g)[0]
    assert x.shape == (4000, 2)
    assert (x.norm(dim=1) - 1).abs().max() < 0.06  # radius 1, σ 0.01
    grid = load_source("grid").batch(5000, g)[0]
    assert set(grid.round().unique().tolist()) <= {-4.0, -2.0, 0.0, 2.0, 4.0}


def test_stacked_mnist_batches_are_three_independent_digits():
    imgs = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 28, 28).contiguous()
    src = sources.StackedMNIST(ImageData("mnist", "train", imgs, torch.arange(10)))
    b = src.batch(500, Streams([0]))[0]
    assert b.shape == (500, 3, 28, 28) and src.shape == (3, 28, 28)
    channels = ((b[:, :, 0, 0] + 1) * 127.5).round().long()
    assert len({tuple(c) for c in channels.tolist()}) > 300  # many of the 1,000 combinations
