#!/usr/bin/env bash
# A Slurm job array of stabgen workers sharing one study through PostgreSQL: each array task is one
# `bench worker` on one GPU; together they stop at the study's global trial budget.
#
#   export STABGEN_STORAGE=postgresql://stabgen:secret@dbhost/stabgen   # never on the command line
#   sbatch --export=ALL,STUDY=mnist_reg examples/slurm-array.sh
#   bench report --study mnist_reg --runs-dir /shared/stabgen-runs        # afterwards, from any node
#
# Each task gets one GPU (--gres=gpu:1, so CUDA_VISIBLE_DEVICES shows it alone) and `--device auto`
# takes it; with several GPUs per task, auto spreads workers by SLURM_LOCALID. Trial files (samples,
# generators) go to --runs-dir: put it on a filesystem every node sees.
#SBATCH --job-name=stabgen
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=stabgen-%A_%a.log
set -euo pipefail
: "${STABGEN_STORAGE:?export STABGEN_STORAGE=postgresql://USER:PASSWORD@HOST/DB before sbatch (kept out of ps and logs)}"
STUDY=${STUDY:-mnist_reg}
RUNS=${RUNS:-/shared/stabgen-runs}
cd "${SLURM_SUBMIT_DIR:-.}"
. .venv/bin/activate
srun bench worker --study "$STUDY" --device auto --runs-dir "$RUNS" --heartbeat 30
