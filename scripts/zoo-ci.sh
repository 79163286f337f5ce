#!/usr/bin/env bash
# CI's share of issues 12 and 31 (ONNX import of torchvision 0.14's CNN classifiers and segmentation
# models): exports a subset of them with tools/zoo_export.py into a temporary folder, at small inputs, and
# checks each with tools/zoo_check.py against PyTorch: parameters, multiplications (MACs) and the
# output (largest difference at most 1e-4 of the largest value); one `lenz train --new-head`
# fine-tuning step on two of them. No speed. tools/zoo_export.py and zoo_check.py's docstrings say
# how; the full table over every model is docs/zoo.md.
#
#   scripts/zoo-ci.sh [LENZ]     LENZ: the binary to check (default build/lenz; build it first)
#
# The models: the smallest member of each of torchvision's CNN families, so that every kind of layer
# and graph those families export reaches Lenz's importer at least once (about 3.5 minutes in all
# and 1.6 GB of temporary files on this 2-core machine):
#   at 64x64, small enough to be quick, with a 2x2 map or larger left before the global pooling:
#   resnet18 (basic residual blocks), resnext50_32x4d (grouped 3x3 convolutions in bottlenecks),
#   wide_resnet50_2 (wide bottlenecks), squeezenet1_1 (fire modules' concatenation, ceil-mode
#   pooling, a convolutional classifier), densenet121 (dense concatenation), googlenet (inception
#   branches), mobilenet_v2 (inverted residuals, depthwise convolutions, ReLU6), mobilenet_v3_small
#   (hard-swish as HardSigmoid times x, squeeze-and-excitation), mnasnet0_5 (MNASNet blocks: 5x5
#   depthwise convolutions, no SE), shufflenet_v2_x0_5 (channel split and shuffle: Shape
#   arithmetic, Reshape, Transpose, Slice), efficientnet_b0
#   (SiLU, squeeze-and-excitation), efficientnet_v2_s (fused MBConv), regnet_y_400mf (the smallest
#   RegNet: group widths, squeeze-and-excitation), convnext_tiny (layer norm written out as
#   ReduceMean, Sub, Pow, Sqrt and Div; channels-last MatMul between Transposes; GELU through Erf;
#   layer scale);
#   at 75x75, inception_v3: the smallest input its stem takes (Pad before its average pools);
#   at 224x224, alexnet and vgg11_bn: smaller inputs would make their adaptive average pooling to
#   6x6 and 7x7 upsample. vgg11_bn, the smallest VGG with batch norm, adds about 20 s, most of it
#   writing and reading its 0.5 GB.
#   at 72x72, two of torchvision's segmentation models (issue 31): lraspp_mobilenet_v3_large and
#   deeplabv3_mobilenet_v3_large, whose feature maps of 5x5 and 9x9 make every interpolation one of
#   a ratio that is no whole number (upsample size=), with dilated depthwise convolutions, ASPP's
#   global pooling branch and LR-ASPP's sigmoid gate.
# Fine-tuning (`lenz train --new-head`, one step): mobilenet_v3_small (depthwise convolutions, batch
# norm, squeeze-and-excitation backward), resnet18 (residual adds) and lraspp_mobilenet_v3_large
# (per pixel, on a folder of masks; its head is two convolutions joined by an add); a second or two
# each.
# The other models of each family add size, not new kinds of layers; tools/zoo_export.py without
# --models, then tools/zoo_check.py, checks them all (docs/zoo.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lenz=$(realpath -m "${1:-$root/build/lenz}")  # before the cd: a relative LENZ is the caller's
cd "$root"
if [ ! -x "$lenz" ]; then
  echo "zoo-ci.sh: no Lenz binary at $lenz (cmake --build --preset release, or name one)" >&2
  exit 2
fi
small=resnet18,resnext50_32x4d,wide_resnet50_2,squeezenet1_1,densenet121,googlenet,mobilenet_v2
small+=,mobilenet_v3_small,mnasnet0_5,shufflenet_v2_x0_5,efficientnet_b0,efficientnet_v2_s,regnet_y_400mf
small+=,convnext_tiny
start=$SECONDS
dir=$(mktemp -d "${TMPDIR:-/tmp}/lenz-zoo-ci.XXXXXX")
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 tools/zoo_export.py --size 64 --models "$small" --out "$dir"
/usr/bin/python3 tools/zoo_export.py --size 75 --models inception_v3 --out "$dir"
/usr/bin/python3 tools/zoo_export.py --size 224 --models alexnet,vgg11_bn --out "$dir"
segmentation=lraspp_mobilenet_v3_large,deeplabv3_mobilenet_v3_large
/usr/bin/python3 tools/zoo_export.py --size 72 --models "$segmentation" --out "$dir"
# Every model named, so that one whose export was skipped fails here rather than going unchecked.
/usr/bin/python3 tools/zoo_check.py --dir "$dir" --lenz "$lenz" \
  --models "$small,inception_v3,alexnet,vgg11_bn,$segmentation" \
  --train --train-models mobilenet_v3_small,resnet18,lraspp_mobilenet_v3_large
echo "zoo-ci.sh: 17 torchvision classifiers and 2 segmentation models imported and matched PyTorch, in" \
  "$((SECONDS - start)) s"
