#!/usr/bin/python3
"""Where the time goes, in Lenz and in ONNX Runtime, on the same .onnx file: operators grouped the
same way on both sides, so that a row where ONNX Runtime is faster says what to work on.

    /usr/bin/python3 bench/ort_profile.py MODEL.onnx [--batch 1] [--runs 20] [--threads 2]
                                          [--lenz build/lenz] [--node node] [--top 8]

It runs `lenz bench MODEL --batch N --profile --json` (each layer timed alone, in the streams the batch runs in) and
`node bench/ort/ort_bench.js MODEL --profile PREFIX` (ONNX Runtime's own profiler, a time per node
and run), then sums each engine's median time per operator into groups:
- convolutions by kind: 1x1, KxK, depthwise KxK (one group per channel), grouped KxK;
- dense (Gemm, MatMul), pooling, add, mul, concat and slicing, standalone activations;
- layout: ONNX Runtime's reorders to and from its channel-blocked layout (Lenz's, where it makes
  any, are inside its convolutions).
Fusions differ: Lenz runs a batch norm, activation, residual add and a global average pool inside
the convolution before them (the `folded` column of its profile), ONNX Runtime a batch norm, ReLU,
Clip and an add, but SiLU as a node of its own (QuickGelu). Compare a convolution row together
with the activation and pooling rows. Profiling slows both engines a little; bench/ort_compare.py
gives their real latencies. Standard library only.
"""
import argparse
import collections
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from runs import ROOT, RunFailed, run_one  # noqa: E402

ORT_SCRIPT = os.path.join(HERE, "ort", "ort_bench.js")
ORT_WARMUP = 3  # profiled runs left out of the medians, as ort_bench.js leaves its warm-up out of its timing
ORT_GROUPS = {
    "Gemm": "dense", "MatMul": "dense", "FusedGemm": "dense", "FusedMatMul": "dense",
    "MaxPool": "pooling", "AveragePool": "pooling", "GlobalAveragePool": "pooling",
    "GlobalMaxPool": "pooling",
    "Add": "add", "Sum": "add", "Mul": "mul",
    "Concat": "concat, slice", "Split": "concat, slice", "Slice": "concat, slice",
    "Relu": "activation", "Clip": "activation", "Sigmoid": "activation", "HardSigmoid": "activation",
    "HardSwish": "activation", "QuickGelu": "activation", "Gelu": "activation", "BiasGelu": "activation",
    "Erf": "activation", "Tanh": "activation",
    "ReorderInput": "layout", "ReorderOutput": "layout", "Transpose": "layout",
    "Flatten": "view", "Reshape": "view", "BatchNormalization": "batchnorm",
    "LayerNormalization": "layernorm",
}
LENZ_GROUPS = {
    "dense": "dense", "maxpool": "pooling", "avgpool": "pooling", "globalavgpool": "pooling",
    "globalmaxpool": "pooling", "add": "add", "mul": "mul", "concat": "concat, slice",
    "slice": "concat, slice", "shuffle": "layout", "flatten": "view", "batchnorm": "batchnorm",
    "layernorm": "layernorm", "dropout": "view",
}


def conv_group(kernel, groups, channels_in):
    """The group of a convolution by its kernel (KH, KW) and grouping."""
    size = f"{kernel[0]}x{kernel[1]}"
    if groups > 1 and groups == channels_in:
        return f"conv depthwise {size}"
    if groups > 1:
        return f"conv grouped {size}"
    return "conv 1x1" if kernel == (1, 1) else f"conv {size}"


def lenz_group(layer):
    words = layer["spec"].split()
    if words[0] != "conv":
        return LENZ_GROUPS.get(words[0], "activation")  # the rest are the activations' names
    size = next(w for w in words[2:] if "x" in w and w[0].isdigit()) if len(words) > 2 else "1x1"
    kh, kw = (int(v) for v in size.split("x"))
    groups = next((int(w.split("=")[1]) for w in words if w.startswith("groups=")), 1)
    # groups equal to the filters: depthwise (Lenz's files do not name the input channels)
    return conv_group((kh, kw), groups, int(words[1]) if groups > 1 else 0)


