"""Shared fixtures. Real MNIST and the Inception weights are found through the same settings a
user sets ($STABGEN_DATA_DIR, $STABGEN_INCEPTION_WEIGHTS); tests needing them skip without them —
except under STABGEN_REQUIRE_ALL=1 (set by .ci/run), where anything missing (data, weights, the
PostgreSQL server, Chromium) fails the test in one line naming it: CI never passes by skipping."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# OpenMP threads that wait sleep instead of spinning (libgomp spins by default), in this process and the
# CLI subprocesses it starts: beside another busy process a spinning 2-thread torch process burns its
# time slices waiting — two reference-trainer tests beside the benchmark took 121 s, and 49 s with this
# (issue 34: tests that do not crawl under load). Set before torch is first imported (it is read then).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# An isolated metric cache for the whole test session (subprocesses inherit it). It holds
# ~100 MB of feature statistics, so the session that made it removes it when it ends.
_OWN_CACHE: str | None = None
if "STABGEN_CACHE_DIR" not in os.environ:
    _OWN_CACHE = os.environ["STABGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="stabgen-test-cache-")


def pytest_sessionfinish(session, exitstatus) -> None:
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# Under pytest-xdist (README's command and CI: `pytest -n 2`) the cores are shared among the workers, so each
# worker and the CLI subprocesses it starts use their share of torch threads — 2 workers × 2 threads
# on a 2-core machine would oversubscribe the cores and slow the BLAS-bound tests (Inception) down.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    _threads = max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_threads)
    import torch

    torch.set_num_threads(_threads)

from helpers import missing  # noqa: E402  (tests/helpers.py: the one toolbox, on pytest's pythonpath)

os.environ.pop("STABGEN_STORAGE", None)  # a developer's cluster storage must never receive test studies
# `bench run` defaults to --jobs auto (every core busy: a 40 s timing of the model on first use, then worker
# processes); the suite's many small CLI runs keep one process each unless a test asks for more, or — as the
# terminal test of a new user's first run does — takes the default away (tests/e2e/test_terminal.py).
os.environ["STABGEN_JOBS"] = "1"


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `cuda` are deselected (not skipped) where no CUDA device exists: CI has none by
    design, and a skip there would read as something missing. benchmarks/gpu_check.sh runs them."""
    import torch

    _fastest_first_under_mutmut(items)
    if torch.cuda.is_available():
        return
    gpu = [i for i in items if i.get_closest_marker("cuda")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [i for i in items if not i.get_closest_marker("cuda")]


def _fastest_first_under_mutmut(items) -> None:
    """benchmarks/mutation.sh: mutmut runs a mutant's tests with -x in file order, so a mutant that a
    0.5 s classifier test kills first waits for a 50 s Inception test above it. Under mutmut (it sets
    $MUTANT_UNDER_TEST and runs from mutants/, beside its recorded test durations) the tests run fastest
    first; the verdicts are the same (the tests are independent), only the killed mutants end sooner."""
    stats = Path("mutmut-stats.json")
    if "MUTANT_UNDER_TEST" not in os.environ or not stats.exists():
        return
    import json

    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


def _data_dir() -> Path | None:
    env = os.environ.get("STABGEN_DATA_DIR")
    if env and (Path(env) / "mnist" / "train-images-idx3-ubyte.gz").exists():
        return Path(env)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    d = _data_dir()
    if d is None:
        missing("real MNIST not found: set STABGEN_DATA_DIR to a folder holding mnist/*.gz")
    return d


@pytest.fixture(scope="session")
def fashion_test():
    env = os.environ.get("STABGEN_DATA_DIR")
    if not env or not (Path(env) / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists():
        missing("real Fashion-MNIST not found: set STABGEN_DATA_DIR to a folder holding fashion-mnist/*.gz")
    from stabgen import data
    return data.load("fashion-mnist", "test", env, download=False)


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    from stabgen import data
    return data.load("mnist", "train", mnist_dir, download=False)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from stabgen import data
    return data.load("mnist", "test", mnist_dir, download=False)


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    env = os.environ.get("STABGEN_INCEPTION_WEIGHTS")
    if not env or not Path(env).exists():
        missing("TF-Inception weights not found: set STABGEN_INCEPTION_WEIGHTS")
    return Path(env)


@pytest.fixture
def tiny_images():
    """A made-up 28×28 'dataset' (blobs at random places) for runs that need no real data."""
    from helpers import blobs, image_data

    return image_data(blobs(256, 0, width=18.0))
