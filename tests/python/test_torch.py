# PyTorch and Lenz on the same weights: a model exported by torch.onnx.export, loaded by lenz.load,
# gives PyTorch's probabilities on the same images.
import subprocess
import sys
from pathlib import Path

import numpy as np

import lenz


def test_same_weights_same_outputs(tmp_path):
    subprocess.run([sys.executable, str(Path(__file__).with_name("torch_model.py")), str(tmp_path)], check=True)
    x = np.load(tmp_path / "x.npy")  # (N, C, H, W) as PyTorch holds images
    expected = np.load(tmp_path / "p.npy")
    model = lenz.load(tmp_path / "torch.onnx")
    assert model.input_shape == (28, 28, 1) and model.classes == 10
    ours = model.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert (ours.argmax(axis=1) == expected.argmax(axis=1)).all()
    # The same model as a Lenz checkpoint, and back out to ONNX, still agrees.
    model.save(tmp_path / "lenz.safetensors")
    np.testing.assert_allclose(lenz.load(tmp_path / "lenz.safetensors").predict(x.transpose(0, 2, 3, 1).copy()),
                               expected, atol=1e-5)


def test_summary_names_batch_norms_folded_at_export(tmp_path):
    """torch.onnx.export in eval mode folds batch norm into the convolution before it; lenz summary and
    lenz import say so, and the export that keeps batch norm gets no such note."""
    from conftest import lenz_cli

    script = f"""
import torch
m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                        torch.nn.Conv2d(4, 2, 1), torch.nn.Flatten()).eval()
x = torch.zeros(1, 3, 8, 8)
torch.onnx.export(m, x, "{tmp_path}/folded.onnx", opset_version=13)
torch.onnx.export(m, x, "{tmp_path}/kept.onnx", opset_version=13, training=torch.onnx.TrainingMode.PRESERVE,
                  do_constant_folding=False)
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    folded = lenz_cli("summary", tmp_path / "folded.onnx").stdout
    assert "Note: 1 of 2 convolutions carry a batch norm that PyTorch's export folded into them" in folded
    assert "do_constant_folding=False" in folded
    assert "note: 1 of 2 convolutions" in lenz_cli("import", tmp_path / "folded.onnx", tmp_path / "f.safetensors").stdout
    kept = lenz_cli("summary", tmp_path / "kept.onnx").stdout
    assert "batchnorm" in kept and "Note:" not in kept
    assert "Note:" not in lenz_cli("summary", tmp_path / "folded.onnx", "--json").stdout
