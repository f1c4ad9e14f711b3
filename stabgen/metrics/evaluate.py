"""The evaluation a trial runs: cheap domain FID (or KID) at intermediate steps for pruning, and the
full domain set at the end — FID, KID, precision/recall, density/coverage and class coverage — each
stored with its N and extractor. Which evaluator a dataset uses is said once, in stabgen.datasets;
the evaluators here take what they need (a real reference, class counts, mode centres), not names."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from stabgen import settings
from stabgen.data import RealRef
from stabgen.errors import StabgenError
from stabgen.metrics import classifier, modes
from stabgen.metrics.frechet import fid_infinity


@torch.no_grad()
def predict(clf: torch.nn.Module, images: torch.Tensor, device: str = "cpu", chunk: int = 1000) -> torch.Tensor:
    """The domain classifier's class for each uint8 image."""
    return torch.cat([clf(x.to(device)).argmax(1).cpu() for x in images.split(chunk)])


def class_coverage(preds: torch.Tensor, class_counts: torch.Tensor) -> dict:
    """Classes the samples' predicted labels cover, and their KL to the real class histogram."""
    cls = modes.class_histogram_metrics(preds, class_counts)
    return {"classes_covered": cls["classes_covered"], "class_kl": cls["class_kl"]}


Sample = Callable[[int], torch.Tensor]  # n → n samples of one trial (or population member)


class Evaluator:
    """The evaluation a trial runs each eval_every steps. `many` evaluates a population's members
    together, so that what they share (extractor, real statistics, one feature pass) is done once;
    calling it evaluates one trial."""

    def __call__(self, sample: Sample, final: bool) -> dict:
        return self.many([sample], final)[0]

    def many(self, samples: Sequence[Sample], final: bool) -> list[dict]:
        raise NotImplementedError


class DomainEvaluator(Evaluator):
    """Domain FID (or KID) on the classifier's features at intermediate steps, for pruning; at the
    end FID, KID, precision/recall, density/coverage, the Vendi score and class coverage. A study that searches by an
    Inception metric (Lucic 2018 ranks every trial by Inception FID) gets the InceptionEvaluator's
    numbers on the same samples beside them."""

    def __init__(self, ref: RealRef, class_counts: torch.Tensor, device: str = "cpu",
                 metric: str = "domain_fid") -> None:
        from stabgen.metrics import fidelity  # torch-fidelity (≈ 2.5 s to import) only where it is used

        self.n, self.device, self.fidelity = ref.n, device, fidelity
        self.ref, self.class_counts = ref, class_counts
        classifier.load(ref.dataset, device)  # missing weights are refused here, before any training
        self.inception = InceptionEvaluator(ref, device, metric) if metric.startswith("inception_") else None
        self.quick = ("fid",) if self.inception else (metric.removeprefix("domain_"),)

    def many(self, samples: Sequence[Sample], final: bool) -> list[dict]:
        fakes = [s(self.n) for s in samples]
        metrics = ("fid", "kid", "prc", "dc", "vendi") if final else self.quick
        got = self.fidelity.compute_many(fakes, self.ref, "classifier", metrics, device=self.device, predictions=final)
        outs = []
        for m in got:  # at the end, class coverage from the classes the feature pass predicted
            predicted = m.pop("predicted", None)
            outs.append({f"domain_{k}": v for k, v in m.items()}
                        | (class_coverage(predicted, self.class_counts) if predicted is not None else {}))
        if self.inception:
            same = [lambda n, f=f: f[:n] for f in fakes]  # the very samples the domain metrics saw
            for out, m in zip(outs, self.inception.many(same, final)):
                out.update(m)
        return outs


class InceptionEvaluator(Evaluator):
    """Inception FID (or KID) at intermediate steps, FID/KID/PR at the end, on TF-Inception's pool
    features: for a user's own images that have no domain classifier (slow on a CPU: ≈ 4 images/s)."""

    def __init__(self, ref: RealRef, device: str = "cpu", metric: str = "inception_fid",
                 inception_weights: str | None = None) -> None:
        from stabgen.metrics import fidelity

        self.ref, self.n, self.device, self.fidelity = ref, ref.n, device, fidelity
        self.weights, self.quick = inception_weights, (metric.removeprefix("inception_"),)

    def many(self, samples: Sequence[Sample], final: bool) -> list[dict]:
        fakes = [s(self.n) for s in samples]
        metrics = ("fid", "kid", "prc") if final else self.quick
        return [{f"inception_{k}": v for k, v in m.items()}
                for m in self.fidelity.compute_many(fakes, self.ref, "inception", metrics, device=self.device,
                                                    inception_weights=self.weights)]


