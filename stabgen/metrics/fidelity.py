"""FID, KID and precision/recall from torch-fidelity's features and metric functions (KID: its estimator
computed by stabgen.metrics.kid, which does the same sums with each kernel value once).

Two feature extractors, by user-facing name:
  classifier — the shipped domain CNN for the dataset, registered in torch-fidelity's registry as
               `stabgen-classifier-<dataset>` (128-d features; logits for IS). Fast on CPU: the
               search objective.
  inception  — torch-fidelity's `inception-v3-compat` (TF-Inception 2015-12-05, 2048-d pool
               features), weights from settings.inception_weights() or torch-fidelity's download.
               Slow on CPU (~6 img/s/core): the final evaluation of the best trials.
Real-data features and statistics are cached by torch-fidelity under <cache>/fidelity, keyed by
dataset × split × N × a fingerprint of the extractor's weights (× extractor name, which
torch-fidelity appends), so they are computed once and never reused across different weights.
Precision/recall follow torch-fidelity's convention: input1 = generated, input2 = real.
"""

from __future__ import annotations

import functools
import math
import urllib.error
from pathlib import Path
from typing import Sequence

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from stabgen.data import RealRef
from stabgen import progress, settings
from stabgen.errors import StabgenError
from stabgen.metrics import classifier, coverage, kid, vendi

CLASSIFIER_PREFIX = "stabgen-classifier-"
INCEPTION = "inception-v3-compat"
EXTRACTORS = ("classifier", "inception")


class DomainExtractor(FeatureExtractorBase):
    """torch-fidelity adapter for a shipped domain classifier; the dataset comes from the name."""

    def __init__(self, name: str, features_list, **kwargs) -> None:
        super().__init__(name, features_list)
        self.model = classifier.load(_EXTRACTOR_DATASETS.get(name, name.removeprefix(CLASSIFIER_PREFIX)))

    @staticmethod
    def get_provided_features_list():
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, x):
        feats, logits = self.model.features_and_logits(x)
        out = {"features": feats, "logits": logits}
        return tuple(out[name] for name in self.features_list)


_EXTRACTOR_DATASETS: dict[str, str] = {}  # torch-fidelity extractor name → dataset (a user's: a path)


def classifier_extractor(dataset: str) -> str:
    """torch-fidelity's name for a dataset's domain classifier, registered on first use (a path-named
    dataset gets a name without delimiters, which torch-fidelity refuses)."""
    import hashlib

    safe = dataset if dataset.replace("-", "").isalnum() else \
        "user-" + hashlib.sha256(dataset.encode()).hexdigest()[:12]
    name = CLASSIFIER_PREFIX + safe
    _EXTRACTOR_DATASETS[name] = dataset
    if name not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(name, DomainExtractor)
    return name


class U8Images(Dataset):
    """uint8 [N, C, H, W] tensor as a torch-fidelity input: grey images become 3 equal channels
    (what inception-v3-compat requires; the domain extractor averages them back). `tick` is called per
    image read: torch-fidelity reads them in its own loop (num_workers = 0 with save_cpu_ram), so that
    is how extraction reports progress (stabgen.progress) without a bar of torch-fidelity's own."""

    tick = staticmethod(lambda: None)

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise StabgenError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images = images.cpu()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        self.tick()
        x = self.images[i]
        return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def _extract(input_id: int, dataset: U8Images, n: int, what: str, fe, **kwargs) -> dict:
    """torch-fidelity's cached feature extraction of input 1 or 2, shown as a progress task (a cache hit
    ends it at once)."""
    from torch_fidelity.utils import extract_featuresdict_from_input_id_cached

    with progress.task(what, total=n) as bar:
        # torch-fidelity reads one image more than n (a first look at input 0): count to n, not past it
        dataset.tick = lambda: bar.update(completed=min(n, bar.completed + 1))
        try:
            return _finite(extract_featuresdict_from_input_id_cached(input_id, fe, **kwargs), what)
        finally:
            del dataset.tick  # back to the class's no-op


