"""A small CNN in PyTorch, exported to ONNX, with its outputs on random images: what
test_torch.py compares Lenz with. Run in its own process (PyTorch and the module each bring their
threads and libraries). Usage: torch_model.py OUT_DIR"""
import sys
from pathlib import Path

import numpy as np
import torch

out = Path(sys.argv[1])
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
    torch.nn.Linear(16 * 6 * 6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1))
with torch.no_grad():  # batch norm with statistics of its own, not the identity
    model[1].running_mean.uniform_(-0.5, 0.5)
    model[1].running_var.uniform_(0.5, 2.0)
model.eval()
x = torch.rand(16, 1, 28, 28)  # pixels / 255
torch.onnx.export(model, x, str(out / "torch.onnx"), opset_version=13, input_names=["x"], output_names=["p"],
                  dynamic_axes={"x": {0: "n"}, "p": {0: "n"}})
with torch.no_grad():
    np.save(out / "x.npy", x.numpy())
    np.save(out / "p.npy", model(x).numpy())
