#!/usr/bin/python3
"""Lenz against the ONNX project's own backend tests, operator by operator.

Why: the importer is checked against PyTorch's exports (tests/golden/onnx, the torchvision zoo),
which use only the corners of each operator that PyTorch writes. The ONNX project's node tests pin
down each operator's attributes one by one (padding modes, ceil_mode, axes, broadcasting, opsets)
with the outputs ONNX's reference computed. This tool runs Lenz on every one of them whose
operators Lenz imports and says, per test, whether Lenz computes the right numbers, refuses the
model with a one-line error (a limit, fine as long as it is said), or computes something else (a
bug). It also runs the two suites of PyTorch-made tests that ship beside the node tests
(pytorch-converted: nn modules such as Conv2d_depthwise or BatchNorm2d_eval, with their weights;
pytorch-operator: torch functions), which exercise the same operators on (N, C, H, W) maps.

Run from the repository root (Debian's python3 with python3-onnx and python3-numpy; the tests come
from Debian's libonnx-testdata):
  /usr/bin/python3 tools/onnx_conformance.py [--lenz build/lenz] [--markdown docs/onnx-conformance.md]
  /usr/bin/python3 tools/onnx_conformance.py --check      # for CI: one line, exit status 1 on a bug

What is run:
- Every test in DATA/SUITE (DATA is /usr/share/libonnx-testdata/data; SUITE node,
  pytorch-converted and pytorch-operator) whose graph's nodes are all operators the importer
  handles (IMPORTED below; Constant nodes, which it folds, may be there too). A test is filed under
  its operators, e.g. "Conv", or "HardSigmoid + Mul" for node/test_hardswish_expanded.
- For each test_data_set_*: input_0.pb becomes x.npy and `LENZ run MODEL --input x.npy --output
  y.npy` runs, with a 60 s limit (with --threads 1 added when --jobs runs several at once).
- Inputs after the first are frozen: node tests pass weights, biases, pads, shapes and bounds as
  graph inputs, so that one model serves any values, while Lenz (like any CNN engine) takes those
  from the file and feeds the model one tensor. Each data set's values for them are written into a
  copy of the model as initializers (the inputs stay listed, which every IR version allows), so the
  graph computes exactly what the test expects for that data set. --as-is runs the files as they
  ship, where Lenz refuses every test with a second input.
- A model Lenz refuses for its opset (older than 9, on purpose: see the importer) is converted to
  opset 13 with onnx's version_converter, as Lenz's message advises, and run again; its result is
  that of the converted model, marked "upgraded" in the report. --no-upgrade leaves them refused.
- Comparison: the first output only (Lenz models have one; a graph with more is refused before
  this matters). The shapes must match, with one equivalence that `lenz run` documents: it writes
  a 1x1 map (N, C, 1, 1) as (N, C), so (N, C) from Lenz matches (N, C, 1, 1) expected (same values,
  same order). The values must agree within max|lenz - expected| <= 1e-4 * max(1, max|expected|).

Each test is then:
- pass: every data set within the tolerance;
- refused: Lenz exits non-zero with a one-line error (`lenz: error: ...`), recorded with the
  model's path taken out; the report groups them by reason (REASONS) and says for each reason
  whether it is a deliberate limit of a CNN engine or a bug;
- fail: Lenz exits 0 but the output has the wrong shape, wrong numbers, or is missing;
- crash: Lenz is killed by a signal, exits non-zero without a one-line error, or runs past the
  limit (a hang). Printed loudly.
--check exits 1 when any test fails or crashes (refusals are allowed: the report lists them) and
prints one summary line; without --check the exit status is 0 whatever the results. The whole run
takes about 10 s on 2 cores.

The expected numbers are the ONNX project's; nothing here shares code with Lenz.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/libonnx-testdata/data"
SUITES = ["node", "pytorch-converted", "pytorch-operator"]
TIMEOUT_S = 60
TOLERANCE = 1e-4  # of max(1, the largest |expected|)
UPGRADE_TO = 13  # the opset Lenz exports
OLD_OPSET = r"ONNX opset \d+ is older than 9"

# What src/formats/onnx_import.cpp reads as layers, in the order its error message lists them.
IMPORTED = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "Flatten",
            "Reshape", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "Dropout", "Relu",
            "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Gelu", "Elu", "PRelu", "Softmax",
            "LogSoftmax", "Resize",
            "Upsample", "Add", "Sub",
            "Mul", "Div", "Concat", "Split", "Slice", "Transpose", "Pad", "Identity", "QuantizeLinear",
            "DequantizeLinear"]
FOLDED_ONLY = {"Constant"}  # may stand beside them: import folds it

# Worst first: a test is as bad as its worst data set.
ORDER = ["crash", "fail", "refused", "pass"]

# Why Lenz refuses, from its one-line error: (pattern, reason, judgement). The first match wins.
# "Limit": a deliberate limit of a CNN engine, said in the README or in the importer's own message;
# "Bug": Lenz refuses or computes wrongly what it says it reads.
REASONS = [
    (r"must be \(N, C, H, W\) with C, H and W known",
     "input is not (N, C, H, W) with known C, H, W",
     "Limit: Lenz runs CNNs on images. A 1-D, 2-D, 3-D or 5-D input (vectors, matrices, sequences, "
     "volumes) is outside what it models. Most node tests of element-wise operators (activations, "
     "arithmetic, Concat, Split, Slice, Softmax, Gemm) use a (3, 4, 5) tensor and land here, so these "
     "tests do not exercise those operators; Lenz's PyTorch goldens do, on maps."),
    (r"is not float32",
     "input is not float32",
     "Limit: Lenz computes in float32; uint8, int8, int32, bool and optional or sequence inputs are refused."),
    (r"the graph has more than one input",
     "two or more graph inputs",
     "Limit: a Lenz model reads one tensor and its weights come from the file. (Only without freezing, "
     "--as-is.)"),
    (OLD_OPSET,
     "opset older than 9",
     "Limit, deliberate and documented: opsets before 9 gave BatchNormalization, Gemm and Reshape other "
     "meanings, so Lenz refuses them all rather than guess, and says to convert the file with onnx's "
     "version_converter. (Only with --no-upgrade, or where the converter itself failed.)"),
    (r"the graph has \d+ outputs|only the normalised output may be used|the indices output|the mask output",
     "a second output is asked for (mask, indices, statistics)",
     "Limit: a Lenz model has one output: no dropout mask, max-pool indices, layer-norm mean and "
     "inverse deviation, or batch-norm running statistics."),
    (r"the graph has no layers",
     "nothing to compute (the graph is a no-op for Lenz)",
     "Limit, harmless: an Identity, a Dropout at inference, a zero Pad with no window after it, or the "
     "input's normalisation alone become no layer, and a Lenz model needs at least one."),
    (r"training_mode",
     "training_mode is refused on purpose",
     "Limit: Lenz imports models for inference (batch statistics of the batch itself are a training "
     "computation)."),
    (r"\(Flatten\): only axis 1 is supported",
     "Flatten with an axis other than 1 is refused on purpose",
     "Limit: Lenz flattens (N, C, H, W) to (N, C*H*W), what CNN classifiers do; other axes fold the batch "
     "or keep part of the map."),
    (r"only a softmax over the channels",
     "Softmax over an axis other than the channels is refused on purpose",
     "Limit: a classifier's softmax is over the channels (classes)."),
    (r"only a log-softmax over the channels",
     "LogSoftmax over an axis other than the channels is refused on purpose",
     "Limit: as Softmax, a log-softmax is over the channels (classes), nn.LogSoftmax(dim=1)."),
    (r"\(PRelu\): slope of shape",
     "PRelu with a slope that is neither one value nor one per channel",
     "Limit: Lenz's prelu has one slope or one per channel, as nn.PReLU. A (C) slope on a map broadcasts "
     "over W under numpy's rules (opset 7 on); opset 6 files that meant it per channel keep that shape "
     "when upgraded, so they are refused rather than read the other way."),
    (r"only a normalisation over the channels",
     "LayerNormalization over axes other than the channels is refused on purpose",
     "Limit: Lenz's layer norm normalises the channels at each position (ConvNeXt's)."),
    (r"only a mean over the height and width",
     "ReduceMean over axes other than H and W is refused on purpose",
     "Limit: ReduceMean is imported as a global average pool."),
    (r"only HardSigmoid with alpha 1/6",
     "HardSigmoid other than PyTorch's (alpha 1/6, beta 0.5) is refused on purpose",
     "Limit: Lenz has PyTorch's hard sigmoid; ONNX's default alpha is 0.2."),
    (r"only Clip to \[0, 6\]",
     "Clip to bounds other than [0, 6] is refused on purpose",
     "Limit: Clip is imported as ReLU6 only."),
    (r"only alpha 1, beta 1 and transA 0",
     "Gemm with alpha, beta or transA is refused on purpose",
     "Limit: Lenz's dense layer computes x W^T + b, as PyTorch's Linear exports it."),
    (r"dilated pooling",
     "dilated pooling is refused on purpose",
     "Limit: CNN classifiers do not dilate pooling windows."),
    (r"auto_pad \w+ is not supported",
     "auto_pad SAME_LOWER is refused on purpose",
     "Limit: Lenz's 'same' puts the odd pixel at the bottom/right (SAME_UPPER, as Keras and TensorFlow); "
     "explicit pads cover PyTorch's exports."),
    (r"\((Resize|Upsample)\)",
     "Resize beyond upsampling by whole factors, nearest or bilinear as PyTorch does it",
     "Limit, for now: Lenz's upsample layer scales H and W by whole factors, nearest as nn.Upsample "
     "(asymmetric, floor) or bilinear as F.interpolate (half_pixel, align_corners). Downsampling, "
     "sizes that are not whole multiples, cubic and TensorFlow's coordinate rules are refused, naming the "
     "node; resizing to any size is planned with the segmentation work (issue 31)."),
    (r"\(ConvTranspose\)",
     "ConvTranspose with pads larger at the end, or auto_pad SAME without output_shape",
     "Limit: Lenz's convtranspose crops P off the top and left and P minus the output padding off the "
     "bottom and right (PyTorch's ConvTranspose2d), so pads larger at the start, output_shape and "
     "output_padding are read, and the rest is refused naming the node."),
    (r"mode '\w+' is not supported",
     "Pad modes other than constant (reflect, edge) are refused on purpose",
     "Limit: Lenz pads with zeros only."),
    (r"only zero padding is supported",
     "Pad with a value other than 0 is refused on purpose",
     "Limit: Lenz pads with zeros only."),
    (r"pads the graph's output|zero padding only into the Conv or AveragePool",
     "a Pad that is not followed by Conv or AveragePool",
     "Limit: zero padding goes into the window after it; Lenz has no padding layer."),
    (r"not a float32 value per channel",
     "arithmetic with a constant that is not one value per channel",
     "Limit: Lenz's layers scale and shift per channel; an element-wise constant is refused."),
    (r"the weight must be two-dimensional",
     "MatMul or Gemm with a weight that is not a matrix is refused on purpose",
     "Limit: MatMul is imported as a dense layer or a 1x1 convolution; batched matrix products are not "
     "CNN layers."),
    (r"uneven pads that are not 'same'",
     "uneven pads other than 'same' are refused",
     "Limit: Lenz pads evenly, or as 'same' with the odd pixel at the bottom/right."),
    (r"ceil_mode",
     "ceil_mode together with uneven pads or counted padding is refused",
     "Limit: rare in exported CNNs."),
    (r"not a channel shuffle",
     "Reshape/Transpose/Reshape other than a channel shuffle (PixelShuffle's depth-to-space) is refused",
     "Limit: Lenz follows reshapes and transposes only where they are a flatten, a channel shuffle or a "
     "permute to channels-last and back."),
    (r"only a reshape to|only a permutation to channels-last|only a slice of the channels|"
     r"only a split along the channels|only a concatenation along the channels",
     "Reshape, Transpose, Slice, Split or Concat on other axes is refused on purpose",
     "Limit: Lenz reshapes to (N, -1), permutes to channels-last and back, and slices, splits and joins "
     "channels."),
    (r"one positive scale per quantised activation|read by something other than DequantizeLinear|no "
     r"QuantizeLinear wrote",
     "quantisation other than QDQ with one scale per activation",
     "Limit: Lenz's int8 quantises each activation with one scale, as the static quantisation of ONNX "
     "Runtime and PyTorch does (weights get one per output channel), and reads quantisation as "
     "QuantizeLinear then DequantizeLinear around a layer's input (QDQ); it holds values, not raw "
     "integer tensors."),
]


def read_tensor(path):
    """A TensorProto file as a NumPy array."""
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def numbered(folder, stem):
    """folder/stem_0.pb, stem_1.pb, ... in their numbers' order."""
    paths = glob.glob(os.path.join(folder, stem + "_*.pb"))
    return sorted(paths, key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1)))


