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

from helpers import image_data, random_images
import torch.nn.functional as F

from stabgen import sources
from stabgen.datasets import load_source
from stabgen.models.vae import vae_terms
from stabgen.streams import Streams
from stabgen.train import train
from stabgen.trial import TrialConfig, build

F64 = torch.float64
RING = load_source("ring")
IMAGES = sources.ImageSource(image_data(random_images(64)))

D_LOSS = {  # the papers' discriminator losses on logits (Lucic 2018, table 1)
    "ns": lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    "dragan": lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    "ls": lambda r, f: 0.5 * (r - 1).pow(2).mean() + 0.5 * f.pow(2).mean(),
    "hinge": lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
    "wgan": lambda r, f: f.mean() - r.mean(),
    "wgan_gp": lambda r, f: f.mean() - r.mean(),
}
G_LOSS = {"ns": lambda f: F.softplus(-f).mean(), "dragan": lambda f: F.softplus(-f).mean(),
          "ls": lambda f: 0.5 * (f - 1).pow(2).mean(), "hinge": lambda f: -f.mean(), "wgan": lambda f: -f.mean(),
          "wgan_gp": lambda f: -f.mean()}
LR_LAMBDA = {  # torch.optim.lr_scheduler.LambdaLR's factor after s scheduler steps (one per G step)
    "constant": lambda steps: lambda s: 1.0,
    "linear": lambda steps: lambda s: 1.0 - s / steps,
    "cosine": lambda steps: lambda s: 0.5 * (1.0 + math.cos(math.pi * s / steps)),
}


def input_grad(d, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return g.flatten(1)


def one_centred(d, x_hat):
    """E(‖∇D(x̂)‖ − 1)² (Gulrajani 2017; Kodali 2017)."""
    return (input_grad(d, x_hat).norm(dim=1) - 1).pow(2).mean()


def grad_norm(params) -> float:
    """‖∇‖₂ over every parameter of a net: what the trainer logs as grad_norm_d / grad_norm_g."""
    return math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None))


def d_penalty(cfg, disc, real, fake, d_real, noise) -> torch.Tensor:
    """The regularizer under study on D's side, from its paper (0 for the others)."""
    if cfg.regularizer == "r1":  # Mescheder 2018: ½ E‖∇D(x_real)‖²
        return 0.5 * input_grad(disc, real).pow(2).sum(1).mean()
    if cfg.regularizer == "r2":  # ½ E‖∇D(G(z))‖²
        return 0.5 * input_grad(disc, fake).pow(2).sum(1).mean()
    if cfg.regularizer == "consistency":  # Zhang 2020 on 2D points: T(x) = x + 0.01·N(0, I)
        return (d_real - disc(real + 0.01 * noise.normal(real.shape, F64)[0])).pow(2).mean()
    return real.new_zeros(())


def objective_penalty(cfg, disc, real, fake, noise) -> torch.Tensor:
    """The objective's own penalty, weighted by obj_lam."""
    if cfg.objective == "wgan_gp":  # x̂ on real–fake lines, ε ~ U(0, 1) per sample
        eps = noise.uniform((cfg.batch_size,), F64)[0].reshape(-1, *[1] * (real.dim() - 1))
        return one_centred(disc, eps * real + (1 - eps) * fake)
    if cfg.objective == "dragan":  # x̂ = αx + (1 − α)(x + ½·std(x)·u), u, α ~ U(0, 1)
        u = noise.uniform(real.shape, F64)[0]
        alpha = noise.uniform((cfg.batch_size,), F64)[0].reshape(-1, *[1] * (real.dim() - 1))
        return one_centred(disc, alpha * real + (1 - alpha) * (real + 0.5 * real.flatten().std() * u))
    return real.new_zeros(())


def g_penalty(cfg, gen, hidden) -> torch.Tensor:
    if cfg.regularizer == "feature_norm":  # mean over the batch of ‖h(z)‖₂
        return hidden.flatten(1).norm(dim=1).mean()
    if cfg.regularizer == "l2":  # Σw² over G's weight matrices (not biases)
        return sum(p.pow(2).sum() for p in gen.parameters() if p.dim() >= 2)
    return hidden.new_zeros(())


