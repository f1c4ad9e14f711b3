"""The evaluation a trial runs: cheap domain FID (or KID) at intermediate steps for pruning, and the
full domain set at the end — FID, KID, precision/recall, density/coverage and class coverage — each
stored with its N and extractor."""

from __future__ import annotations

from typing import Callable

import torch

from stabgen import data as data_mod
from stabgen.metrics import classifier, fidelity, modes


def domain_evaluator(dataset: str, split: str, n: int, device: str = "cpu", data_dir: str | None = None,
                     metric: str = "domain_fid") -> Callable[[Callable[[int], torch.Tensor], bool], dict]:
    ref = fidelity.RealRef(dataset, split, n, data_dir=data_dir)
    class_counts = data_mod.load(dataset, split, data_dir).labels.bincount(minlength=10)
    clf = classifier.load(dataset, device)
    quick = (metric.removeprefix("domain_"),)

    def evaluate(sample: Callable[[int], torch.Tensor], final: bool) -> dict:
        fake = sample(n)
        m = fidelity.compute(fake, ref, "classifier", ("fid", "kid", "prc", "dc") if final else quick,
                             device=device)
        out = {f"domain_{k}": v for k, v in m.items()}
        if final:
            with torch.no_grad():
                pred = torch.cat([clf(x.to(device)).argmax(1).cpu() for x in fake.split(1000)])
            cls = modes.class_histogram_metrics(pred, class_counts)
            out.update(classes_covered=cls["classes_covered"], class_kl=cls["class_kl"])
        return out

    return evaluate
