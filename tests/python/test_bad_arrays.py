# Wrong arrays are lenz.Error saying what was expected, never a crash.
import numpy as np
import pytest

import lenz
from conftest import ROOT

X = np.zeros((4, 28, 28, 1), np.uint8)
Y = np.arange(4)


@pytest.fixture(scope="module")
def model():
    return lenz.Model(str(ROOT / "models/fashion.lenz"))


@pytest.mark.parametrize(
    "x, message",
    [
        (X.astype(np.float64), r"expected uint8 pixels \(0-255\) or float32 pixels / 255, got dtype float64"),
        (X.astype(np.int32), "got dtype int32"),
        (X.astype(">f4"), "got dtype >f4"),
        (X[:, :, :, 0], r"expected an array of shape \(N, 28, 28, 1\) .* got shape \(4, 28, 28\)"),
        (X.reshape(4, 1, 28, 28), r"got shape \(4, 1, 28, 28\)"),
        (np.zeros((28, 28, 1), np.uint8), r"got shape \(28, 28, 1\)"),
        (np.zeros((4, 32, 32, 3), np.uint8), r"got shape \(4, 32, 32, 3\)"),
        (np.zeros((8, 28, 28, 1), np.uint8)[::2], "expected a C-contiguous array"),
        (np.asfortranarray(np.zeros((4, 28, 28, 1), np.float32)), "expected a C-contiguous array"),
        (X.tolist(), "expected images as a NumPy array, .* got list"),
        ("not an array", "expected images as a NumPy array"),
    ],
)
def test_bad_images(model, x, message):
    with pytest.raises(lenz.Error, match=message):
        model.predict(x)
    if not isinstance(x, str):  # fit takes a string as a data set's name
        with pytest.raises(lenz.Error, match=message):
            model.fit(x, Y, epochs=1)
    with pytest.raises(lenz.Error):
        model.evaluate(x, Y)


@pytest.mark.parametrize(
    "y, message",
    [
        (np.zeros(4, np.float32), "expected integer labels"),
        (np.zeros(3, np.int64), r"expected labels of shape \(4,\), one per image, got \(3,\)"),
        (np.zeros((4, 1), np.int64), r"got \(4, 1\)"),
        (np.array([0, 1, -1, 2]), "label -1 of image 2 is not a class number"),
        (np.array([0, 1, 10, 2]), "has label 10, outside the model's 10 outputs"),
        ([0, 1, 2, 3], "expected labels as a NumPy array"),
        (None, r"images need their labels"),
    ],
)
def test_bad_labels(model, y, message):
    with pytest.raises(lenz.Error, match=message):
        model.fit(X, y, epochs=1)


@pytest.mark.parametrize("call", ["predict", "evaluate", "fit"])
def test_bad_float_pixels_alike_everywhere(model, call):
    """float32 pixels from 0 to 255, normalised ones, NaN and infinities: refused by each call alike
    (predict used to return saturated probabilities for 0-255)."""
    run = {
        "predict": lambda x: model.predict(x),
        "evaluate": lambda x: model.evaluate(x, Y),
        "fit": lambda x: model.fit(x, Y, epochs=1),
    }[call]
    x = np.zeros((4, 28, 28, 1), np.float32)
    x[2, 3, 4, 0] = 255.0
    with pytest.raises(lenz.Error, match=rf"{call}: .*range from 0 to 255 .*look like pixels from 0 to 255"):
        run(x)
    x[2, 3, 4, 0] = -0.42
    with pytest.raises(lenz.Error, match="look normalised"):
        run(x)
    x[2, 3, 4, 0] = np.nan
    with pytest.raises(lenz.Error, match="image 2 has a NaN pixel at row 3, column 4, channel 0"):
        run(x)
    x[2, 3, 4, 0] = np.inf
    with pytest.raises(lenz.Error, match="image 2 has an infinite pixel at row 3"):
        run(x)


