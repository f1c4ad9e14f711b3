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
