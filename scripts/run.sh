#!/usr/bin/env bash
# The main job: set up, build, and train the default model (a CNN) on Fashion-MNIST.
# Extra arguments go to the example, e.g. scripts/run.sh --model mlp --epochs 3 (see --help).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
# Debian's OpenBLAS 0.3.21 does not recognise some newer Xeons and falls back to its slowest
# kernels (about 5x slower GEMM, see docs/performance.md). Name the core type when the user has not.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
exec "${EMBER_BUILD_DIR:-$root/build}/examples/fashion_mnist" --out-dir "$root/runs/fashion_mnist" "$@"