def _finite(feats: dict, what: str) -> dict:
    """NaN weights give NaN features, on which torch-fidelity's FID dies in numpy's eigvals with a
    traceback (and KID/PR would be NaN): refuse them in one line, before any metric."""
    if not all(bool(torch.isfinite(v).all()) for v in feats.values()):
        raise StabgenError(f"{what} are not finite: the feature extractor's weights are corrupt (NaN or "
                           f"inf); retrain the domain classifier (bench train-classifier) or use an intact "
                           f"Inception weights file")
    return feats


class _LazyReal(U8Images):
    """Loads the real images only if torch-fidelity's cache misses."""

    def __init__(self, ref: RealRef) -> None:  # noqa: super().__init__ deferred on purpose
        self.ref = ref

    @functools.cached_property
    def images(self) -> torch.Tensor:  # type: ignore[override]
        return self.ref.images()


@functools.lru_cache(maxsize=8)
def _file_tag(path: str, size: int, mtime_ns: int) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:10]


def weights_tag(extractor: str, dataset: str, inception_weights: str | None = None) -> str:
    """A fingerprint of the extractor's weights, part of every cache key: retraining the domain
    classifier or pointing at other Inception weights must never reuse stale real statistics."""
    if extractor == "classifier":
        path = classifier.weights_path(dataset)
    else:
        path = settings.inception_weights(inception_weights)
        if path is None:
            return "download"  # torch-fidelity's own file, pinned by the hash in its name
    if not path.exists():
        return "missing"  # loading the extractor reports the real problem
    st = path.stat()
    return _file_tag(str(path), st.st_size, st.st_mtime_ns)


def check_inception_weights(option: str | None = None) -> None:
    """The TF-Inception weights a run will load, checked before it trains (issue 33: a bad file was found
    only after training): the file exists and is a torch checkpoint (a zip archive whose central directory
    is intact, or a legacy pickle). None (no local file: torch-fidelity downloads it) passes."""
    import zipfile

    path = settings.inception_weights(option)
    if path is None:
        return
    if not path.is_file():
        raise StabgenError(f"Inception weights file {path} {'is a folder' if path.is_dir() else 'does not exist'}; "
                           f"fix ${settings.ENV_INCEPTION_WEIGHTS} or --inception-weights")
    with path.open("rb") as f:
        head = f.read(2)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):
        raise StabgenError(f"Inception weights file {path} is not a torch checkpoint (truncated or another kind of "
                           f"file); download pt_inception-2015-12-05 again, or fix --inception-weights")


def _extractor_kwargs(extractor: str, dataset: str | None, inception_weights: str | None) -> dict:
    if extractor == "classifier":
        if dataset is None:  # no default here: which dataset is the default is said once, in stabgen.datasets
            raise StabgenError("the classifier extractor needs the dataset whose domain classifier reads the images "
                               "(dataset=…; a RealRef reference names it)")
        return {"feature_extractor": classifier_extractor(dataset)}
    if extractor == "inception":
        path = settings.inception_weights(inception_weights)
        if path is not None and not path.exists():
            raise StabgenError(f"Inception weights file {path} does not exist; fix "
                               f"${settings.ENV_INCEPTION_WEIGHTS} or --inception-weights")
        kw = {"feature_extractor": INCEPTION, "feature_layer_fid": "2048",
              "feature_layer_kid": "2048", "feature_layer_prc": "2048"}
        if path is not None:
            kw["feature_extractor_weights_path"] = str(path)
        return kw
    raise StabgenError(f"unknown extractor {extractor!r}; known: {', '.join(EXTRACTORS)}")


_KEYS = {
    "frechet_inception_distance": "fid",
    "kernel_inception_distance_mean": "kid",
    "kernel_inception_distance_std": "kid_std",
    "precision": "precision",
    "recall": "recall",
    "inception_score_mean": "is",
    "inception_score_std": "is_std",
}
METRIC_NAMES = ("fid", "kid", "prc", "isc", "dc", "vendi")


