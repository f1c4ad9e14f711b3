#!/usr/bin/env bash
# The one device check (issue: prove it on a GPU). On a CUDA machine, within ~9 minutes, it runs and
# saves under $OUT (the device tool's output folder; default benchmarks/results/gpu-check):
#   a. pytest -m cuda        CUDA vs CPU (float64 training, metrics), graph replay vs eager
#   b. population.py         member-steps/s and the ratio to the seed-style solo loop, in one process,
#                            CUDA graphs on and off, fp32 and TF32, K up to memory
#   c. bench run mnist_reg   the whole study (20 trials × 3,000 steps + confirmation, metrics) with
#                            population = "auto": wall time
#   d. metrics.py            FID of 10k samples: Inception extraction + Fréchet on the device vs scipy
#   e. roofline.py           the MLP GAN step against the host CPU's GEMM peak (benchmarks/roofline.py)
#   f. benchmark --plan      what `bench benchmark --suite gpu` costs on this device
# then benchmarks/gpu_summary.py joins them into gpu-check-<hardware>.json and a README table.
# Inception weights are random (the 92 MB file is not carried): timings only, never an FID.
#
#     bash benchmarks/gpu_prepare.sh                       # here, once: fills .gpu/ (wheels, MNIST)
#     bash benchmarks/gpu_check.sh                         # on the device (carry .gpu)
#     bash benchmarks/gpu_check.sh --device cpu            # a dry run anywhere: small sizes, CUDA parts skipped, said so
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:?--device needs cpu or cuda}; shift 2 ;;
        *) echo "gpu_check: unknown argument $1 (use --device cpu|cuda)" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-benchmarks/results/gpu-check}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: > "$LOG"
say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
phase() {  # phase NAME SECONDS CMD...: run with a time limit, log its output, record its status and wall time
    local name=$1 limit=$2; shift 2
    say "── $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.txt" | sed 's/^/    /' | tee -a "$LOG"
    echo "{\"phase\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0))}" >> "$OUT/phases.jsonl"
    say "   $name: exit $rc in $((SECONDS - t0)) s"
}
: > "$OUT/phases.jsonl"

PY=${PYTHON:-python3}
if ! $PY -c "import optuna, torch_fidelity, pydantic, cmaes, tabulate" 2>/dev/null; then
    [ -d .gpu/wheels ] || { say "missing packages and no .gpu/wheels: run benchmarks/gpu_prepare.sh and carry .gpu"; exit 2; }
    $PY -m pip install --quiet --no-index --find-links .gpu/wheels optuna torch-fidelity pydantic cmaes tabulate prdc >> "$LOG" 2>&1 \
        || { say "pip install from .gpu/wheels failed (see $LOG)"; exit 2; }
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export STABGEN_DATA_DIR=${STABGEN_DATA_DIR:-$PWD/.gpu/data}
export STABGEN_CACHE_DIR=${STABGEN_CACHE_DIR:-$(mktemp -d)}
[ -f "$STABGEN_DATA_DIR/mnist/train-images-idx3-ubyte.gz" ] || say "no MNIST under $STABGEN_DATA_DIR (carry .gpu): phase c will fail"

$PY - > "$OUT/environment.json" <<'PYEOF'
import json, platform, torch
cuda = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                  "device": torch.cuda.get_device_name(0) if cuda else None,
                  "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
                  "cpu_threads": torch.get_num_threads()}, indent=2))
PYEOF
say "environment: $(tr -d '\n' < "$OUT/environment.json")"
if [ "$DEVICE" != cpu ] && ! $PY -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    say "no CUDA device here: run with --device cpu for a dry run"; exit 2
fi

# random TF-Inception weights in torch-fidelity's format: the final Inception step of phase c runs and is
# timed, but its FID values are meaningless (and are not reported)
WEIGHTS="$STABGEN_CACHE_DIR/random-inception-timing-only.pth"
$PY - "$WEIGHTS" <<'PYEOF'
import sys, torch, torch_fidelity.feature_extractor_inceptionv3 as fe
fe.load_state_dict_from_url = lambda *a, **k: {}
fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, *a, **k: None
torch.manual_seed(0)
net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
torch.save(net.state_dict(), sys.argv[1])
PYEOF
export STABGEN_INCEPTION_WEIGHTS=$WEIGHTS

