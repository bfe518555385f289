#!/usr/bin/env bash
# Builds ember and runs every test: the unit tests (CUDA ones skip without a GPU), an install +
# find_package + pkg-config consumer check, and the suite again under ASan + UBSan.
# EMBER_SANITIZE_TESTS=0 skips the sanitizer pass (it doubles the time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${EMBER_BUILD_DIR:-$root/build}"
export CCACHE_BASEDIR="$root"
# The sanitizer pass compiles with -g1, and with debug info ccache also hashes the directory it
# runs in, so a fresh checkout elsewhere (CI's) would miss the cache for every file. Without the
# directory in the hash, objects compiled in another checkout are reused; their debug info then
# names that checkout's build directory, which only a debugger would notice (the sanitizers'
# reports use the line tables, whose paths CCACHE_BASEDIR keeps relative).
export CCACHE_NOHASHDIR=1
"$root/scripts/setup.sh"

echo "== build"
"$root/scripts/build.sh"
echo "== unit tests"
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600

echo "== install + consumer project"
prefix="$(mktemp -d)"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$root/tests/consumer" -B "$prefix/consumer-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer-build/consumer"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" g++ -o "$prefix/consumer-pc" "$root/tests/consumer/main.cpp" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs ember)
LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer-pc"
rm -rf "$prefix"

if [ "${EMBER_SANITIZE_TESTS:-1}" != "0" ]; then
  echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  sbuild="${build}-sanitize"
  # -O1 -g1: the sanitizers' usual setting; line tables for the reports at half the compile time of -O2 -g.
  cmake -S "$root" -B "$sbuild" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DEMBER_CUDA=OFF -DEMBER_SANITIZE=ON -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCH=OFF >/dev/null
  cmake --build "$sbuild" -j"$(nproc)"
  # OpenMP's runtime keeps thread-local data that LeakSanitizer misreports; leaks are not the goal here.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$sbuild" --output-on-failure -j2 --timeout 900
fi
echo "== all tests passed"
