"""The wheel a user installs: built from this checkout, installed (not editable) into a fresh venv,
run from another working folder — the README's main command on the smoke study must work there."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT



@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = dist.glob("stabgen-*.whl")
    return whl


def test_the_wheel_holds_only_the_project_its_studies_and_its_license(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"stabgen", "bench", wheel.name.split("-py3")[0] + ".dist-info"}
    assert {"bench/studies/smoke.toml", "bench/studies/mnist_reg.toml"} <= set(names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta and "scipy>=1.15" in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "bench = bench.cli:main" in entry and "stabgen = bench.cli:main" in entry


@pytest.mark.slow
def test_a_fresh_venv_runs_the_smoke_study_from_the_wheel(wheel, tmp_path, mnist_dir, inception_weights):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies (torch, optuna, …) from this environment's site-packages as a plain path: its
    # .pth files — the editable install of this checkout among them — are not processed from there
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                        "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import stabgen, bench; print(stabgen.__file__, bench.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env, check=True).stdout
    assert str(ROOT) not in where and str(site) in where, where
    version = subprocess.run([str(venv / "bin" / "stabgen"), "--version"], capture_output=True, text=True, cwd=work, env=env)
    assert version.returncode == 0 and version.stdout.strip() == "stabgen 0.1.0"
    run = subprocess.run([str(venv / "bin" / "bench"), "run", "--study", "smoke", "--steps", "50", "--device", "cpu"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (work / "runs" / "smoke" / "confirm.csv").exists() and (work / "runs" / "smoke" / "trials.csv").exists()
