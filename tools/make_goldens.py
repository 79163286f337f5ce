#!/usr/bin/python3
"""Golden values for every layer type, forward and backward, computed with PyTorch.

Run from the repository root:  /usr/bin/python3 tools/make_goldens.py
(Debian's python3-torch, CPU.) It rewrites tests/golden/*.json, which tests/layers/golden_test.cpp reads.

Precision: every input (x, parameters, running statistics, dy) is drawn, rounded to 4 decimals and
then to float32, so Lenz sees exactly the values PyTorch used. PyTorch then computes in float64 and
the results are stored rounded to float32 (shortest round-trip decimal form), so the goldens carry
no float32 accumulation error of their own.

Layout: NCHW, tensors stored flat in row-major order. Padding `same` is Keras/TensorFlow's
(out = ceil(n/s), total pad = max((out-1)*s + k - n, 0), the odd pixel at the bottom/right); it is
reproduced with F.pad and padding=0. Pooling never lets a padded position win a max nor counts it in
an average. Softmax is over channels at each position.

Inputs are re-drawn until max-pool windows have no near-ties and ReLU/leaky-ReLU pre-activations stay
at least 1e-3 away from 0, so float32 rounding in Lenz cannot flip a choice.
"""
import json
import math
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "golden")
MARGIN = 1e-3  # minimum distance of a ReLU pre-activation from 0, and between a window's two largest values


# ---------------------------------------------------------------------------------------------
# Random values: rounded to 4 decimals, then to float32, held as float64 for the computation.

class Draw:
    def __init__(self, name, attempt):
        self.gen = torch.Generator().manual_seed(zlib.crc32(name.encode()) * 1000 + attempt)

    def uniform(self, shape, lo=-1.0, hi=1.0):
        v = torch.rand(shape, generator=self.gen, dtype=torch.float64) * (hi - lo) + lo
        return quantize(v)


def quantize(v):
    return torch.round(v * 1e4).div(1e4).to(torch.float32).to(torch.float64)


def f32(t):
    return t.detach().to(torch.float32).to(torch.float64)


# ---------------------------------------------------------------------------------------------
# Geometry helpers (Keras 'same').

def same_pads(n, k, s):
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pad_same(x, kh, kw, sh, sw, value=0.0):
    top, bottom = same_pads(x.shape[2], kh, sh)
    left, right = same_pads(x.shape[3], kw, sw)
    return F.pad(x, (left, right, top, bottom), value=value)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def activate(z, act):
    if act is None:
        return z
    if act == "relu":
        return torch.relu(z)
    if act.startswith("leakyrelu"):
        alpha = float(np.float32(act.split("=")[1])) if "=" in act else float(np.float32(0.01))
        return torch.where(z > 0, z, alpha * z)
    if act == "sigmoid":
        return torch.sigmoid(z)
    if act == "tanh":
        return torch.tanh(z)
    if act == "softmax":
        return torch.softmax(z, dim=1)
    if act == "logsoftmax":
        return torch.log_softmax(z, dim=1)
    if act.startswith("elu"):
        alpha = float(np.float32(act.split("=")[1])) if "=" in act else 1.0
        return F.elu(z, alpha)
    if act == "relu6":
        return torch.clamp(z, 0.0, 6.0)
    if act == "hardsigmoid":
        return torch.clamp(z / 6 + 0.5, 0.0, 1.0)
    if act == "hardswish":
        return F.hardswish(z)
    if act == "silu":
        return F.silu(z)
    if act == "gelu":  # the exact form, with erf (PyTorch's default)
        return F.gelu(z)
    raise ValueError(act)


# Pre-activations too close to a kink (where float32 rounding could pick the other side) are redrawn.
def near_zero(z, act):
    kinks = {"relu": [0.0], "relu6": [0.0, 6.0], "hardsigmoid": [-3.0, 3.0], "hardswish": [-3.0, 3.0]}
    if act is not None and (act.startswith("leakyrelu") or act.startswith("elu") or act == "prelu"):
        act = "relu"
    return act in kinks and any(bool(((z - k).abs() < MARGIN).any()) for k in kinks[act])


