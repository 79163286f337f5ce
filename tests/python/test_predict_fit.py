# predict equals `lenz predict` on the same images, and fit equals `lenz train` with the same seed.
import _thread
import inspect
import json
import threading
import time

import numpy as np
import pytest

import lenz
from conftest import ROOT, TRAIN, lenz_cli

FASHION = str(ROOT / "models/fashion.lenz")


def test_predict_equals_lenz_predict(tmp_path, cli_run, fashion):
    out, _ = cli_run
    (_, _), (x_test, _) = fashion
    images = []
    for i in range(6):
        images.append(tmp_path / f"{i}.png")
        lenz_cli("sample", "--index", i, "--out", images[-1])
    cli = json.loads(lenz_cli("predict", out / "model.safetensors", *images, "--top", 10, "--json").stdout)
    model = lenz.load(out / "model.safetensors")
    ours = model.predict(x_test[:6])
    for i, row in enumerate(cli):
        for entry in row["predictions"]:
            k = model.class_names.index(entry["class"])
            assert ours[i, k] == pytest.approx(entry["probability"], abs=1e-6), (i, entry)


def test_fit_on_a_data_set_is_lenz_train(cli_run):
    _, metrics = cli_run
    model = lenz.Model(FASHION)
    history = model.fit("fashion-mnist", **TRAIN)
    assert len(history) == len(metrics) == 1
    # The same run, step for step: the same images, order, weights and arithmetic.
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "learning_rate"):
        assert history[0][key] == pytest.approx(metrics[0][key], rel=1e-9), key
    assert model.class_names[9] == "Ankle boot"
    assert model.history == history


def test_fit_takes_lenz_trains_options_with_its_defaults():
    # One table (lenz/train_options.h) gives the command line's options and fit's keywords.
    help_text = lenz_cli("help", "train").stdout
    parameters = inspect.signature(lenz.Model.fit).parameters
    for option in lenz._core.train_options():
        assert option["name"] + " " in help_text, option
        assert parameters[option["keyword"]].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[option["keyword"]].default == option["default"], option
    # The defaults lenz train documents.
    assert parameters["optimizer"].default == "adam" and parameters["lr"].default is None
    assert parameters["warmup"].default == 0.5 and parameters["batch"].default == 64
    assert "weight_decay=0.0: L2" in lenz.Model.fit.__doc__


def test_fit_on_arrays_reaches_the_command_lines_accuracy(cli_run, fashion):
    _, metrics = cli_run
    (x, y), (x_test, y_test) = fashion
    n, m = TRAIN["limit_train"], TRAIN["limit_test"]
    model = lenz.Model(FASHION)
    # The limits take the same stratified samples of the same arrays as --limit-train and --limit-test,
    # normalised by the whole training set's statistics: the same run, step for step.
    history = model.fit(x, y, epochs=1, batch=TRAIN["batch"], seed=1, validation=(x_test, y_test),
                        limit_train=n, limit_test=m)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert history[0][key] == pytest.approx(metrics[0][key], rel=1e-9), key
    assert history[0]["test_accuracy"] > 0.75
    # The first n images are another sample (Fashion-MNIST's are shuffled already): close, not equal.
    first = lenz.Model(FASHION).fit(x[:n], y[:n], epochs=1, batch=TRAIN["batch"], seed=1)
    assert first[0]["train_accuracy"] == pytest.approx(history[0]["train_accuracy"], abs=0.05)
    # Without validation data nothing is evaluated.
    history = model.fit(x[:256], y[:256], epochs=2, batch=64)
    assert len(history) == 2 and "test_accuracy" not in history[0] and "train_loss" in history[1]


def test_progress_and_stopping(fashion, tmp_path):
    (x, y), _ = fashion
    model = lenz.Model(FASHION)
    before = model.predict(x[:4])
    steps = []

    def progress(p):
        steps.append(p)
        return len(steps) < 5  # False at the fifth step stops training

    history = model.fit(x[:3200], y[:3200], epochs=2, batch=32, progress=progress, out=tmp_path / "run")
    assert len(steps) == 5 and history == []
    assert steps[0]["batches"] == 100 and steps[-1]["step"] == 5
    assert set(steps[0]) >= {"epoch", "epochs", "batch", "batches", "step", "loss", "accuracy"}
    assert not np.array_equal(model.predict(x[:4]), before)  # five steps' weights
    assert (tmp_path / "run/model.safetensors").exists()


def test_ctrl_c_stops_fit_at_the_next_step(fashion):
    (x, y), _ = fashion
    model = lenz.Model(FASHION)
    steps = []

    def progress(p):
        steps.append(p)
        if len(steps) == 3:
            _thread.interrupt_main()  # what Ctrl-C does: Python's SIGINT handler runs

    with pytest.raises(KeyboardInterrupt):
        model.fit(x[:3200], y[:3200], epochs=1, batch=32, progress=progress)
    assert len(steps) == 3
    assert model.predict(x[:2]).shape == (2, 10)  # the model is usable after


def test_errors_in_the_callback_stop_fit(fashion):
    (x, y), _ = fashion

    def progress(p):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        lenz.Model(FASHION).fit(x[:320], y[:320], epochs=1, batch=32, progress=progress)


def test_other_threads_run_while_the_engine_computes(fashion):
    (x, _), _ = fashion
    model = lenz.Model(FASHION)
    model.predict(x[:64])  # the runner is made once
    worker = threading.Thread(target=model.predict, args=(x[:20000],))
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
    worker.join()
    # With the GIL held through predict this loop would not run until it returned.
    assert ticks > 1000


def test_ctrl_c_stops_predict_between_batches(fashion):
    (x, _), _ = fashion
    model = lenz.Model(FASHION)
    images = np.concatenate([x] * 4)  # seconds of work
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        model.predict(images, batch=64)
    timer.join()
    assert time.monotonic() - started < 2  # stopped within a batch, not at the end
