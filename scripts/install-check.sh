#!/usr/bin/env bash
# Lenz as a C++ library, as a user gets it (docs/cpp.md): installs a build (default: the release
# build, build/) to a temporary prefix, builds examples/cpp out of tree against that install twice,
# with find_package(Lenz) and with the one-line pkg-config command, and runs both programs: the
# CMake one on models/fashion.lenz, the pkg-config one on its ONNX export (written by the installed
# lenz) with an image. Each must print the model's 421,642 parameters, five epochs and a prediction.
# About 6 seconds on two cores.
#   scripts/install-check.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name lenz.pc)
[ -n "$pc" ] || { echo "install-check: no lenz.pc under $prefix" >&2; exit 1; }

# The program's output: the summary's parameter count, the last epoch, the prediction.
check() {
  local what=$1 out=$2 pattern
  for pattern in '^Parameters +421,642 trainable' '^epoch 5/5 .* acc' ': level [0-9]+ \(output '; do
    if ! grep -Eq "$pattern" "$out"; then
      echo "install-check: $what: no line matching /$pattern/ in its output:" >&2
      cat "$out" >&2
      exit 1
    fi
  done
}

# find_package(Lenz) and target_link_libraries(... Lenz::lenz).
cmake -S examples/cpp -B "$tmp/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/lenz-example" models/fashion.lenz >"$tmp/cmake.out"
check "find_package build" "$tmp/cmake.out"

# pkg-config: docs/cpp.md's command (--static: the library is static by default; the rpath only
# matters for a shared one).
export PKG_CONFIG_PATH=$(dirname "$pc")
c++ -std=c++20 -O2 -Wall -Wextra -Werror examples/cpp/main.cpp -o "$tmp/example-pc" \
  $(pkg-config --cflags --libs --static lenz) -Wl,-rpath,"$(pkg-config --variable=libdir lenz)"
"$prefix/bin/lenz" export models/fashion.lenz "$tmp/fashion.onnx" --quiet
"$tmp/example-pc" "$tmp/fashion.onnx" docs/feature-maps.png >"$tmp/pc.out"
check "pkg-config build" "$tmp/pc.out"
grep -q '^docs/feature-maps.png: level' "$tmp/pc.out"
libraries=$(find "$prefix" -name 'liblenz_*' | wc -l)
echo "install-check: $libraries Lenz libraries installed; examples/cpp built with find_package and with pkg-config; both ran"