def is_tensor(value_info):
    return value_info.type.HasField("tensor_type")


def group_of(model):
    """The operators a test is filed under (its nodes' ops, Constant aside), or None when some
    node is an operator the importer does not handle."""
    ops = []
    for node in model.graph.node:
        if node.op_type not in IMPORTED and node.op_type not in FOLDED_ONLY:
            return None
        if node.op_type in IMPORTED and node.op_type not in ops:
            ops.append(node.op_type)
    return " + ".join(ops) if ops else None


def discover(data, suites, only):
    """A dict per test to run: suite, name, shown (its name in the report), folder, group."""
    tests = []
    for suite in suites:
        for folder in sorted(glob.glob(os.path.join(data, suite, "test_*"))):
            name = os.path.basename(folder)
            shown = name if suite == "node" else f"{suite}/{name}"
            if only and not any(re.search(p, shown) for p in only):
                continue
            path = os.path.join(folder, "model.onnx")
            if not os.path.exists(path):
                continue
            group = group_of(onnx.load(path, load_external_data=False))
            if group:
                tests.append({"suite": suite, "name": name, "shown": shown, "folder": folder, "group": group})
    return tests


def opset_of(model):
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def error_line(stderr, model_path):
    """Lenz's one-line error with the scratch path of the model taken out, or None."""
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    if len(lines) != 1 or not lines[0].startswith("lenz: error: "):
        return None
    return lines[0][len("lenz: error: "):].replace(model_path, "model.onnx")


