"""The evaluators a trial runs (stabgen.metrics.evaluate), each against the metric functions it
composes, called directly: the same samples must give the same numbers, under the right names,
with the class coverage and N recorded; and `evaluate_samples` (what `bench metrics` prints)."""

from __future__ import annotations

import math

import pytest
import torch

from stabgen.data import ImageData, RealRef
from stabgen.errors import StabgenError
from stabgen.metrics import classifier, evaluate, fidelity, modes
from stabgen.metrics.frechet import fid_infinity
from helpers import blobs

REAL = blobs(300, 1, shift=2)
COUNTS = torch.tensor([30, 4, 10, 20, 2, 5, 5, 20, 20, 10])


def _ref(n: int = 300, split: str = "blobs") -> RealRef:
    return RealRef("mnist", split, n, load=lambda s, d: ImageData("mnist", s, REAL, torch.zeros(len(REAL)).long()))


def _close(value):
    """torch-fidelity's cache keeps a RealRef's features in float32: 1e-5 relative; KID's std over
    subsets is a difference of large kernel sums, at float32's resolution (≈ 1e-6) here."""
    return pytest.approx(value, rel=1e-5, abs=2e-6) if isinstance(value, float) else value


def _sampler(images: torch.Tensor):
    def sample(n: int) -> torch.Tensor:
        assert isinstance(n, int) and n <= len(images), n  # the evaluator asks for its n
        return images[:n]
    return sample


def test_predict_is_the_classifiers_argmax_in_any_chunks():
    clf = classifier.load("mnist")
    images = blobs(25, 3)
    want = clf(images).argmax(1)
    assert torch.equal(evaluate.predict(clf, images), want)
    assert torch.equal(evaluate.predict(clf, images, chunk=4), want)


def test_class_coverage_by_hand():
    """Predictions 0, 0, 2, 2 against real counts 1:1:2 over classes 0–2: two classes covered;
    KL(p_fake ‖ p_real) = ½ log(½ / ¼) + 0 + ½ log(½ / ½) = ½ log 2."""
    out = evaluate.class_coverage(torch.tensor([0, 0, 2, 2]), torch.tensor([1, 1, 2]))
    assert set(out) == {"classes_covered", "class_kl"}
    assert out["classes_covered"] == 2
    want = modes.class_histogram_metrics(torch.tensor([0, 0, 2, 2]), torch.tensor([1, 1, 2]))["class_kl"]
    assert out["class_kl"] == pytest.approx(want)


def test_domain_evaluator_quick_and_final_metrics_equal_the_functions(tmp_path, monkeypatch):
    """Intermediate: only the pruning metric (FID, or KID when asked), under domain_ names; final:
    FID, KID, PR and density/coverage of fidelity.compute on the very same samples, each member its
    own, plus the class coverage of the classifier's predictions; N = the reference's n."""
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    ref = _ref()
    a, b = blobs(300, 4, shift=-4), blobs(300, 5, shift=-2)
    ev = evaluate.DomainEvaluator(ref, COUNTS)
    quick = ev.many([_sampler(a), _sampler(b)], final=False)
    alone = fidelity.compute(a, REAL, "classifier", ("fid",), dataset="mnist")
    # a RealRef's real statistics go through torch-fidelity's cache (float32 features on disk): 1e-5 relative
    assert quick[0].pop("domain_extractor") == "classifier"
    assert quick[0] == {f"domain_{k}": _close(v) for k, v in alone.items() if k != "extractor"}
    assert quick[1]["domain_fid"] == pytest.approx(fidelity.compute(b, REAL, "classifier", ("fid",), dataset="mnist")["fid"], rel=1e-5)
    assert ev(_sampler(a), final=False)["domain_fid"] == quick[0]["domain_fid"]  # one trial: the same as a population of one
    assert "class_kl" in ev(_sampler(a), final=True) and "class_kl" not in quick[0]
    kid = evaluate.DomainEvaluator(ref, COUNTS, metric="domain_kid").many([_sampler(a)], final=False)[0]
    assert set(kid) == {"domain_kid", "domain_kid_std", "domain_n_fake", "domain_n_real", "domain_extractor"}
    final = ev.many([_sampler(a), _sampler(b)], final=True)
    clf = classifier.load("mnist")
    for out, imgs in zip(final, (a, b)):
        want = fidelity.compute(imgs, REAL, "classifier", ("fid", "kid", "prc", "dc"), dataset="mnist")
        for key, value in want.items():
            assert out[f"domain_{key}"] == _close(value), key
        cov = evaluate.class_coverage(evaluate.predict(clf, imgs), COUNTS)
        assert out["classes_covered"] == cov["classes_covered"] and out["class_kl"] == pytest.approx(cov["class_kl"])
        assert out["domain_n_fake"] == 300 and out["domain_n_real"] == 300
    assert final[0]["class_kl"] != final[1]["class_kl"]  # each member's own predictions


