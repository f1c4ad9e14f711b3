"""Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually Converge?" — the Dirac-GAN.

Data δ₀, generator δ_θ, discriminator D(x) = ψx, f(t) = −log(1 + e^(−t)). The generator minimizes
L = f(D(x_fake)) + f(−D(x_real)) = f(ψθ) + f(0) and the discriminator maximizes it (minus its
penalty). Every gradient here comes from autograd on these losses in float64 — the penalties too
(R1/R2 differentiate D with respect to its input), so the closed forms are checked, not assumed.
Instance noise's expectations use Gauss-Hermite quadrature (deterministic, no seeds needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bench.papers.base import PAPERS, Claim, Context, Reproduction

T = torch.Tensor
H, START = 0.2, (1.0, 1.0)
STEPS = {"tiny": 50, "small": 500, "paper": 500}
SCHEMES = {"simultaneous": 0, "alternating 1 D step": 1, "alternating 5 D steps": 5}  # 0: simultaneous
CONVERGED = 1e-2  # final distance to (0, 0) below this (the start is √2 away) counts as converged
NOISE_NODES, NOISE_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)  # ∫ g(ε) N(ε; 0, 1) dε ≈ Σ wᵢ g(xᵢ)/√(2π)


def f(t: T) -> T:
    return -F.softplus(-t)


def identity(t: T) -> T:
    return t


def d_input_grad(psi: T, x: T) -> T:
    """∂D/∂x at x for D(x) = ψx, by autograd (what an R1/R2 penalty differentiates)."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(psi * x, x, create_graph=True)
    return g


@dataclass
class Method:
    """A GAN variant as two losses to minimize, an optional projection of ψ, optional consensus term."""

    g_loss: Callable[[T, T], T]
    d_loss: Callable[[T, T], T]
    clip: float | None = None
    consensus: float = 0.0


def _gan(link=f) -> tuple[Callable, Callable]:
    value = lambda th, psi: link(psi * th) + link(-psi * torch.zeros_like(th))  # noqa: E731
    return value, lambda th, psi: -value(th, psi)


def _noisy(sigma: float) -> Method:
    eps = torch.tensor(NOISE_NODES, dtype=torch.float64) * sigma
    w = torch.tensor(NOISE_WEIGHTS, dtype=torch.float64) / math.sqrt(2 * math.pi)
    value = lambda th, psi: (w * f(psi * (th + eps))).sum() + (w * f(-psi * eps)).sum()  # noqa: E731
    return Method(value, lambda th, psi: -value(th, psi))


def _penalized(gamma: float, at: str) -> Method:
    g, d = _gan()

    def d_loss(th: T, psi: T) -> T:
        x = torch.zeros_like(th) if at == "real" else th  # R1: at the data; R2: at the generated sample
        return d(th, psi) + gamma / 2 * d_input_grad(psi, x).pow(2).sum()

    return Method(g, d_loss)


def _wgan_gp(lam: float) -> Method:
    g, d = _gan(identity)
    # WGAN-GP: λ(‖∇ₓD‖ − 1)² at points between real and fake; for D = ψx the input gradient is ψ everywhere
    return Method(g, lambda th, psi: d(th, psi) + lam * (d_input_grad(psi, th).abs() - 1).pow(2).sum())


METHODS: dict[str, Method] = {
    "unregularized": Method(*_gan()),
    "non-saturating": Method(lambda th, psi: -f(-psi * th), _gan()[1]),  # G maximizes f(−D(G))
    "WGAN (clip 1)": Method(*_gan(identity), clip=1.0),
    "WGAN-GP (λ=1)": _wgan_gp(1.0),
    "instance noise (σ=1)": _noisy(1.0),
    "R1 (γ=0.3)": _penalized(0.3, "real"),
    "R1 (γ=1)": _penalized(1.0, "real"),
    "R2 (γ=0.3)": _penalized(0.3, "fake"),
    "R2 (γ=1)": _penalized(1.0, "fake"),
    "consensus (γ=1)": Method(*_gan(), consensus=1.0),
}
CONVERGES = {"unregularized": False, "WGAN (clip 1)": False, "WGAN-GP (λ=1)": False,
             "instance noise (σ=1)": True, "R1 (γ=0.3)": True, "R1 (γ=1)": True, "R2 (γ=0.3)": True,
             "R2 (γ=1)": True}  # the paper's claims


