#!/usr/bin/env bash
# The main job: set up, build, and train the default model (a CNN) on Fashion-MNIST.
# Extra arguments go to the example, e.g. scripts/run.sh --model mlp --epochs 3 (see --help).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
exec "${EMBER_BUILD_DIR:-$root/build}/examples/fashion_mnist" --out-dir "$root/runs/fashion_mnist" "$@"
