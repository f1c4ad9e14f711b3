"""Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually Converge?" — the Dirac-GAN.

Data δ₀, generator δ_θ, discriminator D(x) = ψx, f(t) = −log(1 + e^(−t)). The generator minimizes
L = f(D(x_fake)) + f(−D(x_real)) = f(ψθ) + f(0) and the discriminator maximizes it (minus its
penalty). Every gradient here comes from autograd on these losses in float64 — the penalties too
(R1/R2 differentiate D with respect to its input), so the closed forms are checked, not assumed.
Instance noise's expectations use Gauss-Hermite quadrature (deterministic, no seeds needed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bench.papers.base import PAPERS, Paper, Claim, Context, Reproduction
from bench.papers.plan import Work

log = logging.getLogger(__name__)

T = torch.Tensor
H, START = 0.2, (1.0, 1.0)
STEPS = {"tiny": 50, "small": 500, "paper": 500}
# the sweep: step sizes, a grid of starting points on [−2, 2]², and time T per run (steps = T / h)
SWEEP = {"tiny": {"h": (0.2, 0.5), "grid": 5, "T": 10.0},
         "small": {"h": (0.1, 0.2, 0.5, 1.0), "grid": 21, "T": 200.0},
         "paper": {"h": (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.5), "grid": 41, "T": 400.0}}
LOCAL = 1.0  # "local" convergence: starts within this distance of the equilibrium
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
    (g,) = torch.autograd.grad((psi * x).sum(), x, create_graph=True)  # per element: a batch of starts
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
    value = lambda th, psi: (w * f(psi * (th + eps))).sum(-1) + (w * f(-psi * eps)).sum(-1)  # noqa: E731
    return Method(value, lambda th, psi: -value(th, psi))


def _penalized(gamma: float, at: str) -> Method:
    g, d = _gan()

    def d_loss(th: T, psi: T) -> T:
        x = torch.zeros_like(th) if at == "real" else th  # R1: at the data; R2: at the generated sample
        return d(th, psi) + gamma / 2 * d_input_grad(psi, x).pow(2)  # per game (x has one coordinate)

    return Method(g, d_loss)


def _wgan_gp(lam: float) -> Method:
    g, d = _gan(identity)
    # WGAN-GP: λ(‖∇ₓD‖ − 1)² at points between real and fake; for D = ψx the input gradient is ψ everywhere
    return Method(g, lambda th, psi: d(th, psi) + lam * (d_input_grad(psi, th).abs() - 1).pow(2))


METHODS: dict[str, Method] = {
    "unregularized": Method(*_gan()),
    "non-saturating": Method(lambda th, psi: -f(-psi * th), _gan()[1]),  # G maximizes f(−D(G))
    "WGAN (clip 1)": Method(*_gan(identity), clip=1.0),
    "WGAN-GP (λ=1)": _wgan_gp(1.0),
    "instance noise (σ=1)": _noisy(1.0),
    "R1 = R2 (γ=0.3)": _penalized(0.3, "real"),  # γ below f′(0)·2 = 1: the iterates rotate in
    "R1 = R2 (γ=1)": _penalized(1.0, "real"),  # γ at the critical value: real eigenvalues, no rotation
    "consensus (γ=1)": Method(*_gan(), consensus=1.0),
}
# R2 penalizes at the generated sample instead of the data; on the Dirac-GAN D(x) = ψx has input gradient ψ
# at every x, so R2's field is R1's — one behaviour, one row (the identity is checked, not assumed: R2_TWINS)
R2_TWINS = {"R1 = R2 (γ=0.3)": _penalized(0.3, "fake"), "R1 = R2 (γ=1)": _penalized(1.0, "fake")}
# the paper's claims, one per distinct behaviour: (method rows, converges?)
CONVERGES = {"unregularized GAN": (("unregularized",), False), "WGAN": (("WGAN (clip 1)",), False),
             "WGAN-GP": (("WGAN-GP (λ=1)",), False), "instance noise": (("instance noise (σ=1)",), True),
             "zero-centred gradient penalties R1 and R2": (("R1 = R2 (γ=0.3)", "R1 = R2 (γ=1)"), True)}
PAPER_SAYS = {name: converges for names, converges in CONVERGES.values() for name in names}


def plan(budget: str) -> list[Work]:
    return [Work(f"Dirac-GAN: {len(METHODS)} methods × {len(SCHEMES)} update schemes, {STEPS[budget]} steps each "
                 "(closed-form dynamics, float64 autograd on two scalars)", None, 0,
                 note="seconds on any CPU: nothing to train")]


def field(m: Method, th: T, psi: T, create_graph: bool = False) -> tuple[T, T]:
    """The update direction v = (−∂L_G/∂θ, −∂L_D/∂ψ), with the consensus term −γ∇(½‖v‖²) if any. θ and ψ
    may hold a batch of independent games (shape (N, 1)): the losses are summed over it, so each game's
    gradient is its own."""
    if not create_graph:  # plain iteration: a fresh leaf per step; for the Jacobian, keep the caller's graph
        th, psi = th.detach().requires_grad_(True), psi.detach().requires_grad_(True)
    (gt,) = torch.autograd.grad(m.g_loss(th, psi).sum(), th, create_graph=True)
    (gp,) = torch.autograd.grad(m.d_loss(th, psi).sum(), psi, create_graph=True)
    v_th, v_psi = -gt, -gp
    if m.consensus:
        ct, cp = torch.autograd.grad(0.5 * (v_th.pow(2) + v_psi.pow(2)).sum(), (th, psi), create_graph=create_graph)
        v_th, v_psi = v_th - m.consensus * ct, v_psi - m.consensus * cp
    return (v_th, v_psi) if create_graph else (v_th.detach(), v_psi.detach())


def _iterates(m: Method, d_steps: int, steps: int, h: float, th: T, psi: T) -> Iterator[tuple[T, T]]:
    """(θ, ψ) after each of `steps` steps of simultaneous (d_steps = 0) or alternating gradient descent;
    θ and ψ may hold a batch of independent games (see `field`)."""
    project = (lambda p: p.clamp(-m.clip, m.clip)) if m.clip else (lambda p: p)
    for _ in range(steps):
        if d_steps == 0:
            v_th, v_psi = field(m, th, psi)
            th, psi = th + h * v_th, project(psi + h * v_psi)
        else:
            for _ in range(d_steps):
                psi = project(psi + h * field(m, th, psi)[1])
            th = th + h * field(m, th, psi)[0]
        yield th, psi


def trajectory(m: Method, d_steps: int, steps: int, h: float = H, start: tuple[float, float] = START) -> np.ndarray:
    """(steps+1, 2) iterates from one start."""
    th, psi = (torch.tensor([v], dtype=torch.float64) for v in start)
    return np.array([(th.item(), psi.item())] + [(t.item(), p.item())
                                                 for t, p in _iterates(m, d_steps, steps, h, th, psi)])


def final_points(m: Method, d_steps: int, steps: int, h: float, starts: np.ndarray) -> np.ndarray:
    """Where `trajectory` ends, for a batch of starting points (N, 2) at once, each game on its own. A
    run that overflows ends at NaN or ∞ (never converged)."""
    th = torch.tensor(starts[:, :1], dtype=torch.float64)
    psi = torch.tensor(starts[:, 1:], dtype=torch.float64)
    for th, psi in _iterates(m, d_steps, steps, h, th, psi):
        pass
    return torch.cat([th, psi], dim=1).numpy()


def start_grid(n: int) -> np.ndarray:
    """n × n starting points on [−2, 2]², without the equilibrium itself."""
    g = np.linspace(-2.0, 2.0, n)
    pts = np.array([(a, b) for b in g for a in g])
    return pts[np.hypot(pts[:, 0], pts[:, 1]) > 1e-12]


def sweep(budget: str) -> pd.DataFrame:
    """Every method × update scheme × step size h from every start of the grid, run for time T (T/h
    steps): one row per (method, scheme, h, start) with its final distance to the equilibrium."""
    from stabgen import progress

    b = SWEEP[budget]
    starts = start_grid(b["grid"])
    runs = [(name, scheme, h) for name in METHODS for scheme in SCHEMES for h in b["h"]]
    rows = []
    with progress.task(f"Dirac-GAN sweep: {len(runs)} runs of {len(starts)} starts", total=len(runs)) as bar:
        for name, scheme, h in runs:
            end = final_points(METHODS[name], SCHEMES[scheme], math.ceil(b["T"] / h), h, starts)
            dist = np.hypot(end[:, 0], end[:, 1])
            rows += [{"method": name, "scheme": scheme, "h": h, "θ0": s0[0], "ψ0": s0[1],
                      "distance": float(d), "converged": bool(d < CONVERGED)} for s0, d in zip(starts, dist)]
            bar.advance()
    return pd.DataFrame(rows)


def r1_equals_r2(n: int = 9) -> float:
    """Largest |R1 field − R2 field| over a grid of (θ, ψ): 0 on the Dirac-GAN, checked by autograd."""
    pts = start_grid(n)
    th = torch.tensor(pts[:, :1], dtype=torch.float64)
    psi = torch.tensor(pts[:, 1:], dtype=torch.float64)
    worst = 0.0
    for name, twin in R2_TWINS.items():
        a, b = field(METHODS[name], th, psi), field(twin, th, psi)
        worst = max(worst, max(float((x - y).abs().max()) for x, y in zip(a, b)))
    return worst


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
                         "paper": {True: "converges", False: "does not converge"}.get(PAPER_SAYS.get(name), "—")})
    table = pd.DataFrame(rows)
    eig = eigen_table()
    log.info(f"mescheder2018: {len(rows)} trajectories × {steps} steps")

    sw = sweep(budget)
    sw["local"] = np.hypot(sw["θ0"], sw["ψ0"]) <= LOCAL
    claims = [_claim(behaviour, names, converges, sw) for behaviour, (names, converges) in CONVERGES.items()]
    claims += _closed_form_claims(eig)

    figures = [_plot(paths, ctx.out_dir, steps), _plot_region(sw, ctx.out_dir), _plot_sweep(sw, ctx.out_dir)]
    b = SWEEP[budget]
    return Reproduction(
        title="Mescheder et al. 2018 — the Dirac-GAN",
        budget=budget,
        setup=(f"step h = {H}, start (θ, ψ) = {START}, {steps} steps; simultaneous and alternating (1 and 5 D "
               f"steps) gradient descent; float64 autograd; 'converged' = final distance to (0, 0) < {CONVERGED}. "
               "Deterministic: no seeds (instance noise by 40-node Gauss-Hermite quadrature). Sweep: h ∈ "
               f"{{{', '.join(f'{h:g}' for h in b['h'])}}}, starts on a {b['grid']} × {b['grid']} grid over [−2, 2]², "
               f"each run for time T = {b['T']:g} (T/h steps); 'local' = starts within {LOCAL:g} of (0, 0)."),
        tables=[("Final iterates", table), ("Share of starts that converge, by step size", sweep_table(sw)),
                ("Eigenvalues of the R1-regularized Dirac-GAN at the equilibrium", eig)],
        claims=claims, figures=figures,
        notes=["Choices the claims leave open: WGAN-GP uses λ = 1 with the standard target ‖∇D‖ = 1 (λ = 10 "
               "makes h = 0.2 itself unstable), instance noise σ = 1, consensus optimization γ = 1.",
               "R1 and R2 give the same vector field here (D(x) = ψx has input gradient ψ at every point), so they "
               "are one row and one claim; off the Dirac case (a D whose input gradient varies) they differ.",
               "Verdicts of the sweep, judged where the paper's theory speaks (local starts, h ≤ the paper's "
               f"{H:g}, all three update schemes): a method the paper says converges is *reproduced* when every "
               "local start converges, *not reproduced* when a local start fails even at the smallest h; a method "
               "said not to converge is *reproduced* when no local start converges, *not reproduced* when all do "
               "at the smallest h. Larger steps and far starts are in the table and figures, not in the verdicts "
               "(WGAN-GP reaches (0, 0) from a few far starts at h = 1: a large-step accident). A run that "
               "converges only after T counts as not converged: at large h the contraction per step nears 1.",
               "WGAN-GP's iterates come to rest at (θ, ψ) = (−2λ, 0⁺): as ψ → 0⁺ the penalty λ(|ψ| − 1)² pulls ψ "
               "up with force 2λ, which balances θ = −2λ — a stationary point made by the kink of |ψ| at 0, "
               "with the generator 2 away from the data. Not converging to the equilibrium, as the paper says.",
               "The non-saturating and consensus rows are reported without a claim (the issue lists none). "
               "Consensus optimization is defined for simultaneous updates; applied alternately with 5 D steps "
               "its extra term is no longer a gradient of one function and the iterates run away."])


def _closed_form_claims(eig: pd.DataFrame) -> list[Claim]:
    """The two claims checked against closed forms rather than by the sweep: R1 = R2 here, R1's eigenvalues."""
    claims: list[Claim] = []
    twin = r1_equals_r2()
    claims.append(Claim("R2 (the penalty at the generated sample) has R1's dynamics on the Dirac-GAN, so the two "
                        "are one behaviour here", "reproduced" if twin == 0.0 else "not reproduced",
                        f"max |R1 field − R2 field| over a 9 × 9 grid of (θ, ψ), both γ: {twin:.1e} (D(x) = ψx has "
                        "input gradient ψ at the data and at the sample alike)"))
    diffs = eig["max |difference|"].astype(float)
    kinds_ok = all((k == "real") == (g >= 1.0) for g, k in zip(eig["γ"], eig["kind"]))
    claims.append(Claim("R1's Jacobian at (0,0) has eigenvalues −γ/2 ± √(γ²/4 − f′(0)²); they turn real at "
                        "the critical γ = 2f′(0) = 1",
                        "reproduced" if diffs.max() < 1e-9 and kinds_ok else "not reproduced",
                        f"autograd vs closed form: max difference {diffs.max():.1e} over γ ∈ {list(eig['γ'])}; "
                        f"complex below γ = 1, real from γ = 1"))
    return claims


