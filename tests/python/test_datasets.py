# lenz.datasets.load on image folders: the most common size and channels rather than the first
# image's, every format read as PIL's convert("RGB") reads it (what torchvision's ImageFolder gives),
# and skip_bad_images.
import numpy as np
import pytest

PIL = pytest.importorskip("PIL.Image")


def solid(size, mode, value):
    return PIL.new(mode, size, value)


def test_image_folder_takes_the_most_common_size_not_the_first_images(tmp_path):
    import lenz

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                solid((6, 5), "RGB", (10 * i, 100, 200)).save(tmp_path / split / cls / f"{i}.png")
    solid((3, 3), "L", 50).save(tmp_path / "train" / "a" / "0-grey.png")  # first in file order
    d = lenz.datasets.load(tmp_path)
    assert d["x_train"].shape == (7, 5, 6, 3)
    assert d["x_test"].shape == (6, 5, 6, 3)
    assert "5x6x3, the most common size (6 of 7 training images)" in d["description"]
    # An explicit size or channel count wins; the other is still the most common.
    assert lenz.datasets.load(tmp_path, channels=1)["x_train"].shape == (7, 5, 6, 1)
    assert lenz.datasets.load(tmp_path, size=(3, 3))["x_train"].shape == (7, 3, 3, 3)


def test_every_format_reads_as_pil_convert_rgb(tmp_path):
    import lenz

    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0  # a transparent pixel keeps its colour in PIL's convert("RGB")
    images = {
        "png-rgba": (PIL.fromarray(rgba, "RGBA"), "png"),
        "png-grey-alpha": (PIL.fromarray(rgba[:, :, :2].copy(), "LA"), "png"),
        "png-palette": (PIL.fromarray(rgba[:, :, :3].copy(), "RGB").quantize(7), "png"),
        "bmp-rgb": (PIL.fromarray(rgba[:, :, :3].copy(), "RGB"), "bmp"),
        "bmp-palette": (PIL.fromarray(rgba[:, :, :3].copy(), "RGB").quantize(5), "bmp"),
        "bmp-grey": (PIL.fromarray(rgba[:, :, 0].copy(), "L"), "bmp"),
        "tiff-rgb": (PIL.fromarray(rgba[:, :, :3].copy(), "RGB"), "tif"),
        "tiff-rgba": (PIL.fromarray(rgba, "RGBA"), "tiff"),
        "tiff-grey": (PIL.fromarray(rgba[:, :, 0].copy(), "L"), "tif"),
        "webp-rgb": (PIL.fromarray(rgba[:, :, :3].copy(), "RGB"), "webp"),
    }
    want = {}
    for name, (image, ext) in images.items():
        for split in ("train", "test"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            path = folder / f"x.{ext}"
            if ext == "webp":
                image.save(path, lossless=True)
            elif name == "tiff-rgb":
                image.save(path, compression="tiff_lzw")
            else:
                image.save(path)
        want[name] = np.asarray(PIL.open(path).convert("RGB"))
    d = lenz.datasets.load(tmp_path, size=(4, 5), channels=3)
    assert d["class_names"] == sorted(images)
    for i, name in enumerate(d["class_names"]):
        np.testing.assert_array_equal(d["x_train"][i], want[name], err_msg=name)


def test_skip_bad_images(tmp_path):
    import lenz

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            solid((4, 4), "RGB", (1, 2, 3)).save(tmp_path / split / cls / "ok.png")
    (tmp_path / "train" / "b" / "cut.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8L")
    with pytest.raises(lenz.Error, match="cut.webp: bad WebP"):
        lenz.datasets.load(tmp_path)
    d = lenz.datasets.load(tmp_path, skip_bad_images=True)
    assert len(d["bad_images"]) == 1 and "cut.webp: bad WebP" in d["bad_images"][0]
    assert d["x_train"].shape == (2, 4, 4, 3)
    assert "skipped 1 unreadable image" in d["description"]


def test_segmentation_masks_read_as_pil_reads_their_indices(tmp_path):
    # Palette masks as Pascal VOC writes them: PIL's np.array of a "P" image is its indices, the
    # independent reading the loader must agree with; 255 marks ignored pixels.
    import lenz

    rng = np.random.default_rng(3)
    (tmp_path / "classes.txt").write_text("background\nroad\ncar\n")
    masks = {}
    for split, count in (("train", 3), ("test", 2)):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "masks" / split).mkdir(parents=True)
        for i in range(count):
            PIL.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(
                tmp_path / "images" / split / f"{i}.png")
            mask = rng.choice(np.array([0, 1, 2, 255], dtype=np.uint8), size=(12, 16))
            image = PIL.fromarray(mask, "P")
            image.putpalette([(k * 53) % 256 for k in range(768)])
            image.save(tmp_path / "masks" / split / f"{i}.png")
            masks[split, i] = np.array(PIL.open(tmp_path / "masks" / split / f"{i}.png"))
    d = lenz.datasets.load(tmp_path)
    assert d["class_names"] == ["background", "road", "car"]
    assert d["y_train"].dtype == np.uint8 and d["y_train"].shape == (3, 12, 16)
    for i in range(3):
        np.testing.assert_array_equal(d["y_train"][i], masks["train", i])
    np.testing.assert_array_equal(d["y_test"][1], masks["test", 1])
    # Fitted to 6x8 (half the size): nearest neighbour keeps only values the masks hold.
    small = lenz.datasets.load(tmp_path, size=(6, 8))
    assert small["y_train"].shape == (3, 6, 8)
    assert set(np.unique(small["y_train"])) <= {0, 1, 2, 255}
    np.testing.assert_array_equal(small["y_train"][0], masks["train", 0][1::2, 1::2])
