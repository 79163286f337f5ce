#!/usr/bin/python3
"""torchvision's CNN classifiers exported to ONNX, with PyTorch's outputs and costs, for Lenz to check.

Run from the repository root:  /usr/bin/python3 tools/zoo_export.py [--models a,b] [--size N]
[--opset 13|17] [--fold-bn] [--out DIR]
(Debian's python3-torch 1.13, python3-torchvision 0.14 and python3-onnx.) tools/zoo_check.py then
runs Lenz on every export (issue 12: ONNX import of every torchvision 0.14 CNN classifier).

For each model it writes, in DIR (default out/zoo):
- NAME.onnx: the model, batch free (input "input", output "logits");
- NAME.input.npy: float32 (2, 3, S, S) drawn from N(0, 1) with seed 0, the same for every model of a size;
- NAME.output.npy: PyTorch's float32 output on it, under torch.no_grad();
- NAME.output64.npy: the same model's output in float64, the reference that float32 rounding is
  measured against (the JSON's torch_float32_error is PyTorch's own float32 output's distance from it);
- NAME.json: model, task (classification or segmentation), input_size, opset, fold_bn, params and
  macs (the counts below).

The segmentation models (fcn_*, deeplabv3_*, lraspp_*; only when --models names them) are exported
without their auxiliary head, so that the file has one output: the map of 21 class scores at the
input's size (NAME.output.npy (2, 21, S, S)). Their bilinear interpolations have no weights and
count no multiplications.

Weights: torch.manual_seed(0) before building each model (weights=None), then whatever torchvision
initialises to a constant is made random, so that Lenz mishandling it shows in the output:
- every convolution's and linear layer's bias: N(0, 0.1) (most initialise to 0);
- every BatchNorm's and LayerNorm's scale U(0.5, 1.5) and shift N(0, 0.1) (1 and 0);
- ConvNeXt's layer_scale U(0.5, 1.5) (1e-6, which would hide every block behind its skip connection);
- every BatchNorm's running statistics. Drawn blindly (mean N(0, 0.1), variance U(0.5, 1.5)) they
  do not match the activations: the signal then explodes through deep ResNets (ResNet-152's logits
  reach 2e10) or vanishes (EfficientNet-B0's output is the same for any two inputs to 1e-7). So one
  training-mode forward of 4 other N(0, 1) images (seed 1) sets them to those images' statistics:
  means away from 0 and variances away from 1, so a batch norm folded the wrong way, or not applied,
  changes the output. They are not moved further: perturbed statistics compound through deep
  residual stacks until PyTorch's own float32 output differs from its float64 one by more than the
  check's tolerance (EfficientNet-V2-S by 58 % of its largest value), which makes the check meaningless.

The model is exported in eval mode with training=TrainingMode.PRESERVE, which keeps every
BatchNormalization node; --fold-bn exports with PyTorch's default (EVAL), which folds a batch norm
into the convolution before it, so the file's parameter count differs from PyTorch's (each folded
convolution gains a bias of C values, the batch norm's 2C go). The JSON keeps PyTorch's counts either
way. A model whose export fails is skipped with a message. One over ONNX's 2 GB limit for a single
protobuf (regnet_y_128gf) is written with its tensors as external data, in one file beside it
(NAME.onnx.data), which Lenz reads from the model's folder.

Costs, per image, counted with forward hooks on PyTorch's own modules during the reference forward:
- params: sum(p.numel() for p in model.parameters()); BatchNorm running statistics are not parameters;
- macs: multiplications by weights, Lenz's rule (README, Definitions):
  Conv2d         output elements * (in_channels / groups * kh * kw), padded positions included;
  Linear         output elements * in_features (in * out per row: a Linear applied to (N, H, W, C),
                 as in ConvNeXt, counts H * W * in * out);
  BatchNorm2d    output elements (the scale by gamma);
  LayerNorm      2 * elements (torchvision's LayerNorm2d is one);
  ConvNeXt's CNBlock: its output's elements (the multiply by layer_scale);
  F.interpolate  4 * output elements when bilinear (the segmentation models'), 0 when nearest;
  everything else 0: activations, pooling, additions, concatenations, SE's gating multiply, softmax.
On resnet18 this gives what tools/resnet18_costs.py prints (1,816,557,056).

Exporting every default model writes about 10 GB (each VGG alone is about 0.5 GB).
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import onnx
import torch
import torchvision
from torchvision.models.convnext import CNBlock

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 2
CALIBRATION_BATCH = 4
ONNX_LIMIT = 2**31  # bytes of one protobuf

# name -> keyword arguments for the builder, in the order they are exported.
MODELS = {
    "alexnet": {},
    "vgg11": {}, "vgg11_bn": {}, "vgg16": {}, "vgg16_bn": {},
    "resnet18": {}, "resnet34": {}, "resnet50": {}, "resnet101": {}, "resnet152": {},
    "resnext50_32x4d": {}, "resnext101_32x8d": {}, "resnext101_64x4d": {},
    "wide_resnet50_2": {}, "wide_resnet101_2": {},
    "squeezenet1_0": {}, "squeezenet1_1": {},
    "densenet121": {}, "densenet161": {}, "densenet169": {}, "densenet201": {},
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
    "mobilenet_v2": {}, "mobilenet_v3_small": {}, "mobilenet_v3_large": {},
    "mnasnet0_5": {}, "mnasnet0_75": {}, "mnasnet1_0": {}, "mnasnet1_3": {},
    "shufflenet_v2_x0_5": {}, "shufflenet_v2_x1_0": {}, "shufflenet_v2_x1_5": {}, "shufflenet_v2_x2_0": {},
    **{f"efficientnet_b{i}": {} for i in range(8)},
    "efficientnet_v2_s": {}, "efficientnet_v2_m": {}, "efficientnet_v2_l": {},
    **{f"regnet_{kind}_{size}": {} for kind in "xy"
       for size in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")},
    "regnet_y_128gf": {},
    "convnext_tiny": {}, "convnext_small": {}, "convnext_base": {}, "convnext_large": {},
}
# torchvision's segmentation models (issue 31), without their auxiliary head (aux_loss=False: one
# output, the map of 21 classes at the input's size), exported only when --models names them.
SEGMENTATION_MODELS = ("fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
                       "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
# Exported only when --models names them.
EXTRA_MODELS = ("vgg13", "vgg13_bn", "vgg19", "vgg19_bn", *SEGMENTATION_MODELS)
SIZES = {"inception_v3": 299}  # input size when --size is not given; 224 otherwise


class MapOutput(torch.nn.Module):
    """A segmentation model's "out", the one output of a model exported without its auxiliary head."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def build(name):
    """The model with seeded random weights, what torchvision sets to constants made random too."""
    torch.manual_seed(0)
    if name in SEGMENTATION_MODELS:
        model = MapOutput(torchvision.models.segmentation.__dict__[name](
            weights=None, weights_backbone=None, aux_loss=False))
    else:
        model = torchvision.models.get_model(name, weights=None, **MODELS.get(name, {}))
    gen = torch.Generator().manual_seed(1)
    norms = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, norms) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, CNBlock):
                m.layer_scale.copy_(torch.rand(m.layer_scale.shape, generator=gen) + 0.5)
    return model


