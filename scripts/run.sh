#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, show what the default model
# costs, train it on Fashion-MNIST, evaluate it, and classify a test image written out as PNG.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target lenz
out=runs/fashion
./build/lenz summary models/fashion.lenz --batch 64
./build/lenz train models/fashion.lenz --data fashion-mnist --out "$out"
./build/lenz eval "$out/model.safetensors" --data fashion-mnist
./build/lenz sample --data fashion-mnist --index 0 --out "$out/sample.png"
./build/lenz predict "$out/model.safetensors" "$out/sample.png" --top 3
