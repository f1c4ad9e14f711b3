import pytest
import torch
import torch.nn.functional as F

from stabgen.objectives import OBJECTIVES
from stabgen.regularizers import REGULARIZERS
from stabgen.train import Hyper, Population, gan_step
from stabgen.stacked import Stacked
from stabgen.streams import Streams
from stabgen.trial import TrialConfig, build

R = torch.tensor([2.0, -1.0, 0.5])
Fk = torch.tensor([-3.0, 0.0, 1.5])
sig = torch.sigmoid


def test_mm_and_ns_discriminator_is_binary_cross_entropy():
    want = -(torch.log(sig(R)).mean() + torch.log(1 - sig(Fk)).mean())
    for name in ("mm", "ns"):
        torch.testing.assert_close(OBJECTIVES.get(name).d_loss(R, Fk), want)


def test_generator_losses_match_formulas():
    torch.testing.assert_close(OBJECTIVES.get("mm").g_loss(Fk), torch.log(1 - sig(Fk)).mean())
    torch.testing.assert_close(OBJECTIVES.get("ns").g_loss(Fk), -torch.log(sig(Fk)).mean())
    torch.testing.assert_close(OBJECTIVES.get("ls").g_loss(Fk), 0.5 * ((Fk - 1) ** 2).mean())
    torch.testing.assert_close(OBJECTIVES.get("hinge").g_loss(Fk), -Fk.mean())


def test_ls_and_hinge_discriminator():
    torch.testing.assert_close(OBJECTIVES.get("ls").d_loss(R, Fk), 0.5 * ((R - 1) ** 2).mean() + 0.5 * (Fk ** 2).mean())
    torch.testing.assert_close(OBJECTIVES.get("hinge").d_loss(R, Fk),
                               torch.clamp(1 - R, min=0).mean() + torch.clamp(1 + Fk, min=0).mean())


def one_member(cfg, real):
    """A population of one whose data source always returns `real`."""
    class Fixed:
        kind, shape = "image", tuple(real.shape[1:])

        def batch(self, n, noise):
            return real.unsqueeze(0)
    nets = Stacked([build(cfg, (1, 28, 28), torch.device("cpu"))])
    h = Hyper.of([cfg], torch.device("cpu"), torch.float32)
    return Population(cfg, nets, h, Streams([cfg.seed]), Fixed(), REGULARIZERS.get(cfg.regularizer)(),
                      torch.float32, torch.ones(1, dtype=torch.bool), torch.ones((), dtype=torch.float64))  # clock: step 1


def test_ns_generator_step_scores_fake_not_real():
    """The seed listing scored D(real) in the generator loss; ours must score D(G(z))."""
    cfg = TrialConfig(model="gan", objective="ns", lr=1e-3, batch_size=8, seed=3)
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    pop = one_member(cfg, real)
    gen_before = pop.nets.member(0)["generator"]
    replay = Streams([cfg.seed])
    out = gan_step(pop)(1)
    replay.normal((8, cfg.z_dim))  # the D step's draw
    z = replay.normal((8, cfg.z_dim))[0]
    disc = pop.nets.member(0)["discriminator"]  # D after its update, G before its own
    with torch.no_grad():
        d_fake, d_real = disc(gen_before(z)), disc(real)
    torch.testing.assert_close(out["loss_g"][0], F.softplus(-d_fake).mean())
    assert not torch.allclose(out["loss_g"][0], F.softplus(-d_real).mean())


def test_wgan_family_losses():
    for name in ("wgan", "wgan_gp"):
        torch.testing.assert_close(OBJECTIVES.get(name).d_loss(R, Fk), Fk.mean() - R.mean())
        torch.testing.assert_close(OBJECTIVES.get(name).g_loss(Fk), -Fk.mean())
    assert OBJECTIVES.get("wgan").clip and OBJECTIVES.get("wgan_gp").penalty == "gp"
    assert OBJECTIVES.get("dragan").penalty == "dragan"
    torch.testing.assert_close(OBJECTIVES.get("dragan").g_loss(Fk), -torch.log(sig(Fk)).mean())


def test_wgan_step_clips_the_critic_and_runs_n_critic_updates():
    cfg = TrialConfig(model="gan", objective="wgan", clip_value=0.005, n_critic=3, lr=1e-2, batch_size=4)
    pop = one_member(cfg, torch.rand(4, 1, 28, 28) * 2 - 1)
    calls = []
    batch = pop.source.batch
    pop.source.batch = lambda n, noise: calls.append(1) or batch(n, noise)
    gan_step(pop)(1)
    assert len(calls) == 3
    assert pop.nets.flat["discriminator"].abs().max() <= 0.005 + 1e-9


@pytest.mark.parametrize("name", sorted(OBJECTIVES.names()))
def test_population_logits_give_each_member_its_own_loss(name):
    """(K, B) logits: member k's losses are those of its own (B,) logits alone, computed here by
    torch's own functions (BCE with logits, MSE, ReLU hinge, means) — a loss that averaged over the
    members (mean over every axis) or over the batch of another member would mix them."""
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(3, 7, generator=g, dtype=torch.float64), torch.randn(3, 7, generator=g, dtype=torch.float64)
    obj = OBJECTIVES.get(name)
    d, gl = obj.d_loss(real, fake), obj.g_loss(fake)
    assert d.shape == gl.shape == (3,)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    for k in range(3):
        r, f = real[k], fake[k]
        want_d = {"mm": bce(r, torch.ones(7, dtype=r.dtype)) + bce(f, torch.zeros(7, dtype=r.dtype)),
                  "ls": 0.5 * torch.nn.functional.mse_loss(r, torch.ones_like(r)) + 0.5 * (f ** 2).mean(),
                  "hinge": torch.relu(1 - r).mean() + torch.relu(1 + f).mean(),
                  "wgan": f.mean() - r.mean()}
        want_d["ns"] = want_d["dragan"] = want_d["mm"]
        want_d["wgan_gp"] = want_d["wgan"]
        want_g = {"mm": torch.log(1 - torch.sigmoid(f)).mean(), "ns": -torch.log(torch.sigmoid(f)).mean(),
                  "ls": 0.5 * torch.nn.functional.mse_loss(f, torch.ones_like(f)), "hinge": -f.mean()}
        want_g["dragan"] = want_g["ns"]
        want_g["wgan"] = want_g["wgan_gp"] = want_g["hinge"]
        assert torch.allclose(d[k], want_d[name]), k
        assert torch.allclose(gl[k], want_g[name]), k
