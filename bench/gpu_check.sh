#!/usr/bin/env bash
# One command on a GPU machine: build the CUDA extension, run every CUDA test,
# run the kernel tests under compute-sanitizer memcheck, run the GPU
# benchmarks, print a summary. Every stage runs and reports even when an
# earlier one failed; the exit status is non-zero if any stage failed.
#
#   bench/gpu_check.sh                      # all stages: env build test sanitize bench
#   bench/gpu_check.sh build test           # only these stages (in this order)
#
# A device command may be limited to ~10 minutes: the build directory
# (build/<wheel tag>) persists between calls on one machine, so the stages can
# also be run in separate calls (`build test`, then `sanitize`, then `bench`).
#
# Environment knobs:
#   PYTHON                python to use (default python3)
#   GPU_CHECK_ARCH        CMAKE_CUDA_ARCHITECTURES for this build, e.g. "native" or "90-real"
#                         (default: the project's 80-real 90-real 90-virtual)
#   SANITIZER_TOOLS       compute-sanitizer tools to run (default "memcheck"; add "racecheck" for
#                         shared-memory races)
#   SANITIZER_FILES       test files for the sanitizer (default: tests/ops/test_cuda_*.py)
#   SANITIZER_K           pytest -k expression for the sanitizer runs (default: none)
#   SANITIZER_TIMEOUT     seconds per file and tool (default 240)
#   BENCH_BUDGET          seconds per implementation and case (default 0.6)
#   BENCH_OPS             --ops for the benchmark (default: all)
#   OUT                   if set: logs, the summary and bench_cuda.json are written there
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
LOG_DIR=${OUT:-$(mktemp -d /tmp/pyfastnn_gpu_check.XXXXXX)}
mkdir -p "$LOG_DIR"
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(env build test sanitize bench)

declare -a SUMMARY=()
FAILED=0
record() {  # stage status detail
  SUMMARY+=("$(printf '%-10s %-12s %s' "$1" "$2" "$3")")
  case "$2" in FAIL|TIMEOUT) FAILED=1 ;; esac
}
banner() { echo; echo "==================== $* ===================="; }