def check_inception_logits(path: Path | None) -> None:
    """Refuse Inception Score from weights whose 1008-logit layer is not finite (the offline copy)."""
    if path is None:
        return  # torch-fidelity's own download: the original weights, logits intact
    state = torch.load(path, map_location="cpu", weights_only=True)
    fc = [v for k, v in state.items() if k.startswith("fc.")]
    if not fc or not all(bool(torch.isfinite(v).all()) for v in fc):
        raise StabgenError(f"Inception Score unavailable: the logit layer of {path} is not finite, so IS "
                           f"would be NaN; use --extractor classifier for a domain Inception Score")


def compute(fake: torch.Tensor, ref: RealRef | torch.Tensor, extractor: str = "classifier",
            metrics: tuple[str, ...] = ("fid", "kid", "prc"), device: torch.device | str = "cpu",
            inception_weights: str | None = None, batch_size: int | None = None,
            dataset: str | None = None, k: int = 5) -> dict:
    """Metrics of generated uint8 images against a real reference, with N and extractor recorded.

    `ref` is a RealRef (features cached on disk) or a uint8 tensor of real images (not cached);
    `dataset` names the domain classifier when `ref` is a tensor (the classifier extractor only). Metrics: fid, kid, prc
    (precision/recall, torch-fidelity's k=3), isc (Inception Score of the fakes), dc
    (density/coverage with k neighbours), vendi (the Vendi score of the fakes). Features are extracted
    once, by torch-fidelity; each metric is torch-fidelity's own function, except KID (its estimator,
    computed faster by stabgen.metrics.kid), density/coverage (stabgen.metrics.coverage) and Vendi
    (stabgen.metrics.vendi), which torch-fidelity does not have.
    """
    return compute_many([fake], ref, extractor, metrics, device, inception_weights, batch_size, dataset, k)[0]


