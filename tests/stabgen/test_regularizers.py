"""Each regularizer against a value computed by hand on a tiny model.

Penalties work on populations: `ctx` stacks the given modules as a population of one (tensors get a
leading member axis) and `penalty` returns that member's value; test_population.py checks that a
member's penalty in a population equals its solo value."""

import copy

import pytest
import torch
import torch.nn as nn

from stabgen.errors import StabgenError
from stabgen.models.gan import MLPGenerator
from stabgen.regularizers import REGULARIZERS, RegContext, applicable
from stabgen.stacked import Stacked
from stabgen.streams import Streams
from stabgen.trial import TrialConfig


def ctx(modules, real=None, fake=None, features=None, seed=0, d_real=None, d_fake=None):
    real = real if real is not None else torch.zeros(4, 3)
    fake = fake if fake is not None else real
    one = lambda t: None if t is None else t.unsqueeze(0)  # noqa: E731
    nets = Stacked([nn.ModuleDict(modules)])
    return RegContext(nets, one(real), one(fake), Streams([seed]), one(features), one(d_real), one(d_fake))


def penalty(name, c, reg=None):
    out = (reg or REGULARIZERS.get(name)()).penalty(c)
    assert out.shape == (1,)
    return out[0]


def small_generator():
    g = MLPGenerator(z_dim=2, image_shape=(1, 1, 3), hidden=2)
    with torch.no_grad():
        g.hidden.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        g.hidden.bias.copy_(torch.tensor([10.0, -10.0]))  # biases are not penalized
        g.out.weight.copy_(torch.tensor([[3.0, 0.0], [-1.0, 1.0], [0.0, -0.5]]))
        g.out.bias.fill_(7.0)
    return g


def test_none_is_zero():
    assert penalty("none", ctx({"generator": small_generator()})).item() == 0.0


def test_l1_sums_absolute_generator_weights():
    # |1|+|−2|+|.5|+0 + 3+0+1+1+0+.5 = 9.0
    assert penalty("l1", ctx({"generator": small_generator()})).item() == pytest.approx(9.0)


def test_l2_sums_squared_generator_weights():
    # 1+4+.25 + 9+1+1+.25 = 16.5
    assert penalty("l2", ctx({"generator": small_generator()})).item() == pytest.approx(16.5)


def test_feature_norm_is_mean_l2_norm_of_features():
    h = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])  # norms 5, 1, 10
    val = penalty("feature_norm", ctx({"generator": small_generator()}, features=h))
    assert val.item() == pytest.approx(16.0 / 3)


def test_output_norm_is_the_seeds_sum_of_sample_norms():
    """Reg(G) = Σᵢ ‖G(φᵢ)‖₂ (the seed's §4.1): summed over samples, on the outputs, not the features."""
    fake = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])  # norms 5, 1, 10
    features = torch.full((3, 2), 100.0)  # what feature_norm would read: must not enter
    val = penalty("output_norm", ctx({"generator": small_generator()}, real=torch.zeros(3, 2), fake=fake,
                                     features=features))
    assert val.item() == pytest.approx(16.0)


def test_output_norm_of_images_takes_each_samples_norm_over_all_pixels():
    fake = torch.zeros(2, 1, 2, 2)
    fake[0, 0, 0, 0], fake[0, 0, 1, 1] = 3.0, -4.0  # ‖·‖ = 5
    fake[1] = 0.5  # four pixels of 0.5: ‖·‖ = 1
    val = penalty("output_norm", ctx({"generator": small_generator()}, real=torch.zeros(2, 1, 2, 2), fake=fake))
    assert val.item() == pytest.approx(6.0)


def test_a_vae_offers_output_norm_its_decoders_mean():
    """The VAE step hands the decoder's output (tanh of its logits, the generator's own output) to
    the penalty, so output_norm reads G(z) at the posterior samples."""
    import torch.nn.functional as F

    from stabgen.models.vae import vae_terms

    g = MLPGenerator(z_dim=2, image_shape=(1, 1, 3), hidden=2)
    enc = lambda x: (torch.zeros(x.shape[0], 2), torch.zeros(x.shape[0], 2))  # noqa: E731  μ = 0, σ = 1
    x, eps = torch.zeros(4, 1, 1, 3), torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    t = vae_terms(enc, g.features, g.logits, x, eps)
    torch.testing.assert_close(t["output"], g(eps))
    assert F.mse_loss(t["output"], torch.tanh(g.logits(g.features(eps)))).item() == 0.0