def reference_gan(cfg: TrialConfig, source, log: list | None = None) -> dict:
    """n_critic Adam steps on D (loss + λ·its penalty + obj_lam·the objective's; WGAN clips every D
    weight after each of them), then one on G (loss + λ·its penalty). Instance noise (Sønderby 2017):
    D sees x + λ(1 − t)·ε on real and fake inputs alike, t = (step − 1)/steps. Appends each step's
    logged figures to `log`; returns the modules."""
    m = build(cfg, source.shape, torch.device("cpu")).to(F64)
    gen, disc = m["generator"], m["discriminator"]
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, LR_LAMBDA[cfg.lr_schedule](cfg.steps)) for o in (opt_d, opt_g)]
    noise = Streams([cfg.seed])
    for it in range(1, cfg.steps + 1):
        sigma = cfg.lam * max(0.0, 1.0 - (it - 1) / cfg.steps)

        def see(x):
            return x + sigma * noise.normal(x.shape, F64)[0] if cfg.regularizer == "instance_noise" else x

        for _ in range(cfg.n_critic):
            real = source.batch(cfg.batch_size, noise)[0].to(F64)
            z = noise.normal((cfg.batch_size, cfg.z_dim), F64)[0]
            with torch.no_grad():
                fake = gen(z)
            d_real, d_fake = disc(see(real)), disc(see(fake))
            loss_d = D_LOSS[cfg.objective](d_real, d_fake)
            pen_d = d_penalty(cfg, disc, real, fake, d_real, noise)
            pen_obj = objective_penalty(cfg, disc, real, fake, noise)
            opt_d.zero_grad()
            (loss_d + cfg.lam * pen_d + cfg.obj_lam * pen_obj).backward()
            gnorm_d = grad_norm(disc.parameters())
            opt_d.step()
            if cfg.objective == "wgan":  # Arjovsky 2017: clip after every critic update
                with torch.no_grad():
                    for p in disc.parameters():
                        p.clamp_(-cfg.clip_value, cfg.clip_value)
        z = noise.normal((cfg.batch_size, cfg.z_dim), F64)[0]
        hidden = gen.features(z)
        loss_g = G_LOSS[cfg.objective](disc(see(gen.decode(hidden))))
        pen_g = g_penalty(cfg, gen, hidden)
        opt_g.zero_grad()
        (loss_g + cfg.lam * pen_g).backward()
        gnorm_g = grad_norm(gen.parameters())
        opt_g.step()
        for sched in scheds:  # D's n_critic steps of one iteration share that iteration's lr
            sched.step()
        if log is not None:
            log.append({"step": it, "loss_d": loss_d.item(), "loss_g": loss_g.item(),
                        "penalty": (pen_d + pen_g + pen_obj).item(), "grad_norm_d": gnorm_d, "grad_norm_g": gnorm_g})
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
    # every objective's own step (issue 34): WGAN clipping after each of 3 critic updates, LS, DRAGAN
    "wgan, clipping after each of 3 critic steps (2D MLP)": (TrialConfig(
        dataset="ring", model="mlp2d_small", objective="wgan", clip_value=0.05, n_critic=3, z_dim=2), RING),
    "ls (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ls", z_dim=2), RING),
    "dragan (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="dragan", obj_lam=5.0, z_dim=2),
                        RING),
    # one regularizer of each placement: D-input transform, D-output penalty, D penalty on fakes,
    # G features, G weights
    "ns + instance noise, annealed (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ns",
                                                            regularizer="instance_noise", lam=0.5, z_dim=2), RING),
    "ns + consistency (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ns",
                                               regularizer="consistency", lam=2.0, z_dim=2), RING),
    "hinge + r2, n_critic 2 (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="hinge",
                                                     regularizer="r2", lam=1.0, n_critic=2, z_dim=2), RING),
    "ns + feature_norm (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ns",
                                                regularizer="feature_norm", lam=0.1, z_dim=2), RING),
    "ls + l2 (2D MLP)": (TrialConfig(dataset="ring", model="mlp2d_small", objective="ls", regularizer="l2",
                                     lam=1e-3, z_dim=2), RING),
}


@pytest.mark.parametrize("name", CASES)
def test_gan_training_equals_the_reference_loop(name):
    base, source = CASES[name]
    steps = 20 if base.model == "infogan" else 100  # the conv net is slow on CPU (float64); 20 steps still compound
    cfg = TrialConfig(**{**base.__dict__, "steps": steps, "batch_size": 8, "lr": 2e-3, "beta1": 0.5,
                         "beta2": 0.99, "seed": 11, "log_every": 10, "eval_every": 10**6})
    build_start.clear()
    build_start.update(build(cfg, source.shape, torch.device("cpu")).to(F64))
    res = train(cfg, source, "cpu", dtype=F64)
    assert res.status == "completed"
    log: list[dict] = []
    assert_same(res.modules, reference_gan(cfg, source, log))
    # the logged figures (what the stability figures and the divergence detector read) by hand
    ref = {row["step"]: row for row in log}
    assert [row["step"] for row in res.history] == list(range(10, steps + 1, 10))
    for row in res.history:
        for key in ("loss_d", "loss_g", "penalty", "grad_norm_d", "grad_norm_g"):
            assert row[key] == pytest.approx(ref[row["step"]][key], rel=1e-6, abs=1e-9), (row["step"], key)


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