def compare(got, expected):
    """None when Lenz's output matches, else what differs."""
    shape = tuple(got.shape)
    if len(shape) == 2 and expected.ndim == 4 and expected.shape[2:] == (1, 1):
        shape = shape + (1, 1)  # `lenz run` writes a 1x1 map (N, C, 1, 1) as (N, C)
    if shape != tuple(expected.shape):
        return f"output shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    got = got.reshape(expected.shape).astype(np.float64)
    expected = expected.astype(np.float64)
    if expected.size == 0:
        return None
    diff = float(np.max(np.abs(got - expected)))
    scale = max(1.0, float(np.max(np.abs(expected))))
    if not diff <= TOLERANCE * scale:  # a NaN fails too
        return f"max |lenz - expected| {diff:.3g} > {TOLERANCE * scale:.3g} (max |expected| {scale:.3g})"
    return None


def lenz_run(args, model_path, x_path, y_path):
    """(status, detail) of one `lenz run`, with the output compared later: 'ran' when it exited 0."""
    command = [args.lenz, "run", model_path, "--input", x_path, "--output", y_path]
    if args.jobs > 1:
        command += ["--threads", "1"]
    if os.path.exists(y_path):
        os.remove(y_path)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return "crash", f"hang: still running after {args.timeout:g} s: {' '.join(command)}"
    if done.returncode < 0:
        return "crash", (f"killed by signal {-done.returncode}: {' '.join(command)}; "
                         f"stderr: {done.stderr.strip()[-500:]!r}")
    if done.returncode != 0:
        line = error_line(done.stderr, model_path)
        if line is None:
            return "crash", (f"exit status {done.returncode} without a one-line error: {' '.join(command)}; "
                             f"stderr: {done.stderr.strip()[-500:]!r}")
        return "refused", line
    return "ran", ""


