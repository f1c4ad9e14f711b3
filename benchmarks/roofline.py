"""Roofline of one training step: how close the seed MLP GAN (non-saturating loss, R1, Adam, batch 64) gets to
this machine's float32 matmul peak, one process and several side by side.

Measured in one process (the ratios are all against numbers of this run):
  peak        — a large float32 GEMM (4096², torch.mm), the best of several repetitions, at the process's threads;
  model GEMMs — torch.mm at the step's own shapes (64×64→256, 64×256→784, 64×784→256, …): what small matrices reach;
  FLOPs/step  — matmul FLOPs of one step (2·M·K·N each), by hand (`step_flops`: the forward, the backward, R1's
                input gradient and its double backward), cross-checked against torch's counters on the very
                same step: FlopCounterMode without R1 (it refuses autograd.grad inside) and the profiler's
                matmul FLOPs with R1 — tests/bench/test_roofline.py checks all three agree;
  achieved    — steps/s × FLOPs/step ÷ peak for the plain solo loop, stabgen's population at K ∈ {1, 16, 64}, and
                the solo loop in 1-thread processes side by side (what `--jobs auto` picks on a 2-core CPU).
Elementwise work (activations, Adam's update, the penalty's squares) is not counted as FLOPs: it is what
separates the step from the GEMM peak, with per-op overhead, and the profile (--profile) shows its share.

    python benchmarks/roofline.py                    # → benchmarks/results/roofline-<hardware>.json
    python benchmarks/roofline.py --profile          # also the op profile of one solo step (…-profile.txt)
Run it on a quiet machine: every other process takes cores from the measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from population import data, population_seconds, steps_for  # noqa: E402  (a sibling benchmark script)

from stabgen.hardware import describe, slug  # noqa: E402
from stabgen.models import MODELS  # noqa: E402

B, Z, HIDDEN, PIXELS, LAM = 64, 64, 256, 784, 1.0


def linear(n_in: int, n_out: int, batch: int = B) -> int:
    """FLOPs of one pass of a linear layer (forward, or one of its two backward matmuls): 2·B·in·out."""
    return 2 * batch * n_in * n_out


def step_flops(r1: bool = True, batch: int = B) -> int:
    """Matmul FLOPs of one step of the solo loop below (G: z→256→784, D: 784→256→1).
    D step: G forward on z, D forward on real and fake, backward through D for both (D2's weight and input
    gradients, D1's weight gradient; the images need none). G step: G and D forward, backward through D (its
    weight gradients are computed too: D's parameters require grad) and through G (G1's input, z, needs
    none). R1 adds the input gradient through D (D2, D1), its double backward (D1's weight and its input-side
    gradient, D2's weight) and, since the real images now require grad, D1's input gradient in backward."""
    L = lambda i, o: linear(i, o, batch)  # noqa: E731
    g_fwd, d_fwd = L(Z, HIDDEN) + L(HIDDEN, PIXELS), L(PIXELS, HIDDEN) + L(HIDDEN, 1)
    d_step = g_fwd + 2 * d_fwd + 2 * (2 * L(HIDDEN, 1) + L(PIXELS, HIDDEN))
    g_step = g_fwd + d_fwd + 2 * L(HIDDEN, 1) + 2 * L(PIXELS, HIDDEN) + 2 * L(HIDDEN, PIXELS) + L(Z, HIDDEN)
    r1_extra = 4 * L(PIXELS, HIDDEN) + 2 * L(HIDDEN, 1)
    return d_step + g_step + (r1_extra if r1 else 0)


def solo_step(images: torch.Tensor, r1: bool = True, seed: int = 0):
    """The plain loop a researcher writes (nn.Modules, torch.optim.Adam, autograd.grad for R1): a closure
    running one step."""
    torch.manual_seed(seed)
    nets = MODELS.get("gan").build((1, 28, 28), Z)
    gen, disc = nets["generator"], nets["discriminator"]
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> None:
        real = images[torch.randint(0, images.shape[0], (B,))].float() / 127.5 - 1
        real.requires_grad_(r1)
        fake = gen(torch.randn(B, Z)).detach()
        d_real = disc(real)
        loss_d = F.softplus(-d_real).mean() + F.softplus(disc(fake)).mean()
        if r1:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss_d = loss_d + LAM * 0.5 * grad.pow(2).flatten(1).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-disc(gen(torch.randn(B, Z)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return step


MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def counted_flops(step, r1: bool) -> dict[str, int]:
    """torch's own counts of one call of `step`: FlopCounterMode (not with R1: it refuses autograd.grad
    inside its mode) and the profiler's matmul FLOPs (with_flops)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    if not r1:
        with FlopCounterMode(display=False) as fc:
            step()
        out["flop_counter_mode"] = int(fc.get_total_flops())
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step()
    out["profiler_matmul"] = int(sum(e.flops for e in prof.key_averages() if e.flops and e.key in MATMULS))
    return out


