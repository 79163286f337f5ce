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
"""
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


def export(name, model, shape):
    model.eval()
    for m in model.modules():  # batch norm statistics that are not the defaults
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    x = torch.rand(*shape)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"input_shape": list(shape), "input": [round(float(v), 8) for v in x.flatten()],
                   "output_shape": list(y.shape), "output": [float(v) for v in y.flatten()]}, f)
        f.write("\n")
    print(path, tuple(y.shape))


os.makedirs(OUT, exist_ok=True)
export("pytorch_classifier", classifier(), (2, 3, 30, 26))
export("pytorch_feature_map", feature_map(), (1, 2, 7, 9))
export("pytorch_view", ViewNet(), (3, 1, 8, 8))