def run_data_set(args, model, test, data_set, scratch):
    """One data set: (status, detail, upgraded-from opset or None). status is one of ORDER."""
    graph = model.graph
    initialized = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initialized]
    files = numbered(data_set, "input")
    outputs = numbered(data_set, "output")
    os.makedirs(scratch, exist_ok=True)
    model_path = os.path.join(test["folder"], "model.onnx")
    frozen = model
    if not args.as_is and len(inputs) > 1:
        frozen = onnx.ModelProto()
        frozen.CopyFrom(model)
        for value, path in zip(inputs[1:], files[1:]):
            if is_tensor(value):
                frozen.graph.initializer.append(numpy_helper.from_array(read_tensor(path), value.name))
        model_path = os.path.join(scratch, "model.onnx")
        onnx.save(frozen, model_path)
    x_path, y_path = os.path.join(scratch, "x.npy"), os.path.join(scratch, "y.npy")
    if inputs and is_tensor(inputs[0]) and files:
        np.save(x_path, read_tensor(files[0]))
    else:  # an optional or a sequence, which no .npy holds: Lenz refuses the model before reading this
        np.save(x_path, np.zeros((1, 1, 1, 1), np.float32))
    status, detail = lenz_run(args, model_path, x_path, y_path)
    upgraded = None
    if status == "refused" and re.search(OLD_OPSET, detail) and not args.no_upgrade:
        try:
            converted = version_converter.convert_version(frozen, UPGRADE_TO)
        except Exception as e:  # the converter's own limits: the refusal stands
            detail += f" (onnx's version_converter to opset {UPGRADE_TO} failed: {(str(e).splitlines() or [type(e).__name__])[0][:200]})"
        else:
            upgraded = opset_of(model)
            model_path = os.path.join(scratch, f"model-opset{UPGRADE_TO}.onnx")
            onnx.save(converted, model_path)
            status, detail = lenz_run(args, model_path, x_path, y_path)
    if status != "ran":
        return status, detail, upgraded
    if not os.path.exists(y_path):
        return "fail", "exit status 0 but no output file", upgraded
    if not outputs:
        return "fail", "the test has no expected output", upgraded
    wrong = compare(np.load(y_path), read_tensor(outputs[0]))
    return ("fail", wrong, upgraded) if wrong else ("pass", "", upgraded)