def field(m: Method, th: T, psi: T, create_graph: bool = False) -> tuple[T, T]:
    """The update direction v = (−∂L_G/∂θ, −∂L_D/∂ψ), with the consensus term −γ∇(½‖v‖²) if any."""
    if not create_graph:  # plain iteration: a fresh leaf per step; for the Jacobian, keep the caller's graph
        th, psi = th.detach().requires_grad_(True), psi.detach().requires_grad_(True)
    (gt,) = torch.autograd.grad(m.g_loss(th, psi), th, create_graph=True)
    (gp,) = torch.autograd.grad(m.d_loss(th, psi), psi, create_graph=True)
    v_th, v_psi = -gt, -gp
    if m.consensus:
        ct, cp = torch.autograd.grad(0.5 * (v_th.pow(2) + v_psi.pow(2)).sum(), (th, psi), create_graph=create_graph)
        v_th, v_psi = v_th - m.consensus * ct, v_psi - m.consensus * cp
    return (v_th, v_psi) if create_graph else (v_th.detach(), v_psi.detach())


def trajectory(m: Method, d_steps: int, steps: int, h: float = H) -> np.ndarray:
    """(steps+1, 2) iterates of simultaneous (d_steps = 0) or alternating gradient descent."""
    th, psi = (torch.tensor([v], dtype=torch.float64) for v in START)
    out = [(th.item(), psi.item())]
    project = (lambda p: p.clamp(-m.clip, m.clip)) if m.clip else (lambda p: p)
    for _ in range(steps):
        if d_steps == 0:
            v_th, v_psi = field(m, th, psi)
            th, psi = th + h * v_th, project(psi + h * v_psi)
        else:
            for _ in range(d_steps):
                psi = project(psi + h * field(m, th, psi)[1])
            th = th + h * field(m, th, psi)[0]
        out.append((th.item(), psi.item()))
    return np.array(out)


def jacobian_at_origin(m: Method) -> np.ndarray:
    """∂v/∂(θ, ψ) at the equilibrium (0, 0), by autograd through the vector field."""
    def v(w: T) -> T:
        return torch.cat(field(m, w[:1], w[1:], create_graph=True))
    return torch.autograd.functional.jacobian(v, torch.zeros(2, dtype=torch.float64)).numpy()


def eigen_table() -> pd.DataFrame:
    fp0 = 0.5  # f′(0) = σ(0)
    rows = []
    for gamma in (0.0, 0.3, 0.9, 1.0, 1.5, 2.0):
        ours = np.sort_complex(np.linalg.eigvals(jacobian_at_origin(_penalized(gamma, "real"))))
        root = np.sqrt(complex(gamma ** 2 / 4 - fp0 ** 2))
        closed = np.sort_complex(np.array([-gamma / 2 - root, -gamma / 2 + root]))
        rows.append({"γ": gamma, "eigenvalues (autograd)": _c(ours), "−γ/2 ± √(γ²/4 − f′(0)²)": _c(closed),
                     "max |difference|": f"{np.abs(ours - closed).max():.1e}",
                     "kind": "complex (rotation)" if abs(root.imag) > 1e-12 else "real"})
    return pd.DataFrame(rows)


def _c(z: np.ndarray) -> str:
    return ", ".join(f"{v.real:+.4f}{v.imag:+.4f}i" if abs(v.imag) > 1e-12 else f"{v.real:+.4f}" for v in z)


