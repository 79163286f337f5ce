#!/usr/bin/python3
"""An ONNX evaluator in NumPy that shares no code with Lenz, for tests/formats/onnx_test.cpp.

    /usr/bin/python3 tests/formats/onnx_reference.py MODEL.onnx IMAGE.png

Checks the model with the ONNX project's checker (full_check: shape inference too), reads the PNG
(8-bit grey or RGB, decoded here with zlib), feeds its pixels / 255 channels first, as Lenz's ONNX
files take them, and prints {"output": [...]} as JSON. Needs Debian's python3-numpy and python3-onnx.

It implements only what Lenz's exports and small PyTorch CNNs use; anything else is an error, never
a guess. The image must already be the model's input size (Lenz's predict would resize it).
"""
import json
import struct
import sys
import zlib

import numpy as np
import onnx
from onnx import numpy_helper


def read_png(path):
    """(H, W, C) uint8 from a non-interlaced 8-bit grey (C=1) or RGB (C=3) PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(path + ": not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(path + ": only 8-bit grey or RGB PNGs without interlacing are read here")
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], np.zeros(stride, dtype=np.int64)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], np.frombuffer(line[1:], dtype=np.uint8).astype(np.int64)
        out = np.zeros(stride, dtype=np.int64)
        for x in range(stride):  # the PNG filters, byte by byte
            left = out[x - channels] if x >= channels else 0
            up = previous[x]
            up_left = previous[x - channels] if x >= channels else 0
            if kind == 0:
                predicted = 0
            elif kind == 1:
                predicted = left
            elif kind == 2:
                predicted = up
            elif kind == 3:
                predicted = (left + up) // 2
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predicted = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
            else:
                raise ValueError(path + ": unknown PNG filter %d" % kind)
            out[x] = (row[x] + predicted) % 256
        rows.append(out)
        previous = out
    return np.array(rows, dtype=np.uint8).reshape(height, width, channels)


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def window_view(x, kh, kw, sh, sw):
    """(N, C, H, W) -> (N, C, OH, OW, KH, KW) windows, no padding."""
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, c, oh, ow, kh, kw),
                                           (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]))


def pad_hw(x, pads, value):
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def window_settings(a, kernel):
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID") or a.get("ceil_mode", 0):
        raise ValueError("auto_pad and ceil_mode are not implemented here")
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise ValueError("dilations are not implemented here")
    return list(kernel), list(a.get("strides", [1, 1])), list(a.get("pads", [0, 0, 0, 0]))


def conv(x, w, b, a):
    if a.get("group", 1) != 1:
        raise ValueError("grouped convolutions are not implemented here")
    (kh, kw), (sh, sw), pads = window_settings(a, w.shape[2:])
    windows = window_view(pad_hw(x, pads, 0.0), kh, kw, sh, sw)  # (N, C, OH, OW, KH, KW)
    y = np.einsum("nchwij,ocij->nohw", windows, w)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool(x, a, kind):
    (kh, kw), (sh, sw), pads = window_settings(a, a["kernel_shape"])
    if kind == "max":
        return window_view(pad_hw(x, pads, -np.inf), kh, kw, sh, sw).max(axis=(4, 5))
    total = window_view(pad_hw(x, pads, 0.0), kh, kw, sh, sw).sum(axis=(4, 5))
    if a.get("count_include_pad", 0):
        return total / (kh * kw)
    real = window_view(pad_hw(np.ones_like(x[:1, :1]), pads, 0.0), kh, kw, sh, sw).sum(axis=(4, 5))
    return total / real


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def run_node(node, v):
    a, op = attributes(node), node.op_type
    x = [v[name] if name else None for name in node.input]
    if op == "Constant":
        return numpy_helper.to_array(a["value"])
    if op in ("Identity", "Dropout"):  # Dropout: inference
        return x[0]
    if op == "Conv":
        return conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
    if op in ("MaxPool", "AveragePool"):
        return pool(x[0], a, "max" if op == "MaxPool" else "average")
    if op == "GlobalAveragePool":
        return x[0].mean(axis=(2, 3), keepdims=True)
    if op == "GlobalMaxPool":
        return x[0].max(axis=(2, 3), keepdims=True)
    if op == "Flatten":
        axis = a.get("axis", 1)
        return x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
    if op == "Reshape":
        shape = [x[0].shape[k] if d == 0 else int(d) for k, d in enumerate(x[1])]
        return x[0].reshape(shape)
    if op == "Gemm":
        A = x[0].T if a.get("transA", 0) else x[0]
        B = x[1].T if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B)
        return y if len(x) < 3 or x[2] is None else y + a.get("beta", 1.0) * x[2]
    if op == "MatMul":
        return x[0] @ x[1]
    if op in ("Add", "Sub", "Mul", "Div"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](x[0], x[1])
    if op == "BatchNormalization":
        data, scale, bias, mean, var = x[:5]
        shape = (1, -1) + (1,) * (data.ndim - 2)
        eps = a.get("epsilon", 1e-5)
        return (data - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * scale.reshape(shape) + \
            bias.reshape(shape)
    if op == "Relu":
        return np.maximum(x[0], 0)
    if op == "LeakyRelu":
        return np.where(x[0] >= 0, x[0], a.get("alpha", 0.01) * x[0])
    if op == "Sigmoid":
        return 1 / (1 + np.exp(-x[0]))
    if op == "Tanh":
        return np.tanh(x[0])
    if op == "Softmax":
        return softmax(x[0], a.get("axis", -1))
    raise ValueError("operator %s is not implemented here" % op)


def run(model, image):
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) if t.data_type == onnx.TensorProto.FLOAT
              else numpy_helper.to_array(t) for t in graph.initializer}
    feeds = [i for i in graph.input if i.name not in values]
    if len(feeds) != 1:
        raise ValueError("the model must have one input")
    dims = [d.dim_value for d in feeds[0].type.tensor_type.shape.dim]
    h, w, c = image.shape
    if dims[1:] != [c, h, w]:
        raise ValueError("the image is %dx%dx%d, the model takes %s" % (h, w, c, dims))
    values[feeds[0].name] = (image.transpose(2, 0, 1)[np.newaxis] / 255.0).astype(np.float64)
    for node in graph.node:
        values[node.output[0]] = run_node(node, values)
    return values[graph.output[0].name]


def main():
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model, full_check=True)
    output = run(model, read_png(sys.argv[2]))
    print(json.dumps({"output": [float(v) for v in output.flatten()]}))


if __name__ == "__main__":
    main()
