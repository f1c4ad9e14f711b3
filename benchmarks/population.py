"""Member-steps per second: a seed-style solo loop against populations of K trials in one pass.

For the seed MLP GAN and the InfoGAN-style conv GAN (Lucic 2018), both with Adam and an R1 penalty
(an input-gradient penalty: double backward, the costly kind), batch 64, MNIST-shaped data:
  solo loop   — what a researcher writes: nn.Modules, torch.optim.Adam, autograd.grad for R1,
                one trial after another (the baseline every ratio divides by);
  population  — stabgen.train.train_population with K ∈ {1, 16, 64, 256} members that differ
                in λ, lr and seed: member_steps_per_s = K · steps / seconds.
trials/hour = member_steps_per_s · 3600 / steps of one 20-epoch MNIST trial (18,750 at batch 64).
Each measurement runs for about --seconds after a warm-up; a K whose estimated memory does not fit
is skipped and says so. One process; results in benchmarks/results/population-<hardware>.json.

    python benchmarks/population.py                       # CPU here
    python benchmarks/population.py --device cuda --tf32  # on a GPU (CUDA graphs on; STABGEN_CUDA_GRAPHS=0: eager)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from stabgen.data import ImageData
from stabgen import settings
from stabgen.hardware import describe, slug
from stabgen.models import MODELS
from stabgen.train import train_population
from stabgen.trial import TrialConfig

TRIAL_STEPS = math.ceil(20 * 60000 / 64)  # one 20-epoch MNIST trial at batch 64
REG, LAM = "r1", 1.0


def data(device: str, n: int = 10000) -> ImageData:
    g = torch.Generator().manual_seed(0)  # timing only: content does not change the arithmetic
    return ImageData("mnist-shaped", "train", torch.randint(0, 256, (n, 1, 28, 28), generator=g,
                                                            dtype=torch.uint8), torch.zeros(n, dtype=torch.long)).to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def solo_loop(model: str, images: torch.Tensor, device: str, steps: int) -> float:
    """Seconds per step of the plain loop: NS-GAN + R1 on D, Adam(2e-4, β=(0.5, 0.999))."""
    torch.manual_seed(0)
    nets = MODELS.get(model).build((1, 28, 28), 64).to(device)
    gen, disc = nets["generator"], nets["discriminator"]
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> None:
        real = images[torch.randint(0, images.shape[0], (64,), device=device)].float() / 127.5 - 1
        real.requires_grad_(True)
        fake = gen(torch.randn(64, 64, device=device)).detach()
        d_real = disc(real)
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss_d = F.softplus(-d_real).mean() + F.softplus(disc(fake)).mean() + LAM * 0.5 * grad.pow(2).flatten(1).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-disc(gen(torch.randn(64, 64, device=device)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    for _ in range(3):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def population_seconds(model: str, k: int, source: ImageData, device: str, steps: int, warmup: int = 5) -> float:
    """Seconds per population step (all K members), after `warmup` steps (from the step callback):
    on CUDA with graphs on, steps 1–3 run eagerly and step 4 is captured, so 5 keeps capture off the clock."""
    cfgs = [TrialConfig(model=model, regularizer=REG, lam=LAM * (1 + i % 4), lr=2e-4 * (1 + i % 3), seed=i,
                        steps=warmup + steps, batch_size=64, log_every=10**9, eval_every=10**9) for i in range(k)]
    marks: dict[int, float] = {}

    def on_step(it: int) -> None:
        if it in (warmup, warmup + steps):
            sync(device)
            marks[it] = time.perf_counter()
    train_population(cfgs, source, device, on_step=on_step)
    return (marks[warmup + steps] - marks[warmup]) / steps


def member_bytes(model: str) -> int:
    """Rough memory of one member: parameters, gradients, two Adam moments and temporaries (×8)."""
    n = sum(p.numel() for p in MODELS.get(model).build((1, 28, 28), 64).parameters())
    return 8 * 4 * n


def available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info()[0]
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) * 1024
    return 8 << 30


def steps_for(seconds_per_step: float, budget: float) -> int:
    return max(2, min(500, int(budget / max(seconds_per_step, 1e-6))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", nargs="+", default=["gan", "infogan"])
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 16, 64, 256])
    ap.add_argument("--seconds", type=float, default=8.0, help="target wall time of each measurement")
    ap.add_argument("--tf32", action="store_true", help="TF32 matmuls and convolutions (GPU)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--update", action="store_true", help="keep the other models' results already in --out")
    args = ap.parse_args()
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    source = data(args.device)
    hw = describe(args.device)
    res = {"hardware": hw, "device": args.device, "torch": torch.__version__,
           "date": datetime.date.today().isoformat(), "tf32": args.tf32, "batch_size": 64,
           "cuda_graphs": args.device.startswith("cuda") and settings.cuda_graphs(),
           "regularizer": f"{REG} (λ around {LAM})", "optimizer": "Adam", "trial_steps": TRIAL_STEPS,
           "note": "member_steps_per_s = K·steps/s; ratio_vs_solo divides by the plain solo loop's steps/s "
                   "measured in the same process", "models": {}}
    for model in args.models:
        probe = solo_loop(model, source.images, args.device, 2)
        solo = solo_loop(model, source.images, args.device, steps_for(probe, args.seconds))
        row = {"solo_loop": {"steps_per_s": round(1 / solo, 3), "trials_per_hour": round(3600 / solo / TRIAL_STEPS, 3)},
               "population": {}}
        print(f"{model}: solo loop {1 / solo:9.2f} steps/s  ({3600 / solo / TRIAL_STEPS:.3f} trials/hour)", flush=True)
        for k in args.ks:
            need, have = k * member_bytes(model), available_bytes(args.device)
            if need > 0.6 * have:
                row["population"][str(k)] = {"skipped": f"needs ~{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB free"}
                print(f"{model}: K={k:4d} skipped (needs ~{need / 2**30:.1f} GiB of {have / 2**30:.1f} GiB free)")
                continue
            first = population_seconds(model, k, source, args.device, 1, warmup=1)
            steps = steps_for(first, args.seconds)
            # a step longer than the budget: the probe's one timed step (after one warm-up) is the number
            per_step = first if first * 2 > 4 * args.seconds else population_seconds(model, k, source, args.device, steps)
            steps = 1 if per_step is first else steps
            rate = k / per_step
            row["population"][str(k)] = {"member_steps_per_s": round(rate, 2), "ratio_vs_solo": round(rate * solo, 3),
                                         "trials_per_hour": round(rate * 3600 / TRIAL_STEPS, 3), "steps_timed": steps}
            print(f"{model}: K={k:4d} {rate:9.2f} member-steps/s  ×{rate * solo:6.2f} vs solo  "
                  f"({rate * 3600 / TRIAL_STEPS:.2f} trials/hour)", flush=True)
        res["models"][model] = row
    out = Path(args.out or Path(__file__).parent / "results" / f"population-{slug(hw)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.update and out.exists():
        res["models"] = {**json.loads(out.read_text())["models"], **res["models"]}
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
