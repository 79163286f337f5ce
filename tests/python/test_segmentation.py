# Segmentation through the command line: `lenz train` and `lenz eval` on a synthetic folder
# (docs/make-segmentation-folder.py), and the figures lenz eval reports against an independent
# NumPy computation from `lenz run`'s output maps.
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, lenz_cli

CLASSES = 4
SMALL_UNET = """input 32x32x3
conv 8 3x3 padding=same relu name=enc
maxpool 2
conv 16 3x3 padding=same relu
convtranspose 8 2 stride=2 relu name=up
concat up enc
conv 4 1x1
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small U-Net trained for 3 epochs on 96 synthetic 32x32 images: the data and run folders."""
    root = tmp_path_factory.mktemp("segmentation")
    data = root / "shapes"
    subprocess.run([sys.executable, str(ROOT / "docs/make-segmentation-folder.py"), str(data), "--train", "96",
                    "--test", "24", "--size", "32x32", "--seed", "3"], check=True, capture_output=True)
    model = root / "small-unet.lenz"
    model.write_text(SMALL_UNET)
    out = root / "run"
    lenz_cli("train", model, "--data", data, "--epochs", 3, "--batch", 16, "--lr", 0.005, "--loss", "ce+dice",
             "--no-report", "--quiet", "--out", out)
    return data, out


def numpy_scores(truth, predicted, classes):
    """Pixel accuracy, per-class IoU (NaN where a class is in neither) and their mean, 255 left out."""
    keep = truth != 255
    confusion = np.bincount(truth[keep].astype(np.int64) * classes + predicted[keep],
                            minlength=classes * classes).reshape(classes, classes)
    both = np.diag(confusion).astype(np.float64)
    either = confusion.sum(axis=0) + confusion.sum(axis=1) - both
    iou = np.full(classes, np.nan)
    iou[either > 0] = both[either > 0] / either[either > 0]
    return both.sum() / keep.sum(), iou, np.nanmean(iou), confusion


def test_eval_matches_an_independent_numpy_computation(trained, tmp_path):
    import lenz

    data, out = trained
    checkpoint = out / "model.safetensors"
    result = json.loads(lenz_cli("eval", checkpoint, "--data", data, "--json").stdout)
    d = lenz.datasets.load(data)
    np.save(tmp_path / "x.npy", (d["x_test"].transpose(0, 3, 1, 2) / 255.0).astype(np.float32))
    lenz_cli("run", checkpoint, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    scores = np.load(tmp_path / "y.npy")
    assert scores.shape == (24, CLASSES, 32, 32)
    accuracy, iou, mean_iou, confusion = numpy_scores(d["y_test"], scores.argmax(axis=1), CLASSES)
    assert result["pixels"] == int((d["y_test"] != 255).sum())
    assert result["images"] == 24
    # lenz run and lenz eval run the model at other batch sizes: a near tie may round the other way.
    assert np.abs(np.array(result["confusion"]) - confusion).sum() <= 0.001 * result["pixels"]
    assert result["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert result["mean_iou"] == pytest.approx(mean_iou, abs=2e-3)
    for got, want in zip(result["per_class_iou"], iou):
        assert (got is None) == bool(np.isnan(want))
        if got is not None:
            assert got == pytest.approx(want, abs=2e-3)
    # A comparison worth making: the model predicts more than one class.
    assert len(np.unique(scores.argmax(axis=1))) >= 2


def test_metrics_log_mean_iou_and_the_best_checkpoint_follows_it(trained):
    _, out = trained
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3]
    best = -1.0
    for m in lines:
        assert list(m)[:6] == ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                               "test_mean_iou"]
        assert m["best"] == (m["test_mean_iou"] > best)
        best = max(best, m["test_mean_iou"])
    assert (out / "best.safetensors").exists()


def test_a_classifier_on_masks_is_one_clear_error(trained, tmp_path):
    data, _ = trained
    run = lenz_cli("train", ROOT / "models/fashion.lenz", "--data", data, "--epochs", 1, "--quiet", "--out",
                   tmp_path / "run", check=False)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "mask per image (28x28) but the model's output is 1x1x10" in lines[0]


