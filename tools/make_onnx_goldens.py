#!/usr/bin/python3
"""ONNX files exported by PyTorch, with PyTorch's outputs, for tests/formats/onnx_test.cpp.

Run from the repository root:  /usr/bin/python3 tools/make_onnx_goldens.py
(Debian's python3-torch, CPU; torch.onnx.export needs no other package.) It rewrites
tests/golden/onnx/*.onnx and the matching .json (the input and PyTorch's output, flat, NCHW).

The network uses every operator Lenz imports as PyTorch writes it: Conv with symmetric pads and
stride 2, BatchNormalization (after a pool, so the exporter cannot fold it into the convolution),
MaxPool, AveragePool with padding that is not counted, LeakyReLU, Sigmoid, GlobalAveragePool,
Flatten, Gemm, Tanh and Softmax; a second one ending in a channel softmax over a feature map; and a
third that flattens with x.view(x.size(0), -1).

Then what PyTorch 1.13 writes around such chains: a Pad of all zeros before every AveragePool and
the Shape/ConstantOfShape/Slice/Transpose/Cast subgraph of nn.ZeroPad2d (pytorch_avgpool); a
normalisation (x - mean) / std at the input (pytorch_normalized); fresh BatchNorm layers whose
identical initializers PyTorch merges, reading them through Identity nodes (pytorch_fresh_batchnorm);
a residual block (pytorch_residual) and AvgPool2d's default count_include_pad=True on padding
(pytorch_avgpool_counted).

Then the blocks of torchvision's graph CNNs, each between a stem convolution and a pooled linear
head, with every parameter moved off its default (ConvNeXt's layer scale starts at 1e-6 and would
hide its block): Inception's branches (concat, counted average-pool padding, ceil max pool),
DenseNet's dense block and transition, MobileNet v3's inverted residual (hard-swish written as
HardSigmoid and Mul, squeeze-and-excitation), EfficientNet's MBConv (SiLU written as Sigmoid and
Mul), ShuffleNet v2's units (Slice, the channel shuffle as Reshape/Transpose/Reshape, and the
mean over H and W as ReduceMean), and ConvNeXt's block (permutes, GELU as Erf arithmetic, linear
layers as MatMul, layer norm spelt out at opset 13 and as LayerNormalization at opset 17).

Then upsampling, as segmentation decoders have it: nn.Upsample (nearest, Resize by scales) whose
output is concatenated with the encoder's, bilinear by (2, 3) and with align_corners=True
(pytorch_upsample); F.interpolate to the size of an earlier tensor, the sizes worked out by
Shape/Slice/Concat as torchvision's segmentation heads do (pytorch_interpolate_size); and the old
Upsample operator of opset 9 (pytorch_upsample_opset9).

Last, nn.PReLU (one slope and one per channel), nn.ELU (alpha 0.5 and 1) and nn.LogSoftmax(dim=1)
over a map (pytorch_activations).
"""
import functools
import json
import os

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(7)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "onnx")


def classifier():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 12, 3, padding=1), nn.LeakyReLU(0.1),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.Conv2d(12, 16, 1), nn.Sigmoid(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10), nn.Tanh(),
        nn.Dropout(0.3),
        nn.Linear(10, 5), nn.Softmax(dim=1))


def feature_map():
    return nn.Sequential(nn.Conv2d(2, 6, (3, 5), padding=(1, 2)), nn.Tanh(), nn.Conv2d(6, 4, 1), nn.Softmax(dim=1))


class ViewNet(nn.Module):
    """x.view(x.size(0), -1), which PyTorch exports with a free batch as Shape, Gather, Unsqueeze,
    Concat and Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class Normalized(nn.Module):
    """torchvision's normalisation written in forward: the mean an initializer, the std a Constant."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
                                  nn.Softmax(dim=1))

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def avgpool():
    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(2, 6, 2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 4, 3, padding=1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))


