#!/usr/bin/python3
"""Lenz int8 and ONNX Runtime int8 on the same quantised model, over the Fashion-MNIST test set.

    /usr/bin/python3 bench/int8_agreement.py QUANTISED.safetensors [--lenz build/lenz] [--node node]
                                             [--data /usr/share/datasets/fashion-mnist] [--json]

Exports the checkpoint (written by `lenz quantize`) as ONNX in QDQ form with `lenz export`, runs
every test image through `lenz run` (int8, the quantised checkpoint's own precision) and through
ONNX Runtime on the exported file (bench/ort/ort_predict.js, its CPU provider), and prints how
often the two agree on the top-1 class, and each one's accuracy. Needs numpy and, for ONNX
Runtime, `npm ci --ignore-scripts` in bench/ort.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def read_idx(path):
    """An IDX file (gzip or not) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    sys.exit(f"int8_agreement.py: no {stem}[.gz] in {folder}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--lenz", default=os.path.join(ROOT, "build", "lenz"))
    parser.add_argument("--node", default="node")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    images = read_idx(find(args.data, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    # Pixels / 255, channels first: what both `lenz run` and the exported graph take.
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "model.onnx")
        subprocess.run([args.lenz, "export", args.checkpoint, onnx_path], check=True, stdout=subprocess.DEVNULL)
        np.save(os.path.join(tmp, "x.npy"), x)
        subprocess.run([args.lenz, "run", args.checkpoint, "--input", os.path.join(tmp, "x.npy"),
                        "--output", os.path.join(tmp, "lenz.npy")], check=True, stdout=subprocess.DEVNULL)
        lenz_out = np.load(os.path.join(tmp, "lenz.npy")).reshape(len(x), -1)
        x.tofile(os.path.join(tmp, "x.raw"))
        subprocess.run([args.node, os.path.join(HERE, "ort", "ort_predict.js"), onnx_path,
                        os.path.join(tmp, "x.raw"), os.path.join(tmp, "ort.raw")], check=True)
        ort_out = np.fromfile(os.path.join(tmp, "ort.raw"), dtype=np.float32).reshape(len(x), -1)
    lenz_top, ort_top = lenz_out.argmax(1), ort_out.argmax(1)
    result = {
        "checkpoint": args.checkpoint,
        "images": len(x),
        "top1_agreement": float((lenz_top == ort_top).mean()),
        "lenz_accuracy": float((lenz_top == labels).mean()),
        "onnxruntime_accuracy": float((ort_top == labels).mean()),
        "max_abs_difference": float(np.abs(lenz_out - ort_out).max()),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['images']} test images: Lenz int8 and ONNX Runtime int8 agree on the top-1 class of "
              f"{100 * result['top1_agreement']:.2f}%")
        print(f"accuracy: Lenz {100 * result['lenz_accuracy']:.2f}%, ONNX Runtime "
              f"{100 * result['onnxruntime_accuracy']:.2f}%; largest output difference "
              f"{result['max_abs_difference']:.4f}")


if __name__ == "__main__":
    main()