def test_fit_on_masks_then_predict_segment_and_evaluate(trained):
    import lenz

    data, _ = trained
    d = lenz.datasets.load(data)
    model = lenz.Model.from_text(SMALL_UNET)
    history = model.fit(d["x_train"], d["y_train"], validation=(d["x_test"], d["y_test"]),
                        class_names=d["class_names"], epochs=2, batch=16, lr=0.005, seed=2)
    assert len(history) == 2 and all(0 <= h["test_mean_iou"] <= 1 for h in history)
    assert model.classes == CLASSES
    probabilities = model.predict(d["x_test"][:3])
    assert probabilities.shape == (3, 32, 32, CLASSES)
    assert np.allclose(probabilities.sum(axis=-1), 1, atol=1e-5)
    classes = model.segment(d["x_test"][:3])
    assert classes.shape == (3, 32, 32) and classes.dtype == np.uint8
    assert (classes == probabilities.argmax(axis=-1)).mean() > 0.999  # ties aside
    scores = model.evaluate(d["x_test"], d["y_test"])
    accuracy, iou, mean_iou, _ = numpy_scores(d["y_test"], model.segment(d["x_test"]).astype(np.int64), CLASSES)
    assert scores["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert scores["mean_iou"] == pytest.approx(mean_iou, abs=2e-3)
    assert scores["mean_iou"] == pytest.approx(history[-1]["test_mean_iou"], abs=1e-9)
    assert [c["class"] for c in scores["per_class"]] == d["class_names"]


def test_bad_masks_are_one_clear_error(trained):
    import lenz

    data, _ = trained
    d = lenz.datasets.load(data)
    model = lenz.Model.from_text(SMALL_UNET)
    with pytest.raises(lenz.Error, match=r"expected masks of shape \(96, 32, 32\)"):
        model.fit(d["x_train"], d["y_train"][:, :16], epochs=1)
    masks = d["y_train"].astype(np.int64)
    masks[5, 3, 4] = 300
    with pytest.raises(lenz.Error, match="mask value 300 of image 5 is neither a class"):
        model.fit(d["x_train"], masks, epochs=1)
    masks[5, 3, 4] = 9
    with pytest.raises(lenz.Error, match="mask 5 has class 9, outside the model's 4 output channels"):
        model.fit(d["x_train"], masks, epochs=1)
    with pytest.raises(lenz.Error, match="not a map at its input's size"):
        lenz.Model.from_text("input 32x32x3\nflatten\ndense 4\n").segment(d["x_test"][:1])


def test_a_pytorch_unet_imports_runs_exports_and_fine_tunes(trained, tmp_path):
    import lenz

    data, _ = trained
    subprocess.run([sys.executable, str(ROOT / "tests/python/torch_unet.py"), str(tmp_path)], check=True,
                   capture_output=True)
    x, want = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")  # (4, 3, 32, 32), (4, 5, 32, 32)
    tolerance = 1e-4 * np.abs(want).max()
    for opset in (13, 17):
        onnx = tmp_path / f"unet{opset}.onnx"
        lenz_cli("run", onnx, "--input", tmp_path / "x.npy", "--output", tmp_path / "got.npy")
        np.testing.assert_allclose(np.load(tmp_path / "got.npy"), want, atol=tolerance)
        model = lenz.load(onnx)
        assert model.classes == 5
        # predict: each pixel's softmax, in the images' layout.
        e = np.exp(want - want.max(axis=1, keepdims=True))
        np.testing.assert_allclose(model.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1))),
                                   (e / e.sum(axis=1, keepdims=True)).transpose(0, 2, 3, 1), atol=1e-5)
        # Out to ONNX again: the same maps.
        lenz_cli("export", onnx, tmp_path / "again.onnx")
        lenz_cli("run", tmp_path / "again.onnx", "--input", tmp_path / "x.npy", "--output", tmp_path / "again.npy")
        np.testing.assert_allclose(np.load(tmp_path / "again.npy"), want, atol=tolerance)
    # Fine-tuning on the synthetic set's 4 classes: --new-head gives the last convolution 4 outputs.
    run = lenz_cli("train", tmp_path / "unet17.onnx", "--data", data, "--new-head", "--epochs", 1, "--batch", 16,
                   "--no-report", "--out", tmp_path / "tuned")
    assert "new head: layer" in run.stdout and "for 4 classes" in run.stdout
    assert json.loads((tmp_path / "tuned/metrics.jsonl").read_text().splitlines()[-1])["test_mean_iou"] >= 0


def test_upsample_to_any_size_matches_pytorch(tmp_path):
    """upsample size=HxW against F.interpolate(size=...), in a model file and through ONNX both ways:
    33 to 65 (DeepLab's and LR-ASPP's ratio at 520x520), and smaller."""
    import torch
    import torch.nn.functional as F

    x = torch.rand(2, 3, 33, 20, generator=torch.Generator().manual_seed(5))
    np.save(tmp_path / "x.npy", x.numpy())
    for size, mode, corners in [((65, 47), "bilinear", False), ((65, 47), "bilinear", True), ((65, 47), "nearest", None),
                                ((17, 9), "bilinear", False)]:
        want = F.interpolate(x, size=size, mode=mode, align_corners=corners).numpy()
        words = f"upsample size={size[0]}x{size[1]}" + (" bilinear" if mode == "bilinear" else "") + \
            (" align-corners" if corners else "")
        (tmp_path / "up.lenz").write_text(f"input 33x20x3\n{words}\n")
        lenz_cli("run", tmp_path / "up.lenz", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=1e-6, err_msg=words)
        # PyTorch's export (Shape, Gather, Concat into Resize's sizes) imports as the same layer, and
        # Lenz's export runs the same again.
        module = torch.jit.trace(lambda t: F.interpolate(t, size=size, mode=mode, align_corners=corners), x)
        torch.onnx.export(module, x, str(tmp_path / "up.onnx"), opset_version=13)
        lenz_cli("run", tmp_path / "up.onnx", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=1e-6, err_msg=words + " (ONNX)")
        lenz_cli("export", tmp_path / "up.onnx", tmp_path / "again.onnx")
        lenz_cli("run", tmp_path / "again.onnx", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=1e-6, err_msg=words + " (export)")
