#!/usr/bin/env bash
# Configures and builds ember into ${EMBER_BUILD_DIR:-build} (CUDA backend when nvcc exists).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${EMBER_BUILD_DIR:-$root/build}"
# ccache keys on paths relative to the checkout, so every clone shares one cache.
export CCACHE_BASEDIR="$root"
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA="${EMBER_CUDA:-AUTO}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