def _claim(behaviour: str, names: tuple[str, ...], converges: bool, sw: pd.DataFrame) -> Claim:
    """One paper claim over the sweep (see the notes for the rule)."""
    rows = sw[sw["method"].isin(names)]
    small = rows[rows["h"] <= H + 1e-12]
    local_small = small[small["local"]]
    smallest = rows[(rows["h"] == rows["h"].min()) & rows["local"]]
    if converges:
        share = local_small.groupby(["method", "scheme", "h"])["converged"].mean()
        verdict = ("reproduced" if (share == 1.0).all() else
                   "not reproduced" if not smallest["converged"].all() else "inconclusive")
        evidence = (f"local starts converged at h ≤ {H:g}: {100 * local_small['converged'].mean():.1f} % "
                    f"(worst method × scheme × h: {100 * share.min():.1f} %); at every h swept, all starts: "
                    f"{100 * rows['converged'].mean():.1f} %")
    else:
        all_local = smallest.groupby("scheme")["converged"].all().any() if len(smallest) else False
        verdict = ("reproduced" if not local_small["converged"].any() else
                   "not reproduced" if all_local else "inconclusive")
        evidence = (f"{int(local_small['converged'].sum())} of {len(local_small)} local runs at h ≤ {H:g} converged; "
                    f"at every h swept and every start: {int(rows['converged'].sum())} of {len(rows)}")
    text = f"{behaviour} {'converges' if converges else 'does not converge'}"
    return Claim(text, verdict, f"{' and '.join(names)}: {evidence}")