def test_pytorch_order_is_named():
    rgb = lenz.Model.from_text("input 8x8x3\nconv 2 3x3\nflatten\ndense 2 softmax\n")
    with pytest.raises(lenz.Error, match=r"PyTorch's \(N, C, H, W\) order: x.transpose\(0, 2, 3, 1\)"):
        rgb.predict(np.zeros((2, 3, 8, 8), np.float32))


def test_a_map_output_is_not_classes():
    # A map smaller than the input is neither classes nor a segmentation of the image.
    strided = lenz.Model.from_text("input 8x8x1\nconv 5 3x3 stride=2 padding=same\n")
    with pytest.raises(lenz.Error, match=r"predict: the model's output is a 4x4x5 map"):
        strided.predict(np.zeros((1, 8, 8, 1), np.uint8))
    # One at the input's size segments: labels per image do not fit it.
    fcn = lenz.Model.from_text("input 8x8x1\nconv 5 3x3 padding=same\n")
    assert fcn.predict(np.zeros((1, 8, 8, 1), np.uint8)).shape == (1, 8, 8, 5)
    with pytest.raises(lenz.Error, match="8x8x5 map"):
        fcn.evaluate(np.zeros((1, 8, 8, 1), np.uint8), np.zeros(1, np.int64))


def test_class_names_for_arrays(tmp_path):
    m = lenz.Model.from_text("input 4x4x1\nflatten\ndense 2 softmax\n")
    x = np.zeros((4, 4, 4, 1), np.uint8)
    x[2:] = 200
    y = np.array([0, 0, 1, 1])
    m.fit(x, y, epochs=1, batch=4, class_names=["dark", "light"], out=tmp_path / "run", report=False)
    assert m.class_names == ["dark", "light"]
    assert lenz.load(tmp_path / "run" / "model.safetensors").class_names == ["dark", "light"]
    with pytest.raises(lenz.Error, match="class_names: 3 names for the model's 2 classes"):
        m.fit(x, y, epochs=1, class_names=["a", "b", "c"])
    with pytest.raises(lenz.Error, match="class_names: expected a list of strings"):
        m.fit(x, y, epochs=1, class_names="ab")


def test_bad_options(model):
    # The ranges and choices of lenz train's options, in the same words.
    with pytest.raises(lenz.Error, match="fit: epochs: must be between 1 and 100000, got 0"):
        model.fit(X, Y, epochs=0)
    with pytest.raises(lenz.Error, match="fit: optimizer: 'adagrad' is not one of sgd, momentum"):
        model.fit(X, Y, optimizer="adagrad")
    with pytest.raises(lenz.Error, match="fit: schedule: 'linear' is not one of"):
        model.fit(X, Y, schedule="linear")
    with pytest.raises(lenz.Error, match="fit: lr: must be greater than 0, got 0"):
        model.fit(X, Y, lr=0)
    with pytest.raises(lenz.Error, match="fit: augment_flip: expected true or false, got 1"):
        model.fit(X, Y, augment_flip=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch' \\(did you mean epochs\\?\\)"):
        model.fit(X, Y, epoch=1)
    with pytest.raises(lenz.Error, match=r"validation=\(images, labels\)"):
        model.fit(X, Y, validation=X)
    with pytest.raises(lenz.Error, match="leave out y"):
        model.fit("fashion-mnist", Y)
    with pytest.raises(lenz.Error, match="batch must be at least 1"):
        model.predict(X, batch=0)
    with pytest.raises(lenz.Error, match="no-such-data"):
        model.fit("no-such-data")
    with pytest.raises(lenz.Error, match=r"fit: epochs: expected a whole number, got 1.5"):
        model.fit(X, Y, epochs=1.5)
    with pytest.raises(lenz.Error, match="fit: seed: must be at least 0, got -1"):
        model.fit(X, Y, seed=-1)
    with pytest.raises(lenz.Error, match="fit: lr: expected a number, got 'fast'"):
        model.fit(X, Y, lr="fast")