def test_mixture_evaluator_is_pacgan_counting_on_n_samples():
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(50, 2, generator=g) * 0.05  # all near the first centre
    assert evaluate.MixtureEvaluator(centers, 0.05).n == 2500  # the paper's count
    ev = evaluate.MixtureEvaluator(centers, 0.05, n=40)
    out = ev.many([_sampler(pts), _sampler(pts + torch.tensor([1.0, 0.0]))], final=True)
    for o, p in zip(out, (pts, pts + torch.tensor([1.0, 0.0]))):
        m = modes.mixture_modes(p[:40].double(), centers.double(), 0.05)
        assert o == {"modes_captured": m["modes_captured"], "high_quality": m["high_quality"],
                     "reverse_kl": m["reverse_kl"], "n_samples": 40}


def test_stacked_predictions_classify_each_channel_and_refuse_other_shapes():
    x = torch.cat([blobs(6, 7), blobs(6, 8), blobs(6, 9)], dim=1)
    clf = classifier.load("mnist")
    got = evaluate.stacked_predictions(x, digits="mnist")
    assert got.shape == (6, 3)
    for c in range(3):
        assert torch.equal(got[:, c], evaluate.predict(clf, x[:, c:c + 1]))
    assert evaluate.stacked_mnist_modes(x, digits="mnist") == modes.stacked_modes(got)
    other = evaluate.stacked_predictions(x, digits="fashion-mnist")  # another classifier reads the channels
    assert not torch.equal(other, got)
    assert evaluate.stacked_mnist_modes(x, digits="fashion-mnist") == modes.stacked_modes(other)
    with pytest.raises(StabgenError, match=r"Stacked MNIST samples must be \[N, 3, 28, 28\], got \(6, 1, 28, 28\)"):
        evaluate.stacked_predictions(x[:, :1], digits="mnist")


def test_evaluate_samples_is_every_metric_of_bench_metrics(tmp_path, monkeypatch):
    """FID, KID, PR, density/coverage and the domain Inception Score of fidelity.compute, class
    coverage, FID∞ on request (from the same features), the dataset and split; other image sizes are
    refused in one line."""
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    ref, fake = _ref(), blobs(300, 10, shift=-4)
    out = evaluate.evaluate_samples(fake, ref, COUNTS, fid_inf=True)
    want = fidelity.compute(fake, REAL, "classifier", ("fid", "kid", "prc", "dc", "isc"), dataset="mnist")
    for key, value in want.items():
        assert out[key] == _close(value), key
    cov = evaluate.class_coverage(evaluate.predict(classifier.load("mnist"), fake), COUNTS)
    assert out["classes_covered"] == cov["classes_covered"] and out["class_kl"] == pytest.approx(cov["class_kl"])
    inf = fid_infinity(fidelity.features(fake, dataset="mnist"), fidelity.features(REAL, dataset="mnist"))
    assert out["fid_inf"] == pytest.approx(inf["fid_inf"]) and out["fid_inf_points"] == len(inf["n"])
    assert out["dataset"] == "mnist" and out["split"] == "blobs" and "is_unavailable" not in out
    assert math.isfinite(out["is"])
    plain = evaluate.evaluate_samples(fake, ref, COUNTS)
    assert "fid_inf" not in plain and plain["fid"] == pytest.approx(out["fid"])
    with pytest.raises(StabgenError, match=r"samples are \(32, 32\) images; mnist needs \(28, 28\)"):
        evaluate.evaluate_samples(torch.zeros(4, 1, 32, 32, dtype=torch.uint8), ref, COUNTS)


