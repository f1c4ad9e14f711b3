#!/usr/bin/env bash
# Fills the ignored folder .gpu/ with what benchmarks/gpu_check.sh needs on a device machine that
# cannot reach any network: wheels of the packages its image lacks (for its Python 3.12) and the
# MNIST idx files (≈ 20 MiB in all; the device tool carries at most 64 MiB). Run it here, once:
#     bash benchmarks/gpu_prepare.sh            # needs PyPI and $STABGEN_DATA_DIR (or ../shared/data)
# then, with the device tool:  run(command="bash benchmarks/gpu_check.sh", carry=[".gpu"], timeout_s=570)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${STABGEN_DATA_DIR:-../shared/data}
[ -f "$DATA/mnist/train-images-idx3-ubyte.gz" ] || { echo "gpu_prepare: no MNIST under $DATA/mnist; set STABGEN_DATA_DIR" >&2; exit 2; }
mkdir -p .gpu/wheels .gpu/data/mnist
# pinned to what the tests ran against here; the device image has torch, numpy, scipy, pandas, typer, rich, seaborn, pytest
pip download --quiet --no-deps --only-binary=:all: --dest .gpu/wheels --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    optuna==5.0.0 alembic==1.20.1 SQLAlchemy==2.1.9 colorlog==6.12.0 Mako==1.4.3 cmaes==0.13.1 \
    pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    tabulate==0.10.0 prdc==0.2 torch-fidelity==0.4.0
cp "$DATA"/mnist/*-ubyte.gz .gpu/data/mnist/
du -sh .gpu
