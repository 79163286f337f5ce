#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, in build-fuzz/) and runs each for SECONDS
# (default 10), one after another on one core, starting from the seed corpus in fuzz/corpus/<target>/.
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>/ (not into the repository); a crash
# leaves its input in build-fuzz/crashes/ and fails the script.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 180 fuzz_checkpoint
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_model_text fuzz_checkpoint fuzz_idx fuzz_image fuzz_onnx fuzz_npy)

if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DLENZ_FUZZ=ON -DLENZ_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build-fuzz --target "${targets[@]}" -j"$(nproc)"

mkdir -p build-fuzz/crashes
status=0
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/${t#fuzz_}"
  # The ONNX target also starts from PyTorch's exports of torchvision's blocks (the zoo's small members).
  [ "$t" = fuzz_onnx ] && seeds="$seeds tests/golden/onnx"
  work="build-fuzz/corpus/${t#fuzz_}"
  mkdir -p "$work"
  log="build-fuzz/$t.log"
  # -rss_limit_mb: every reader caps its allocations far below this, so passing it is a finding.
  # detect_leaks=0: LeakSanitizer needs ptrace, which some sandboxes forbid.
  if ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=1 "build-fuzz/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=3072 \
      -timeout=20 -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" "$work" $seeds >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "$t: ${seconds}s, $runs executions, no findings"
  else
    echo "$t: FAILED (see $log; the input is in build-fuzz/crashes/)"
    tail -n 40 "$log"
    status=1
  fi
done
exit $status