@pytest.mark.slow
def test_evaluate_samples_on_inception_reports_why_is_is_missing(tmp_path, monkeypatch, inception_weights):
    """With the offline TF-Inception weights (their logit layer is NaN) `bench metrics` gives every
    other Inception metric and says why IS is not a number instead of printing NaN. FID∞ takes the
    fakes' and the reals' features from the same extractor and weights file: on 12 samples of 2048-d
    pool features it is refused for too few samples (its fit needs 2,051), the refusal naming 2048."""
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    # the file named by the argument decides: a path that is not there in the environment must not be read
    monkeypatch.setenv("STABGEN_INCEPTION_WEIGHTS", str(tmp_path / "not-these.pth"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ref, fake = _ref(12), blobs(12, 11)
    out = evaluate.evaluate_samples(fake, ref, COUNTS, extractor="inception", inception_weights=str(inception_weights))
    assert "is" not in out and "logit layer" in out["is_unavailable"] and "not finite" in out["is_unavailable"]
    assert out["extractor"] == "inception" and out["n_fake"] == 12 and math.isfinite(out["fid"])
    with pytest.raises(StabgenError, match=r"feature dimension \(2048\) plus two, got 12"):
        evaluate.evaluate_samples(fake, ref, COUNTS, extractor="inception", inception_weights=str(inception_weights),
                                  fid_inf=True)


def test_evaluate_samples_fid_inf_uses_the_references_own_classifier(tmp_path, monkeypatch):
    """FID∞ of a Fashion-MNIST reference comes from the Fashion-MNIST classifier's features of the fakes
    and of the reals, not the default (MNIST) classifier's: the two give different numbers here."""
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    ref = RealRef("fashion-mnist", "blobs", 300,
                  load=lambda s, d: ImageData("fashion-mnist", s, REAL, torch.zeros(len(REAL)).long()))
    fake = blobs(300, 10, shift=-4)
    out = evaluate.evaluate_samples(fake, ref, COUNTS, fid_inf=True)
    want = fid_infinity(fidelity.features(fake, dataset="fashion-mnist"), fidelity.features(REAL, dataset="fashion-mnist"))
    mnist = fid_infinity(fidelity.features(fake, dataset="mnist"), fidelity.features(REAL, dataset="mnist"))["fid_inf"]
    assert out["fid_inf"] == pytest.approx(want["fid_inf"]) and out["fid_inf"] != pytest.approx(mnist, rel=1e-3)
    mixed = fid_infinity(fidelity.features(fake, dataset="fashion-mnist"), fidelity.features(REAL, dataset="mnist"))["fid_inf"]
    assert out["fid_inf"] != pytest.approx(mixed, rel=1e-3)


def test_stacked_evaluator_counts_modes_of_each_member_on_n_samples():
    """Modes of 1,000 and KL to uniform for each member from its own n samples, channel by channel."""
    xs = [torch.cat([blobs(10, 20 + 3 * i + c) for c in range(3)], dim=1) for i in range(2)]
    ev = evaluate.StackedEvaluator(8, digits="mnist")
    outs = ev.many([_sampler(x) for x in xs], final=True)
    for out, x in zip(outs, xs):
        m = modes.stacked_modes(evaluate.stacked_predictions(x[:8], digits="mnist"))
        assert out == {"stacked_modes": m["modes_captured"], "stacked_kl": m["kl"], "n_samples": 8}
    fashion = evaluate.StackedEvaluator(8, digits="fashion-mnist").many([_sampler(x) for x in xs], final=True)
    for out, x in zip(fashion, xs):
        m = modes.stacked_modes(evaluate.stacked_predictions(x[:8], digits="fashion-mnist"))
        assert out == {"stacked_modes": m["modes_captured"], "stacked_kl": m["kl"], "n_samples": 8}


@pytest.mark.slow
def test_inception_evaluator_alone_and_beside_the_domain_metrics(tmp_path, monkeypatch, inception_weights):
    """A study searching an Inception metric: the Inception evaluator's quick metric (KID here) and
    final FID/KID/PR equal fidelity.compute on TF-Inception from the weights file it was given, under
    inception_ names; beside the domain evaluator (metric inception_kid) the domain side prunes on
    FID and the very same samples get Inception's numbers too. Each sampler is asked for the
    reference's n."""
    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("STABGEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ref, fake, w = _ref(12), blobs(20, 13), str(inception_weights)

    def sample(n: int) -> torch.Tensor:
        assert n == 12
        return fake[:n]

    default = evaluate.InceptionEvaluator(ref, inception_weights=w).many([sample], final=False)[0]
    want = fidelity.compute(fake[:12], ref, "inception", ("fid",), inception_weights=w)
    assert default == {f"inception_{k}": _close(v) for k, v in want.items()}  # prunes on Inception FID by default
    ev = evaluate.InceptionEvaluator(ref, metric="inception_kid", inception_weights=w)
    quick = ev.many([sample], final=False)[0]
    want = fidelity.compute(fake[:12], ref, "inception", ("kid",), inception_weights=w)
    assert quick == {f"inception_{k}": _close(v) for k, v in want.items()}
    final = ev(sample, final=True)
    want = fidelity.compute(fake[:12], ref, "inception", ("fid", "kid", "prc"), inception_weights=w)
    assert final == {f"inception_{k}": _close(v) for k, v in want.items()}
    tag = fidelity.weights_tag("inception", "mnist", w)  # the reals' cache is named by the file given
    assert any(p.name.startswith(f"{ref.cache_name}-w{tag}-inception-v3-compat") for p in fidelity.cache_path().iterdir())
    monkeypatch.setenv("STABGEN_INCEPTION_WEIGHTS", w)
    both = evaluate.DomainEvaluator(ref, COUNTS, metric="inception_kid")
    q = both.many([sample], final=False)[0]
    assert set(q) == {"domain_fid", "domain_n_fake", "domain_n_real", "domain_extractor", "inception_kid",
                      "inception_kid_std", "inception_n_fake", "inception_n_real", "inception_extractor"}
    assert q["inception_kid"] == _close(quick["inception_kid"])
    f = both.many([sample], final=True)[0]
    assert f["inception_precision"] == _close(final["inception_precision"]) and "domain_density" in f