def ort_group(event):
    args = event["args"]
    op = args.get("op_name", "?")
    if op not in ("Conv", "FusedConv"):
        return ORT_GROUPS.get(op, op)
    shapes = [next(iter(s.values())) for s in args.get("input_type_shape", [])]
    if len(shapes) < 2 or len(shapes[1]) != 4:
        return "conv (unknown kind)"
    x, w = shapes[0], shapes[1]
    channels_in = x[1] if len(x) == 4 else 0
    groups = channels_in // w[1] if w[1] else 1
    return conv_group((w[2], w[3]), groups, channels_in)


def ort_node_medians(profile_path):
    """Each node's median time in ms over the profiled runs after the warm-up, and its group."""
    with open(profile_path) as f:
        events = json.load(f)
    times, groups = collections.defaultdict(list), {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            times[name].append(e["dur"] / 1000)
            groups[name] = ort_group(e)
    return {n: (statistics.median(t[ORT_WARMUP:] or t), groups[n]) for n, t in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=20, help="timed runs of each engine (default 20)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lenz", default=os.path.join(ROOT, "build", "lenz"))
    p.add_argument("--node", default="node")
    p.add_argument("--top", type=int, default=8, help="the heaviest layers and nodes listed (default 8)")
    p.add_argument("--timeout", type=float, default=1800)
    a = p.parse_args()
    for name in ("batch", "runs", "threads"):
        if getattr(a, name) < 1:
            sys.exit(f"ort_profile.py: --{name} takes a positive integer")
    if not os.path.isfile(a.model):
        sys.exit(f"ort_profile.py: {a.model}: no such file")

    try:
        lenz, _, _ = run_one([a.lenz, "--threads", str(a.threads), "bench", a.model, "--batch", str(a.batch),
                              "--repeats", str(a.runs), "--profile", "--json"], a.timeout)
        with tempfile.TemporaryDirectory() as scratch:
            ort, _, _ = run_one([a.node, ORT_SCRIPT, a.model, "--batch", str(a.batch), "--runs",
                                 str(a.runs + ORT_WARMUP), "--warmup", "0", "--threads", str(a.threads),
                                 "--profile", os.path.join(scratch, "ort")], a.timeout)
            nodes = ort_node_medians(ort["profile"])
    except RunFailed as e:
        sys.exit(f"ort_profile.py: {e}")

    lenz_sum, ort_sum = collections.Counter(), collections.Counter()
    lenz_count, ort_count = collections.Counter(), collections.Counter()
    for layer in lenz["layers"]:
        g = lenz_group(layer)
        lenz_sum[g] += layer["ms"]
        lenz_count[g] += 1
    for ms, g in nodes.values():
        ort_sum[g] += ms
        ort_count[g] += 1

    print(f"{a.model}, batch {a.batch}, {a.threads} threads, medians of {a.runs} profiled runs (ms)\n")
    print("| group | Lenz layers | Lenz ms | ORT nodes | ORT ms | Lenz speed / ORT's |")
    print("|---|---:|---:|---:|---:|---:|")
    for g in sorted(set(lenz_sum) | set(ort_sum), key=lambda g: -max(lenz_sum[g], ort_sum[g])):
        ratio = f"{ort_sum[g] / lenz_sum[g]:.2f}x" if lenz_sum[g] > 0 and ort_sum[g] > 0 else "-"
        print(f"| {g} | {lenz_count[g]} | {lenz_sum[g]:.3f} | {ort_count[g]} | {ort_sum[g]:.3f} | {ratio} |")
    total_l, total_o = sum(lenz_sum.values()), sum(ort_sum.values())
    print(f"| **sum** | {sum(lenz_count.values())} | {total_l:.3f} | {sum(ort_count.values())} | {total_o:.3f} | "
          f"{total_o / total_l:.2f}x |")
    print(f"\nwhole run, profiled: Lenz {lenz['latency_ms']:.3f} ms, ONNX Runtime {ort['latency_ms']:.3f} ms "
          "(bench/ort_compare.py measures them without profiling)")
    print("\nLenz's heaviest layers (ms):")
    for layer in sorted(lenz["layers"], key=lambda l: -l["ms"])[: a.top]:
        folded = f" + {layer['folded']}" if layer.get("folded") else ""
        print(f"  {layer['ms']:8.3f}  layer {layer['layer']}: {layer['spec']}{folded}")
    print("ONNX Runtime's heaviest nodes (ms):")
    for name, (ms, g) in sorted(nodes.items(), key=lambda kv: -kv[1][0])[: a.top]:
        print(f"  {ms:8.3f}  {g}: {name}")


if __name__ == "__main__":
    main()