class FreshBatchNorm(nn.Module):
    """Batch norm layers as constructed (weights 1, biases and means 0, variances 1) after pooling,
    where the exporter cannot fold them into a convolution."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.c2, self.b2 = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.b1(torch.max_pool2d(torch.relu(self.c1(x)), 2))
        x = self.b2(torch.max_pool2d(self.c2(x), 2))
        return self.fc(torch.flatten(x, 1))


class Residual(nn.Module):
    """One ResNet basic block with a downsampling shortcut, as in resnet18's layer2."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.c1, self.b1 = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.stem(x)
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        y = torch.relu(y + self.down(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class Block(nn.Module):
    """A stem convolution to `channels`, the blocks, and a pooled linear head of 3 classes."""

    def __init__(self, channels, *blocks, out_channels=None, mean_head=False):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(out_channels or channels, 3)
        self.mean_head = mean_head

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = x.mean([2, 3]) if self.mean_head else torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class InceptionLike(nn.Module):
    """Four branches joined along the channels, as GoogLeNet's and Inception v3's modules."""

    def __init__(self):
        super().__init__()
        self.b1 = nn.Conv2d(3, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(3, 2, 1))  # counts padding
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), nn.Conv2d(3, 2, 1))
        self.fc = nn.Linear(14, 3)

    def forward(self, x):
        x = torch.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def randomized(model):
    """Moves every one-dimensional parameter (biases, norm scales and shifts) and ConvNeXt's layer
    scale ((C, 1, 1), 1e-6 by default, which would hide its whole block) off its default, so that a
    block that imports wrongly cannot hide behind a zero, a one or a tiny scale."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 or name.endswith("layer_scale"):
                p.copy_(torch.empty(p.shape).uniform_(0.5, 1.5, generator=g) * torch.sign(torch.rand(p.shape, generator=g) - 0.3))
    return model


def export(name, model, shape, fresh=False, golden=True, opset=13):
    model.eval()
    for m in model.modules():  # batch norm statistics that are not the defaults
        if isinstance(m, nn.BatchNorm2d) and not fresh:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    x = torch.rand(*shape)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    if not golden:
        print(path)
        return
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"input_shape": list(shape), "input": [round(float(v), 8) for v in x.flatten()],
                   "output_shape": list(y.shape), "output": [float(v) for v in y.flatten()]}, f)
        f.write("\n")
    print(path, tuple(y.shape))


os.makedirs(OUT, exist_ok=True)
export("pytorch_classifier", classifier(), (2, 3, 30, 26))
export("pytorch_feature_map", feature_map(), (1, 2, 7, 9))
export("pytorch_view", ViewNet(), (3, 1, 8, 8))
export("pytorch_avgpool", avgpool(), (2, 2, 9, 8))
export("pytorch_normalized", Normalized(), (2, 3, 6, 6))
export("pytorch_fresh_batchnorm", FreshBatchNorm(), (2, 3, 12, 12), fresh=True)
export("pytorch_residual", Residual(), (1, 3, 8, 8), fresh=True)
# Grouped, depthwise and dilated convolutions (MobileNet's and DeepLab's).
export("pytorch_depthwise",
       nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(),
                     nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12), nn.ReLU(),
                     nn.Conv2d(12, 24, 3, stride=2, padding=1, groups=3), nn.Tanh(),
                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 4)), (2, 3, 11, 10))
export("pytorch_avgpool_counted",
       nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(3, stride=2, padding=1)), (1, 1, 8, 8))
# ceil_mode pooling, as SqueezeNet, GoogLeNet and Inception have it.
export("pytorch_ceil_pool",
       nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2, ceil_mode=True),
                     nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                     nn.Flatten(), nn.Linear(4 * 4 * 4, 3)), (2, 3, 16, 15))
# MobileNet's activations: ReLU6 (Clip to [0, 6]) and Hardsigmoid.
export("pytorch_mobile_activations",
       nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU6(), nn.Conv2d(6, 6, 3, padding=1, groups=6),
                     nn.Hardsigmoid(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4), nn.ReLU6()),
       (2, 3, 7, 6))

# The blocks of torchvision's graph CNNs.
from torchvision.models.convnext import CNBlock, LayerNorm2d  # noqa: E402
from torchvision.models.densenet import _DenseBlock, _Transition  # noqa: E402
from torchvision.models.efficientnet import MBConv, MBConvConfig  # noqa: E402
from torchvision.models.mobilenetv3 import InvertedResidual, InvertedResidualConfig  # noqa: E402
from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit  # noqa: E402

export("pytorch_inception", randomized(InceptionLike()), (2, 3, 9, 8))
export("pytorch_densenet", randomized(Block(8, _DenseBlock(2, 8, 2, 4, 0.0), _Transition(16, 8))), (2, 3, 8, 8))
hs_norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
export("pytorch_mobilenet_v3",
       randomized(Block(8, InvertedResidual(InvertedResidualConfig(8, 3, 24, 8, True, "HS", 1, 1, 1.0), hs_norm),
                        InvertedResidual(InvertedResidualConfig(8, 5, 16, 16, True, "RE", 2, 1, 1.0), hs_norm),
                        out_channels=16)), (2, 3, 9, 9))
export("pytorch_efficientnet",
       randomized(Block(8, MBConv(MBConvConfig(4, 3, 1, 8, 8, 1), 0.0, hs_norm),
                        MBConv(MBConvConfig(6, 5, 2, 8, 16, 1), 0.0, hs_norm), out_channels=16)), (2, 3, 8, 7))
export("pytorch_shufflenet",
       randomized(Block(8, ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1), out_channels=16, mean_head=True)),
       (2, 3, 8, 8))
for opset in (13, 17):
    export("pytorch_convnext" + ("" if opset == 13 else "_opset17"),
           randomized(Block(8, CNBlock(8, 1e-6, 0.0), LayerNorm2d(8), nn.Conv2d(8, 12, 2, stride=2), out_channels=12)),
           (2, 3, 8, 8), opset=opset)


class UpsampleNet(nn.Module):
    """A U-Net's step down and up: the decoder upsamples and concatenates the encoder's output."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.mid = nn.Conv2d(4, 6, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.dec = nn.Conv2d(10, 4, 3, padding=1)
        self.up2 = nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=False)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        e = torch.relu(self.enc(x))
        m = torch.relu(self.mid(nn.functional.max_pool2d(e, 2)))
        d = torch.relu(self.dec(torch.cat([self.up(m), e], 1)))
        y = nn.functional.interpolate(self.up2(d), scale_factor=2, mode="bilinear", align_corners=True)
        return self.head(y)


