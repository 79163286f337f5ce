"""A U-Net in PyTorch (one decoder stage by a transposed convolution, the other by bilinear
upsampling and a convolution), batch norm with statistics of its own, exported to ONNX at opsets 13
and 17, with its output maps on random images: what test_segmentation.py compares Lenz with. Run in
its own process. Usage: torch_unet.py OUT_DIR"""
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

out = Path(sys.argv[1])
torch.manual_seed(0)


def pair(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.enc1, self.enc2, self.bottom = pair(3, 8), pair(8, 16), pair(16, 32)
        self.up2, self.dec2 = nn.ConvTranspose2d(32, 16, 2, stride=2), pair(32, 16)
        self.up1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                 nn.Conv2d(16, 8, 1))
        self.dec1, self.head = pair(16, 8), nn.Conv2d(8, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
        b = self.bottom(nn.functional.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        return self.head(self.dec1(torch.cat([self.up1(d2), e1], 1)))


model = UNet()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
model.eval()
x = torch.rand(4, 3, 32, 32)
for opset in (13, 17):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, str(out / f"unet{opset}.onnx"), opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
with torch.no_grad():
    np.save(out / "x.npy", x.numpy())
    np.save(out / "y.npy", model(x).numpy())