def calibrate_batchnorm(model, size):
    """Running statistics from one training-mode forward (module docstring)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
    images = torch.randn(CALIBRATION_BATCH, 3, size, size, generator=torch.Generator().manual_seed(1))
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum


def macs_per_image(module, output, batch):
    """Lenz's multiplications by weights for one call of one module, per image (module docstring)."""
    if not isinstance(output, torch.Tensor):  # a segmentation model's dict of outputs, its backbone's
        return 0
    per_image = output.numel() // batch
    if isinstance(module, torch.nn.Conv2d):
        kh, kw = module.kernel_size
        return per_image * (module.in_channels // module.groups * kh * kw)
    if isinstance(module, torch.nn.Linear):
        return per_image * module.in_features
    if isinstance(module, torch.nn.BatchNorm2d):
        return per_image
    if isinstance(module, torch.nn.LayerNorm):
        return 2 * per_image
    if isinstance(module, CNBlock):
        return per_image
    return 0


def reference(model, x):
    """PyTorch's output on x, and the multiplications per image counted while computing it."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += macs_per_image(module, output, x.shape[0])

    # F.interpolate is a function, not a module: counted where it is called, 4 multiplications per
    # output value when bilinear (Lenz's rule for upsample), none when nearest.
    interpolate = torch.nn.functional.interpolate

    def counted_interpolate(*args, **kwargs):
        out = interpolate(*args, **kwargs)
        mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
        nonlocal total
        total += 4 * (out.numel() // x.shape[0]) if mode == "bilinear" else 0
        return out

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    torch.nn.functional.interpolate = counted_interpolate
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        torch.nn.functional.interpolate = interpolate
        for h in handles:
            h.remove()
    return y, total


def export(name, size, opset, fold_bn, out_dir):
    """Writes NAME.onnx, .input.npy, .output.npy and .json; returns the JSON's contents."""
    model = build(name)
    large = 4 * sum(t.numel() for t in model.state_dict().values()) >= ONNX_LIMIT
    calibrate_batchnorm(model, size)
    x = torch.randn(BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
    y, macs = reference(model, x)
    path = os.path.join(out_dir, name + ".onnx")
    # Above 2 GB PyTorch writes one file per tensor beside the model: into a folder of its own,
    # gathered below into one data file beside the model.
    scratch = tempfile.TemporaryDirectory(dir=out_dir) if large else None
    exported = os.path.join(scratch.name, name + ".onnx") if large else path
    try:
        with warnings.catch_warnings():
            # PRESERVE warns about constant folding in training mode; the model is in eval mode.
            warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
            torch.onnx.export(
                model, x, exported, opset_version=opset, do_constant_folding=True,
                training=torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE,
                input_names=["input"], output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    except Exception:
        if os.path.exists(path):
            os.remove(path)
        raise
    if large:
        proto = onnx.load(exported, load_external_data=True)
        onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=name + ".onnx.data")
        del proto
        scratch.cleanup()
    # The same model in float64: how far float32 rounding alone takes PyTorch from the exact result.
    with torch.no_grad():
        y64 = model.double()(x.double()).numpy()
    np.save(os.path.join(out_dir, name + ".input.npy"), x.numpy())
    np.save(os.path.join(out_dir, name + ".output.npy"), y.numpy().astype(np.float32))
    np.save(os.path.join(out_dir, name + ".output64.npy"), y64)
    info = {"model": name, "task": "segmentation" if name in SEGMENTATION_MODELS else "classification",
            "input_size": size, "opset": opset, "fold_bn": fold_bn,
            "params": sum(p.numel() for p in model.parameters()), "macs": macs,
            "torch_float32_error": float(np.abs(y.numpy() - y64).max() / np.abs(y64).max())}
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info


def model_list(text):
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in MODELS and n not in EXTRA_MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown model {', '.join(unknown)}; known: "
                                         f"{', '.join([*MODELS, *EXTRA_MODELS])}")
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=model_list, default=list(MODELS),
                        help="comma-separated names (default: every classifier but vgg13, vgg13_bn, vgg19, "
                             "vgg19_bn; the segmentation models only by name)")
    parser.add_argument("--size", type=int, help="input height and width (default 224, inception_v3 299)")
    parser.add_argument("--opset", type=int, choices=(13, 17), default=13)
    parser.add_argument("--fold-bn", action="store_true",
                        help="export with PyTorch's default EVAL mode, which folds batch norms into convolutions")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "zoo"), help="output folder (default out/zoo)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    skipped = 0
    for name in args.models:
        size = args.size or SIZES.get(name, 224)
        start = time.time()
        try:
            info = export(name, size, args.opset, args.fold_bn, args.out)
        except Exception as e:
            skipped += 1
            first_line = (str(e).strip().splitlines() or [""])[0]
            print(f"{name:22s} skipped: {type(e).__name__}: {first_line}", flush=True)
            continue
        print(f"{name:22s} {info['params']:>13,} params {info['macs']:>16,} MACs  {size}x{size}  "
              f"{time.time() - start:6.1f} s", flush=True)
    print(f"{len(args.models) - skipped} exported, {skipped} skipped, in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
