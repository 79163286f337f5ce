#!/usr/bin/python3
"""An ONNX evaluator in NumPy that shares no code with Lenz, for tests/formats/onnx_test.cpp.

    /usr/bin/python3 tests/formats/onnx_reference.py MODEL.onnx IMAGE.png

Checks the model with the ONNX project's checker (full_check: shape inference too), reads the PNG
(8-bit grey or RGB, decoded here with zlib), feeds its pixels / 255 channels first, as Lenz's ONNX
files take them, checks every tensor's shape against what ONNX's shape inference says, and prints
{"output": [...]} as JSON. Needs Debian's python3-numpy and python3-onnx.

It implements only what Lenz's exports and small PyTorch CNNs use; anything else is an error, never
a guess. The image must already be the model's input size (Lenz's predict would resize it).
"""
import json
import math
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


def window_view(x, kh, kw, sh, sw, dh=1, dw=1):
    """(N, C, H, W) -> (N, C, OH, OW, KH, KW) windows, no padding; taps dh, dw pixels apart."""
    n, c, h, w = x.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, c, oh, ow, kh, kw),
                                           (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw))


def pad_hw(x, pads, value):
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def window_settings(a, kernel):
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
        raise ValueError("auto_pad is not implemented here")
    return list(kernel), list(a.get("strides", [1, 1])), list(a.get("pads", [0, 0, 0, 0]))