@PAPERS.register("mescheder2018")
def reproduce(budget: str, ctx: Context) -> Reproduction:
    steps = STEPS[budget]
    rows, paths = [], {}
    for name, m in METHODS.items():
        for scheme, d_steps in SCHEMES.items():
            path = trajectory(m, d_steps, steps)
            paths[(name, scheme)] = path
            dist = float(np.hypot(*path[-1]))
            rows.append({"method": name, "scheme": scheme, "θ": f"{path[-1, 0]:+.4f}", "ψ": f"{path[-1, 1]:+.4f}",
                         "distance to (0,0)": f"{dist:.2e}",
                         "converged": "yes" if dist < CONVERGED else "no",
                         "paper": {True: "converges", False: "does not converge"}.get(CONVERGES.get(name), "—")})
    table = pd.DataFrame(rows)
    eig = eigen_table()
    ctx.log(f"mescheder2018: {len(rows)} trajectories × {steps} steps")

    claims = []
    for name, converges in CONVERGES.items():
        got = table[table["method"] == name]
        ok = (got["converged"] == ("yes" if converges else "no")).all()
        mixed = got["converged"].nunique() > 1
        claims.append(Claim(f"{name} {'converges' if converges else 'does not converge'}",
                            "reproduced" if ok else ("inconclusive" if mixed else "not reproduced"),
                            "; ".join(f"{s}: distance {d}" for s, d in zip(got["scheme"], got["distance to (0,0)"]))))
    diffs = eig["max |difference|"].astype(float)
    kinds_ok = all((k == "real") == (g >= 1.0) for g, k in zip(eig["γ"], eig["kind"]))
    claims.append(Claim("R1's Jacobian at (0,0) has eigenvalues −γ/2 ± √(γ²/4 − f′(0)²); they turn real at "
                        "the critical γ = 2f′(0) = 1",
                        "reproduced" if diffs.max() < 1e-9 and kinds_ok else "not reproduced",
                        f"autograd vs closed form: max difference {diffs.max():.1e} over γ ∈ {list(eig['γ'])}; "
                        f"complex below γ = 1, real from γ = 1"))

    figures = [_plot(paths, ctx.out_dir, steps)]
    return Reproduction(
        title="Mescheder et al. 2018 — the Dirac-GAN",
        budget=budget,
        setup=(f"step h = {H}, start (θ, ψ) = {START}, {steps} steps; simultaneous and alternating (1 and 5 D "
               f"steps) gradient descent; float64 autograd; 'converged' = final distance to (0, 0) < {CONVERGED}. "
               "Deterministic: no seeds (instance noise by 40-node Gauss-Hermite quadrature)."),
        tables=[("Final iterates", table), ("Eigenvalues of the R1-regularized Dirac-GAN at the equilibrium", eig)],
        claims=claims, figures=figures,
        notes=["Choices the claims leave open: WGAN-GP uses λ = 1 with the standard target ‖∇D‖ = 1 (λ = 10 "
               "makes h = 0.2 itself unstable), instance noise σ = 1, consensus optimization γ = 1.",
               "R1 and R2 give the same vector field here: D(x) = ψx has input gradient ψ at every point.",
               "WGAN-GP's iterates come to rest at (θ, ψ) = (−2λ, 0⁺): as ψ → 0⁺ the penalty λ(|ψ| − 1)² pulls ψ "
               "up with force 2λ, which balances θ = −2λ — a stationary point made by the kink of |ψ| at 0, "
               "with the generator 2 away from the data. Not converging to the equilibrium, as the paper says.",
               "The non-saturating and consensus rows are reported without a claim (the issue lists none). "
               "Consensus optimization is defined for simultaneous updates; applied alternately with 5 D steps "
               "its extra term is no longer a gradient of one function and the iterates run away."])


def _plot(paths: dict, out_dir, steps: int) -> str:
    from bench.figures import save, subplots

    names = list(METHODS)
    cols = 5
    fig, axes = subplots(math.ceil(len(names) / cols), cols, figsize=(16, 6.6), sharex=True, sharey=True)
    for ax, name in zip(axes.flat, names):
        for scheme in SCHEMES:
            p = paths[(name, scheme)]
            ax.plot(p[:, 0], p[:, 1], lw=1, label=scheme)
        ax.plot(*START, "ko", ms=4)
        ax.plot(0, 0, "r*", ms=8)
        ax.set_title(name, fontsize=10)
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    for ax in axes[-1]:
        ax.set_xlabel("θ")
    for ax in axes[:, 0]:
        ax.set_ylabel("ψ")
    fig.suptitle(f"Dirac-GAN trajectories, h = {H}, {steps} steps (★ equilibrium, ● start)")
    save(fig, out_dir, "trajectories")
    return "trajectories.png"
