# The module's surface: the calls that are a contract (lenz.Model, from_text, summary, fit, predict,
# lenz.Error), and each agrees with the command line it stands for.
import json

import numpy as np
import pytest

import lenz
from conftest import ROOT, lenz_cli

FASHION = str(ROOT / "models/fashion.lenz")


def test_surface():
    for name in ("Model", "Error", "load", "visualize", "datasets", "Summary", "threads", "set_threads",
                 "set_winograd"):
        assert hasattr(lenz, name), name
    for name in ("from_text", "summary", "fit", "predict", "evaluate", "save", "export_onnx"):
        assert callable(getattr(lenz.Model, name)), name
    assert issubclass(lenz.Error, ValueError)
    model = lenz.Model(FASHION)
    assert model.input_shape == (28, 28, 1) and model.classes == 10
    assert "fashion.lenz" in repr(model)


def test_summary_is_lenz_summary_json():
    summary = lenz.Model(FASHION).summary(batch=50)
    cli = json.loads(lenz_cli("summary", FASHION, "--batch", 50, "--json").stdout)
    assert set(summary) == set(cli)
    assert dict(summary) == cli
    assert str(summary) == lenz_cli("summary", FASHION, "--batch", 50).stdout
    html = summary._repr_html_()
    assert "<table" in html and "<details>" in html and "How these figures come about" in html
    assert summary["params"] == 421642
    sgd = lenz.Model(FASHION).summary(batch=50, optimizer="sgd")
    assert sgd["training_bytes_plan"] < summary["training_bytes_plan"]


def test_set_winograd_is_the_winograd_option():
    resnet18 = str(ROOT / "models/resnet18.lenz")
    lenz.set_threads(2)
    try:
        for use, plan in (("off", 107025312), ("wide", 150994080), ("on", 145226912)):
            lenz.set_winograd(use)
            assert lenz.Model(resnet18).summary()["inference_bytes_plan"] == plan, use
            cli = json.loads(lenz_cli("summary", resnet18, "--json", "--threads", 2, "--winograd", use).stdout)
            assert cli["inference_bytes_plan"] == plan, use
        with pytest.raises(lenz.Error, match="off, on"):
            lenz.set_winograd("yes")
    finally:
        lenz.set_winograd("on")
        lenz.set_threads(0)


def test_from_text():
    model = lenz.Model.from_text("input 28x28x1\nconv 8 3 relu\nmaxpool 2\nflatten\ndense 10 softmax\n")
    assert model.summary()["params"] == 8 * 10 + 13 * 13 * 8 * 10 + 10
    assert model.text.startswith("input 28x28x1")
    p = model.predict(np.zeros((2, 28, 28, 1), np.uint8))
    assert p.shape == (2, 10)


def test_errors_are_the_command_lines(tmp_path):
    bad = tmp_path / "bad.lenz"
    bad.write_text("input 28x28x1\nconv 8 30 relu\n")
    cli = lenz_cli("summary", bad, check=False)
    assert cli.returncode == 1
    with pytest.raises(lenz.Error) as e:
        lenz.Model(str(bad))
    assert cli.stderr.strip() == "lenz: error: " + str(e.value)
    with pytest.raises(lenz.Error, match=r"<text>:2:"):
        lenz.Model.from_text("input 28x28x1\nconv 8 30 relu\n")
    with pytest.raises(lenz.Error, match="unknown optimizer 'adagrad'"):
        lenz.Model(FASHION).summary(optimizer="adagrad")
    with pytest.raises(lenz.Error, match="expected a trained model"):
        lenz.load(FASHION)
    with pytest.raises(lenz.Error):
        lenz.Model(tmp_path / "missing.lenz")


def test_predict_returns_probabilities_it_owns(fashion):
    (_, _), (x_test, _) = fashion
    model = lenz.Model(FASHION)
    p = model.predict(x_test[:100])
    assert p.shape == (100, 10) and p.dtype == np.float32
    assert p.flags["OWNDATA"] and p.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    # float32 pixels / 255 are the same images; batches of any size give the same answers.
    np.testing.assert_allclose(model.predict(x_test[:100].astype(np.float32) / 255), p, atol=1e-5)
    np.testing.assert_allclose(model.predict(x_test[:100], batch=7), p, atol=1e-6)
    assert model.predict(x_test[:0]).shape == (0, 10)


