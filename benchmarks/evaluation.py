"""Seconds to evaluate a population: each member on its own against all members in one call.

What a population's evaluation step costs with the study's own evaluator (domain FID on the MNIST
classifier's features against N real test images, the intermediate evaluation that pruning reads;
and the final set: FID, KID, precision/recall, density/coverage, class coverage):
  one by one — Evaluator(sample, final) per member: the extractor is built, the real features and
               statistics are loaded and the fakes' features extracted once per member;
  together   — Evaluator.many(samples, final): all of that once for the population.
Samples are fixed uint8 images (what the members generate does not change the arithmetic). The
real-side cache is warmed before timing, as it is after a study's first evaluation. Needs real
MNIST ($STABGEN_DATA_DIR). One process; results in benchmarks/results/evaluation-<hardware>.json.

    python benchmarks/evaluation.py                 # CPU here
    python benchmarks/evaluation.py --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

from stabgen.errors import StabgenError
from stabgen.hardware import describe, slug
from stabgen.datasets import DATASETS, EvalRequest


def timed(fn, device: str) -> float:
    t0 = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=5000, help="samples per member and real images (mnist_reg: 5000)")
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 4, 16])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    hw = describe(args.device)
    ev = DATASETS.get("mnist").build_evaluator(EvalRequest("test", args.n, args.device))
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (max(args.ks), args.n, 1, 28, 28), generator=g, dtype=torch.uint8)
    samples = [lambda n, x=x: x[:n] for x in images]
    ev.many(samples[:2], True)  # warm: real features and statistics cached, classifier loaded
    res = {"hardware": hw, "device": args.device, "torch": torch.__version__,
           "date": datetime.date.today().isoformat(), "n_per_member": args.n, "n_real": args.n,
           "evaluator": "DomainEvaluator(mnist, test): intermediate = domain FID; final = FID, KID, PR, "
                        "density/coverage, class coverage",
           "note": "seconds for the whole population; speedup = one_by_one / together, same process",
           "k": {}}
    for k in args.ks:
        row = {}
        for final in (False, True):
            alone = timed(lambda: [ev(s, final) for s in samples[:k]], args.device)
            together = timed(lambda: ev.many(samples[:k], final), args.device)
            row["final" if final else "intermediate"] = {
                "one_by_one_s": round(alone, 3), "together_s": round(together, 3),
                "speedup": round(alone / together, 2)}
            print(f"K={k:3d} {'final       ' if final else 'intermediate'}  one by one {alone:8.2f} s  "
                  f"together {together:8.2f} s  ×{alone / together:5.2f}", flush=True)
        res["k"][str(k)] = row
    out = Path(args.out or Path(__file__).parent / "results" / f"evaluation-{slug(hw)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    try:
        main()
    except StabgenError as e:  # e.g. no MNIST: one line, not a traceback
        raise SystemExit(f"error: {e}") from None