def test_feature_norm_uses_the_generators_hidden_features():
    g = small_generator()
    z = torch.tensor([[1.0, 1.0]])
    h = g.features(z)  # leaky_relu([1−2+10, .5−10]) = [9, −0.095]
    torch.testing.assert_close(h, torch.tensor([[9.0, -9.5 * 0.2]]))


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w


class Quadratic(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, x):
        return 0.5 * ((x @ self.a) * x).sum(1)


def test_gp_of_linear_discriminator_is_norm_minus_one_squared():
    w = torch.tensor([3.0, 0.0, 4.0])  # ‖w‖ = 5 → (5 − 1)² = 16 at every interpolate
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    val = penalty("gp", ctx({"discriminator": Linear(w)}, real, fake))
    assert val.item() == pytest.approx(16.0)


def test_gp_is_differentiable_in_discriminator_parameters():
    c = ctx({"discriminator": Linear(torch.tensor([3.0, 0.0, 4.0]))}, torch.randn(4, 3), torch.randn(4, 3))
    (grad,) = torch.autograd.grad(penalty("gp", c), c.nets.flat["discriminator"])
    # d/dw (‖w‖ − 1)² = 2(‖w‖ − 1) w/‖w‖ = 8/5 · w
    torch.testing.assert_close(grad[0], 1.6 * torch.tensor([3.0, 0.0, 4.0]))


def test_r1_of_quadratic_discriminator():
    a = torch.tensor([[2.0, 1.0], [1.0, 3.0]])  # symmetric: ∇D(x) = A x
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    want = 0.5 * ((real @ a) ** 2).sum(1).mean()  # ½ E‖Ax‖² = ½·(5 + 10 + 25)/3
    val = penalty("r1", ctx({"discriminator": Quadratic(a)}, real))
    assert val.item() == pytest.approx(want.item()) == pytest.approx(20.0 / 3)


def test_families():
    assert set(applicable("gan")) == {"none", "l1", "l2", "feature_norm", "output_norm", "gp", "r1", "r2", "dragan", "spectral_norm",
                                      "consistency", "instance_noise", "orthogonal", "lecam"}
    assert set(applicable("vae")) == {"none", "l1", "l2", "feature_norm", "output_norm", "orthogonal"}


def test_r2_of_quadratic_discriminator_uses_fake():
    a = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    fake = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    val = penalty("r2", ctx({"discriminator": Quadratic(a)}, torch.zeros(3, 2), fake))
    assert val.item() == pytest.approx(20.0 / 3)


def test_dragan_of_linear_discriminator():
    val = penalty("dragan", ctx({"discriminator": Linear(torch.tensor([3.0, 0.0, 4.0]))},
                                                   torch.randn(6, 3)))
    assert val.item() == pytest.approx(16.0)


def test_spectral_norm_makes_each_weight_unit_spectral_norm():
    from stabgen.models.conv import build_infogan
    torch.manual_seed(0)  # power iteration's speed depends on the start (and the spectral gap)
    modules = build_infogan((1, 28, 28), 64)
    REGULARIZERS.get("spectral_norm")().transform(modules)
    disc = modules["discriminator"]
    with torch.no_grad():
        for _ in range(30):  # power iteration advances once per training-mode forward pass
            disc(torch.randn(4, 1, 28, 28))
    disc.eval()
    from stabgen.regularizers import SpectralNormed
    layers = [m for m in disc.modules() if isinstance(m, SpectralNormed)]
    assert len(layers) == 4
    for m in layers:
        sigma = torch.linalg.svdvals(m.weight().detach().flatten(1))[0].item()
        assert abs(sigma - 1) < 1e-2, sigma


