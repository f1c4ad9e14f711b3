"""Time a 10k-sample Inception FID with cached real statistics, in its two parts:
feature extraction (Inception forward passes) and the Fréchet distance (covariance + matrix square
root on 2048×2048). Prints numbers and writes benchmarks/results/metrics-<hardware>.json. The Fréchet distance is timed
three ways: torch-fidelity's scipy path (sqrtm on the host), stabgen's eigh form on the host, and
stabgen's eigh form on --device with the fake statistics computed there too (what a GPU run uses).

Timing only: with --weights random the network has random weights (for machines without the
92 MB file) and no FID value is reported — only seconds. On a CPU, extracting 10k images takes
tens of minutes, so `--n` measures fewer and the 10k figure is labelled as extrapolated.

    python benchmarks/metrics.py --n 256                # CPU here
    python benchmarks/metrics.py --n 10000 --device cuda --weights random
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fe_mod
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.utils import create_feature_extractor

from stabgen import settings
from stabgen.hardware import describe as hardware, slug
from stabgen.metrics.frechet import frechet_distance, statistics


def extractor(device: str, weights: str):
    kw = {"cuda": device.startswith("cuda"), "verbose": False}
    if weights == "random":  # keep torch's random init: skip the download and the state-dict load
        orig_url, orig_load = fe_mod.load_state_dict_from_url, fe_mod.FeatureExtractorInceptionV3.load_state_dict
        fe_mod.load_state_dict_from_url = lambda *a, **k: {}
        fe_mod.FeatureExtractorInceptionV3.load_state_dict = lambda self, *a, **k: None
        try:
            return create_feature_extractor("inception-v3-compat", ["2048"], **kw)
        finally:
            fe_mod.load_state_dict_from_url, fe_mod.FeatureExtractorInceptionV3.load_state_dict = orig_url, orig_load
    path = weights if weights != "settings" else settings.inception_weights()
    return create_feature_extractor("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path), **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="images to push through Inception")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--weights", default="settings", help="'settings' ($STABGEN_INCEPTION_WEIGHTS), a path, or 'random'")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    hw = hardware(args.device)
    fe = extractor(args.device, args.weights)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 28, 28), generator=g, dtype=torch.uint8)
    with torch.no_grad():  # warm-up (allocations, cuDNN autotune) is not timed
        fe(images[: min(8, args.n)].to(args.device))
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        sync()
        t0 = time.perf_counter()
        feats = torch.cat([fe(b.to(args.device))[0].cpu() for b in images.split(args.batch_size)])
        sync()
        t_extract = time.perf_counter() - t0
    ips = args.n / t_extract

    # Fréchet distance on 2048-d statistics; the real side comes from the cache, so only the fake
    # statistics and the distance are on the clock. Stand-in real stats: another 10k feature draw.
    rng = np.random.default_rng(0)
    fake = torch.from_numpy(rng.standard_normal((10000, 2048)))
    real_stats = fid_features_to_statistics(torch.from_numpy(rng.standard_normal((10000, 2048))))
    t0 = time.perf_counter()
    fake_stats = fid_features_to_statistics(fake)
    t_stats = time.perf_counter() - t0
    t0 = time.perf_counter()
    fid_tf = fid_statistics_to_metric(fake_stats, real_stats, False)["frechet_inception_distance"]
    t_sqrtm_tf = time.perf_counter() - t0
    t0 = time.perf_counter()
    fid_ours = frechet_distance(*(torch.from_numpy(fake_stats[k]) for k in ("mu", "sigma")),
                                *(torch.from_numpy(real_stats[k]) for k in ("mu", "sigma")))
    t_sqrtm_ours = time.perf_counter() - t0
    # on the device: fake statistics and the distance from features already there, real stats cached
    dev = torch.device(args.device)
    fake_dev = fake.to(dev)
    real_dev = [torch.from_numpy(real_stats[k]).to(dev) for k in ("mu", "sigma")]
    frechet_distance(*statistics(fake_dev[:4096]), *real_dev)  # warm-up: cuSOLVER handles, workspaces
    sync()
    t0 = time.perf_counter()
    fid_dev = frechet_distance(*statistics(fake_dev), *real_dev)
    sync()
    t_device = time.perf_counter() - t0

    res = {
        "hardware": hw, "device": args.device, "torch": torch.__version__,
        "weights": "random (timing only)" if args.weights == "random" else "TF-Inception 2015-12-05",
        "n_measured": args.n, "batch_size": args.batch_size,
        "extract_seconds": round(t_extract, 2), "images_per_second": round(ips, 2),
        "extract_seconds_10k": round(10000 / ips, 1), "extract_10k_extrapolated": args.n < 10000,
        "fake_statistics_seconds": round(t_stats, 3),
        "frechet_seconds_torch_fidelity": round(t_sqrtm_tf, 3),
        "frechet_seconds_stabgen_eigh": round(t_sqrtm_ours, 3),
        "frechet_agreement_rel": abs(fid_ours - fid_tf) / abs(fid_tf),
        "frechet_seconds_stabgen_on_device": round(t_device, 3),
        "frechet_on_device_agreement_rel": abs(fid_dev - fid_tf) / abs(fid_tf),
        "fid_10k_total_seconds": round(10000 / ips + t_stats + t_sqrtm_tf, 1),
        "fid_10k_total_seconds_on_device": round(10000 / ips + t_device, 2),
        "when": time.strftime("%Y-%m-%d"),
    }
    for k, v in res.items():
        print(f"{k:34s} {v}")
    print(f"ratio torch-fidelity / stabgen Fréchet time: {t_sqrtm_tf / t_sqrtm_ours:.2f}× on the host, "
          f"{(t_stats + t_sqrtm_tf) / t_device:.2f}× with statistics and distance on {args.device}")
    out = Path(args.out or Path(__file__).parent / "results" / f"metrics-{slug(hw)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
