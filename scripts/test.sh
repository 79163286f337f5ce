#!/usr/bin/env bash
# Builds Lenz and runs every test: the release build, then the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j2
if [ "${LENZ_SKIP_ASAN:-0}" != "1" ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  # LeakSanitizer needs ptrace, which some sandboxes forbid. Left out here, to keep CI short: the
  # end-to-end runs (training, CLI, kill tests, the kernels at other ISAs), whose code the unit tests
  # under the sanitizers already cover piece by piece.
  ASAN_OPTIONS=detect_leaks=0 ctest --preset asan -j2 -E 'Trainer\.|Cli\.|Faults\.|kernels_at_'
fi