def conv(x, w, b, a):
    (kh, kw), (sh, sw), pads = window_settings(a, w.shape[2:])
    dh, dw = a.get("dilations", [1, 1])
    groups = a.get("group", 1)
    windows = window_view(pad_hw(x, pads, 0.0), kh, kw, sh, sw, dh, dw)  # (N, C, OH, OW, KH, KW)
    cg, og = x.shape[1] // groups, w.shape[0] // groups  # input and output channels per group
    y = np.concatenate([np.einsum("nchwij,ocij->nohw", windows[:, g * cg:(g + 1) * cg],
                                  w[g * og:(g + 1) * og]) for g in range(groups)], axis=1)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose(x, w, b, a):
    """ONNX ConvTranspose from its definition: every input value times its (C, F/G, KH, KW) weights
    scattered to (ih·s + kh·d, iw·s + kw·d), output_padding zeros after, then pads cropped."""
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID") or "output_shape" in a:
        raise ValueError("auto_pad and output_shape are not implemented here")
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    oph, opw = a.get("output_padding", [0, 0])
    top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
    groups = a.get("group", 1)
    cg, fg = c // groups, w.shape[1]
    full = np.zeros((n, fg * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw))
    for g in range(groups):
        # (N, F/G, H, W, KH, KW): each input pixel's contribution through each tap
        part = np.einsum("nchw,cfij->nfhwij", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg])
        for i in range(kh):
            for j in range(kw):
                full[:, g * fg:(g + 1) * fg, i * dh:i * dh + (h - 1) * sh + 1:sh,
                     j * dw:j * dw + (wd - 1) * sw + 1:sw] += part[..., i, j]
    y = full[:, :, top:full.shape[2] - bottom, left:full.shape[3] - right]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def ceil_pads(size, kernel, stride, before, after):
    """The padding ceil_mode adds after `after`: enough for a last window that starts inside the
    input or its padding before (PyTorch's rule, which ONNX Runtime follows)."""
    out = -(-(size + before + after - kernel) // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return max((out - 1) * stride + kernel - (size + before + after), 0)


def pool(x, a, kind):
    (kh, kw), (sh, sw), pads = window_settings(a, a["kernel_shape"])
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise ValueError("dilated pooling is not implemented here")
    if a.get("ceil_mode", 0):
        if kind == "average" and a.get("count_include_pad", 0):
            raise ValueError("ceil_mode with count_include_pad is not implemented here")
        top, left, bottom, right = pads
        pads = [top, left, bottom + ceil_pads(x.shape[2], kh, sh, top, bottom),
                right + ceil_pads(x.shape[3], kw, sw, left, right)]
    if kind == "max":
        return window_view(pad_hw(x, pads, -np.inf), kh, kw, sh, sw).max(axis=(4, 5))
    total = window_view(pad_hw(x, pads, 0.0), kh, kw, sh, sw).sum(axis=(4, 5))
    if a.get("count_include_pad", 0):
        return total / (kh * kw)
    real = window_view(pad_hw(np.ones_like(x[:1, :1]), pads, 0.0), kh, kw, sh, sw).sum(axis=(4, 5))
    return total / real


def slice_axes(x, starts, ends, axes, steps):
    index = [slice(None)] * x.ndim
    for k, axis in enumerate(axes if axes is not None else range(len(starts))):
        index[axis] = slice(int(starts[k]), int(ends[k]), 1 if steps is None else int(steps[k]))
    return x[tuple(index)]


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def resize(x, scales, a):
    """ONNX Resize of H and W by `scales` (N and C by 1): nearest (floor) or linear, with the
    coordinates ONNX's coordinate_transformation_mode defines, linear clamped to the input."""
    mode = a.get("mode", b"nearest")
    where = a.get("coordinate_transformation_mode", b"half_pixel")
    if list(scales[:2]) != [1, 1]:
        raise ValueError("Resize of N or C is not implemented here")
    _, _, h, w = x.shape

    def coordinates(size, scale):
        out = int(np.floor(size * scale))
        o = np.arange(out, dtype=np.float64)
        if where == b"asymmetric":
            return o / scale
        if where == b"align_corners":
            return o * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
        if where in (b"half_pixel", b"pytorch_half_pixel"):
            return (o + 0.5) / scale - 0.5
        raise ValueError("coordinate_transformation_mode %s is not implemented here" % where)

    ys, xs = coordinates(h, scales[2]), coordinates(w, scales[3])
    if mode == b"nearest":
        if a.get("nearest_mode", b"round_prefer_floor") != b"floor":
            raise ValueError("nearest_mode other than floor is not implemented here")
        rows = np.clip(np.floor(ys).astype(np.int64), 0, h - 1)
        cols = np.clip(np.floor(xs).astype(np.int64), 0, w - 1)
        return x[:, :, rows][:, :, :, cols]
    if mode != b"linear":
        raise ValueError("Resize mode %s is not implemented here" % mode)
    ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    ly, lx = (ys - y0)[:, None], xs - x0
    rows = x[:, :, y0] * (1 - ly) + x[:, :, y1] * ly
    return rows[:, :, :, x0] * (1 - lx) + rows[:, :, :, x1] * lx


def run_node(node, v):
    a, op = attributes(node), node.op_type
    x = [v[name] if name else None for name in node.input]
    if op == "Constant":
        return numpy_helper.to_array(a["value"])
    if op in ("Identity", "Dropout"):  # Dropout: inference
        return x[0]
    if op == "Conv":
        return conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
    if op == "ConvTranspose":
        return conv_transpose(x[0], x[1], x[2] if len(x) > 2 else None, a)
    if op in ("MaxPool", "AveragePool"):
        return pool(x[0], a, "max" if op == "MaxPool" else "average")
    if op == "GlobalAveragePool":
        return x[0].mean(axis=(2, 3), keepdims=True)
    if op == "GlobalMaxPool":
        return x[0].max(axis=(2, 3), keepdims=True)
    if op == "ReduceMean":
        return x[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
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
    if op == "Transpose":
        return x[0].transpose(a["perm"])
    if op == "Concat":
        return np.concatenate(x, axis=a["axis"])
    if op == "Slice":
        return slice_axes(x[0], x[1], x[2], *(x[3:] + [None, None])[:2])
    if op == "MatMul":
        return x[0] @ x[1]
    if op in ("Add", "Sub", "Mul", "Div"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](x[0], x[1])
    if op == "Pow":
        return np.power(x[0], x[1])
    if op == "Sqrt":
        return np.sqrt(x[0])
    if op == "Erf":
        return np.vectorize(math.erf)(x[0])
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
    if op == "HardSigmoid":
        return np.clip(a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5), 0, 1)
    if op == "Clip":
        low = x[1] if len(x) > 1 and x[1] is not None else -np.inf
        return np.clip(x[0], low, x[2] if len(x) > 2 and x[2] is not None else np.inf)
    if op == "Softmax":
        return softmax(x[0], a.get("axis", -1))
    if op == "LogSoftmax":
        return np.log(softmax(x[0], a.get("axis", -1)))
    if op == "Elu":
        return np.where(x[0] > 0, x[0], a.get("alpha", 1.0) * (np.exp(np.minimum(x[0], 0)) - 1))
    if op == "PRelu":  # the slope broadcasts onto X, as numpy's rules have it
        return np.where(x[0] >= 0, x[0], x[1] * x[0])
    if op == "Resize":  # opset 11 on: X, roi, scales
        return resize(x[0], x[2], a)
    if op == "QuantizeLinear":  # rounded half to even, saturated to the zero point's type
        zero = x[2] if len(x) > 2 and x[2] is not None else np.uint8(0)
        limits = np.iinfo(zero.dtype)
        return np.clip(np.rint(x[0] / x[1]) + np.int64(zero), limits.min, limits.max).astype(zero.dtype)
    if op == "DequantizeLinear":  # per tensor, or per slice along the axis
        scale = x[1].astype(np.float64)
        zero = (x[2] if len(x) > 2 and x[2] is not None else np.zeros(scale.shape, np.int64)).astype(np.float64)
        shape = [1] * x[0].ndim
        if scale.size > 1:
            shape[a.get("axis", 1)] = -1
        return (x[0].astype(np.float64) - zero.reshape(shape)) * scale.reshape(shape)
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
    return values


def check_shapes(model, values):
    """Every tensor has the shape ONNX's shape inference gives it (the batch, a name, aside)."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True).graph
    checked = 0
    for info in list(inferred.value_info) + list(inferred.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
        got = values[info.name].shape
        if len(dims) != len(got) or any(d is not None and d != g for d, g in zip(dims, got)):
            raise ValueError("%s: shape inference says %s, the evaluation gave %s" % (info.name, dims, got))
        checked += 1
    if checked < len(model.graph.node):
        raise ValueError("shape inference left %d of %d tensors without a shape" %
                         (len(model.graph.node) - checked, len(model.graph.node)))


def main():
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model, full_check=True)
    values = run(model, read_png(sys.argv[2]))
    check_shapes(model, values)
    output = values[model.graph.output[0].name]
    print(json.dumps({"output": [float(v) for v in output.flatten()]}))


if __name__ == "__main__":
    main()
