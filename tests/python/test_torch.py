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