def sweep_table(sw: pd.DataFrame) -> pd.DataFrame:
    """% of local starts (and of all starts) that converge, per method × scheme, one column per h."""
    g = sw.groupby(["method", "scheme", "h"], sort=False)
    cell = (100 * g.apply(lambda d: d.loc[d["local"], "converged"].mean())).round(0).astype(int).astype(str) + \
        " / " + (100 * g["converged"].mean()).round(0).astype(int).astype(str)
    out = cell.unstack("h")
    out.columns = [f"h = {h:g} (% local / all)" for h in out.columns]
    return out.reset_index()


def _plot_region(sw: pd.DataFrame, out_dir) -> str:
    """The convergence region: each start of the grid at the paper's h, converged (dark) or not (light),
    per method (columns) and update scheme (rows)."""
    from bench.figures import save, subplots

    names, schemes = list(METHODS), list(SCHEMES)
    at = sw[np.isclose(sw["h"], H)] if np.isclose(sw["h"], H).any() else sw[sw["h"] == sw["h"].min()]
    h = float(at["h"].iloc[0])
    fig, axes = subplots(len(schemes), len(names), figsize=(2.1 * len(names), 2.3 * len(schemes)), sharex=True,
                         sharey=True, squeeze=False)
    for i, scheme in enumerate(schemes):
        for j, name in enumerate(names):
            ax = axes[i][j]
            d = at[(at["method"] == name) & (at["scheme"] == scheme)]
            ax.scatter(d["θ0"], d["ψ0"], c=np.where(d["converged"], "#1f4e79", "#f4b183"), s=6, marker="s")
            ax.add_patch(__import__("matplotlib").patches.Circle((0, 0), LOCAL, fill=False, ls="--", lw=0.8))
            ax.plot(0, 0, "r*", ms=6)
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{scheme}\nψ₀", fontsize=8)
            if i == len(schemes) - 1:
                ax.set_xlabel("θ₀", fontsize=8)
    fig.suptitle(f"Convergence region at h = {h:g}: starts that reach (0, 0) (dark) or not (light); dashed: "
                 f"the local disc of radius {LOCAL:g}")
    save(fig, out_dir, "convergence_region")
    return "convergence_region.png"


def _plot_sweep(sw: pd.DataFrame, out_dir) -> str:
    """Share of local starts converging against the step size, per method, one panel per scheme."""
    from bench.figures import save, subplots

    fig, axes = subplots(1, len(SCHEMES), figsize=(15, 4), sharey=True)
    local = sw[sw["local"]]
    for ax, scheme in zip(axes, SCHEMES):
        for name in METHODS:
            d = local[(local["method"] == name) & (local["scheme"] == scheme)].groupby("h")["converged"].mean()
            ax.plot(d.index, 100 * d.values, marker="o", label=name)
        ax.axvline(H, ls=":", color="grey")
        ax.set_xscale("log")
        ax.set_xlabel("step size h")
        ax.set_title(scheme)
    axes[0].set_ylabel(f"% of starts within {LOCAL:g} that converge")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    save(fig, out_dir, "step_size_sweep")
    return "step_size_sweep.png"


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


PAPERS.register("mescheder2018")(Paper(reproduce=reproduce, plan=plan))
