"""Metrics against closed forms and against torch-fidelity's own implementation."""

import math
import time

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from helpers import assert_metrics_match, blobs
from stabgen.datasets import DATASETS
from stabgen.metrics import classifier, fidelity
from stabgen.metrics.frechet import fid_from_features, frechet_distance


def test_frechet_closed_form_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    # ‖μ₁−μ₂‖² + Σ(√a − √b)² = 5 + (1 + 1 + 4)
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(11.0, rel=1e-9)


def test_frechet_closed_form_rotated_covariances():
    # Σ₁ = I, Σ₂ = R diag(4, 9) Rᵀ: tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) = 2 + 13 − 2(2 + 3) = 5
    th = 0.3
    r = torch.tensor([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], dtype=torch.float64)
    s2 = r @ torch.diag(torch.tensor([4.0, 9.0], dtype=torch.float64)) @ r.T
    assert frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(2), s2) == pytest.approx(5.0, rel=1e-9)


def test_frechet_equals_torch_fidelity_on_same_features():
    g = torch.Generator().manual_seed(0)
    f1 = torch.randn(500, 16, generator=g, dtype=torch.float64)
    f2 = torch.randn(400, 16, generator=g, dtype=torch.float64) * 1.3 + 0.2
    ref = fid_statistics_to_metric(fid_features_to_statistics(f1), fid_features_to_statistics(f2), False)
    assert fid_from_features(f1, f2) == pytest.approx(ref["frechet_inception_distance"], rel=1e-6)


def test_pipeline_fid_equals_torch_fidelity_reference():
    """Our torch-fidelity pipeline (registered extractor, uint8 → 3-channel input) equals FID computed
    by torch-fidelity's reference formula on features taken straight from the classifier."""
    fake, real = blobs(300, 1), blobs(300, 2, shift=2)
    model = classifier.load("mnist")
    with torch.no_grad():
        f_fake, f_real = (model.features_and_logits(x)[0] for x in (fake, real))
    ref = fid_statistics_to_metric(fid_features_to_statistics(f_fake), fid_features_to_statistics(f_real), False)
    assert_metrics_match(lambda device: fidelity.compute(fake, real, "classifier", ("fid",), device=device,
                                                         dataset="mnist"),
                         {**ref, "n": 300, "extractor": "classifier"},
                         {"fid": "frechet_inception_distance", "n_fake": "n", "n_real": "n", "extractor": "extractor"})


def test_members_evaluated_together_get_their_own_metrics():
    """compute_many (one extractor, one feature pass for a population's members) gives each member
    what compute gives it alone, unequal sizes and KID's subset size included."""
    real = blobs(300, 2, shift=2)
    fakes = [blobs(300, 1), blobs(120, 3, shift=1), blobs(250, 4, shift=3)]
    wanted = ("fid", "kid", "prc", "dc", "isc", "vendi")
    together = fidelity.compute_many(fakes, real, "classifier", wanted, dataset="mnist")
    for fake, got in zip(fakes, together):
        alone = fidelity.compute(fake, real, "classifier", wanted, dataset="mnist")
        assert got.keys() == alone.keys() and got["n_fake"] == len(fake)
        for key, v in alone.items():
            assert got[key] == (pytest.approx(v, rel=1e-5, abs=1e-7) if isinstance(v, float) else v), key
    assert len({round(m["fid"], 3) for m in together}) == 3  # and the members really differ


def test_stacked_evaluator_members_together_equal_alone():
    from stabgen.metrics.evaluate import StackedEvaluator
    g = torch.Generator().manual_seed(0)
    sets = [torch.randint(0, 256, (n, 3, 28, 28), generator=g, dtype=torch.uint8) for n in (200, 200)]
    ev = StackedEvaluator(200, digits="mnist")
    samples = [lambda n, x=x: x[:n] for x in sets]
    assert ev.many(samples, True) == [ev(s, True) for s in samples]