if [ "$DEVICE" = cpu ]; then  # dry run: every phase end to end at toy sizes
    say "DRY RUN on CPU: sizes are toy, CUDA graphs and TF32 do not exist on CPU (those variants run eager fp32), numbers mean nothing"
    KS_GAN="1 4"; KS_INFO="1"; SECS=0.5; N_FID=64; MODELS="gan"
    STEPS=20; TRIALS=2; CONFIRM=2; SAMPLES=200; INC=64
else
    KS_GAN="1 64 256 1024"; KS_INFO="1 16 64 256"; SECS=3; N_FID=10000; MODELS="gan infogan"
    STEPS=3000; TRIALS=20; CONFIRM=10; SAMPLES=5000; INC=500
fi

# a. CUDA tests (deselected, and said so, where there is no CUDA)
phase a-pytest-cuda 150 $PY -m pytest -m cuda -q -p no:cacheprovider tests/stabgen/test_cuda.py --junitxml="$OUT/pytest-cuda.xml"

# b. populations: graphs on/off × fp32, graphs on × TF32
for variant in graphs-fp32 eager-fp32 graphs-tf32; do
    g=1; [ "${variant%%-*}" = eager ] && g=0
    tf=(); [ "${variant##*-}" = tf32 ] && tf=(--tf32)
    for model in $MODELS; do
        ks=$KS_GAN; [ "$model" = infogan ] && ks=$KS_INFO
        STABGEN_CUDA_GRAPHS=$g phase "b-population-$model-$variant" 100 $PY benchmarks/population.py --device "$DEVICE" \
            --models "$model" --ks $ks --seconds "$SECS" "${tf[@]}" --out "$OUT/population-$model-$variant.json"
    done
done

# c. the main study, population = "auto"
SPEC="$OUT/mnist_reg_auto.toml"
sed -e "s/^steps = .*/steps = $STEPS/" -e "s/^n_trials = .*/n_trials = $TRIALS/" -e "s/^seeds = .*/seeds = $CONFIRM/" \
    -e "s/^samples = .*/samples = $SAMPLES/" -e "s/^inception_samples = .*/inception_samples = $INC/" \
    -e 's/^\[train\]$/[train]\npopulation = "auto"/' studies/mnist_reg.toml > "$SPEC"
[ "$DEVICE" = cpu ] && sed -i -e 's/^eval_every = .*/eval_every = 10/' "$SPEC"
rm -rf "$OUT/runs"
phase c-bench-run-mnist_reg 240 $PY -c "from bench.cli import main; main()" run --study "$SPEC" --device "$DEVICE" \
    --runs-dir "$OUT/runs"
rm -rf "$OUT/runs/"*/trials  # samples and generators: large, not needed for the timing

# d. FID of 10k samples (random weights: seconds only)
phase d-fid-10k 150 $PY benchmarks/metrics.py --n "$N_FID" --device "$DEVICE" --weights random --out "$OUT/metrics.json"

# e. the roofline of the MLP GAN step on this machine's CPU (peak GEMM, FLOPs/step, fraction of peak)
ROOF_KS="1 16 64"; ROOF_SECS=2; [ "$DEVICE" = cpu ] && { ROOF_KS="1 4"; ROOF_SECS=0.5; }
phase e-roofline 90 $PY benchmarks/roofline.py --seconds "$ROOF_SECS" --ks $ROOF_KS --out "$OUT/roofline.json"

# f. what the gpu suite costs on this device (short timed runs of each kind of training; nothing stored)
phase f-benchmark-gpu-plan 120 $PY -c "from bench.cli import main; main()" benchmark --suite gpu --plan \
    --device "$DEVICE" --no-inception --format csv

phase summary 30 $PY benchmarks/gpu_summary.py "$OUT"
say "done: results under $OUT"