def test_save_load_and_onnx(tmp_path, fashion):
    (x, y), (x_test, y_test) = fashion
    model = lenz.Model(FASHION)
    model.fit(x[:640], y[:640], epochs=1, batch=64)
    p = model.predict(x_test[:50])
    model.save(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(lenz.load(tmp_path / "m.safetensors").predict(x_test[:50]), p)
    model.export_onnx(tmp_path / "m.onnx")
    np.testing.assert_allclose(lenz.load(tmp_path / "m.onnx").predict(x_test[:50]), p, atol=1e-5)
    # The command line reads what the module writes.
    assert lenz_cli("summary", tmp_path / "m.safetensors", "--json").returncode == 0
    ours = model.evaluate(x_test[:500], y_test[:500])
    assert set(ours) >= {"images", "accuracy", "loss", "per_class", "confusion"}
    assert ours["images"] == 500 and len(ours["confusion"]) == 10


def test_evaluate_matches_lenz_eval(cli_run):
    out, _ = cli_run
    model = lenz.load(out / "model.safetensors")
    ours = model.evaluate("fashion-mnist")
    cli = json.loads(lenz_cli("eval", out / "model.safetensors", "--json").stdout)
    for key in ("images", "accuracy", "loss", "per_class", "confusion"):
        assert ours[key] == pytest.approx(cli[key]) if key == "loss" else ours[key] == cli[key], key
    assert model.class_names[0] == "T-shirt/top"


def test_visualize_as_the_command_line(tmp_path, cli_run):
    out, _ = cli_run
    lenz_cli("sample", "--index", 3, "--out", tmp_path / "sample.png")
    lenz_cli("visualize", out / "model.safetensors", tmp_path / "sample.png", "--out", tmp_path / "cli")
    pictures = lenz.visualize(lenz.load(out / "model.safetensors"), str(tmp_path / "sample.png"), out=tmp_path / "py")
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(p.name for p in (tmp_path / "py").iterdir())
    assert sorted(pictures) == sorted(p.stem for p in (tmp_path / "py").iterdir())
    for name in ("input", "probabilities", "filters", "overview", "01-conv-28x28x32"):
        assert pictures[name].dtype == np.uint8 and pictures[name].shape[2] == 3, name
    assert (tmp_path / "cli/overview.png").read_bytes() == (tmp_path / "py/overview.png").read_bytes()


def test_datasets(fashion):
    (x, y), (x_test, y_test) = fashion
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (60000,) and y.min() == 0 and y.max() == 9
    assert x_test.shape == (10000, 28, 28, 1) and y_test.shape == (10000,)
    d = lenz.datasets.load("fashion-mnist")
    assert d["class_names"][9] == "Ankle boot"


def test_reports_as_the_command_line(tmp_path, fashion):
    (x, y), (x_test, y_test) = fashion
    model = lenz.Model(FASHION)
    history = model.fit(x[:640], y[:640], epochs=2, validation=(x_test[:200], y_test[:200]), out=tmp_path / "run")
    for name in ("model.safetensors", "best.safetensors", "metrics.jsonl", "report.html"):
        assert (tmp_path / "run" / name).exists(), name
    # The history and metrics.jsonl are one list of named figures: the same keys in the same order.
    logged = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [list(h) for h in history] == [list(line) for line in logged]
    assert list(history[0])[:6] == ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "best"]
    assert logged[0]["best"] is True and isinstance(logged[0]["epoch"], int)
    assert history[1]["test_accuracy"] == pytest.approx(logged[1]["test_accuracy"], rel=1e-12)
    assert "after epoch 2 of 2" in (tmp_path / "run/report.html").read_text()
    model.report(tmp_path / "eval.html", x_test[:200], y_test[:200])
    page = (tmp_path / "eval.html").read_text()
    assert "Lenz report" in page and "fashion" in page and "<svg" in page  # the fits' curves
    quiet = model.fit(x[:64], y[:64], epochs=1, out=tmp_path / "quiet", report=False)
    assert not (tmp_path / "quiet/report.html").exists()
    # Without a test set the test figures are left out of both, not written as null.
    line = json.loads((tmp_path / "quiet/metrics.jsonl").read_text())
    assert list(line) == list(quiet[0]) and "test_loss" not in line


def test_quantize_is_lenz_quantize(tmp_path, cli_run, fashion):
    out, _ = cli_run
    model = lenz.load(out / "model.safetensors")
    assert not model.quantized
    before = model.evaluate("fashion-mnist")["accuracy"]
    model.quantize("fashion-mnist", images=256)
    assert model.quantized
    after = model.evaluate("fashion-mnist")
    cli = json.loads(lenz_cli("quantize", out / "model.safetensors", "--data", "fashion-mnist", "--images", 256,
                              "--out", tmp_path / "q.safetensors", "--json").stdout)
    assert after["accuracy"] == pytest.approx(cli["int8_accuracy"], abs=1e-12)
    assert abs(after["accuracy"] - before) < 0.01
    _, (x, _) = fashion
    probabilities = model.predict(x[:64])
    assert probabilities.shape == (64, 10)
    model.save(tmp_path / "mine.safetensors")
    assert (tmp_path / "mine.safetensors").stat().st_size == (tmp_path / "q.safetensors").stat().st_size
    assert lenz.load(tmp_path / "mine.safetensors").quantized
    with pytest.raises(lenz.Error, match="images must be at least 1"):
        model.quantize("fashion-mnist", images=0)