class InterpolateToSize(nn.Module):
    """torchvision's segmentation heads: the classifier's map, upsampled back to the input's size."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(6, 4, 3, stride=2, padding=1))

    def forward(self, x):
        size = x.shape[-2:]
        return nn.functional.interpolate(self.body(x), size=size, mode="bilinear", align_corners=False)


export("pytorch_upsample", randomized(UpsampleNet()), (2, 3, 6, 8))
export("pytorch_interpolate_size", randomized(InterpolateToSize()), (2, 3, 12, 16))
export("pytorch_upsample_opset9",
       randomized(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=(3, 2)), nn.Conv2d(4, 2, 1))),
       (1, 3, 5, 4), opset=9)


class ConvTransposeNet(nn.Module):
    """A U-Net's step down and up with learned upsampling: ConvTranspose2d 2x2 stride 2 whose output is
    concatenated with the encoder's, then 3x3 stride 2 padding 1 output_padding 1, grouped and dilated."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.mid = nn.Conv2d(4, 6, 3, padding=1)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.dec = nn.Conv2d(8, 4, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.up3 = nn.ConvTranspose2d(6, 2, (3, 2), stride=(1, 2), padding=(2, 0), dilation=2, bias=False)

    def forward(self, x):
        e = torch.relu(self.enc(x))
        m = torch.relu(self.mid(nn.functional.max_pool2d(e, 2)))
        d = torch.relu(self.dec(torch.cat([torch.relu(self.up(m)), e], 1)))
        return self.up3(torch.sigmoid(self.up2(d)))


export("pytorch_convtranspose", randomized(ConvTransposeNet()), (2, 3, 6, 8))

# The learned and the exponential activations: nn.PReLU with one slope (a (1) slope) and one per
# channel (PyTorch writes (C, 1, 1) on a map), nn.ELU with alpha 0.5 and 1, and nn.LogSoftmax(dim=1)
# over a map's channels. randomized moves the slopes off PyTorch's 0.25.
export("pytorch_activations",
       randomized(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ELU(0.5), nn.PReLU(1),
                                nn.Conv2d(4, 6, 3, padding=1), nn.PReLU(6), nn.Conv2d(6, 5, 1), nn.ELU(),
                                nn.LogSoftmax(dim=1))),
       (2, 3, 6, 7))