def test_kid_and_prc_are_sane_on_domain_features():
    a, b = blobs(400, 1), blobs(400, 2)
    same = fidelity.compute(a, b, "classifier", ("kid", "prc"), dataset="mnist")
    assert abs(same["kid"]) < 0.05 and same["precision"] > 0.8 and same["recall"] > 0.8
    noise = torch.randint(0, 256, (400, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    far = fidelity.compute(noise, b, "classifier", ("kid", "prc"), dataset="mnist")
    assert far["kid"] > 10 * max(same["kid"], 1e-3) and far["precision"] < 0.1


def test_real_statistics_are_cached(mnist_dir, monkeypatch):
    ref = DATASETS.get("mnist").reference("test", 200, data_dir=str(mnist_dir))
    fake = blobs(200, 5)
    first = fidelity.compute(fake, ref, "classifier", ("fid",))

    def no_load(*a, **k):
        raise AssertionError("real data reloaded although its statistics are cached")
    monkeypatch.setattr("stabgen.data.load", no_load)
    assert fidelity.compute(fake, ref, "classifier", ("fid",))["fid"] == first["fid"]
    assert any(p.name.startswith(ref.cache_name) for p in fidelity.cache_path().iterdir())


def test_cache_key_changes_with_the_extractor_weights(tmp_path, monkeypatch):
    """Retrained classifier weights must not reuse real statistics cached for the old ones: the real
    reference's cache entries are named by the fingerprint of the classifier's weights file."""
    import shutil

    from stabgen.data import ImageData, RealRef

    monkeypatch.setenv("STABGEN_CACHE_DIR", str(tmp_path / "cache"))
    w = tmp_path / "mnist.pt"
    shutil.copy(classifier.weights_path("mnist"), w)
    monkeypatch.setattr(classifier, "weights_path", lambda dataset: w)
    real = ImageData("mnist", "blobs", blobs(50, 2), torch.zeros(50, dtype=torch.long))
    ref = RealRef("mnist", "blobs", 50, load=lambda split, data_dir: real)
    tags = []
    for _ in range(2):
        tags.append(fidelity.weights_tag("classifier", "mnist"))
        fidelity.compute(blobs(50, 1), ref, "classifier", ("fid",))
        state = torch.load(w, weights_only=True)
        state["fc2.bias"] += 1.0
        torch.save(state, w)
    assert tags[0] != tags[1]
    cached = {p.name for p in fidelity.cache_path().iterdir()}
    for tag in tags:  # the reals' features and their FID statistics, each cached in stabgen's cache
        for entry in ("features", "stat-fid-features"):
            want = f"{ref.cache_name}-w{tag}-stabgen-classifier-mnist-{entry}"
            assert any(name.startswith(want) for name in cached), (want, cached)


def test_mnist_classifier_accuracy(mnist_test):
    acc = classifier.accuracy(classifier.load("mnist"), mnist_test)
    assert acc >= 0.990, acc


def test_fashion_classifier_accuracy(fashion_test):
    acc = classifier.accuracy(classifier.load("fashion-mnist"), fashion_test)
    assert acc >= 0.910, acc


def test_shipped_cards_match_measured_accuracy(mnist_test):
    import json
    card = json.loads(classifier.weights_path("mnist").with_suffix(".json").read_text())
    assert card["test_accuracy"] == pytest.approx(classifier.accuracy(classifier.load("mnist"), mnist_test), abs=1e-4)


def test_domain_fid_test_vs_train_far_below_noise(mnist_dir, mnist_test):
    ref = DATASETS.get("mnist").reference("train", 2000, data_dir=str(mnist_dir))
    test_fid = fidelity.compute(mnist_test.subset(2000, seed=1), ref, "classifier", ("fid",))["fid"]
    noise = torch.randint(0, 256, (2000, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    noise_fid = fidelity.compute(noise, ref, "classifier", ("fid",))["fid"]
    print(f"domain FID (N=2000): MNIST test vs train {test_fid:.3f}; uniform noise vs train {noise_fid:.1f}")
    assert noise_fid > 100 * test_fid


TORCH_FIDELITY_NAMES = {"fid": "frechet_inception_distance", "precision": "precision", "recall": "recall"}
# KID is torch-fidelity's estimator computed by stabgen.metrics.kid (checked against it in float64 below). A small
# difference of large sums: torch-fidelity's float32 loop sits up to 1.3e-4 relative from the float64 estimate on
# these features (ours 2e-5), and its std of identical subsets (m = n) is round-off, not 0
KID_NAMES = {"kid": "kernel_inception_distance_mean", "kid_std": "kernel_inception_distance_std"}
KID_REL, KID_ABS = 3e-4, 1e-6


def _reference_metrics(fake, real, **kw) -> dict:
    """torch_fidelity.calculate_metrics end to end, on the same uint8 images (the reference)."""
    import torch_fidelity

    return torch_fidelity.calculate_metrics(input1=fidelity.U8Images(fake), input2=fidelity.U8Images(real),
                                            fid=True, kid=True, prc=True, cuda=False, verbose=False,
                                            cache=False, save_cpu_ram=True, **kw)


def test_classifier_metrics_equal_torch_fidelity_calculate_metrics():
    """Our whole pipeline (compute: extractor, features, every metric) against torch-fidelity's own
    calculate_metrics with the registered domain extractor: FID, KID (mean, std) and precision/recall."""
    fake, real = blobs(400, 1), blobs(300, 2, shift=2)
    ref = _reference_metrics(fake, real, feature_extractor=fidelity.classifier_extractor("mnist"),
                             kid_subset_size=300, batch_size=500)
    ours = lambda device: fidelity.compute(fake, real, "classifier", ("fid", "kid", "prc"), device=device,  # noqa: E731
                                           dataset="mnist")
    assert_metrics_match(ours, ref, TORCH_FIDELITY_NAMES)
    assert_metrics_match(ours, ref, KID_NAMES, rel=KID_REL, abs=KID_ABS)


@pytest.mark.slow
def test_inception_metrics_equal_torch_fidelity_calculate_metrics(mnist_dir, inception_weights, mnist_test):
    """TF-Inception (the paper protocol's extractor) at a small N, end to end against torch-fidelity:
    same images, same weights file, same FID/KID/PR."""
    real = mnist_test.subset(24, seed=2)
    fake = mnist_test.subset(24, seed=1)
    ours = fidelity.compute(fake, real, "inception", ("fid", "kid", "prc"), inception_weights=str(inception_weights))
    ref = _reference_metrics(fake, real, feature_extractor="inception-v3-compat", feature_extractor_weights_path=
                             str(inception_weights), feature_layer_fid="2048", feature_layer_kid="2048",
                             feature_layer_prc="2048", kid_subset_size=24, batch_size=64)
    assert np.isfinite(ours["fid"]) and ours["n_fake"] == 24 and ours["extractor"] == "inception"
    assert_metrics_match(lambda device: ours, ref, TORCH_FIDELITY_NAMES, rel=1e-5, abs=1e-7, on=["cpu"])
    assert_metrics_match(lambda device: ours, ref, KID_NAMES, rel=KID_REL, abs=KID_ABS, on=["cpu"])


@pytest.mark.slow
def test_a_study_searching_inception_fid_evaluates_every_trial_on_inception(mnist_dir, inception_weights, mnist_test,
                                                                           monkeypatch):
    """metric = "inception_fid" (Lucic 2018's ranking): the image evaluator adds TF-Inception FID of the very
    samples its domain metrics saw, equal to torch-fidelity's
    calculate_metrics on them; a trial's frame row reads it from the trial's own metrics."""
    from bench import records
    from stabgen.datasets import EvalRequest

    monkeypatch.setenv("STABGEN_INCEPTION_WEIGHTS", str(inception_weights))
    ds = DATASETS.get("mnist")
    ev = ds.build_evaluator(EvalRequest("test", 20, "cpu", str(mnist_dir), "inception_fid"))
    fake = mnist_test.subset(20, seed=1)
    ref = _reference_metrics(fake, ds.reference("test", 20, data_dir=str(mnist_dir)).images(),
                             feature_extractor="inception-v3-compat", feature_extractor_weights_path=
                             str(inception_weights), feature_layer_fid="2048", feature_layer_kid="2048",
                             feature_layer_prc="2048", kid_subset_size=20)
    out = ev.many([lambda n: fake[:n]], True)[0]
    assert out["inception_fid"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-5)
    assert out["inception_n_fake"] == 20 and np.isfinite(out["domain_fid"]) and "domain_precision" in out
    recorded = {"metrics": out, "inception": {}}
    assert records._recorded(recorded, ds.columns["inception_fid"]) == out["inception_fid"]
    assert records._recorded({**recorded, "inception": {"fid": 1.5}}, ds.columns["inception_fid"]) == 1.5


def test_missing_inception_weights_file_is_a_clear_error(tmp_path):
    from stabgen.errors import StabgenError
    with pytest.raises(StabgenError, match="does not exist"):
        fidelity.compute(blobs(10, 0), blobs(10, 1), "inception", ("fid",), inception_weights=str(tmp_path / "x.pth"))


def test_density_coverage_and_domain_is_through_compute():
    a, b = blobs(300, 1), blobs(300, 2)
    m = fidelity.compute(a, b, "classifier", ("isc", "dc"), dataset="mnist")
    assert 0.5 < m["density"] < 1.5 and m["coverage"] > 0.8 and m["is"] >= 1.0


def test_vendi_equals_the_vendi_score_package():
    """Our dual-form Vendi equals the reference package's (Friedman & Dieng's `vendi_score`) on the
    same features, both forms of theirs, including a rank-deficient case; and the closed forms: n
    copies of one vector score 1, k orthogonal directions equally often score k."""
    from vendi_score import vendi as ref

    from stabgen.metrics.vendi import vendi_score
    rng = np.random.default_rng(0)
    for x in (rng.normal(size=(200, 16)), rng.normal(size=(30, 64)), rng.normal(size=(300, 3)) @ rng.normal(size=(3, 12))):
        assert vendi_score(torch.from_numpy(x)) == pytest.approx(ref.score_dual(x), rel=1e-9)
        assert vendi_score(torch.from_numpy(x)) == pytest.approx(ref.score_X(x), rel=1e-6)
    assert vendi_score(torch.ones(50, 8)) == pytest.approx(1.0)
    assert vendi_score(torch.eye(4).repeat(25, 1) * 3.0) == pytest.approx(4.0)


def test_vendi_through_compute_reads_the_domain_features():
    """`vendi` in compute is the Vendi score of the fakes' 128-d domain features (what the report's
    domain_vendi column shows); one repeated image scores 1, and MNIST's ten classes score well above
    one class of it (measured: 12.8 against 5.0 on 2,000 test images)."""
    from stabgen.metrics.vendi import vendi_score
    fake = blobs(300, 1)
    got = fidelity.compute(fake, blobs(300, 2), "classifier", ("vendi",), dataset="mnist")["vendi"]
    assert got == pytest.approx(vendi_score(fidelity.features(fake, "classifier", "mnist")), rel=1e-9)
    same = fidelity.compute(fake[:1].repeat(300, 1, 1, 1), blobs(300, 2), "classifier", ("vendi",), dataset="mnist")
    assert same["vendi"] == pytest.approx(1.0, abs=1e-6) and got > same["vendi"]


def test_vendi_of_real_digits_falls_with_the_classes_they_cover(mnist_test):
    from stabgen.metrics.vendi import vendi_score
    x, y = mnist_test.images, mnist_test.labels
    ten = vendi_score(fidelity.features(x[:2000], "classifier", "mnist"))
    one = vendi_score(fidelity.features(x[y == 3][:1000], "classifier", "mnist"))
    assert 10 < ten < 16 and 3 < one < 7


def test_inception_score_refused_for_nan_logit_weights(inception_weights, tmp_path, monkeypatch):
    """The logit check reads the weights file named by the argument (the environment naming another
    file, here one that is not there, must not matter)."""
    from stabgen.errors import StabgenError

    monkeypatch.setenv("STABGEN_INCEPTION_WEIGHTS", str(tmp_path / "not-these.pth"))
    with pytest.raises(StabgenError, match="Inception Score unavailable: the logit layer of .*6726825d.pth is not finite"):
        fidelity.compute(blobs(10, 0), blobs(10, 1), "inception", ("isc",), inception_weights=str(inception_weights))


def test_inception_download_failing_offline_is_one_line(tmp_path, monkeypatch):
    """No weights file named anywhere: torch-fidelity downloads its own; offline that fails, and the
    user is told in one line which variable names a local file (no traceback of urllib)."""
    import urllib.error

    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
    from stabgen.errors import StabgenError

    monkeypatch.delenv("STABGEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", offline)
    with pytest.raises(StabgenError, match=r"^Inception weights are not available offline and the download failed "
                                           r"\(<urlopen error \[Errno -3\] Temporary failure in name resolution>\); "
                                           r"set \$STABGEN_INCEPTION_WEIGHTS to a local "
                                           r"weights-inception-2015-12-05-6726825d.pth$"):
        fidelity.compute(blobs(10, 0), blobs(10, 1), "inception", ("fid",))


def _reference_classifier_recipe(train, seed: int, epochs: int, classes: int) -> dict:
    """The recipe `train_classifier` documents, written here without it: Adam(1e-3) under a one-cycle
    schedule peaking at 3e-3, batches of 128 (the remainder dropped), a fresh permutation per epoch
    and one random shift of ≤ 2 px per batch, both from one generator seeded with `seed`."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = classifier.DomainClassifier(num_classes=classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_batches = len(train.images) // 128
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * n_batches)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train.images), generator=g)
        for b in range(n_batches):
            rows = order[b * 128:(b + 1) * 128]
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(train.images[rows], shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(x), train.labels[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.state_dict()


def test_train_classifier_follows_its_recipe_and_writes_a_true_card(mnist_train, mnist_test, tmp_path, monkeypatch):
    """`bench train-classifier`'s training against the recipe rewritten by hand (weights equal after
    its default three epochs), the class count from the labels (digits 0–4: five outputs), the feature
    standardization (the training images' features come out with mean 0 and std 1 per dimension),
    the card's every field against what it describes, and its default home for a user's dataset."""
    import hashlib
    import json
    from dataclasses import replace

    from stabgen.errors import StabgenError

    keep = mnist_train.labels < 5
    # 640 images: 5 batches of 128 (a batch of 129 would make 4)
    train = replace(mnist_train, images=mnist_train.images[keep][:640], labels=mnist_train.labels[keep][:640])
    keep_t = mnist_test.labels < 5
    test = replace(mnist_test, images=mnist_test.images[keep_t][:300], labels=mnist_test.labels[keep_t][:300])
    monkeypatch.setenv(classifier.settings.ENV_CACHE_DIR, str(tmp_path / "cache"))
    name = "/data/my digits.v2/"
    assert not classifier.has_weights(name)
    (tmp_path / "cache" / "classifiers").mkdir(parents=True)  # a folder that is already there is fine
    t0 = time.time()
    card = classifier.train_classifier(name, train, test)  # the defaults: 3 epochs, seed 0
    elapsed = time.time() - t0
    out = tmp_path / "cache" / "classifiers" / "data_my_digits.v2.pt"  # the name as a file name
    assert classifier.weights_path(name) == out and classifier.has_weights(name)
    trained = torch.load(out, weights_only=True)
    expected = _reference_classifier_recipe(train, seed=0, epochs=3, classes=5)
    for key, value in expected.items():
        if key.startswith("feat_"):
            continue
        assert torch.allclose(trained[key], value, rtol=1e-5, atol=1e-6), key
    model = classifier.load(name)  # five classes, from the card
    assert model.fc2.out_features == 5
    with torch.no_grad():
        feats = torch.cat([model.features_and_logits(x)[0].double() for x in train.images.split(256)])
    assert torch.allclose(feats.mean(0), torch.zeros(128, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(feats.std(0), torch.ones(128, dtype=torch.float64), atol=1e-4)
    assert out.with_suffix(".json").read_text() == json.dumps(card, indent=2) + "\n"
    assert card["dataset"] == name and card["classes"] == 5 and card["train_images"] == 640
    assert card["train_sha256"] == hashlib.sha256(train.images.numpy().tobytes()).hexdigest()[:16]
    assert card["test_accuracy"] == classifier.accuracy(model, test)
    assert card["epochs"] == 3 and card["seed"] == 0 and card["device"] == "cpu"
    assert isinstance(card["train_seconds"], float) and card["train_seconds"] == round(card["train_seconds"], 1)
    assert 0 <= card["train_seconds"] <= elapsed + 0.05 and card["train_seconds"] > elapsed - 1.0
    assert card["command"] == f"bench train-classifier --dataset {name} --epochs 3 --seed 0"
    big = replace(train, images=torch.zeros(4, 1, 32, 32, dtype=torch.uint8), labels=torch.zeros(4, dtype=torch.long))
    with pytest.raises(StabgenError, match=r"28×28 images; big has \(32, 32\).*Inception"):
        classifier.train_classifier("big", big, big)


def test_train_classifier_steps_one_batch_per_128_images_and_at_least_one(tmp_path, monkeypatch):
    """Training reports its optimizer steps as one progress task, "train the <dataset> classifier", of
    epochs × batches steps: 256 images make 2 batches (3 epochs: 6 steps); a set smaller than one
    batch is one batch, not none and not an empty second one (that would train on nothing and leave
    NaN weights)."""
    from stabgen import progress
    from stabgen.data import ImageData
    from helpers import Recorder

    monkeypatch.setenv(classifier.settings.ENV_CACHE_DIR, str(tmp_path))
    g = torch.Generator().manual_seed(0)
    for n, epochs, steps in ((256, 3, 6), (100, 2, 2)):
        images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
        data = ImageData("tiny", "train", images, torch.arange(n) % 3)
        rec = Recorder()
        with progress.listening(rec):
            classifier.train_classifier("tiny", data, data, epochs=epochs, out=tmp_path / f"tiny{n}.pt")
        assert [(t.description, t.completed, t.total) for t in rec.tasks] == \
            [("train the tiny classifier", steps, steps)], n
        weights = torch.load(tmp_path / f"tiny{n}.pt", weights_only=True)
        assert all(bool(torch.isfinite(v).all()) for v in weights.values()), n


def test_classifier_file_names_and_homes(tmp_path, monkeypatch):
    """A user's dataset is named by its path: only letters, digits and -_. survive, the ends are
    trimmed of dots and underscores, and a name with nothing left is 'dataset'; the built-in
    datasets resolve to the shipped weights. Loading: weights without a card have 10 classes, the
    model goes to the device asked for, and missing weights say how to train them."""
    from stabgen.errors import StabgenError

    monkeypatch.setenv(classifier.settings.ENV_CACHE_DIR, str(tmp_path))
    with pytest.raises(StabgenError, match=r"no domain classifier for 'mine' \(looked for .*mine\.pt\); "
                                           r"train one with `bench train-classifier --dataset mine`"):
        classifier.load("mine")
    (tmp_path / "classifiers").mkdir()
    torch.save(classifier.DomainClassifier().state_dict(), tmp_path / "classifiers" / "mine.pt")  # no card
    assert classifier.load("mine").fc2.out_features == 10
    assert classifier.load("mine", device="meta").fc1.weight.device.type == "meta"
    assert classifier._file_stem("a-b_c.d") == "a-b_c.d"
    assert classifier._file_stem("/home/u/my data.v2/") == "home_u_my_data.v2"
    assert classifier._file_stem("._x._") == "x" and classifier._file_stem("..") == "dataset"
    assert classifier._file_stem("Xy.X") == "Xy.X"  # only dots and underscores are trimmed
    assert classifier._file_stem("ünï") == "ünï"  # str.isalnum: letters of any script
    for name in ("mnist", "fashion-mnist"):
        path = classifier.weights_path(name)
        assert path.parent.name == "weights" and path.name == f"{name}.pt" and classifier.has_weights(name)


def test_inception_logit_check_refuses_non_finite_or_missing_logits(tmp_path):
    """Inception Score is refused from weights whose `fc.` (logit) tensors hold a NaN or are absent,
    and allowed when they are finite; torch-fidelity's own download (no path) is trusted."""
    from stabgen.errors import StabgenError

    conv = {"Conv2d_1a_3x3.conv.weight": torch.ones(2, 2)}
    cases = {"finite": {**conv, "fc.weight": torch.ones(3, 2), "fc.bias": torch.zeros(3)},
             "nan": {**conv, "fc.weight": torch.ones(3, 2), "fc.bias": torch.tensor([0.0, float("nan"), 0.0])},
             "none": {**conv, "xfc.weight": torch.ones(3, 2)}}  # 'fc.' must start the key
    for name, state in cases.items():
        torch.save(state, tmp_path / f"{name}.pth")
    fidelity.check_inception_logits(tmp_path / "finite.pth")
    fidelity.check_inception_logits(None)
    for name in ("nan", "none"):
        with pytest.raises(StabgenError, match=rf"logit layer of .*{name}\.pth is not finite.*--extractor classifier"):
            fidelity.check_inception_logits(tmp_path / f"{name}.pth")


def test_weights_tag_fingerprints_the_file_it_names(tmp_path, monkeypatch):
    """The cache key's weights fingerprint: torch-fidelity's download when no file is named, 'missing'
    for a named file that is not there, else the first 10 hex digits of the file's SHA-256 — taken
    anew when the file's size changes even at the same mtime; the argument wins over the env var."""
    import hashlib
    import os

    monkeypatch.delenv(fidelity.settings.ENV_INCEPTION_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert fidelity.weights_tag("inception", "mnist") == "download"
    assert fidelity.weights_tag("inception", "mnist", str(tmp_path / "absent.pth")) == "missing"
    w = tmp_path / "w.pth"
    w.write_bytes(b"abc")
    os.utime(w, ns=(1, 1))
    monkeypatch.setenv(fidelity.settings.ENV_INCEPTION_WEIGHTS, str(tmp_path / "elsewhere.pth"))
    assert fidelity.weights_tag("inception", "mnist", str(w)) == hashlib.sha256(b"abc").hexdigest()[:10]
    w.write_bytes(b"abcd")
    os.utime(w, ns=(1, 1))
    assert fidelity.weights_tag("inception", "mnist", str(w)) == hashlib.sha256(b"abcd").hexdigest()[:10]


def test_classifier_extractor_names_and_resolves_datasets(monkeypatch):
    """torch-fidelity's names for the domain extractors: built-in names kept, a path-named dataset
    as 'user-' + 12 hex digits of its SHA-256, each registered with our extractor class; the
    extractor loads the dataset its name stands for (from the prefix when it was never registered
    here), and IS reads the logits while every other metric reads the features."""
    import hashlib

    import torch_fidelity

    registry = torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY
    user_name = "stabgen-classifier-user-" + hashlib.sha256(b"/data/my digits").hexdigest()[:12]
    for name in (user_name, "stabgen-classifier-fashion-mnist"):  # as in a fresh process: not yet registered
        monkeypatch.delitem(registry, name, raising=False)
    assert fidelity.classifier_extractor("fashion-mnist") == "stabgen-classifier-fashion-mnist"
    assert fidelity.classifier_extractor("--").startswith("stabgen-classifier-user-")  # nothing but delimiters
    user = fidelity.classifier_extractor("/data/my digits")
    assert user == "stabgen-classifier-user-" + hashlib.sha256(b"/data/my digits").hexdigest()[:12]
    for name in (user, "stabgen-classifier-fashion-mnist"):
        assert registry[name] is fidelity.DomainExtractor
    monkeypatch.setattr(fidelity, "_EXTRACTOR_DATASETS", {})
    images = blobs(8, 4)
    for dataset in ("fashion-mnist", "mnist"):
        fe = fidelity.DomainExtractor(f"stabgen-classifier-{dataset}", ["features", "logits"])
        feats, logits = classifier.load(dataset).features_and_logits(images)
        got = fe(images.expand(-1, 3, -1, -1))
        assert torch.equal(got[0], feats) and torch.equal(got[1], logits)
    assert fidelity.DomainExtractor.get_default_feature_layer_for_metric("isc") == "logits"
    assert {fidelity.DomainExtractor.get_default_feature_layer_for_metric(m) for m in ("fid", "kid", "prc")} == {"features"}


def test_compute_defaults_and_refuses_what_is_not_uint8_nchw():
    """`compute(fake, real, dataset=…)` and `compute_many([fake], real, dataset=…)` are the domain
    classifier's FID, KID and PR; without the dataset the classifier extractor is refused (which dataset
    is the default is said once, in stabgen.datasets); an unknown metric, float images or a batch
    without its channel axis are refused in one line naming what is wrong."""
    from stabgen.errors import StabgenError

    fake, real = blobs(60, 1), blobs(60, 2, shift=2)
    want = fidelity.compute(fake, real, "classifier", ("fid", "kid", "prc"), dataset="mnist")
    assert fidelity.compute(fake, real, dataset="mnist") == want
    assert fidelity.compute_many([fake], real, dataset="mnist") == [want]
    for metric, keys in (("prc", ("precision", "recall")), ("kid", ("kid", "kid_std"))):  # one metric alone
        alone = fidelity.compute(fake, real, metrics=(metric,), dataset="mnist")
        assert {k: alone[k] for k in keys} == {k: want[k] for k in keys}, metric
    with pytest.raises(StabgenError, match=r"^the classifier extractor needs the dataset"):
        fidelity.compute(fake, real)
    with pytest.raises(StabgenError, match=r"^unknown metric\(s\) \['fdi'\]; use fid, kid, prc, isc, dc, vendi$"):
        fidelity.compute(fake, real, metrics=("fid", "fdi"), dataset="mnist")
    with pytest.raises(StabgenError, match=r"^unknown extractor 'inceptoin'; known: classifier, inception$"):
        fidelity.compute(fake, real, "inceptoin")
    with pytest.raises(StabgenError, match=r"uint8 \[N, C, H, W\], got torch.float32 \(60, 1, 28, 28\)"):
        fidelity.compute(fake.float(), real, dataset="mnist")
    with pytest.raises(StabgenError, match=r"uint8 \[N, C, H, W\], got torch.uint8 \(60, 28, 28\)"):
        fidelity.compute(fake[:, 0], real, dataset="mnist")


def test_a_users_classifier_extracts_its_features_and_nan_weights_are_refused(tmp_path, monkeypatch):
    """A dataset named by its path gets its own domain classifier as extractor (the one trained for
    that path, not a built-in one). A classifier whose weights went NaN is refused in one line naming
    the features, before any metric (torch-fidelity's FID would die in numpy with a traceback); one
    whose logits rule a class out (softmax exactly 0 for it: a NaN Inception Score from finite
    features) is refused naming the metric."""
    from stabgen.data import ImageData
    from stabgen.errors import StabgenError

    monkeypatch.setenv(classifier.settings.ENV_CACHE_DIR, str(tmp_path))
    name, images = "/data/my digits/", blobs(130, 7)
    classifier.train_classifier(name, ImageData("mine", "train", images, torch.arange(130) % 4),
                                ImageData("mine", "test", images[:20], torch.arange(20) % 4), epochs=1)
    with torch.no_grad():
        want = classifier.load(name).features_and_logits(images[:10])[0]
    assert torch.allclose(fidelity.features(images[:10], dataset=name), want, rtol=1e-5, atol=1e-6)
    path = classifier.weights_path(name)
    good = torch.load(path, weights_only=True)
    saturated = {**good, "fc2.bias": good["fc2.bias"] - torch.tensor([0.0, 0.0, 0.0, 1e4])}
    torch.save(saturated, path)
    assert math.isfinite(fidelity.compute(images[:40], images[40:80], metrics=("fid",), dataset=name)["fid"])
    with pytest.raises(StabgenError, match=r"^classifier is came out nan from finite features \(for IS: a class "
                                           r"the classifier rules out entirely, softmax 0\); refusing to report it$"):
        fidelity.compute(images[:40], images[40:80], metrics=("isc",), dataset=name)
    torch.save({**good, "fc1.weight": torch.full_like(good["fc1.weight"], float("nan"))}, path)
    for metric in ("fid", "kid", "prc", "dc"):
        with pytest.raises(StabgenError, match=r"^classifier features of 40 samples are not finite: the feature "
                                               r"extractor's weights are corrupt"):
            fidelity.compute(images[:40], images[40:80], metrics=(metric,), dataset=name)
    with pytest.raises(StabgenError, match=r"^classifier features of 10 images are not finite"):
        fidelity.features(images[:10], dataset=name)


def test_metrics_print_nothing(capfd):
    """The library never draws on a terminal it does not own (stabgen.progress): torch-fidelity's own
    progress bars and metric lines stay off, on stdout and stderr."""
    fake, real = blobs(60, 1), blobs(60, 2, shift=2)
    capfd.readouterr()
    fidelity.compute(fake, real, "classifier", ("fid", "kid", "prc", "isc", "dc"), dataset="mnist")
    fidelity.features(fake, dataset="mnist")
    assert capfd.readouterr() == ("", "")


def test_kid_subsets_hold_at_most_1000_and_k_reaches_density_coverage():
    """With more than 1,000 samples a side, KID averages subsets of 1,000 (torch-fidelity's default
    protocol) — against calculate_metrics at kid_subset_size = 1000; `compute`'s k is the k of
    density/coverage (against prdc's formula on the same features, k = 3 vs 5)."""
    from stabgen.metrics import coverage

    fake, real = blobs(1100, 5), blobs(1100, 6, shift=1)
    ours = fidelity.compute(fake, real, "classifier", ("kid",), dataset="mnist")
    ref = _reference_metrics(fake, real, feature_extractor=fidelity.classifier_extractor("mnist"),
                             kid_subset_size=1000, batch_size=500)
    assert ours["kid"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=KID_REL, abs=KID_ABS)
    small_f, small_r = fake[:200], real[:200]
    f_f, f_r = (fidelity.features(x, "classifier", "mnist") for x in (small_f, small_r))
    for k in (3, 5):
        dc = fidelity.compute(small_f, small_r, "classifier", ("dc",), dataset="mnist", k=k)
        want = coverage.prdc(f_r, f_f, k=k)
        assert dc["density"] == pytest.approx(want["density"]) and dc["coverage"] == pytest.approx(want["coverage"])
    assert fidelity.compute(small_f, small_r, "classifier", ("dc",), dataset="mnist", k=3)["density"] != \
        fidelity.compute(small_f, small_r, "classifier", ("dc",), dataset="mnist", k=5)["density"]


def test_predictions_come_from_the_same_pass_and_the_real_radii_are_computed_once(monkeypatch):
    """compute_many(predictions=True): each set's classes are the domain classifier's argmax on its own
    images (against the network's forward, called by hand), the metrics unchanged; density/coverage
    against a cached reference computes the real radii once for every set and every later call."""
    from stabgen.metrics import classifier, coverage

    fakes = [blobs(150, 11), blobs(120, 12, shift=1)]
    real = blobs(200, 13, shift=2)
    plain = fidelity.compute_many(fakes, real, "classifier", ("fid", "dc"), dataset="mnist")
    got = fidelity.compute_many(fakes, real, "classifier", ("fid", "dc"), dataset="mnist", predictions=True)
    clf = classifier.load("mnist")
    for f, p, g in zip(fakes, plain, got):
        with torch.no_grad():
            assert torch.equal(g.pop("predicted"), clf(f).argmax(1))
        assert g == pytest.approx(p)
    with pytest.raises(fidelity.StabgenError, match="classifier"):
        fidelity.compute_many(fakes, real, "inception", ("fid",), predictions=True)
    assert fidelity.default_batch("classifier", "cpu") == 100 and fidelity.default_batch("inception", "cpu") == 64
    calls = []
    real_knn = coverage.kth_neighbour_distance
    monkeypatch.setattr(coverage, "kth_neighbour_distance", lambda x, k, *a: calls.append(len(x)) or real_knn(x, k, *a))
    monkeypatch.setattr(fidelity, "_RADII", {})
    ref = fidelity._real_radii(real.float().flatten(1)[:, :8], 3, "cpu", ("name", "features"))
    again = fidelity._real_radii(real.float().flatten(1)[:, :8] + 1, 3, "cpu", ("name", "features"))
    assert again is ref and calls == [200]  # the second call is served by the name, not the values
    fidelity._real_radii(real.float().flatten(1)[:, :8], 3, "cpu", None)  # no cache name: computed
    assert calls == [200, 200]


def test_inception_features_are_the_pool_layer_of_the_weights_named(inception_weights, tmp_path, monkeypatch):
    """`features(..., "inception")` (what FID∞ reads): torch-fidelity's 2048-d pool features of the
    weights file named by the argument (no env var, no download to fall back on)."""
    from torch_fidelity.utils import create_feature_extractor

    monkeypatch.delenv(fidelity.settings.ENV_INCEPTION_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    images = blobs(3, 12)
    got = fidelity.features(images, "inception", inception_weights=str(inception_weights))
    fe = create_feature_extractor(fidelity.INCEPTION, ["2048"], cuda=False, verbose=False,
                                  feature_extractor_weights_path=str(inception_weights))
    with torch.no_grad():
        (want,) = fe(images.expand(-1, 3, -1, -1))
    assert got.shape == (3, 2048) and torch.allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_fake, n_real, m, subsets, width, kernel, whole", [
    (400, 300, 300, 7, 16, {}, True),                                          # m = one pool
    (600, 500, 200, 30, 8, {"degree": 2, "gamma": 0.5, "coef0": 0.25}, True),  # another kernel
    (2000, 1500, 20, 5, 12, {}, False),                                        # pools ≫ m: subsets alone
])
def test_kid_equals_torch_fidelitys_estimator_on_the_same_features(n_fake, n_real, m, subsets, width, kernel,
                                                                   whole, monkeypatch):
    """stabgen.metrics.kid (every kernel value once; or per subset where the pools dwarf the subsets)
    against torch_fidelity.metric_kid on the same features in float64 (its estimator without float32
    round-off): same draws from the same seed, the same unbiased MMD² with the same polynomial kernel,
    mean and std over the subsets."""
    from torch_fidelity import metric_kid
    from stabgen.metrics import kid

    g = torch.Generator().manual_seed(n_fake)
    fake, real = torch.randn(n_fake, width, generator=g), torch.randn(n_real, width, generator=g) * 1.2 + 0.1
    names = {"degree": "kid_kernel_poly_degree", "gamma": "kid_kernel_poly_gamma", "coef0": "kid_kernel_poly_coef0"}
    calls = []
    monkeypatch.setattr(kid, "_pair_sums", lambda *a, f=kid._pair_sums: calls.append(1) or f(*a))
    for seed, block in ((2020, kid.BLOCK), (7, 7 * n_real + 5)):  # one row block; blocks of 7 rows
        monkeypatch.setattr(kid, "BLOCK", block)
        want = metric_kid.kid_features_to_metric(fake.double(), real.double(), kid_subsets=subsets,
                                                 kid_subset_size=m, rng_seed=seed, verbose=False,
                                                 **{names[k]: v for k, v in kernel.items()})
        mean, std = kid.kid(fake, real, subsets, m, seed=seed, **kernel)
        assert mean == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-5, abs=1e-8)
        assert std == pytest.approx(want["kernel_inception_distance_std"], rel=1e-4, abs=1e-7)
    assert len(calls) == (6 if whole else 0)  # the path the case is for (three sums per call)
    assert kid.kid(fake, real, subsets, m, seed=1, **kernel) != kid.kid(fake, real, subsets, m, seed=2, **kernel)
    with pytest.raises(ValueError, match="subset size"):
        kid.kid(fake, real, subsets, min(n_fake, n_real) + 1)
