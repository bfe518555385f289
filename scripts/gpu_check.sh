#!/usr/bin/env bash
# GPU check for ember's CUDA backend: build for the H200 (sm_90), run every CUDA test, run the GPU
# benchmarks, print one summary table. The GPU part (`run`) finishes well within 8 minutes.
#
# The GPU machine has no package registry and no internet, and its system libraries differ from
# this machine's, so the work is split in two:
#
#   1. Here (nvcc, no GPU needed):
#        scripts/gpu_check.sh pack
#      configures and builds build-gpu/ (-DEMBER_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=90), then
#      writes build-gpu/gpu-bundle.tar.xz: the stripped test and benchmark binaries, libember and
#      the shared libraries ember needs that a bare CUDA image may lack (fmt, OpenBLAS with
#      gfortran/quadmath, libgomp). About 15 MiB, under the device tool's 64 MiB limit.
#      CUDA's own libraries (cudart, cuBLAS) are NOT packed (cuBLAS alone is ~700 MiB): the GPU
#      machine's CUDA 13 toolkit provides them (or PyTorch's nvidia-* wheels; see find_cuda_libs).
#
#   2. On the GPU machine, with the device tool (the bundle travels as a carried ignored path):
#        run(command="bash scripts/gpu_check.sh run", carry=["build-gpu/gpu-bundle.tar.xz"], timeout_s=540)
#      unpacks the bundle into build-gpu/bundle/ and runs the tests and benchmarks from there.
#      The summary is printed at the end and also written to $OUT/gpu_summary.txt when $OUT is set.
#
#   On a machine that has both nvcc and a GPU:   scripts/gpu_check.sh all   (= pack, then run)
#
# Tests run here are the CUDA ones (gtest filter *Cuda*: the harness's CudaParity rows of every op
# suite, the CudaRuntime tests and any other test with Cuda in its name); the CPU suite is CI's job.
# PyTorch (present on the GPU machine) provides the reference for the launch-overhead row.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-gpu"
BUNDLE_TAR="$BUILD/gpu-bundle.tar.xz"
BUNDLE="$BUILD/bundle"
JOBS="${JOBS:-2}"

log() { printf '\n==> %s\n' "$*"; }