def window_has_near_tie(x, kh, kw, sh, sw, pads):
    """pads = (left, right, top, bottom); padded positions are -inf and never compete."""
    xp = F.pad(x, pads, value=-math.inf)
    patches = xp.unfold(2, kh, sh).unfold(3, kw, sw)  # N, C, OH, OW, kh, kw
    flat = patches.reshape(*patches.shape[:4], -1)
    top2 = flat.topk(2, dim=-1).values
    return bool(((top2[..., 0] - top2[..., 1]) < MARGIN).any())


# ---------------------------------------------------------------------------------------------
# Case builders: each returns a dict of named float64 tensors, or None to ask for a fresh draw.

def conv_case(d, shape, filters, k, stride=1, padding="valid", act=None, bias=True, groups=1, dilation=1):
    n, c, h, w = shape
    kh, kw = pair(k)
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    x = d.uniform(shape).requires_grad_()
    bound = 1.0 / math.sqrt(c // groups * kh * kw)
    weight = d.uniform((filters, c // groups, kh, kw), -bound * 1.5, bound * 1.5).requires_grad_()
    b = d.uniform((filters,), -0.3, 0.3).requires_grad_() if bias else None
    if padding == "same":  # Keras' rule on the span of the dilated kernel
        span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        z = F.conv2d(pad_same(x, span_h, span_w, sh, sw), weight, b, stride=(sh, sw), dilation=(dh, dw),
                     groups=groups)
    else:
        p = (0, 0) if padding == "valid" else pair(padding)
        z = F.conv2d(x, weight, b, stride=(sh, sw), padding=p, dilation=(dh, dw), groups=groups)
    if near_zero(z, act):
        return None
    params = {"weight": weight}
    if bias:
        params["bias"] = b
    return dict(x=x, y=activate(z, act), params=params)


def conv_transpose_case(d, shape, filters, k, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                        act=None, bias=True):
    n, c, h, w = shape
    kh, kw = pair(k)
    x = d.uniform(shape).requires_grad_()
    bound = 1.0 / math.sqrt(filters // groups * kh * kw)  # PyTorch's fan-in: weight dimension 1
    weight = d.uniform((c, filters // groups, kh, kw), -bound * 1.5, bound * 1.5).requires_grad_()
    b = d.uniform((filters,), -0.3, 0.3).requires_grad_() if bias else None
    z = F.conv_transpose2d(x, weight, b, stride=pair(stride), padding=pair(padding),
                           output_padding=pair(output_padding), groups=groups, dilation=pair(dilation))
    if near_zero(z, act):
        return None
    params = {"weight": weight}
    if bias:
        params["bias"] = b
    return dict(x=x, y=activate(z, act), params=params)


def pool_case(d, shape, kind, k, stride=None, padding="valid", ceil=False):
    n, c, h, w = shape
    kh, kw = pair(k)
    sh, sw = pair(stride if stride is not None else k)
    x = d.uniform(shape).requires_grad_()
    if ceil:  # PyTorch's own ceil_mode, padding never counted: Lenz's semantics exactly
        p = (0, 0) if padding == "valid" else pair(padding)
        if kind == "max":
            if window_has_near_tie(x.detach(), kh, kw, sh, sw, (p[1], p[1] + sw, p[0], p[0] + sh)):
                return None
            y = F.max_pool2d(x, (kh, kw), (sh, sw), padding=p, ceil_mode=True)
        else:
            y = F.avg_pool2d(x, (kh, kw), (sh, sw), padding=p, ceil_mode=True, count_include_pad=False)
        return dict(x=x, y=y, params={})
    if padding == "same":
        top, bottom = same_pads(h, kh, sh)
        left, right = same_pads(w, kw, sw)
    else:
        ph, pw = (0, 0) if padding == "valid" else pair(padding)
        top = bottom = ph
        left = right = pw
    pads = (left, right, top, bottom)
    if kind == "max":
        if window_has_near_tie(x.detach(), kh, kw, sh, sw, pads):
            return None
        y = F.max_pool2d(F.pad(x, pads, value=-math.inf), (kh, kw), (sh, sw))
    else:
        # Average over real pixels only: window sums divided by window counts of real pixels.
        sums = F.avg_pool2d(F.pad(x, pads), (kh, kw), (sh, sw)) * (kh * kw)
        ones = torch.ones((1, 1, h, w), dtype=torch.float64)
        counts = F.avg_pool2d(F.pad(ones, pads), (kh, kw), (sh, sw)) * (kh * kw)
        y = sums / counts
    return dict(x=x, y=y, params={})


def global_pool_case(d, shape, kind):
    x = d.uniform(shape).requires_grad_()
    flat = x.reshape(shape[0], shape[1], -1)
    if kind == "max":
        top2 = flat.detach().topk(2, dim=-1).values
        if bool(((top2[..., 0] - top2[..., 1]) < MARGIN).any()):
            return None
        y = flat.max(dim=-1).values
    else:
        y = flat.mean(dim=-1)
    return dict(x=x, y=y.reshape(shape[0], shape[1], 1, 1), params={})


def flatten_case(d, shape):
    x = d.uniform(shape).requires_grad_()
    return dict(x=x, y=x.reshape(shape[0], -1, 1, 1), params={})


def dense_case(d, shape, units, act=None, bias=True):
    x = d.uniform(shape).requires_grad_()
    inputs = int(np.prod(shape[1:]))
    bound = 1.0 / math.sqrt(inputs)
    weight = d.uniform((units, inputs), -bound * 1.5, bound * 1.5).requires_grad_()
    b = d.uniform((units,), -0.3, 0.3).requires_grad_() if bias else None
    z = F.linear(x.reshape(shape[0], -1), weight, b)
    if near_zero(z, act):
        return None
    params = {"weight": weight}
    if bias:
        params["bias"] = b
    return dict(x=x, y=activate(z, act).reshape(shape[0], units, 1, 1), params=params)


def batchnorm_case(d, shape, training):
    c = shape[1]
    x = (d.uniform(shape, -2.0, 2.0) + d.uniform((1, c, 1, 1), -1.0, 1.0)).requires_grad_()
    x = quantize(x.detach()).requires_grad_()
    weight = d.uniform((c,), 0.5, 1.5).requires_grad_()
    bias = d.uniform((c,), -0.5, 0.5).requires_grad_()
    running_mean = d.uniform((c,), -0.5, 0.5)
    running_var = d.uniform((c,), 0.5, 2.0)
    before = {"running_mean": running_mean.clone(), "running_var": running_var.clone()}
    y = F.batch_norm(x, running_mean, running_var, weight, bias, training=training, momentum=0.1, eps=1e-5)
    params = {"weight": weight, "bias": bias, **before}
    after = {"running_mean": running_mean, "running_var": running_var} if training else {}
    return dict(x=x, y=y, params=params, after=after)


def activation_case(d, shape, act, scale=3.0):
    x = d.uniform(shape, -scale, scale).requires_grad_()
    if near_zero(x, act):
        return None
    return dict(x=x, y=activate(x, act), params={})


def prelu_case(d, shape, per_channel):
    """nn.PReLU(num_parameters=1 or C); slopes drawn around PyTorch's 0.25, one negative."""
    x = d.uniform(shape, -3.0, 3.0).requires_grad_()
    if near_zero(x, "prelu"):
        return None
    count = shape[1] if per_channel else 1
    weight = d.uniform((count,), -0.5, 0.75).requires_grad_()
    return dict(x=x, y=F.prelu(x, weight), params={"weight": weight})


def shuffle_case(d, shape, groups):
    x = d.uniform(shape).requires_grad_()
    n, c, h, w = shape
    y = x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
    return dict(x=x, y=y, params={})


def upsample_case(d, shape, scale, mode, align_corners=None):
    x = d.uniform(shape).requires_grad_()
    y = F.interpolate(x, scale_factor=scale, mode=mode, align_corners=align_corners)
    return dict(x=x, y=y, params={})


def slice_case(d, shape, begin, end):
    x = d.uniform(shape).requires_grad_()
    return dict(x=x, y=x[:, begin:end], params={})


def layernorm_case(d, shape, eps):
    """ConvNeXt's LayerNorm2d: channels last, F.layer_norm over C, channels first again."""
    c = shape[1]
    x = (d.uniform(shape, -2.0, 2.0) + d.uniform((shape[0], 1, shape[2], shape[3]), -1.0, 1.0))
    x = quantize(x).requires_grad_()
    weight = d.uniform((c,), 0.5, 1.5).requires_grad_()
    bias = d.uniform((c,), -0.5, 0.5).requires_grad_()
    y = F.layer_norm(x.permute(0, 2, 3, 1), (c,), weight, bias, eps).permute(0, 3, 1, 2)
    return dict(x=x, y=y, params={"weight": weight, "bias": bias})


# ---------------------------------------------------------------------------------------------
# The cases: name -> (spec line as the model file writes it, input shape N,C,H,W, builder, training).

CASES = [
    # Convolution
    ("conv_same_s1_relu", "conv 4 3x3 padding=same relu", (2, 3, 5, 6),
     lambda d, s: conv_case(d, s, 4, 3, 1, "same", "relu")),
    ("conv_same_s2_even", "conv 3 3x3 stride=2 padding=same", (2, 2, 6, 8),
     lambda d, s: conv_case(d, s, 3, 3, 2, "same")),
    ("conv_same_s2_odd", "conv 3 3x3 stride=2 padding=same", (2, 2, 7, 5),
     lambda d, s: conv_case(d, s, 3, 3, 2, "same")),
    ("conv_valid_2x2", "conv 2 2x2", (2, 3, 5, 5),
     lambda d, s: conv_case(d, s, 2, 2)),
    ("conv_3x5_s2x1_p1x2", "conv 3 3x5 stride=2x1 padding=1x2", (2, 2, 6, 7),
     lambda d, s: conv_case(d, s, 3, (3, 5), (2, 1), (1, 2))),
    ("conv_1x1", "conv 5 1x1", (2, 3, 4, 4),
     lambda d, s: conv_case(d, s, 5, 1)),
    ("conv_nobias_tanh", "conv 3 3x3 padding=same tanh nobias", (2, 2, 4, 5),
     lambda d, s: conv_case(d, s, 3, 3, 1, "same", "tanh", bias=False)),
    ("conv_sigmoid", "conv 2 3x3 sigmoid", (2, 2, 5, 5),
     lambda d, s: conv_case(d, s, 2, 3, 1, "valid", "sigmoid")),
    ("conv_leakyrelu", "conv 3 3x3 padding=1 leakyrelu=0.2", (2, 2, 4, 5),
     lambda d, s: conv_case(d, s, 3, 3, 1, 1, "leakyrelu=0.2")),
    ("conv_softmax", "conv 4 3x3 padding=same softmax", (2, 2, 4, 4),
     lambda d, s: conv_case(d, s, 4, 3, 1, "same", "softmax")),
    ("conv_single_channel", "conv 2 3x3 stride=2 padding=same relu", (2, 1, 6, 6),
     lambda d, s: conv_case(d, s, 2, 3, 2, "same", "relu")),
    ("conv_5x5_same_on_3x3", "conv 2 5x5 padding=same", (2, 2, 3, 3),
     lambda d, s: conv_case(d, s, 2, 5, 1, "same")),
    ("conv_groups_2", "conv 6 3x3 padding=same groups=2 relu", (2, 4, 5, 6),
     lambda d, s: conv_case(d, s, 6, 3, 1, "same", "relu", groups=2)),
    ("conv_depthwise_s2", "conv 3 3x3 stride=2 padding=same groups=3", (2, 3, 7, 6),
     lambda d, s: conv_case(d, s, 3, 3, 2, "same", groups=3)),
    ("conv_depthwise_x2_p1", "conv 6 3x3 padding=1 groups=3 tanh", (2, 3, 5, 5),
     lambda d, s: conv_case(d, s, 6, 3, 1, 1, "tanh", groups=3)),
    ("conv_dilated_same", "conv 3 3x3 padding=same dilation=2", (2, 2, 7, 6),
     lambda d, s: conv_case(d, s, 3, 3, 1, "same", dilation=2)),
    ("conv_dilated_2x3_groups", "conv 4 3x2 groups=2 dilation=2x3", (2, 4, 8, 9),
     lambda d, s: conv_case(d, s, 4, (3, 2), 1, "valid", groups=2, dilation=(2, 3))),
    # Pooling
    ("maxpool_2", "maxpool 2x2", (2, 2, 6, 6),
     lambda d, s: pool_case(d, s, "max", 2)),
    ("maxpool_3_s2_same_7x7", "maxpool 3x3 stride=2 padding=same", (2, 2, 7, 7),
     lambda d, s: pool_case(d, s, "max", 3, 2, "same")),
    ("maxpool_3_s2_same_6x6", "maxpool 3x3 stride=2 padding=same", (2, 2, 6, 6),
     lambda d, s: pool_case(d, s, "max", 3, 2, "same")),
    ("maxpool_3_s1_p1", "maxpool 3x3 stride=1 padding=1", (1, 2, 4, 5),
     lambda d, s: pool_case(d, s, "max", 3, 1, 1)),
    ("avgpool_2", "avgpool 2x2", (2, 2, 6, 4),
     lambda d, s: pool_case(d, s, "avg", 2)),
    ("avgpool_3_s2_same_6x6", "avgpool 3x3 stride=2 padding=same", (2, 2, 6, 6),
     lambda d, s: pool_case(d, s, "avg", 3, 2, "same")),
    ("avgpool_3_s1_p1", "avgpool 3x3 stride=1 padding=1", (2, 2, 5, 5),
     lambda d, s: pool_case(d, s, "avg", 3, 1, 1)),
    ("avgpool_2x3_s1x2", "avgpool 2x3 stride=1x2", (1, 2, 4, 7),
     lambda d, s: pool_case(d, s, "avg", (2, 3), (1, 2))),
    ("maxpool_3_s2_ceil", "maxpool 3x3 stride=2 ceil", (2, 2, 8, 7),
     lambda d, s: pool_case(d, s, "max", 3, 2, ceil=True)),
    ("avgpool_2_ceil_p1", "avgpool 2x2 padding=1 ceil", (2, 2, 5, 6),
     lambda d, s: pool_case(d, s, "avg", 2, 2, 1, ceil=True)),
    ("globalavgpool", "globalavgpool", (2, 3, 4, 5),
     lambda d, s: global_pool_case(d, s, "avg")),
    ("globalmaxpool", "globalmaxpool", (2, 3, 4, 5),
     lambda d, s: global_pool_case(d, s, "max")),
    ("flatten", "flatten", (2, 2, 3, 4),
     lambda d, s: flatten_case(d, s)),
    # Dense
    ("dense_relu_3d_input", "dense 5 relu", (2, 2, 3, 3),
     lambda d, s: dense_case(d, s, 5, "relu")),
    ("dense_nobias", "dense 4 nobias", (3, 6, 1, 1),
     lambda d, s: dense_case(d, s, 4, bias=False)),
    ("dense_softmax", "dense 4 softmax", (3, 6, 1, 1),
     lambda d, s: dense_case(d, s, 4, "softmax")),
    ("dense_sigmoid", "dense 3 sigmoid", (3, 2, 2, 2),
     lambda d, s: dense_case(d, s, 3, "sigmoid")),
    # Batch normalisation
    ("batchnorm_train_conv", "batchnorm", (2, 3, 4, 4),
     lambda d, s: batchnorm_case(d, s, True)),
    ("batchnorm_train_dense", "batchnorm", (4, 5, 1, 1),
     lambda d, s: batchnorm_case(d, s, True)),
    ("batchnorm_inference", "batchnorm", (2, 3, 3, 3),
     lambda d, s: batchnorm_case(d, s, False)),
    # Standalone activations
    ("relu", "relu", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "relu")),
    ("leakyrelu", "leakyrelu", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "leakyrelu")),
    ("leakyrelu_alpha_0_1", "leakyrelu=0.1", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "leakyrelu=0.1")),
    ("sigmoid", "sigmoid", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "sigmoid")),
    ("tanh", "tanh", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "tanh")),
    ("softmax", "softmax", (2, 4, 3, 3), lambda d, s: activation_case(d, s, "softmax")),
    ("relu6", "relu6", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "relu6", scale=8)),
    ("hardsigmoid", "hardsigmoid", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "hardsigmoid", scale=5)),
    ("conv_relu6", "conv 3 3x3 padding=same relu6", (2, 2, 5, 5),
     lambda d, s: conv_case(d, s, 3, 3, 1, "same", "relu6")),
    ("dense_hardsigmoid", "dense 4 hardsigmoid", (3, 5, 1, 1),
     lambda d, s: dense_case(d, s, 4, "hardsigmoid")),
    ("hardswish", "hardswish", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "hardswish", scale=5)),
    ("silu", "silu", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "silu", scale=5)),
    ("gelu", "gelu", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "gelu", scale=4)),
    ("elu", "elu", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "elu")),
    ("elu_alpha_0_5", "elu=0.5", (2, 2, 3, 4), lambda d, s: activation_case(d, s, "elu=0.5")),
    ("conv_elu", "conv 3 3x3 padding=same elu=0.5", (2, 2, 5, 5),
     lambda d, s: conv_case(d, s, 3, 3, 1, "same", "elu=0.5")),
    ("dense_elu", "dense 4 elu", (3, 5, 1, 1), lambda d, s: dense_case(d, s, 4, "elu")),
    # log_softmax over the channels at each position (nn.LogSoftmax(dim=1)), standalone and fused
    ("logsoftmax", "logsoftmax", (2, 4, 3, 3), lambda d, s: activation_case(d, s, "logsoftmax")),
    ("conv_logsoftmax", "conv 4 3x3 padding=same logsoftmax", (2, 2, 4, 4),
     lambda d, s: conv_case(d, s, 4, 3, 1, "same", "logsoftmax")),
    ("dense_logsoftmax", "dense 4 logsoftmax", (3, 6, 1, 1), lambda d, s: dense_case(d, s, 4, "logsoftmax")),
    # nn.PReLU with one slope and with one per channel
    ("prelu", "prelu", (2, 3, 3, 4), lambda d, s: prelu_case(d, s, False)),
    ("prelu_channels", "prelu channels", (2, 3, 3, 4), lambda d, s: prelu_case(d, s, True)),
    ("prelu_channels_dense", "prelu channels", (3, 5, 1, 1), lambda d, s: prelu_case(d, s, True)),
    # Channel shuffling and slicing, layer normalisation
    ("shuffle_3", "shuffle 3", (2, 6, 2, 3), lambda d, s: shuffle_case(d, s, 3)),
    ("slice_middle", "slice 1:4", (2, 5, 3, 2), lambda d, s: slice_case(d, s, 1, 4)),
    ("layernorm_conv", "layernorm eps=1e-06", (2, 5, 3, 4), lambda d, s: layernorm_case(d, s, 1e-6)),
    ("layernorm_dense", "layernorm", (3, 7, 1, 1), lambda d, s: layernorm_case(d, s, 1e-5)),
    # Upsampling: nn.Upsample's nearest (its default) and F.interpolate's bilinear, both corner rules
    ("upsample_nearest_2", "upsample 2", (2, 3, 3, 4), lambda d, s: upsample_case(d, s, 2, "nearest")),
    ("upsample_nearest_2x3", "upsample 2x3", (1, 2, 5, 3), lambda d, s: upsample_case(d, s, (2, 3), "nearest")),
    ("upsample_bilinear_2", "upsample 2 bilinear", (2, 2, 3, 5),
     lambda d, s: upsample_case(d, s, 2, "bilinear", False)),
    ("upsample_bilinear_3x2", "upsample 3x2 bilinear", (1, 2, 3, 3),
     lambda d, s: upsample_case(d, s, (3, 2), "bilinear", False)),
    ("upsample_bilinear_2x3_align", "upsample 2x3 bilinear align-corners", (1, 3, 5, 4),
     lambda d, s: upsample_case(d, s, (2, 3), "bilinear", True)),
    ("upsample_bilinear_3_align_one_row", "upsample 3 bilinear align-corners", (1, 2, 1, 3),
     lambda d, s: upsample_case(d, s, 3, "bilinear", True)),
    # Transposed convolution: F.conv_transpose2d with stride, padding, output padding, groups, dilation
    ("convtranspose_2_s2", "convtranspose 3 2x2 stride=2", (2, 4, 3, 5),
     lambda d, s: conv_transpose_case(d, s, 3, 2, stride=2)),
    ("convtranspose_3_s2_p1_op1_relu", "convtranspose 4 3x3 stride=2 padding=1 output-padding=1 relu",
     (2, 3, 4, 3), lambda d, s: conv_transpose_case(d, s, 4, 3, 2, 1, 1, act="relu")),
    ("convtranspose_3x2_s2x1_p1x0_nobias", "convtranspose 2 3x2 stride=2x1 padding=1x0 nobias", (1, 3, 5, 4),
     lambda d, s: conv_transpose_case(d, s, 2, (3, 2), (2, 1), (1, 0), bias=False)),
    ("convtranspose_groups2_d2", "convtranspose 6 3x3 padding=2 groups=2 dilation=2 tanh", (2, 4, 5, 5),
     lambda d, s: conv_transpose_case(d, s, 6, 3, 1, 2, groups=2, dilation=2, act="tanh")),
    ("convtranspose_depthwise_s3_op2", "convtranspose 3 2x2 stride=3 output-padding=2 groups=3", (1, 3, 3, 2),
     lambda d, s: conv_transpose_case(d, s, 3, 2, 3, 0, 2, groups=3)),
]

