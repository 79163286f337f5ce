#!/usr/bin/env bash
# Installs the Debian packages Lenz needs to build and train (only those that are missing); with
# --tests, also what only the tests use, so that run.sh does not fetch PyTorch.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config libgtest-dev libbenchmark-dev libcli11-dev
  nlohmann-json3-dev libdnnl-dev ocl-icd-opencl-dev libonnx-dev libprotobuf-dev libpng-dev libjpeg-dev libtiff-dev libwebp-dev zlib1g-dev libomp-dev clang libclang-rt-14-dev
  dataset-fashion-mnist)
if [ "${1:-}" = --tests ]; then
  packages+=(
    python3-numpy python3-onnx  # the ONNX test's independent evaluator (tests/formats/onnx_reference.py)
    python3-torch python3-torchvision  # torchvision's classifiers exported for scripts/zoo-ci.sh (tools/zoo_export.py)
    libonnx-testdata  # the ONNX project's own backend tests, for tools/onnx_conformance.py
    pybind11-dev python3-pybind11 python3-dev python3-pytest  # the Python module and its tests (tests/python)
    python3-pip python3-venv python3-setuptools python3-wheel  # its pip route, tested in a venv
    libopenmpi-dev openmpi-bin  # training under mpirun (tests/distributed); lenz builds without it too
    chromium)  # headless, for the test that renders report.html; large, but only a test needs it
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