def compute_many(fakes: Sequence[torch.Tensor], ref: RealRef | torch.Tensor, extractor: str = "classifier",
                 metrics: tuple[str, ...] = ("fid", "kid", "prc"), device: torch.device | str = "cpu",
                 inception_weights: str | None = None, batch_size: int | None = None,
                 dataset: str | None = None, k: int = 5, predictions: bool = False) -> list[dict]:
    """`compute` for several sample sets (a population's members) at once: the extractor is built,
    the real features and statistics are loaded, and the fakes' features are extracted in one pass
    for all sets; each set then gets its own metrics, exactly as `compute` gives them alone.
    predictions (the classifier only): each set's dict also holds "predicted", the classifier's class
    for each fake, from the same pass (a second pass for class coverage was a fifth of a final evaluation)."""
    from torch_fidelity import metric_fid
    from torch_fidelity.utils import create_feature_extractor, resolve_feature_layer_for_metric

    unknown = set(metrics) - set(METRIC_NAMES)
    if unknown:
        raise StabgenError(f"unknown metric(s) {sorted(unknown)}; use {', '.join(METRIC_NAMES)}")
    if not fakes:
        return []
    sizes = [int(f.shape[0]) for f in fakes]
    if isinstance(ref, RealRef):
        real, n_real, dataset = _LazyReal(ref), ref.n, ref.dataset
        cache_name = f"{ref.cache_name}-w{weights_tag(extractor, dataset, inception_weights)}"
    else:
        real, cache_name, n_real = U8Images(ref), None, int(ref.shape[0])
    fe_kwargs = _extractor_kwargs(extractor, dataset, inception_weights)
    if "isc" in metrics and extractor == "inception":
        check_inception_logits(settings.inception_weights(inception_weights))
    if predictions and extractor != "classifier":
        raise StabgenError("class predictions come from the domain classifier (extractor='classifier')")
    fake = U8Images(torch.cat([f.cpu() for f in fakes]))
    kwargs = dict(
        input1=fake, input2=real, input2_cache_name=cache_name,
        cache_root=str(settings.cache_dir() / "fidelity"), cuda=torch.device(device).type == "cuda",
        batch_size=batch_size or default_batch(extractor, device),
        save_cpu_ram=True, verbose=False, **fe_kwargs,  # KID's subset size is each set's own (_score)
    )
    # density/coverage and Vendi read the features precision/recall read (the pool layer, not the logits)
    layers = {m: resolve_feature_layer_for_metric("prc" if m in ("dc", "vendi") else m, **kwargs) for m in metrics}
    try:
        wanted = set(layers.values()) | ({"logits"} if predictions else set())
        fe = create_feature_extractor(fe_kwargs["feature_extractor"], sorted(wanted), **kwargs)
    except (urllib.error.URLError, ConnectionError) as e:
        raise StabgenError(f"Inception weights are not available offline and the download failed "
                           f"({e}); set ${settings.ENV_INCEPTION_WEIGHTS} to a local "
                           f"{settings.INCEPTION_FILENAME}") from None
    f_all = _extract(1, fake, len(fake), f"{extractor} features of {len(fake)} samples", fe, **kwargs)
    f_real, st_real = None, None
    if set(metrics) & {"fid", "kid", "prc", "dc"}:
        f_real = _extract(2, real, n_real, f"{extractor} features of {n_real} real images", fe, **kwargs)
    if "fid" in metrics:
        st_real = metric_fid.fid_featuresdict_to_statistics_cached(f_real, cache_name, fe, layers["fid"], **kwargs)
    per_set = [dict(zip(f_all, parts)) for parts in zip(*(v.split(sizes) for v in f_all.values()))]
    r_real = None
    if "dc" in metrics:  # the real k-NN radii: one reference, many sample sets (and many evaluations)
        r_real = _real_radii(f_real[layers["dc"]], k, device, (cache_name, layers["dc"]) if cache_name else None)
    outs = [_score(f_fake, n_fake, f_real, st_real, fe, layers, metrics, extractor, device, k, n_real, kwargs, r_real)
            for f_fake, n_fake in zip(per_set, sizes)]
    if predictions:
        for out, f_fake in zip(outs, per_set):
            out["predicted"] = f_fake["logits"].argmax(1).cpu()
    return outs


def _kid(fake: torch.Tensor, real: torch.Tensor, kw: dict) -> dict:
    """torch-fidelity's KID under its own keys and defaults, computed by stabgen.metrics.kid (the same
    estimator and draws, each kernel value once); a kernel other than its polynomial one goes to torch-fidelity."""
    from torch_fidelity import metric_kid
    from torch_fidelity.helpers import get_kwarg

    if get_kwarg("kid_kernel", kw) != "poly" or get_kwarg("kid_subset_size", kw) < 2:  # < 2: its NaN
        return metric_kid.kid_features_to_metric(fake, real, **kw)
    mean, std = kid.kid(fake, real, get_kwarg("kid_subsets", kw), get_kwarg("kid_subset_size", kw),
                        get_kwarg("kid_kernel_poly_degree", kw), get_kwarg("kid_kernel_poly_gamma", kw),
                        get_kwarg("kid_kernel_poly_coef0", kw), get_kwarg("rng_seed", kw))
    return {metric_kid.KEY_METRIC_KID_MEAN: mean, metric_kid.KEY_METRIC_KID_STD: std}


def default_batch(extractor: str, device: torch.device | str) -> int:
    """Images per forward pass: TF-Inception 64; the domain classifier 500 on an accelerator, 100 on a CPU,
    where 100 images' activations stay in cache (5,000 MNIST images: 1.08 s at 500, 0.51 s at 100 on the
    2-core EPYC; every evaluation of a study on the CPU pays it)."""
    if extractor != "classifier":
        return 64
    return 100 if torch.device(device).type == "cpu" else 500


_RADII: dict[tuple, torch.Tensor] = {}  # (cache name, layer, k, device) → the real features' k-NN radii