def evaluate_samples(fake: torch.Tensor, ref: RealRef, class_counts: torch.Tensor, extractor: str = "classifier",
                     device: str = "cpu", inception_weights: str | None = None, fid_inf: bool = False) -> dict:
    """Every metric for a set of samples against a real reference (what `bench metrics` prints).

    Inception Score is reported only where the network's logits are valid; otherwise the reason is
    returned under `is_unavailable` instead of a number.
    """
    from stabgen.metrics import fidelity

    dataset, real = ref.dataset, ref.images()
    if tuple(fake.shape[2:]) != tuple(real.shape[2:]):
        raise StabgenError(f"samples are {tuple(fake.shape[2:])} images; {dataset} needs {tuple(real.shape[2:])}")
    wanted, unavailable = ["fid", "kid", "prc", "dc", "vendi", "isc"], None
    if extractor == "inception":
        try:
            fidelity.check_inception_logits(settings.inception_weights(inception_weights))
        except StabgenError as e:
            wanted.remove("isc")
            unavailable = str(e)
    out = fidelity.compute(fake, ref, extractor, tuple(wanted), device=device, inception_weights=inception_weights)
    if unavailable:
        out["is_unavailable"] = unavailable
    out.update(class_coverage(predict(classifier.load(dataset, device), fake, device), class_counts))
    if fid_inf:
        kw = dict(extractor=extractor, dataset=dataset, device=device, inception_weights=inception_weights)
        res = fid_infinity(fidelity.features(fake, **kw), fidelity.features(real, **kw))
        out.update(fid_inf=res["fid_inf"], fid_inf_points=len(res["n"]))
    out.update(dataset=dataset, split=ref.split)
    return out


def stacked_mnist_modes(images: torch.Tensor, device: str = "cpu", *, digits: str) -> dict:
    """Modes of 1,000 for 3-channel Stacked-MNIST samples: each channel classified by the MNIST
    classifier (PacGAN / VEEGAN protocol, usually on 26,000 samples)."""
    return modes.stacked_modes(stacked_predictions(images, device, digits=digits))


def stacked_predictions(images: torch.Tensor, device: str = "cpu", *, digits: str) -> torch.Tensor:
    """[N, 3] digit classes of each channel, by the domain classifier of the `digits` dataset."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise StabgenError(f"Stacked MNIST samples must be [N, 3, 28, 28], got {tuple(images.shape)}")
    clf = classifier.load(digits, device)
    return torch.stack([predict(clf, images[:, c:c + 1], device) for c in range(3)], dim=1)


class MixtureEvaluator(Evaluator):
    """PacGAN counting on n samples (2,500 in the paper) for the ring / grid mixtures."""

    def __init__(self, centers: torch.Tensor, sigma: float, n: int = 2500) -> None:
        self.centers, self.sigma, self.n = centers.double(), sigma, n

    def many(self, samples: Sequence[Sample], final: bool) -> list[dict]:
        outs = []
        for s in samples:  # 2-D points: nothing worth sharing between members
            m = modes.mixture_modes(s(self.n).double(), self.centers, self.sigma)
            outs.append({"modes_captured": m["modes_captured"], "high_quality": m["high_quality"],
                         "reverse_kl": m["reverse_kl"], "n_samples": self.n})
        return outs


class StackedEvaluator(Evaluator):
    """Modes of 1,000 and KL to uniform on n Stacked-MNIST samples (26,000 in the papers); every
    member's channels are classified in one pass."""

    def __init__(self, n: int, device: str = "cpu", *, digits: str) -> None:
        self.n, self.device, self.digits = n, device, digits

    def many(self, samples: Sequence[Sample], final: bool) -> list[dict]:
        fakes = [s(self.n) for s in samples]
        outs = []
        for m in map(modes.stacked_modes, stacked_predictions(torch.cat(fakes), self.device, digits=self.digits).split(
                [len(f) for f in fakes])):
            outs.append({"stacked_modes": m["modes_captured"], "stacked_kl": m["kl"], "n_samples": self.n})
        return outs