def test_spectral_norm_matches_torchs_parametrization():
    """Same u, v start → the same normalized weight, forward after forward (torch's spectral_norm
    is the reference; ours exists because its out= update does not run under vmap)."""
    from torch.nn.utils.parametrizations import spectral_norm
    from stabgen.regularizers import SpectralNormed
    torch.manual_seed(0)
    for layer in (nn.Linear(7, 5), nn.Conv2d(3, 4, 3)):
        ref = spectral_norm(copy.deepcopy(layer))
        ours = SpectralNormed(copy.deepcopy(layer))
        ours.u.copy_(ref.parametrizations.weight[0]._u)
        ours.v.copy_(ref.parametrizations.weight[0]._v)
        x = torch.randn(2, 7) if isinstance(layer, nn.Linear) else torch.randn(2, 3, 6, 6)
        for _ in range(4):
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.weight(), ref.weight, rtol=1e-5, atol=1e-6)


class PixelSum(nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1)


def test_consistency_is_zero_for_an_invariant_discriminator():
    real = torch.rand(5, 1, 28, 28)
    val = penalty("consistency", ctx({"discriminator": PixelSum()}, real, seed=3))
    assert val.item() == pytest.approx(0.0, abs=1e-6)  # a circular shift keeps the pixel sum


def test_consistency_penalizes_a_position_sensitive_discriminator():
    class TopLeft(nn.Module):
        def forward(self, x):
            return x[:, 0, 0, 0]
    real = torch.rand(5, 1, 28, 28)
    reg = REGULARIZERS.get("consistency")()
    vals = [penalty("consistency", ctx({"discriminator": TopLeft()}, real, seed=s), reg).item() for s in range(5)]
    assert max(vals) > 0.01


def test_instance_noise_anneals_to_zero():
    reg = REGULARIZERS.get("instance_noise")()
    x = torch.zeros(2, 20000, 2)  # two members, σ₀ = λ = 0.5 and 2.0
    lam, noise = torch.tensor([0.5, 2.0]), Streams([0, 1])
    start, half = reg.d_inputs(x, 0.0, lam, noise), reg.d_inputs(x, 0.5, lam, noise)
    torch.testing.assert_close(start.flatten(1).std(1), torch.tensor([0.5, 2.0]), rtol=0.02, atol=0)
    torch.testing.assert_close(half.flatten(1).std(1), torch.tensor([0.25, 1.0]), rtol=0.02, atol=0)
    assert torch.equal(reg.d_inputs(x, 1.0, lam, noise), x)


def test_orthogonal_is_zero_for_orthogonal_weights():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))
    g = MLPGenerator(z_dim=6, image_shape=(1, 1, 6), hidden=6)
    with torch.no_grad():
        g.hidden.weight.copy_(q)
        g.out.weight.copy_(q.T)
    reg = REGULARIZERS.get("orthogonal")()
    assert reg.penalty(ctx({"generator": g})).item() == pytest.approx(0.0, abs=1e-9)
    with torch.no_grad():
        g.hidden.weight.mul_(2.0)  # ‖4I − I‖²_F = 9·6
    assert reg.penalty(ctx({"generator": g})).item() == pytest.approx(54.0, rel=1e-5)


def test_orthogonal_semi_orthogonal_rectangular_weight():
    q, _ = torch.linalg.qr(torch.randn(8, 3))  # 8×3 with orthonormal columns
    g = MLPGenerator(z_dim=3, image_shape=(1, 1, 3), hidden=8)
    with torch.no_grad():
        g.hidden.weight.copy_(q)       # [8, 3]: columns orthonormal
        g.out.weight.copy_(q.T)        # [3, 8]: rows orthonormal
    assert penalty("orthogonal", ctx({"generator": g})).item() == pytest.approx(0.0, abs=1e-9)


def test_lecam_with_its_moving_averages():
    reg = REGULARIZERS.get("lecam")()
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    val = penalty("lecam", ctx({}, torch.zeros(2, 1), d_real=d_real, d_fake=d_fake), reg)
    ema_r, ema_f = 0.01 * 2.0, 0.01 * -1.0  # first update from 0 with decay 0.99
    want = ((d_real - ema_f) ** 2).mean() + ((d_fake - ema_r) ** 2).mean()
    assert val.item() == pytest.approx(want.item())
    assert reg.ema_real.item() == pytest.approx(ema_r) and reg.ema_fake.item() == pytest.approx(ema_f)