def _real_radii(f_real: torch.Tensor, k: int, device, key: tuple | None) -> torch.Tensor:
    """The k-th-neighbour radius of each real feature (density/coverage), computed once per cached
    reference in a process: the same real features under the same cache name every evaluation."""
    full = key + (k, str(device)) if key is not None else None
    if full is not None and full in _RADII:
        return _RADII[full]
    r = coverage.kth_neighbour_distance(f_real.to(device).double(), k)
    if full is not None:
        if len(_RADII) >= 8:
            _RADII.pop(next(iter(_RADII)))
        _RADII[full] = r
    return r


def _score(f_fake: dict, n_fake: int, f_real: dict | None, st_real: dict | None, fe, layers: dict,
           metrics: tuple[str, ...], extractor: str, device, k: int, n_real: int, kwargs: dict,
           r_real: torch.Tensor | None = None) -> dict:
    """One sample set's metrics from its features (torch-fidelity's functions; density/coverage ours)."""
    from torch_fidelity import metric_fid, metric_isc, metric_prc

    kw = {**kwargs, "kid_subset_size": min(1000, n_fake, n_real)}
    raw: dict = {}
    if "isc" in metrics:
        raw.update(metric_isc.isc_featuresdict_to_metric(f_fake, layers["isc"], **kw))
    if "fid" in metrics:
        st_fake = metric_fid.fid_featuresdict_to_statistics_cached(f_fake, None, fe, layers["fid"], **kw)
        raw.update(metric_fid.fid_statistics_to_metric(st_fake, st_real, False))
    if "kid" in metrics:
        raw.update(_kid(f_fake[layers["kid"]], f_real[layers["kid"]], kw))
    if "prc" in metrics:  # convention: input1 = generated, input2 = real
        raw.update(metric_prc.prc_featuresdict_to_metric(f_fake, f_real, layers["prc"], **kw))
    out = {_KEYS[key]: float(v) for key, v in raw.items() if key in _KEYS}
    if "dc" in metrics:
        dc = coverage.density_coverage(f_real[layers["dc"]].to(device), f_fake[layers["dc"]].to(device), k=k,
                                       r_real=r_real)
        out.update(density=dc["density"], coverage=dc["coverage"])
    if "vendi" in metrics:
        out["vendi"] = vendi.vendi_score(f_fake[layers["vendi"]].to(device))
    for key, v in out.items():
        if not math.isfinite(v):
            # the features were checked finite (_finite): what is left is the formula, e.g. IS is NaN in
            # torch-fidelity when a class has softmax exactly 0 in a whole split (0 · log 0)
            raise StabgenError(f"{extractor} {key} came out {v} from finite features (for IS: a class the "
                               f"classifier rules out entirely, softmax 0); refusing to report it")
    out.update(n_fake=n_fake, n_real=n_real, extractor=extractor)
    return out


def features(images: torch.Tensor, extractor: str = "classifier", dataset: str | None = None,
             device: torch.device | str = "cpu", inception_weights: str | None = None) -> torch.Tensor:
    """The metric features (classifier: 128-d; inception: 2048-d pool) of uint8 images."""
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    kw = _extractor_kwargs(extractor, dataset, inception_weights)
    layer = "features" if extractor == "classifier" else "2048"
    cuda = torch.device(device).type == "cuda"
    fe = create_feature_extractor(kw["feature_extractor"], [layer], cuda=cuda, verbose=False, **kw)
    data = U8Images(images)
    what = f"{extractor} features of {len(data)} images"
    with progress.task(what, total=len(data)) as bar:
        # torch-fidelity reads one image more than there are (a first look at input 0): count to len, not past it
        data.tick = lambda: bar.update(completed=min(len(data), bar.completed + 1))
        return _finite(get_featuresdict_from_dataset(data, fe, default_batch(extractor, device),
                                                     cuda, True, False), what)[layer]


def cache_path() -> Path:
    return settings.cache_dir() / "fidelity"
