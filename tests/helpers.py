"""The one test toolbox: what more than one test module needs (no test module imports another). On
pytest's pythonpath (pyproject.toml), so any test does `from helpers import …`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent  # the repository
REQUIRE_ALL = os.environ.get("STABGEN_REQUIRE_ALL") == "1"


def missing(what: str) -> None:
    """Skip a test that needs `what` — or, under STABGEN_REQUIRE_ALL=1, fail it saying what is missing."""
    if REQUIRE_ALL:
        pytest.fail(f"STABGEN_REQUIRE_ALL=1 and {what}", pytrace=False)
    pytest.skip(what)


# --- LaTeX ---------------------------------------------------------------------------------------

PDFLATEX = shutil.which("pdflatex")


def compile_tex(table: Path, work: Path) -> None:
    """pdflatex on a plain article that \\input's the table, as a paper would; fails with LaTeX's first error."""
    if PDFLATEX is None:
        missing("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended; "
                ".ci/run installs them)")
    work.mkdir(parents=True, exist_ok=True)
    doc = work / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                   f"\\begin{{document}}\n\\input{{{table.resolve()}}}\n\\end{{document}}\n")
    r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=work,
                       capture_output=True, text=True, timeout=600)
    errors = [line for line in r.stdout.splitlines() if line.startswith("!")]
    assert r.returncode == 0 and (work / "doc.pdf").stat().st_size > 1000, f"{table}: {errors[:3]}"


# --- images ----------------------------------------------------------------------------------------

def random_images(n: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """n uniform-noise uint8 images (n, channels, 28, 28), fixed by the seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, 28, 28), generator=g, dtype=torch.uint8)


def blobs(n: int, seed: int, shift: int = 0, width: float = 10.0) -> torch.Tensor:
    """n digit-like uint8 images: one Gaussian blob each at a random place (moved by `shift` pixels)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cx, cy = (torch.randint(6, 22, (2, n), generator=g) + shift).float()
    img = torch.exp(-((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / width)
    return (img * 255).round().to(torch.uint8).unsqueeze(1)


def image_data(images: torch.Tensor, name: str = "tiny"):
    """Unlabelled images as a training split (stabgen.data.ImageData)."""
    from stabgen.data import ImageData

    return ImageData(name, "train", images, torch.zeros(len(images), dtype=torch.long))


# --- metrics against a reference, on every device ------------------------------------------------

def devices() -> list[str]:
    """The devices a metric test runs on here: the CPU, and CUDA where there is one (gpu_check.sh)."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def assert_metrics_match(ours, reference: dict, names: dict[str, str] | None = None, *, rel: float = 1e-6,
                         abs: float = 1e-9, device_rel: float = 1e-4, on: list[str] | None = None) -> None:
    """The one reference/device tester of the metric tests (in the manner of torchmetrics' MetricTester):
    `ours(device)` → our metrics, run on every device in `on` (default: `devices()`), each equal to
    `reference` — a result of code that is not ours (torch-fidelity, vendi-score, …), or our CPU result
    where the question is the device — under `names` (our key → the reference's key; default: the
    reference's keys). Off the CPU the tolerance widens to `device_rel` (TF32, other summation orders)."""
    for device in on or devices():
        got, tol = ours(device), rel if device == "cpu" else max(rel, device_rel)
        for mine, theirs in (names or {k: k for k in reference}).items():
            want = reference[theirs]
            if isinstance(want, float):
                assert got[mine] == pytest.approx(want, rel=tol, abs=abs), (device, mine, got[mine], want)
            else:
                assert got[mine] == want, (device, mine, got[mine], want)


# --- the CLI ---------------------------------------------------------------------------------------

def run_main(args, cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """The installed entry point `bench.cli:main`, in-process (no interpreter start-up per case)."""
    from bench.cli import main
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def study_toml(dataset: str = "ring", *, name: str | None = None, n_trials: int = 1, steps: int = 20,
               eval_every: int = 10, samples: int = 200, top: str = "", train: str = "", eval: str = "",
               confirm: str = "seeds = 0", models: tuple[str, ...] | None = None,
               regularizers: tuple[str, ...] = ("none",), space: str = "", sections: str = "",
               metric: str | None = None, batch_size: int | None = None) -> str:
    """A small study spec as TOML text, for tests that run `bench` on it: the 2D ring (or MNIST with
    the seed MLP GAN) at a tiny budget; each section takes extra lines, `sections` whole extra sections."""
    ring = dataset in ("ring", "grid")
    models = models or (("mlp2d_small",) if ring else ("gan",))
    head = (f'name = "{name}"\n' if name else "") + f'dataset = "{dataset}"\n'
    metric = metric or ("modes_captured" if ring else None)
    head += f'metric = "{metric}"\n' if metric else ""
    q = ", ".join(f'"{m}"' for m in models)
    r = ", ".join(f'"{x}"' for x in regularizers)
    return (f"{head}n_trials = {n_trials}\n{top}\n[train]\nsteps = {steps}\neval_every = {eval_every}\n"
            + (f"batch_size = {batch_size or 50}\nz_dim = 2\n" if ring else
               f"batch_size = {batch_size}\n" if batch_size else "") + f"{train}\n[eval]\nsamples = {samples}\n{eval}\n"
            f"{sections}\n[confirm]\n{confirm}\n[space]\nmodels = [{q}]\nregularizers = [{r}]\n{space}")


# --- progress --------------------------------------------------------------------------------------

class Recorder:
    """A progress listener that keeps every task it was shown, with its last state."""

    def __init__(self) -> None:
        self.tasks: list = []
        self.updates: list[tuple[str, float]] = []
        self.open = 0

    def start(self, task):
        self.tasks.append(task)
        self.open += 1
        return len(self.tasks) - 1

    def update(self, handle, task):
        self.updates.append((task.description, task.completed))

    def stop(self, handle, task):
        self.open -= 1
