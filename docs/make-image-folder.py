#!/usr/bin/env python3
"""Writes an image folder, as `lenz train --data FOLDER` reads one, out of Fashion-MNIST.

    /usr/bin/python3 docs/make-image-folder.py shoes [--train 200] [--test 50]

FOLDER/train/CLASS/N.png and FOLDER/test/CLASS/N.png for three classes (sandal, sneaker, boot),
--train and --test images of each, the first ones of each class in Fashion-MNIST's own training
and test sets. The docs' examples (README.md's tour, docs/datasets.md) train on it, and
scripts/docs-check.sh runs them; it needs nothing but NumPy (PNG files are written with zlib).
"""
import argparse
import gzip
import os
import struct
import zlib

import numpy as np

SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = {5: "sandal", 7: "sneaker", 9: "boot"}


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def png(path, image):
    h, w = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--train", type=int, default=200, help="images of each class in train/")
    parser.add_argument("--test", type=int, default=50, help="images of each class in test/")
    args = parser.parse_args()
    for split, prefix, count in (("train", "train", args.train), ("test", "t10k", args.test)):
        images = idx(f"{SOURCE}/{prefix}-images-idx3-ubyte.gz")
        labels = idx(f"{SOURCE}/{prefix}-labels-idx1-ubyte.gz")
        for label, name in CLASSES.items():
            folder = os.path.join(args.folder, split, name)
            os.makedirs(folder, exist_ok=True)
            for n, i in enumerate(np.flatnonzero(labels == label)[:count]):
                png(os.path.join(folder, f"{n}.png"), images[i])
    print(f"{args.folder}: train/ and test/ with {', '.join(CLASSES.values())}: "
          f"{args.train} and {args.test} images of each")


if __name__ == "__main__":
    main()