def run_test(args, test, scratch_root):
    """The test's dict with status (the worst data set's), details (of the data sets with that
    status) and upgraded (the opset it was converted from, or None)."""
    model = onnx.load(os.path.join(test["folder"], "model.onnx"))
    results = []
    for data_set in sorted(glob.glob(os.path.join(test["folder"], "test_data_set_*"))):
        scratch = os.path.join(scratch_root, test["suite"], test["name"], os.path.basename(data_set))
        results.append(run_data_set(args, model, test, data_set, scratch))
    if not results:
        results = [("fail", "the test has no data set", None)]
    status = min((r[0] for r in results), key=ORDER.index)
    details = sorted({d for s, d, _ in results if s == status and d})
    upgraded = next((u for _, _, u in results if u), None)
    return dict(test, status=status, details=details, upgraded=upgraded)


def reason_of(result):
    """(reason, judgement) of a test that did not pass."""
    detail = result["details"][0] if result["details"] else ""
    if result["status"] == "crash":
        return "crash or hang", "Bug: Lenz must finish with a result or a one-line error."
    if result["status"] == "fail":
        if detail.startswith("output shape"):
            return "wrong output shape", "Bug: Lenz accepted the model and computed another shape."
        return "wrong numbers", "Bug: Lenz accepted the model and computed other numbers."
    for pattern, reason, judgement in REASONS:
        if re.search(pattern, detail):
            return reason, judgement
    return "other refusals", "Not yet judged: read the message, then add a pattern to REASONS in the tool."


def counts(rows):
    return {s: sum(r["status"] == s for r in rows) for s in ORDER}