# ---- pack (here) ----------------------------------------------------------------------------
pack() {
  log "configuring $BUILD for sm_90"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DEMBER_BUILD_EXAMPLES=OFF >/dev/null
  log "building (ninja -j$JOBS)"
  cmake --build "$BUILD" -j "$JOBS"
  log "packing $BUNDLE_TAR"
  local stage="$BUILD/stage"
  rm -rf "$stage" && mkdir -p "$stage/lib" "$stage/bin"
  cp -L "$BUILD"/libember.so.0 "$stage/lib/"
  cp "$BUILD"/tests/test_* "$stage/bin/" 2>/dev/null || true
  rm -f "$stage"/bin/*.cmake
  cp "$BUILD"/bench/bench_cuda "$stage/bin/"
  # ember's non-CUDA dependencies, resolved from the library itself
  for lib in $(ldd "$BUILD/libember.so.0" | awk '/=>/ {print $3}' |
    grep -E 'libfmt|libopenblas|libgfortran|libquadmath|libgomp'); do
    cp -L "$lib" "$stage/lib/"
  done
  strip --strip-unneeded "$stage"/bin/* "$stage"/lib/* 2>/dev/null || true
  tar -C "$stage" -cJf "$BUNDLE_TAR" .
  rm -rf "$stage"
  log "bundle: $(du -h "$BUNDLE_TAR" | cut -f1)  ->  carry build-gpu/gpu-bundle.tar.xz"
}

# ---- run (GPU machine) ------------------------------------------------------------------------
# Directories holding libcudart.so.13 / libcublas.so.13: the toolkit's, else PyTorch's wheels.
find_cuda_libs() {
  local dirs=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -e "$d/libcublas.so.13" ] && dirs="$dirs:$d"
  done
  if [ -z "$dirs" ] && command -v python3 >/dev/null; then
    dirs=$(python3 - <<'EOF' 2>/dev/null || true
import glob, os, site
paths = []
for sp in site.getsitepackages():
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so.13"), recursive=True):
        paths.append(os.path.dirname(lib))
print(":".join(sorted(set(paths))))
EOF
)
  fi
  echo "${dirs#:}"
}

declare -A R  # results by name

run_tests() {
  log "CUDA tests (gtest filter *Cuda*)"
  local passed=0 failed=0 skipped=0 failed_names=""
  for t in "$BUNDLE"/bin/test_*; do
    local name out
    name=$(basename "$t")
    if [ $((SECONDS - RUN_START)) -gt 330 ]; then  # keep the whole run inside 8 minutes
      echo "  $name: not run (time budget spent)"; failed=$((failed + 1)); failed_names="$failed_names $name(not-run)"
      continue
    fi
    set +e
    out=$(timeout 240 "$t" --gtest_filter='*Cuda*' --gtest_brief=1 2>&1)
    local rc=$?
    set -e
    local p f s
    p=$(grep -oE '\[  PASSED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
    f=$(grep -oE '\[  FAILED  \] [0-9]+ test' <<<"$out" | grep -oE '[0-9]+' | head -1 || echo 0)
    s=$(grep -oE '\[  SKIPPED \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ]; then
      failed_names="$failed_names $name"
      [ "${f:-0}" = 0 ] && failed=$((failed + 1))  # crashed or timed out without a gtest summary
      printf '%s\n' "$out" | tail -40
    fi
    printf '  %-28s passed %4s  failed %3s  skipped %3s\n' "$name" "${p:-0}" "${f:-0}" "${s:-0}"
  done
  R[tests_passed]=$passed; R[tests_failed]=$failed; R[tests_skipped]=$skipped
  R[tests_failed_binaries]="${failed_names:- none}"
}

run_bench() {
  log "GPU benchmarks (bench_cuda)"
  local out
  set +e
  out=$(timeout 240 "$BUNDLE/bin/bench_cuda" 2>&1)
  set -e
  printf '%s\n' "$out"
  while read -r _ key value; do R[$key]=$value; done < <(grep '^RESULT ' <<<"$out")

  log "PyTorch reference (launch overhead of a + b on 1024 float32; the two training steps)"
  if command -v python3 >/dev/null; then
    set +e
    out=$(timeout 120 python3 - <<'EOF' 2>&1
import time, torch
a = torch.rand(1024, device="cuda"); b = torch.rand(1024, device="cuda")
for _ in range(100): c = a + b
torch.cuda.synchronize()
best = 1e30
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(10000): c = a + b
    torch.cuda.synchronize()
    best = min(best, (time.perf_counter() - t0) / 10000)
print("RESULT launch_us_torch %.6g" % (best * 1e6))

import torch.nn as nn
def step_ms(model, opt, x, y):
    loss_fn = nn.CrossEntropyLoss()
    def step():
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    for _ in range(5): step()
    torch.cuda.synchronize()
    best = 1e30
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20): step()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / 20)
    return best * 1e3
torch.manual_seed(0)
mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).cuda()
x = torch.randn(128, 784, device="cuda"); y = torch.randint(0, 10, (128,), device="cuda")
print("RESULT train_mlp_ms_torch %.6g" % step_ms(mlp, torch.optim.SGD(mlp.parameters(), lr=0.01, momentum=0.9), x, y))
cnn = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                    nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10)).cuda()
x = torch.randn(64, 1, 28, 28, device="cuda"); y = torch.randint(0, 10, (64,), device="cuda")
print("RESULT train_cnn_ms_torch %.6g" % step_ms(cnn, torch.optim.Adam(cnn.parameters()), x, y))
EOF
)
    set -e
    printf '%s\n' "$out"
    while read -r _ key value; do R[$key]=$value; done < <(grep '^RESULT ' <<<"$out")
  fi
}

verdict() {  # verdict value op goal
  awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN {
    if (v == "") { print "n/a"; exit }
    ok = (op == ">=") ? (v + 0 >= g + 0) : (v + 0 <= g + 0); print ok ? "PASS" : "MISS" }'
}

summary() {
  local launch_ratio="" text
  if [ -n "${R[launch_us_ember]:-}" ] && [ -n "${R[launch_us_torch]:-}" ]; then
    launch_ratio=$(awk -v e="${R[launch_us_ember]}" -v t="${R[launch_us_torch]}" 'BEGIN { printf "%.3g", e / t }')
  fi
  text=$({
    echo
    echo "==================== ember GPU check summary ===================="
    echo "GPU: ${R[gpu]:-none}"
    printf '%-40s %-22s %-10s %s\n' "measure" "value" "goal" "verdict"
    local tests_verdict=FAIL
    if [ -z "${R[gpu]:-}" ]; then tests_verdict="NO GPU"; elif [ "${R[tests_failed]:-1}" = 0 ]; then tests_verdict=PASS; fi
    printf '%-40s %-22s %-10s %s\n' "CUDA tests passed / failed / skipped" \
      "${R[tests_passed]:-?} / ${R[tests_failed]:-?} / ${R[tests_skipped]:-?}" "0 failed" "$tests_verdict"
    printf '%-40s %-22s %-10s %s\n' "matmul 4096^3 f32: ember / cuBLAS" \
      "${R[matmul_ratio]:-n/a} (${R[matmul_ember_tflops]:-?} vs ${R[matmul_cublas_tflops]:-?} TFLOP/s)" ">= 0.97" \
      "$(verdict "${R[matmul_ratio]:-}" ">=" 0.97)"
    printf '%-40s %-22s %-10s %s\n' "add 64M f32: GB/s / copy GB/s" \
      "${R[add_ratio]:-n/a} (${R[add_gbs]:-?} vs ${R[copy_gbs]:-?})" ">= 0.80" "$(verdict "${R[add_ratio]:-}" ">=" 0.80)"
    printf '%-40s %-22s %-10s %s\n' "launch overhead a+b: ember / PyTorch" \
      "${launch_ratio:-n/a} (${R[launch_us_ember]:-?} vs ${R[launch_us_torch]:-?} us)" "report" "-"
    for m in mlp cnn; do
      local e="${R[train_${m}_ms_ember]:-}" t="${R[train_${m}_ms_torch]:-}" r=""
      [ -n "$e" ] && [ -n "$t" ] && r=$(awk -v e="$e" -v t="$t" 'BEGIN { printf "%.3g", e / t }')
      printf '%-40s %-22s %-10s %s\n' "train step $m: ember / PyTorch (time)" "${r:-n/a} (${e:-?} vs ${t:-?} ms)" \
        "<= 1.0" "$(verdict "$r" "<=" 1.0)"
    done
    echo "failing test binaries:${R[tests_failed_binaries]:- none}"
    echo "================================================================="
  })
  printf '%s\n' "$text"
  if [ -n "${OUT:-}" ]; then printf '%s\n' "$text" >"$OUT/gpu_summary.txt"; fi
}

RUN_START=$SECONDS
run() {
  RUN_START=$SECONDS
  if [ -f "$BUNDLE_TAR" ]; then
    rm -rf "$BUNDLE" && mkdir -p "$BUNDLE" && tar -C "$BUNDLE" -xJf "$BUNDLE_TAR"
  fi
  [ -x "$BUNDLE/bin/bench_cuda" ] || { echo "no bundle at $BUNDLE_TAR: run 'scripts/gpu_check.sh pack' first"; exit 2; }
  local cuda_libs
  cuda_libs=$(find_cuda_libs)
  export LD_LIBRARY_PATH="$BUNDLE/lib${cuda_libs:+:$cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  R[gpu]=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
  echo "GPU: ${R[gpu]:-none found (the CUDA tests will skip)}"
  run_tests
  run_bench
  summary
  log "done in $((SECONDS - RUN_START)) s"
  [ "${R[tests_failed]:-1}" = 0 ]
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  all) pack && run ;;
  *) echo "usage: $0 pack | run | all   (see the header of this script)"; exit 2 ;;
esac
