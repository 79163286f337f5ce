#!/usr/bin/python3
"""The PyTorch side of `lenz bench`: the same five workloads, shapes and counts, in PyTorch (CPU).

    /usr/bin/python3 bench/pytorch_workloads.py WORKLOAD [--threads N] [--batches N] [--repeats N]
                                                [--bf16] [--json]

WORKLOAD is fmnist-train, fmnist-infer, fmnist-latency, seed-infer or seed-train. With --json it
prints one JSON line with the keys `lenz bench --json` prints: workload, threads, batch,
images_per_s, latency_ms (inference) or step_ms_median (training), peak_rss_above_start_bytes.

The models mirror models/fashion.lenz and models/seed.lenz; see bench/README.md. --bf16 is the
configuration PyTorch's own performance guide recommends for CPUs with bf16: autocast to bfloat16
around the forward pass and the loss, model and input in channels-last memory format.
"""
import contextlib
import argparse
import json
import math
import sys
import time


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux: "5" > /proc/self/clear_refs); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def proc_status_bytes(key):
    """VmRSS / VmHWM of this process, from /proc/self/status (kB -> bytes)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def median(values):
    # The same median as lenz bench: the upper middle element after sorting.
    v = sorted(values)
    return v[len(v) // 2]


def build_fashion(nn):
    # models/fashion.lenz: conv 32 same relu, maxpool 2, conv 64 same relu, maxpool 2, flatten,
    # dense 128 relu, dense 10 (softmax applied at inference, fused in the loss for training).
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def same_padding(n, k, s):
    """Keras/Lenz 'same' padding on one axis: (before, after, output size)."""
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def build_seed(torch, nn, F):
    # models/seed.lenz: input 200x300x3, three convs 3x3 stride 2 'same' relu with 100/200/400
    # filters. 'Same' with stride 2 pads asymmetrically (the extra pixel goes after), which
    # Conv2d's symmetric padding cannot express: pad explicitly, then a padding=0 conv. The
    # sizes are 100x150, 50x75, 25x38, as in Lenz.
    class SameConvRelu(nn.Module):
        def __init__(self, cin, cout, h, w):
            super().__init__()
            top, bottom, self.oh = same_padding(h, 3, 2)
            left, right, self.ow = same_padding(w, 3, 2)
            self.pad = (left, right, top, bottom)
            self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=0)

        def forward(self, x):
            return F.relu(self.conv(F.pad(x, self.pad)))

    layers, h, w, cin = [], 200, 300, 3
    for cout in (100, 200, 400):
        layer = SameConvRelu(cin, cout, h, w)
        layers.append(layer)
        h, w, cin = layer.oh, layer.ow, cout
    assert (h, w) == (25, 38), (h, w)
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=["fmnist-train", "fmnist-infer", "fmnist-latency", "seed-infer", "seed-train"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--batches", type=int, default=30, help="training steps to time (fmnist-train; default 30)")
    p.add_argument("--repeats", type=int, default=0, help="timed runs (inference, seed-train); 0: the workload's default")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16, channels-last (PyTorch's best CPU setup)")
    p.add_argument("--json", action="store_true", help="one JSON line, as lenz bench --json")
    a = p.parse_args()
    if a.threads < 1 or a.batches < 1 or a.repeats < 0:
        p.error("--threads and --batches must be at least 1, --repeats not negative")

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    rep = lambda d: a.repeats if a.repeats > 0 else d  # noqa: E731

    # The bare process: interpreter and torch imported, nothing built yet (Lenz reads VmRSS at the
    # same point: before loading the model).
    # Importing torch may have peaked above where it settled: reset the high-water mark to the
    # current RSS (Linux: "5" > /proc/self/clear_refs) so VmHWM only sees what comes after.
    hwm_reset = reset_peak_rss()
    rss_before = proc_status_bytes("VmRSS:")
    anon_before, file_before = proc_status_bytes("RssAnon:"), proc_status_bytes("RssFile:")

    w = a.workload
    if w.startswith("fmnist"):
        model, shape, softmax = build_fashion(nn), (1, 28, 28), True
    else:
        model, shape, softmax = build_seed(torch, nn, F), (3, 200, 300), False

    fast = contextlib.nullcontext
    if a.bf16:
        model = model.to(memory_format=torch.channels_last)
        fast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731

    if w.endswith("train"):
        batch, steps, warmup = (64, a.batches, 3) if w == "fmnist-train" else (50, rep(3), 1)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, *shape)
        if a.bf16:
            x = x.to(memory_format=torch.channels_last)
        # Lenz: label i % classes, classes = every output element of one image (10 for
        # Fashion-MNIST, 25*38*400 = 380,000 for the seed model, whose last layer is a conv + relu).
        with torch.no_grad():
            classes = model(x[:1]).numel()
        labels = torch.arange(batch) % classes
        times = []
        for s in range(warmup + steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            with fast():
                out = model(x).reshape(batch, -1)
                loss = F.cross_entropy(out, labels)
            loss.backward()
            opt.step()
            if s >= warmup:
                times.append(time.perf_counter() - t0)
        m = median(times)
        r = {"batch": batch, "steps": steps, "step_ms_median": 1000 * m, "images_per_s": batch / m,
             "images_per_s_mean": batch * len(times) / sum(times), "loss": float(loss)}
    else:
        batch, runs, warmup = {"fmnist-infer": (256, rep(20), 3), "fmnist-latency": (1, rep(500), 20),
                               "seed-infer": (1, rep(20), 2)}[w]
        model.eval()
        x = torch.randn(batch, *shape)
        if a.bf16:
            x = x.to(memory_format=torch.channels_last)
        times = []
        with torch.inference_mode(), fast():
            for i in range(warmup + runs):
                t0 = time.perf_counter()
                y = model(x)
                if softmax:
                    y = torch.softmax(y, dim=1)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
        m = median(times)
        r = {"batch": batch, "runs": runs, "latency_ms": 1000 * m, "images_per_s": batch / m}
    if not all(math.isfinite(t) for t in times):
        raise SystemExit("non-finite timing")
    r["peak_rss_above_start_bytes"] = proc_status_bytes("VmHWM:") - rss_before
    # At the end: the process's own memory (anonymous) and shared-library pages read in (file-backed).
    r["anon_rss_above_start_bytes"] = proc_status_bytes("RssAnon:") - anon_before
    r["file_rss_above_start_bytes"] = proc_status_bytes("RssFile:") - file_before
    r["hwm_reset"] = hwm_reset
    r["workload"] = w
    r["dtype"] = "bf16" if a.bf16 else "float32"
    r["threads"] = torch.get_num_threads()
    r["torch"] = torch.__version__

    if a.json:
        print(json.dumps(r), flush=True)
    else:
        line = f"{w} ({r['threads']} threads): "
        if "latency_ms" in r:
            line += f"latency {r['latency_ms']:.3f} ms, "
        if "step_ms_median" in r:
            line += f"step {r['step_ms_median']:.1f} ms, "
        line += f"{r['images_per_s']:.0f} images/s, peak memory above start {r['peak_rss_above_start_bytes'] / 1e6:.1f} MB"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