TRAINING = {"batchnorm_inference": False}  # every other case runs a training forward


# ---------------------------------------------------------------------------------------------
# Output.

def fmt(values):
    return "[" + ",".join(str(np.float32(v)) for v in values) + "]"


def tensor_json(t):
    return fmt(t.detach().reshape(-1).tolist())


def render(obj, indent=0):
    """JSON with float32 lists on one line each (short decimal form)."""
    pad = "  " * (indent + 1)
    items = []
    for key, value in obj.items():
        if isinstance(value, dict):
            body = render(value, indent + 1)
        elif isinstance(value, torch.Tensor):
            body = tensor_json(value)
        else:
            body = json.dumps(value)
        items.append(pad + json.dumps(key) + ": " + body)
    return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"


def build(name, spec, shape, builder):
    for attempt in range(200):
        case = builder(Draw(name, attempt), shape)
        if case is not None:
            return case
    raise RuntimeError(name + ": no draw met the margins")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in os.listdir(OUT_DIR):
        if old.endswith(".json"):
            os.remove(os.path.join(OUT_DIR, old))
    total = 0
    for name, spec, shape, builder in CASES:
        case = build(name, spec, shape, builder)
        x, y, params = case["x"], case["y"], case["params"]
        draw = Draw(name + "/dy", 0)
        dy = draw.uniform(tuple(y.shape))
        trainable = {k: v for k, v in params.items() if v.requires_grad}
        (y * dy).sum().backward()
        training = TRAINING.get(name, True)
        doc = {
            "name": name,
            "spec": spec,
            "input_shape": list(shape),
            "training": training,
            "x": x,
            "params": {k: {"dims": list(v.shape), "value": v} for k, v in params.items()},
            "dy": dy,
            "output_shape": list(y.shape),
            "y": f32(y),
            "dx": f32(x.grad),
            "grads": {k: f32(v.grad) for k, v in trainable.items()},
        }
        if case.get("after"):
            doc["params_after"] = {k: f32(v) for k, v in case["after"].items()}
        text = render(doc) + "\n"
        with open(os.path.join(OUT_DIR, name + ".json"), "w") as f:
            f.write(text)
        total += len(text)
        print(f"{name:28s} {spec:40s} {len(text):7d} bytes")
    print(f"{len(CASES)} cases, {total} bytes in {OUT_DIR}")


if __name__ == "__main__":
    sys.exit(main())