def test_discriminator_regularizer_on_vae_is_rejected():
    with pytest.raises(StabgenError, match="does not apply to vae"):
        TrialConfig(model="vae", regularizer="r1", lam=1.0).validate()


def test_unknown_regularizer_names_the_known_ones():
    with pytest.raises(StabgenError, match="unknown regularizer 'l3'.*feature_norm"):
        REGULARIZERS.get("l3")


# --- the math, with a nonlinear D, fake ≠ real and the random points replayed from the member's stream ---
# A quadratic D(x) = ½ xᵀAx has ∇D(x) = Ax, which differs at every point, so a penalty evaluated at the
# wrong points (fake for real, real for interpolates, unperturbed for perturbed) gives another number.

A = torch.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 1.5]], dtype=torch.float64)
REAL = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [1.0, 1.0, 0.5], [-2.0, 0.5, 1.0]], dtype=torch.float64)
FAKE = torch.tensor([[0.5, -1.0, 0.0], [3.0, 0.0, 1.0], [-1.0, 2.0, 2.0], [0.0, 0.0, -3.0]], dtype=torch.float64)


def quad_ctx(seed=5):
    return ctx({"discriminator": Quadratic(A.clone())}, REAL, FAKE, seed=seed)


def test_r1_is_taken_at_the_real_samples_not_the_fake():
    want = 0.5 * (REAL @ A).pow(2).sum(1).mean()
    assert penalty("r1", quad_ctx()).item() == pytest.approx(want.item(), rel=1e-12)
    assert want.item() != pytest.approx((0.5 * (FAKE @ A).pow(2).sum(1).mean()).item())


def test_r2_is_taken_at_the_fake_samples():
    want = 0.5 * (FAKE @ A).pow(2).sum(1).mean()
    assert penalty("r2", quad_ctx()).item() == pytest.approx(want.item(), rel=1e-12)


def test_gp_is_taken_at_the_interpolates_its_stream_draws():
    eps = Streams([5]).uniform((4,), torch.float64)[0][:, None]  # the penalty's first draw, replayed
    x_hat = eps * REAL + (1 - eps) * FAKE
    want = ((x_hat @ A).norm(dim=1) - 1).pow(2).mean()
    assert penalty("gp", quad_ctx()).item() == pytest.approx(want.item(), rel=1e-12)
    at_real = ((REAL @ A).norm(dim=1) - 1).pow(2).mean()
    assert want.item() != pytest.approx(at_real.item(), rel=1e-3)


def test_dragan_is_taken_at_the_perturbed_real_points_its_stream_draws():
    s = Streams([5])
    u = s.uniform((4, 3), torch.float64)[0]  # first draw: the perturbation direction
    alpha = s.uniform((4,), torch.float64)[0][:, None]  # second: the mixing weight per sample
    x_hat = alpha * REAL + (1 - alpha) * (REAL + 0.5 * REAL.std() * u)
    want = ((x_hat @ A).norm(dim=1) - 1).pow(2).mean()
    assert penalty("dragan", quad_ctx()).item() == pytest.approx(want.item(), rel=1e-12)
    unperturbed = ((REAL @ A).norm(dim=1) - 1).pow(2).mean()
    assert want.item() != pytest.approx(unperturbed.item(), rel=1e-3)


