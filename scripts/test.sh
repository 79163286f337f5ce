#!/usr/bin/env bash
# Builds Lenz and runs every test: the release build (and the Python module's tests and the ONNX
# project's backend tests on it), then the unit tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, then the concurrency tests and one short training run under
# ThreadSanitizer. The release binary is also checked on
# torchvision's classifiers (scripts/zoo-ci.sh). LENZ_SKIP_ASAN=1 or LENZ_SKIP_TSAN=1 leave a
# sanitizer pass out, LENZ_SKIP_ZOO=1 the classifiers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
cmake --preset release -DLENZ_PYTHON=ON >/dev/null
cmake --build --preset release
ctest --preset release -j2
# Lenz as a C++ library: install to a temporary prefix, build and run examples/cpp against it (~6 s).
./scripts/install-check.sh
# The Python module (pytest): the release build's module against build/lenz and PyTorch, the
# notebook example, and pip's route in a virtual environment (well under a minute).
PYTHONPATH=build/python LENZ_BUILD_DIR=build /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
# The ONNX project's own backend tests (Debian's libonnx-testdata) on the release binary: a wrong
# number or a crash fails; refusals are allowed, and listed in docs/onnx-conformance.md.
/usr/bin/python3 tools/onnx_conformance.py --check
# The docs' examples (README.md's tour, each docs page's first example) against build/lenz (about 20 s).
./scripts/docs-check.sh
# torchvision's classifiers, one of each family at small inputs, and two segmentation models, against
# PyTorch: parameters, MACs, outputs, and a fine-tuning step on three (scripts/zoo-ci.sh says which
# and why; about 4 minutes).
if [ "${LENZ_SKIP_ZOO:-0}" != "1" ]; then
  ./scripts/zoo-ci.sh build/lenz
fi
if [ "${LENZ_SKIP_ASAN:-0}" != "1" ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  # LeakSanitizer needs ptrace, which some sandboxes forbid. Left out here, to keep CI short: the
  # end-to-end runs (training, CLI, kill tests, mpirun, the kernels at other ISAs), whose code the unit tests
  # under the sanitizers already cover piece by piece.
  ASAN_OPTIONS=detect_leaks=0 ctest --preset asan -j2 -E 'Trainer\.|Cli\.|Faults\.|MpiRun\.|kernels_at_'
fi
if [ "${LENZ_SKIP_TSAN:-0}" != "1" ]; then
  # ThreadSanitizer with clang and its OpenMP runtime, whose tool Archer tells ThreadSanitizer about
  # OpenMP's barriers; the runtime and oneDNN themselves are not instrumented, so their accesses are
  # left out. What it checks: separate models on separate threads (Concurrency.*) and the OpenMP
  # loops of whole training runs, with evaluation and checkpoints, on a chain and on graphs.
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan --target lenz lenz_concurrency_tests
  archer=$(ls /usr/lib/llvm-*/lib/libarcher.so | head -n 1)
  export OMP_TOOL_LIBRARIES="$archer" TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1"
  build-tsan/lenz_concurrency_tests
  tsan_run=$(mktemp -d)
  build-tsan/lenz train models/fashion.lenz --data fashion-mnist --epochs 1 --limit-train 512 --limit-test 256 \
    --threads 2 --no-report --quiet --out "$tsan_run"
  # A graph: the residual block's add and its shared gradient buffers.
  build-tsan/lenz train models/residual-block.lenz --data fashion-mnist --epochs 1 --limit-train 256 \
    --limit-test 128 --threads 2 --no-report --quiet --out "$tsan_run/residual"
  # Channels-last batch norm (per-thread sums), depthwise convolutions, squeeze-and-excitation gates.
  build-tsan/lenz train models/fashion-mobile.lenz --data fashion-mnist --epochs 1 --limit-train 256 \
    --limit-test 128 --threads 2 --no-report --quiet --out "$tsan_run/mobile"
  rm -rf "$tsan_run"
  echo "ThreadSanitizer: Concurrency.* and three training runs (a chain and two graphs), no races"
fi