def gemm_rate(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """FLOP/s of torch.mm at one shape: the best of repeated timed blocks."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    flops, best = 2 * m * k * n, 0.0
    reps = max(1, int(2e8 / flops))
    end = time.perf_counter() + seconds
    torch.mm(a, b)
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = max(best, reps * flops / (time.perf_counter() - t0))
    return best


SHAPES = {"G1 fwd": (B, Z, HIDDEN), "G2 fwd": (B, HIDDEN, PIXELS), "D1 fwd": (B, PIXELS, HIDDEN),
          "D1 grad-input": (B, HIDDEN, PIXELS), "D1 grad-weight": (HIDDEN, B, PIXELS), "D2 fwd": (B, HIDDEN, 1)}


def steps_per_s(step, seconds: float) -> float:
    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def _side_by_side(threads: int, seconds: float, start: float, out, k: int = 0) -> None:
    """One process of several, from a common start: the solo loop (k = 0) or a population of k members on
    `threads` threads; its member-steps/s."""
    torch.set_num_threads(threads)
    if k == 0:
        step = solo_step(data("cpu", 2000).images)
        for _ in range(3):
            step()
    else:
        source = data("cpu", 2000)
        steps = steps_for(population_seconds("gan", k, source, "cpu", 1, warmup=1), seconds)
    while time.time() < start:
        time.sleep(0.01)
    out.put(steps_per_s(step, seconds) if k == 0 else k / population_seconds("gan", k, source, "cpu", steps))


def processes_rate(n: int, threads: int, seconds: float, k: int = 0) -> float:
    """Summed member-steps/s of n processes side by side (each with `threads` torch threads), each running
    the solo loop (k = 0) or a population of k members."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start = time.time() + 8.0 + (4 * seconds if k else 0)  # after every process has started and warmed up
    ps = [ctx.Process(target=_side_by_side, args=(threads, seconds, start, q, k)) for _ in range(n)]
    for p in ps:
        p.start()
    rates = [q.get(timeout=120 + seconds) for _ in ps]
    for p in ps:
        p.join()
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="wall time of each rate measurement")
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 16, 64])
    ap.add_argument("--profile", action="store_true", help="also write the op profile of one solo step")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    threads = torch.get_num_threads()
    hw = describe("cpu")
    images = data("cpu").images.cpu()
    peak = gemm_rate(4096, 4096, 4096, 2 * args.seconds)
    print(f"peak: large GEMM {peak / 1e9:.1f} GFLOP/s ({threads} threads)", flush=True)
    shapes = {name: gemm_rate(*s, seconds=args.seconds / 4) for name, s in SHAPES.items()}
    for name, r in shapes.items():
        print(f"  {name:14s} {SHAPES[name]}: {r / 1e9:6.1f} GFLOP/s  ({r / peak:.0%} of peak)")
    flops = {"hand_r1": step_flops(True), "hand_no_r1": step_flops(False),
             "torch_no_r1": counted_flops(solo_step(images, r1=False), r1=False),
             "torch_r1": counted_flops(solo_step(images, r1=True), r1=True)}
    print(f"FLOPs/step: hand {flops['hand_r1'] / 1e9:.4f} G with R1 (profiler "
          f"{flops['torch_r1']['profiler_matmul'] / 1e9:.4f} G), {flops['hand_no_r1'] / 1e9:.4f} G without "
          f"(FlopCounterMode {flops['torch_no_r1']['flop_counter_mode'] / 1e9:.4f} G)")
    per_step = flops["hand_r1"]
    rows = {}
    solo = steps_per_s(solo_step(images), args.seconds)
    rows["solo loop (1 process)"] = solo
    for k in args.ks:
        first = population_seconds("gan", k, data("cpu"), "cpu", 1, warmup=1)
        rows[f"population K={k} (1 process)"] = k / population_seconds("gan", k, data("cpu"), "cpu",
                                                                      steps_for(first, args.seconds))
    cores = max(1, threads)
    if cores > 1:
        rows[f"solo loop, {cores} 1-thread processes (--jobs auto)"] = processes_rate(cores, 1, args.seconds)
        best_k = max(args.ks, key=lambda k: rows[f"population K={k} (1 process)"])
        rows[f"population K={best_k}, {cores} 1-thread processes"] = processes_rate(cores, 1, args.seconds, best_k)
    res = {"hardware": hw, "torch": torch.__version__, "date": datetime.date.today().isoformat(), "threads": threads,
           "peak_gflops": round(peak / 1e9, 2), "model_gemm_gflops": {k: round(v / 1e9, 2) for k, v in shapes.items()},
           "flops_per_step": flops, "rates": {}}
    for name, rate in rows.items():
        frac = rate * per_step / peak
        res["rates"][name] = {"member_steps_per_s": round(rate, 2), "gflops": round(rate * per_step / 1e9, 2),
                              "fraction_of_peak": round(frac, 3), "ratio_vs_solo": round(rate / solo, 3)}
        print(f"{name:48s} {rate:8.1f} steps/s  {rate * per_step / 1e9:6.1f} GFLOP/s  {frac:5.1%} of peak  "
              f"×{rate / solo:.2f} vs solo", flush=True)
    out = Path(args.out or Path(__file__).parent / "results" / f"roofline-{slug(hw)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    if args.profile:
        res["profile"] = profile_solo(images, out.with_name(out.stem + "-profile.txt"), hw, peak)
        out.write_text(json.dumps(res, indent=2) + "\n")


def profile_solo(images: torch.Tensor, path: Path, hw: str, peak: float, steps: int = 20) -> dict:
    """The op profile of `steps` solo steps (written to `path`) and what bounds the step: the matmuls' share
    of the time and the rate they reach at these shapes, against the peak."""
    from torch.profiler import ProfilerActivity, profile

    step = solo_step(images)
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)  # µs
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    mm_rate = steps * step_flops(True) / (mm * 1e-6)
    path.write_text(f"# {steps} solo steps (NS + R1 + Adam, batch 64) on {hw}, {torch.get_num_threads()} threads\n"
                    + events.table(sort_by="self_cpu_time_total", row_limit=25) + "\n")
    print(f"wrote {path}")
    why = {"matmul_share_of_step_time": round(mm / total, 3), "matmul_gflops_at_these_shapes": round(mm_rate / 1e9, 1),
           "matmul_fraction_of_peak": round(mm_rate / peak, 3),
           "bound": "the step's matmuls are small (batch 64; D2 is 256→1) and reach only this fraction of the large-GEMM "
                    "peak; the rest of the step (Adam's update, activations, copies, autograd) is per-op work that "
                    "does no counted FLOPs: fraction of peak ≈ matmul share × matmul fraction"}
    print(f"matmuls: {mm / total:.0%} of the step's time at {mm_rate / 1e9:.0f} GFLOP/s ({mm_rate / peak:.0%} of peak)")
    return why


if __name__ == "__main__":
    main()