find_sanitizer() {
  local c
  for c in "$(command -v compute-sanitizer 2>/dev/null)" \
           "${CUDA_HOME:-/nonexistent}/bin/compute-sanitizer" \
           /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
           /usr/local/cuda-*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer/compute-sanitizer \
           /opt/nvidia/*/compute-sanitizer; do
    if [ -n "$c" ] && [ -x "$c" ] && [ ! -d "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

stage_env() {
  banner "environment"
  nvidia-smi -L 2>&1 || echo "nvidia-smi not available"
  nvidia-smi --query-gpu=name,driver_version,compute_cap,clocks.sm,clocks.max.sm,memory.total --format=csv 2>&1 || true
  (command -v nvcc >/dev/null && nvcc --version | tail -2) || echo "nvcc not on PATH"
  $PY - <<'EOF'
import sys
print("python", sys.version.split()[0], sys.executable)
for name in ("numpy", "cupy", "torch", "pybind11", "scikit_build_core", "pytest", "hypothesis"):
    try:
        mod = __import__(name)
        print(f"{name} {getattr(mod, '__version__', '?')}")
    except Exception as exc:
        print(f"{name}: not importable ({type(exc).__name__}: {exc})")
EOF
  local s; s=$(find_sanitizer) && echo "compute-sanitizer: $s" || echo "compute-sanitizer: not found"
  record env INFO "see log"
}

stage_build() {
  banner "build: pip install --no-build-isolation -e . (PYFASTNN_CUDA=ON)"
  local missing
  missing=$($PY -c "
import importlib.util as u
print(' '.join(p for p, m in (('scikit-build-core', 'scikit_build_core'), ('pybind11', 'pybind11')) if u.find_spec(m) is None))")
  if [ -n "$missing" ]; then
    echo "installing build requirements: $missing"
    $PY -m pip install -q $missing || echo "could not install $missing (offline?); the build will likely fail"
  fi
  if ! command -v nvcc >/dev/null 2>&1; then
    for d in "${CUDA_HOME:-/nonexistent}/bin" /usr/local/cuda/bin; do
      [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break
    done
  fi
  command -v nvcc >/dev/null 2>&1 || echo "nvcc not found: PYFASTNN_CUDA=ON will fail"
  local extra=()
  if [ -n "${GPU_CHECK_ARCH:-}" ]; then
    extra+=(--config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES="$GPU_CHECK_ARCH")
  fi
  local start=$SECONDS rc
  PYFASTNN_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    $PY -m pip install --no-build-isolation --no-deps -v -e . ${extra[@]+"${extra[@]}"} >"$LOG_DIR/build.log" 2>&1
  rc=$?
  grep -E "error|warning:" "$LOG_DIR/build.log" | tail -20
  if [ $rc -ne 0 ]; then
    tail -60 "$LOG_DIR/build.log"
    record build FAIL "pip exit $rc after $((SECONDS - start)) s; log: $LOG_DIR/build.log"
    return
  fi
  $PY -c "
import pyfastnn
info = pyfastnn.backend_info()
print('backend_info:', {k: info[k] for k in ('cuda_built', 'cuda_available', 'cuda_error', 'gpu_name')})
raise SystemExit(0 if info['cuda_available'] else 3)"
  rc=$?
  if [ $rc -ne 0 ]; then
    record build FAIL "built, but the CUDA extension is not usable (see backend_info above)"
  else
    record build PASS "$((SECONDS - start)) s"
  fi
}

stage_test() {
  banner "tests: pytest -q tests/ops -k cuda"
  local start=$SECONDS rc gpu
  # Without a usable GPU every CUDA test skips and pytest still exits 0.
  gpu=$($PY -c "import pyfastnn; i = pyfastnn.backend_info(); print('yes' if i['cuda_available'] else 'no: ' + str(i['cuda_error']))" 2>&1 | tail -1)
  set -o pipefail
  $PY -m pytest -q -p no:cacheprovider -rfEs tests/ops -k cuda 2>&1 | tee "$LOG_DIR/tests.log" | tail -80
  rc=$?
  set +o pipefail
  local line; line=$(grep -E "^(=+ )?[0-9]+ (passed|failed|skipped|error)" "$LOG_DIR/tests.log" | tail -1)
  local skipped; skipped=$(grep -cE "^SKIPPED" "$LOG_DIR/tests.log")
  case $rc in
    0) if [ "$gpu" != yes ]; then record test FAIL "CUDA not usable by pyfastnn ($gpu): the CUDA tests skipped";
       elif grep -qE "[0-9]+ passed" <<<"$line"; then record test PASS "$line ($((SECONDS - start)) s)";
       else record test FAIL "nothing passed: $line"; fi ;;
    5) record test FAIL "no tests collected" ;;
    *) record test FAIL "pytest exit $rc: $line" ;;
  esac
  [ "$skipped" -gt 0 ] && echo "note: $skipped skip lines (see -rs output above)"
}

stage_sanitize() {
  banner "compute-sanitizer on the CUDA kernel tests"
  local san
  if ! san=$(find_sanitizer); then
    record sanitize SKIP "compute-sanitizer not found"
    return
  fi
  local files=(${SANITIZER_FILES:-tests/ops/test_cuda_*.py})
  local tools=(${SANITIZER_TOOLS:-memcheck})
  local k_args=()
  [ -n "${SANITIZER_K:-}" ] && k_args=(-k "$SANITIZER_K")
  local log="$LOG_DIR/sanitizer.log"; : >"$log"
  local any_fail=0 any_timeout=0 unsupported=0 ran=0 f tool rc
  for tool in "${tools[@]}"; do
    for f in "${files[@]}"; do
      [ -f "$f" ] || continue
      echo "--- $tool: $f" | tee -a "$log"
      # CuPy's memory pool hands out pieces of large blocks, which would hide
      # out-of-bounds accesses from memcheck: every array gets its own
      # cudaMalloc instead. PYFASTNN_SANITIZER_RUN=1 makes the tests skip
      # their large cases.
      PYFASTNN_SANITIZER_RUN=1 timeout "${SANITIZER_TIMEOUT:-240}" \
        "$san" --tool "$tool" --error-exitcode 86 --print-limit 30 --target-processes all \
        $PY -c "
import sys
import cupy
cupy.cuda.set_allocator(None)
import pytest
sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', sys.argv[1]] + sys.argv[2:]))
" "$f" ${k_args[@]+"${k_args[@]}"} >>"$log" 2>&1
      rc=$?
      ran=1
      tail -4 "$log"
      if grep -q "Device not supported\|not supported on this\|Target application terminated before first instrumented API call" "$log"; then
        unsupported=1
      fi
      case $rc in
        0|5) ;;
        124) any_timeout=1; echo "    (timed out after ${SANITIZER_TIMEOUT:-240} s: partial run)" | tee -a "$log" ;;
        86) any_fail=1; echo "    $tool reported errors" | tee -a "$log" ;;
        *) any_fail=1; echo "    exit $rc" | tee -a "$log" ;;
      esac
    done
  done
  local errs; errs=$(grep -E "ERROR SUMMARY: [1-9]" "$log" | head -3 | tr '\n' ' ')
  if [ $ran -eq 0 ]; then
    record sanitize SKIP "no test files matched"
  elif [ $unsupported -eq 1 ] && [ $any_fail -eq 1 ] && [ -z "$errs" ]; then
    record sanitize SKIP "compute-sanitizer cannot instrument this device/runtime (see $log)"
  elif [ $any_fail -eq 1 ]; then
    record sanitize FAIL "${errs:-test failures under the sanitizer}; log: $log"
  elif [ $any_timeout -eq 1 ]; then
    record sanitize TIMEOUT "some files did not finish (SANITIZER_TIMEOUT, SANITIZER_K); no errors in what ran"
  else
    record sanitize PASS "${tools[*]}: no errors"
  fi
}

stage_bench() {
  banner "benchmarks: python -m pyfastnn.bench --device cuda"
  local args=(--device cuda --budget "${BENCH_BUDGET:-0.6}")
  [ -n "${BENCH_OPS:-}" ] && args+=(--ops "$BENCH_OPS")
  [ -n "${OUT:-}" ] && args+=(--json "$OUT/bench_cuda.json")
  local rc
  set -o pipefail
  $PY -m pyfastnn.bench "${args[@]}" 2>&1 | tee "$LOG_DIR/bench.log"
  rc=$?
  set +o pipefail
  if [ $rc -eq 0 ]; then
    record bench PASS "${OUT:+json: $OUT/bench_cuda.json}"
  else
    record bench FAIL "exit $rc (an implementation failed or the run broke); log: $LOG_DIR/bench.log"
  fi
}

for stage in "${STAGES[@]}"; do
  case "$stage" in
    env) stage_env ;;
    build) stage_build ;;
    test) stage_test ;;
    sanitize) stage_sanitize ;;
    bench) stage_bench ;;
    *) record "$stage" FAIL "unknown stage (env build test sanitize bench)" ;;
  esac
done

banner "summary"
{
  printf '%-10s %-12s %s\n' stage status detail
  for line in ${SUMMARY[@]+"${SUMMARY[@]}"}; do echo "$line"; done
  echo "logs: $LOG_DIR"
} | tee "$LOG_DIR/summary.txt"
exit $FAILED
