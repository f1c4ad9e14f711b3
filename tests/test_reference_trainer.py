"""stabgen.train against an independent reference trainer written here in plain PyTorch.

The reference uses nn.Modules, torch.optim.Adam and torch.autograd.grad, and none of stabgen's
training code (no Stacked, no vmap, no stabgen Adam, no objective or regularizer classes): each
loss and penalty is written out from its paper's formula. Only the architecture (stabgen.trial.build,
so both start from the same weights) and the data/noise draws (the same per-member stream, drawn in
the same order) are shared — the inputs, not the trainer. 100 steps in float64 must agree to 1e-6.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stabgen import sources
from stabgen.data import ImageData
from stabgen.datasets import load_source
from stabgen.models.vae import vae_terms
from stabgen.streams import Streams
from stabgen.train import train
from stabgen.trial import TrialConfig, build

F64 = torch.float64
RING = load_source("ring")
IMAGES = sources.ImageSource(ImageData(
    "tiny", "train", torch.randint(0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8), torch.zeros(64, dtype=torch.long)))

D_LOSS = {  # the papers' discriminator losses on logits
    "ns": lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    "hinge": lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
    "wgan_gp": lambda r, f: f.mean() - r.mean(),
}
G_LOSS = {"ns": lambda f: F.softplus(-f).mean(), "hinge": lambda f: -f.mean(), "wgan_gp": lambda f: -f.mean()}
LR_LAMBDA = {  # torch.optim.lr_scheduler.LambdaLR's factor after s scheduler steps (one per G step)
    "constant": lambda steps: lambda s: 1.0,
    "linear": lambda steps: lambda s: 1.0 - s / steps,
    "cosine": lambda steps: lambda s: 0.5 * (1.0 + math.cos(math.pi * s / steps)),
}


def input_grad(d, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return g.flatten(1)


def reference_gan(cfg: TrialConfig, source) -> dict:
    """n_critic Adam steps on D (loss + λ·R1 or obj_lam·GP), then one on G; returns the modules."""
    m = build(cfg, source.shape, torch.device("cpu")).to(F64)
    gen, disc = m["generator"], m["discriminator"]
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, LR_LAMBDA[cfg.lr_schedule](cfg.steps)) for o in (opt_d, opt_g)]
    noise = Streams([cfg.seed])
    for _ in range(cfg.steps):
        for _ in range(cfg.n_critic):
            real = source.batch(cfg.batch_size, noise)[0].to(F64)
            z = noise.normal((cfg.batch_size, cfg.z_dim), F64)[0]
            with torch.no_grad():
                fake = gen(z)
            loss = D_LOSS[cfg.objective](disc(real), disc(fake))
            if cfg.regularizer == "r1":  # Mescheder 2018: ½ E‖∇D(x_real)‖²
                loss = loss + cfg.lam * 0.5 * input_grad(disc, real).pow(2).sum(1).mean()
            if cfg.objective == "wgan_gp":  # Gulrajani 2017: E(‖∇D(x̂)‖ − 1)², x̂ on real–fake lines
                eps = noise.uniform((cfg.batch_size,), F64)[0].reshape(-1, *[1] * (real.dim() - 1))
                x_hat = eps * real + (1 - eps) * fake
                loss = loss + cfg.obj_lam * (input_grad(disc, x_hat).norm(dim=1) - 1).pow(2).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        z = noise.normal((cfg.batch_size, cfg.z_dim), F64)[0]
        loss_g = G_LOSS[cfg.objective](disc(gen(z)))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for sched in scheds:  # D's n_critic steps of one iteration share that iteration's lr
            sched.step()
    return m


def assert_same(ours, ref, nets=("generator", "discriminator")):
    for net in nets:
        a = torch.cat([p.detach().flatten() for p in ours[net].parameters()])
        b = torch.cat([p.detach().flatten() for p in ref[net].parameters()])
        assert not torch.equal(b, torch.cat([p.detach().flatten() for p in
                                            build_start[net].parameters()])), f"{net} did not train"
        assert ((a - b).norm() / b.norm()).item() < 1e-6, net
        sa = {k: v for k, v in ours[net].state_dict().items() if "running" in k}
        for k, v in sa.items():  # batch-norm running statistics too
            torch.testing.assert_close(v.double(), ref[net].state_dict()[k].double(), rtol=1e-6, atol=1e-9)


build_start: dict = {}


CASES = {
    "ns + r1 (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ns", regularizer="r1", lam=1.0,
                                     z_dim=2), RING),
    "wgan_gp, n_critic 2 (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="wgan_gp",
                                                 obj_lam=10.0, n_critic=2, z_dim=2), RING),
    "hinge + spectral norm (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="hinge",
                                                   regularizer="spectral_norm", z_dim=2), RING),
    "ns + r1, linear lr decay (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ns",
                                                      regularizer="r1", lam=1.0, z_dim=2, lr_schedule="linear"), RING),
    "wgan_gp, n_critic 2, cosine lr (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="wgan_gp",
                                                            obj_lam=10.0, n_critic=2, z_dim=2, lr_schedule="cosine"),
                                                RING),
    "ns, InfoGAN with batch norm": (TrialConfig(dataset="mnist", model="infogan", objective="ns", d_bn=True,
                                                z_dim=16), IMAGES),
}


@pytest.mark.parametrize("name", CASES)
def test_gan_training_equals_the_reference_loop(name):
    base, source = CASES[name]
    steps = 30 if base.model == "infogan" else 100  # the conv net is slow on CPU; 30 steps still compound
    cfg = TrialConfig(**{**base.__dict__, "steps": steps, "batch_size": 8, "lr": 2e-3, "beta1": 0.5,
                         "beta2": 0.99, "seed": 11, "log_every": 10, "eval_every": 10**6})
    build_start.clear()
    build_start.update(build(cfg, source.shape, torch.device("cpu")).to(F64))
    res = train(cfg, source, "cpu", dtype=F64)
    assert res.status == "completed"
    assert_same(res.modules, reference_gan(cfg, source))


def reference_vae(cfg: TrialConfig, source):
    """The ELBO written out: Bernoulli NLL of the pixels in [0, 1] under logits 2a (tanh(a) = 2σ(2a) − 1)
    plus β·KL(N(μ, σ²) ‖ N(0, I)), reparameterized z = μ + σε; one Adam over encoder and decoder."""
    m = build(cfg, source.shape, torch.device("cpu")).to(F64)
    enc, gen = m["encoder"], m["generator"]
    opt = torch.optim.Adam([*gen.parameters(), *enc.parameters()], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    noise = Streams([cfg.seed])
    for it in range(1, cfg.steps + 1):
        x = source.batch(cfg.batch_size, noise)[0].to(F64)
        eps = noise.normal((cfg.batch_size, cfg.z_dim), F64)[0]
        mu, logvar = enc(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        p = torch.sigmoid(2 * gen.logits(gen.features(z))).flatten(1)
        t = ((x + 1) / 2).flatten(1)
        nll = -(t * torch.log(p) + (1 - t) * torch.log1p(-p)).sum(1).mean()
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
        weight = cfg.beta * min(1.0, it / cfg.kl_warmup) if cfg.kl_warmup else cfg.beta
        opt.zero_grad()
        (nll + weight * kl).backward()
        opt.step()
    return m


def test_vae_training_equals_the_reference_elbo_loop():
    cfg = TrialConfig(dataset="mnist", model="vae", steps=100, batch_size=8, lr=1e-3, beta=2.0, kl_warmup=40,
                      z_dim=4, seed=5, log_every=10, eval_every=10**6)
    build_start.clear()
    build_start.update(build(cfg, IMAGES.shape, torch.device("cpu")).to(F64))
    res = train(cfg, IMAGES, "cpu", dtype=F64)
    assert_same(res.modules, reference_vae(cfg, IMAGES), nets=("generator", "encoder"))


def test_vae_terms_closed_form():
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²) per dimension; Bernoulli NLL by hand."""
    mu = torch.tensor([[[1.0, 0.0]]], dtype=F64)
    logvar = torch.tensor([[[0.0, math.log(4.0)]]], dtype=F64)
    x = torch.tensor([[[-1.0, 1.0]]], dtype=F64)  # pixels 0 and 1
    eps = torch.tensor([[[0.5, -1.0]]], dtype=F64)
    seen = {}

    def features(z):
        seen["z"] = z
        return z

    logits = lambda h: torch.tensor([[[0.0, math.log(3.0) / 2]]], dtype=F64)  # noqa: E731  → σ(2a) = 0.5, 0.75
    t = vae_terms(lambda v: (mu, logvar), features, logits, x, eps)
    torch.testing.assert_close(seen["z"], torch.tensor([[[1.5, -2.0]]], dtype=F64))  # μ + σε, σ = 1, 2
    assert t["kl"].item() == pytest.approx(0.5 + 0.5 * (4 - 1 - math.log(4)))
    assert t["recon"].item() == pytest.approx(math.log(2) - math.log(0.75))
