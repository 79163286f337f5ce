#!/usr/bin/env python3
"""Writes a synthetic segmentation folder, as `lenz train --data FOLDER` reads one.

    /usr/bin/python3 docs/make-segmentation-folder.py shapes [--train 400] [--test 100] [--size 64x64]

FOLDER/classes.txt (background, disc, square, triangle), FOLDER/images/{train,test}/N.png (RGB) and
FOLDER/masks/{train,test}/N.png (8-bit grey, the class of each pixel). Each image holds up to four
shapes of random colour, size and place on a textured background (stripes and noise in colour),
some of them overlapping, and one image in ten none. As in Pascal VOC, a one-pixel ring along each
shape's edge is 255, which no loss or metric counts. Shapes are told apart by their form, never by
their colour. The docs' segmentation recipe (docs/training.md) trains models/unet.lenz on it; it
needs nothing but NumPy (PNG files are written with zlib).
"""
import argparse
import os
import struct
import zlib

import numpy as np

CLASSES = ["background", "disc", "square", "triangle"]
IGNORE = 255


def png(path, image):
    h, w = image.shape[:2]
    colour = image.ndim == 3
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if colour else 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def background(rng, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    image = np.empty((h, w, 3))
    for c in range(3):
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
        stripes = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period + rng.uniform(0, 6.3))
        image[..., c] = rng.uniform(70, 170) + rng.uniform(10, 35) * stripes + rng.normal(0, 12, (h, w))
    return image


def shape_mask(rng, kind, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = rng.uniform(0.1, 0.22) * min(h, w)
    cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
    if kind == 1:  # disc
        return (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    if kind == 2:  # square, turned by up to 30 degrees
        a = rng.uniform(-np.pi / 6, np.pi / 6)
        u, v = (x - cx) * np.cos(a) + (y - cy) * np.sin(a), -(x - cx) * np.sin(a) + (y - cy) * np.cos(a)
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    # triangle, pointing up or down
    top = rng.random() < 0.5
    dy = (y - cy) if top else (cy - y)
    return (dy >= -r) & (dy <= r * 0.8) & (np.abs(x - cx) <= (dy + r) * 0.62)


def inner_edge(mask):
    """The pixels of mask with a 4-neighbour outside it."""
    padded = np.pad(mask, 1, constant_values=False)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inside


def example(rng, h, w):
    image = background(rng, h, w)
    classes = np.zeros((h, w), np.uint8)
    edges = np.zeros((h, w), bool)
    count = 0 if rng.random() < 0.1 else rng.integers(1, 5)
    for _ in range(count):
        kind = int(rng.integers(1, len(CLASSES)))
        mask = shape_mask(rng, kind, h, w)
        colour = rng.uniform(0, 255, 3)
        image[mask] = colour + rng.normal(0, 10, (int(mask.sum()), 3))
        classes[mask] = kind
        edges[mask] = False  # a shape on top hides the edges beneath it
        edges |= inner_edge(mask)
    classes[edges] = IGNORE
    return np.clip(image, 0, 255).astype(np.uint8), classes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--train", type=int, default=400, help="training images")
    parser.add_argument("--test", type=int, default=100, help="test images")
    parser.add_argument("--size", default="64x64", help="HxW of every image (default 64x64)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.folder, exist_ok=True)
    with open(os.path.join(args.folder, "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    for split, count in (("train", args.train), ("test", args.test)):
        for kind in ("images", "masks"):
            os.makedirs(os.path.join(args.folder, kind, split), exist_ok=True)
        for n in range(count):
            image, classes = example(rng, h, w)
            png(os.path.join(args.folder, "images", split, f"{n}.png"), image)
            png(os.path.join(args.folder, "masks", split, f"{n}.png"), classes)
    print(f"{args.folder}: {args.train} training and {args.test} test images of {h}x{w}, classes "
          f"{', '.join(CLASSES)}")


if __name__ == "__main__":
    main()