def package_version(name):
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def lenz_version(lenz):
    done = subprocess.run([lenz, "--version"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def markdown(results, args):
    """The report: tables per suite and per operator, then every test that did not pass, by reason."""
    def shown(r):
        return f"`{r['shown']}`" + (f" (upgraded from opset {r['upgraded']})" if r["upgraded"] else "")

    total = counts(results)
    lines = [
        "# Lenz and the ONNX backend tests",
        "",
        "Generated by `/usr/bin/python3 tools/onnx_conformance.py --markdown docs/onnx-conformance.md` "
        "(CI runs the same tests with `--check`, in scripts/test.sh); do not edit by hand.",
        "",
        f"The ONNX project's backend tests from Debian's `libonnx-testdata` "
        f"{package_version('libonnx-testdata')} (`{args.data}`): the node tests, and the two suites of "
        "PyTorch-made tests beside them, each test a model with its inputs and the outputs ONNX expects. "
        "Every test whose graph holds only operators Lenz imports (Constant too) is run with "
        f"`lenz run MODEL --input x.npy --output y.npy` ({lenz_version(args.lenz)}). How:",
        "",
        "- Inputs after the first (weights, biases, pads, shapes, bounds, ratios) are written into a copy "
        "of the model as initializers holding the data set's values: node tests pass them as graph inputs, "
        "while Lenz, like any CNN engine, takes them from the file. The graph computes the same thing."
        + (" **This report was made with --as-is: the files as they ship.**" if args.as_is else ""),
        f"- A model Lenz refuses for its opset (older than 9, on purpose) is converted to opset {UPGRADE_TO} "
        "with onnx's version_converter, as Lenz's message advises, and counted by the converted model's "
        "result (marked \"upgraded\")."
        + (" **This report was made with --no-upgrade.**" if args.no_upgrade else ""),
        "- **Pass**: the first output's shape matches (a (N, C) from `lenz run` matches (N, C, 1, 1), since it "
        "writes a 1x1 map that way) and max |lenz - expected| <= 1e-4 * max(1, max |expected|). "
        "**Refused**: Lenz exits with a one-line error, quoted below. **Fail**: Lenz exits 0 with another "
        "shape or other numbers. **Crash**: a signal, an exit without a one-line error, or no result within "
        f"{args.timeout:g} s.",
        "- A test is filed under its operators; a test of several under all of them, joined by +. "
        "An operator with 0 tests has none in this version of the test data.",
        "",
        f"**{len(results)} tests: {total['pass']} pass, {total['refused']} refused, {total['fail']} fail, "
        f"{total['crash']} crash or hang.**",
        "",
        "| suite | tests | pass | refused | fail | crash | upgraded |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for suite in args.suites:
        rows = [r for r in results if r["suite"] == suite]
        c = counts(rows)
        lines.append(f"| {suite} | {len(rows)} | {c['pass']} | {c['refused']} | {c['fail']} | {c['crash']} | "
                     f"{sum(bool(r['upgraded']) for r in rows)} |")
    lines += ["", "| operator | tests | pass | refused | fail | crash |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    groups = IMPORTED + sorted({r["group"] for r in results} - set(IMPORTED))
    for g in groups:
        rows = [r for r in results if r["group"] == g]
        c = counts(rows)
        lines.append(f"| {g} | {len(rows)} | {c['pass']} | {c['refused']} | {c['fail']} | {c['crash']} |")
    lines.append(f"| **all** | {len(results)} | {total['pass']} | {total['refused']} | {total['fail']} | "
                 f"{total['crash']} |")
    lines += ["", "## Tests that pass", ""]
    for g in groups:
        rows = [r for r in results if r["group"] == g and r["status"] == "pass"]
        if rows:
            lines.append(f"- {g}: " + ", ".join(shown(r) for r in rows))
    if not total["pass"]:
        lines.append("None.")
    by_reason = {}
    for r in results:
        if r["status"] != "pass":
            by_reason.setdefault(reason_of(r), []).append(r)
    judged = {"Limit": 0, "Bug": 0, "Not yet judged": 0}
    for (_, judgement), rows in by_reason.items():
        judged[judgement.split(":")[0].split(",")[0]] += len(rows)
    summary = (f"{judged['Limit']} refused by a deliberate limit of a CNN engine, {judged['Bug']} bugs (wrong "
               "numbers or shapes, crashes, refusals of what Lenz says it reads)")
    if judged["Not yet judged"]:
        summary += f", {judged['Not yet judged']} not yet judged"
    lines += ["", "## Tests that do not pass, by reason", "", summary + ".", ""]
    first = {"crash or hang": 0, "wrong numbers": 1, "wrong output shape": 2}
    for (reason, judgement), rows in sorted(by_reason.items(),
                                            key=lambda kv: (first.get(kv[0][0], 3), -len(kv[1]), kv[0][0])):
        lines += [f"### {reason} ({len(rows)})", "", judgement, ""]
        by_message = {}  # Lenz's line, or what differs, with the tests that got it
        for r in rows:
            by_message.setdefault("; ".join(r["details"]), []).append(r)
        for message, same in by_message.items():
            lines.append(f"- `{message}`: " + ", ".join(shown(r) for r in same))
        lines.append("")
    if not by_reason:
        lines += ["None.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lenz", default=os.path.join(ROOT, "build", "lenz"), help="the binary (default build/lenz)")
    parser.add_argument("--data", default=DATA, help=f"the test suites' folder (default {DATA})")
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated (default {','.join(SUITES)})")
    parser.add_argument("--tests", action="append", default=[], metavar="REGEX",
                        help="only tests whose name (suite/name outside node) matches; repeatable")
    parser.add_argument("--as-is", action="store_true",
                        help="run the models as they ship, without freezing the inputs after the first")
    parser.add_argument("--no-upgrade", action="store_true",
                        help="leave models of opsets older than 9 refused instead of converting them")
    parser.add_argument("--markdown", metavar="FILE", help="write the report here")
    parser.add_argument("--check", action="store_true",
                        help="print one summary line (and any failure); exit 1 when a test fails or crashes")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="tests run at once (default: every core); above 1, each run gets --threads 1")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S,
                        help=f"seconds a run may take before it counts as a hang (default {TIMEOUT_S})")
    parser.add_argument("--keep", metavar="DIR", help="keep the .npy files and the models run in DIR")
    args = parser.parse_args()
    args.suites = [s for s in args.suites.split(",") if s]
    args.jobs = max(1, args.jobs)
    args.lenz = os.path.abspath(args.lenz)
    missing = [s for s in args.suites if not os.path.isdir(os.path.join(args.data, s))]
    if missing:
        sys.exit(f"{args.data}: no {', '.join(missing)} (install Debian's libonnx-testdata)")
    if not os.access(args.lenz, os.X_OK):
        sys.exit(f"{args.lenz}: not an executable (build Lenz first, or pass --lenz)")
    start = time.monotonic()
    tests = discover(args.data, args.suites, args.tests)
    scratch_root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="lenz-onnx-conformance-")
    results = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda t: run_test(args, t, scratch_root), tests))
    finally:
        bad = any(r["status"] in ("crash", "fail") for r in results)
        if not args.keep and not bad:
            shutil.rmtree(scratch_root, ignore_errors=True)
    seconds = time.monotonic() - start
    if not args.check:
        width = max((len(r["shown"]) for r in results), default=0)
        for r in results:
            up = f" (upgraded from opset {r['upgraded']})" if r["upgraded"] else ""
            print(f"{r['shown']:<{width}}  {r['status']:<7}  {'; '.join(r['details'])}{up}")
    for r in results:
        if r["status"] in ("crash", "fail"):
            kept = os.path.join(scratch_root, r["suite"], r["name"])
            print(f"!!! {r['status'].upper()} {r['shown']}: {'; '.join(r['details'])} "
                  f"(x.npy, y.npy and any rewritten model kept in {kept})", file=sys.stderr)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results, args))
    c = counts(results)
    print(f"ONNX backend tests ({','.join(args.suites)}): {len(results)} run, {c['pass']} pass, "
          f"{c['refused']} refused, {c['fail']} fail, {c['crash']} crash or hang ({seconds:.1f} s)")
    return 1 if args.check and (c["fail"] or c["crash"]) else 0


if __name__ == "__main__":
    sys.exit(main())