def test_consistency_compares_d_with_d_of_the_replayed_shift():
    class Weighted(nn.Module):  # a position-sensitive D: every pixel its own weight
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(1, 6, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64))

        def forward(self, x):
            return (x * self.w).flatten(1).sum(1)

    real = torch.rand(3, 1, 6, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for seed in range(4):
        shift = (Streams([seed]).integers(5, (2,)) - 2)[0].tolist()  # the penalty's draw: dy, dx ∈ [−2, 2]
        d = Weighted()
        want = (d(real) - d(torch.roll(real, shifts=shift, dims=(2, 3)))).pow(2).mean()
        got = penalty("consistency", ctx({"discriminator": d}, real, seed=seed))
        assert got.item() == pytest.approx(want.item(), rel=1e-12)
        flipped = (d(real) - d(torch.flip(real, dims=(3,)))).pow(2).mean()
        assert got.item() != pytest.approx(flipped.item(), rel=1e-3)
        assert max(abs(v) for v in shift) <= 2


def test_consistency_on_2d_points_jitters_by_the_replayed_normal():
    # points (K, B, 2) are not images: the augmentation is x + 0.01·ε, ε the member's next normal draw
    want = (Quadratic(A.clone())(REAL) - Quadratic(A.clone())(REAL + 0.01 * Streams([3]).normal((4, 3), torch.float64)[0]))
    got = penalty("consistency", ctx({"discriminator": Quadratic(A.clone())}, REAL, seed=3))
    assert got.item() == pytest.approx(want.pow(2).mean().item(), rel=1e-10)
    assert got.item() > 0


def test_instance_noise_adds_the_replayed_normal_scaled_by_the_annealed_sigma():
    reg = REGULARIZERS.get("instance_noise")()
    x = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lam = torch.tensor([0.3, 1.7], dtype=torch.float64)
    got = reg.d_inputs(x, 0.3, lam, Streams([4, 9]))
    eps = Streams([4, 9]).normal((5, 3), torch.float64)
    torch.testing.assert_close(got, x + (lam * 0.7)[:, None, None] * eps, rtol=1e-14, atol=0)
    x32 = x.float()  # D's inputs keep D's dtype whatever λ's
    assert reg.d_inputs(x32, 0.3, lam, Streams([4, 9])).dtype == torch.float32


def test_lecam_moving_averages_accumulate_over_steps_per_member():
    reg = REGULARIZERS.get("lecam")()
    nets = Stacked([nn.ModuleDict({}), nn.ModuleDict({})])
    real = torch.zeros(2, 2, 1)
    ema_r, ema_f = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    steps = [(torch.tensor([[1.0, 3.0], [0.5, -4.0]]), torch.tensor([[-2.0, 0.5], [7.0, 1.0]])),
             (torch.tensor([[2.0, -1.0], [3.0, 3.0]]), torch.tensor([[0.25, -3.0], [1.5, 0.0]]))]
    for d_real, d_fake in steps:
        d_real, d_fake = d_real.double(), d_fake.double()
        val = reg.penalty(RegContext(nets, real, real, Streams([0, 1]), None, d_real, d_fake))
        ema_r = 0.99 * ema_r + 0.01 * d_real.mean(1)
        ema_f = 0.99 * ema_f + 0.01 * d_fake.mean(1)
        want = ((d_real - ema_f[:, None]) ** 2).mean(1) + ((d_fake - ema_r[:, None]) ** 2).mean(1)
        torch.testing.assert_close(val, want, rtol=1e-12, atol=0)  # each member its own averages
    torch.testing.assert_close(reg.ema_real, ema_r, rtol=1e-12, atol=0)
    torch.testing.assert_close(reg.ema_fake, ema_f, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["gp", "dragan", "r1", "r2", "consistency"])
def test_each_member_of_a_population_gets_its_solo_penalty(name):
    # two members with their own D, data and stream: statistics taken over the batch (DRAGAN's
    # std, the means) must be each member's own, never pooled over the population
    a2 = A.clone() * torch.tensor([[1.0], [0.5], [2.0]], dtype=torch.float64)
    reals, fakes, mats, seeds = [REAL, 3 * FAKE], [FAKE, REAL - 1], [A, a2], [5, 8]
    nets = Stacked([nn.ModuleDict({"discriminator": Quadratic(m.clone())}) for m in mats])
    both = RegContext(nets, torch.stack(reals), torch.stack(fakes), Streams(seeds), None, None, None)
    got = REGULARIZERS.get(name)().penalty(both)
    solo = [penalty(name, ctx({"discriminator": Quadratic(m.clone())}, r, f, seed=s))
            for r, f, m, s in zip(reals, fakes, mats, seeds)]
    torch.testing.assert_close(got, torch.stack(solo), rtol=1e-12, atol=0)
