#!/usr/bin/python3
"""Training steps of torchvision's CNNs: Lenz against PyTorch, alternating fresh processes.

    /usr/bin/python3 bench/train_compare.py [--networks resnet18,resnet50,mobilenet_v2,efficientnet_b0,unet]
        [--repeats 3] [--batch 32] [--dtypes float32,bf16] [--steps 10] [--threads 2]
        [--lenz build/lenz] [--models out/train_compare] [--out FILE] [--timeout 1800]

`unet` is models/unet.lenz (issue 31's U-Net, 64x64 RGB, 4 classes), which Lenz reads as it is and
PyTorch builds layer for layer (UNet below, the same 117,412 parameters), trained per pixel with
cross-entropy on random masks; run it with --batch 8 --networks unet.

Each other network is torchvision's own module (weights=None, seed 0) at 224x224 with 1000 classes,
trained on random images and labels with SGD (momentum 0.9, lr 0.01), one step being forward,
cross-entropy, backward and the update. For each network, each repetition, each precision: one
`lenz --threads T bench NET.onnx --train --batch B --batches S --dtype D --json` process, then one
PyTorch process of this script (--worker), alternating, so that both see the same machine load.
PyTorch runs channels-last (model and input, its fastest CPU layout) with
torch.set_num_threads(T); in bf16 the forward and the loss run under
torch.autocast("cpu", dtype=torch.bfloat16). Both time S steps after 2 warm-up steps and report
the median step and their peak resident memory above the start (as bench/README.md describes).

Lenz reads the network from an ONNX export, written once into --models by this script (another
process): the module in eval mode exported with training=TrainingMode.PRESERVE and
do_constant_folding=False, which keeps every batch norm as a layer of its own (trained, with batch
statistics, as PyTorch's); eval mode leaves the dropout (MobileNet v2, EfficientNet-B0) and
EfficientNet's stochastic depth out of the file, which PyTorch's training runs (little work).

It prints a markdown table: median step times, the median of the per-repetition ratios (PyTorch ms
/ Lenz ms: above 1, Lenz is faster) with their range, and both engines' median peak memory above
start; then each engine's fastest precision against the other's. A run that fails (MobileNet v2
under PyTorch 1.13's bf16 autocast: its ReLU6 backward has no bf16 kernel) is reported with its
message, left out of the medians, and makes the script exit with status 1.
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from runs import ROOT, RunFailed, fmt_mb, run_one, write_report  # noqa: E402
from pytorch_workloads import proc_status_bytes, reset_peak_rss  # noqa: E402

NETWORKS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "unet"]
DEFAULT_NETWORKS = NETWORKS[:4]
UNET_FILE = os.path.join(os.path.dirname(HERE), "models", "unet.lenz")
SIZE = 224
WARMUP = 2  # lenz bench MODEL --train's warm-up steps


def export(name, path):
    """NET.onnx for Lenz: batch norm kept (module docstring). Runs in a process of its own."""
    import warnings

    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    tmp = path + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, tmp, opset_version=13, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(tmp, path)


def unet_module():
    """models/unet.lenz in PyTorch: conv-batchnorm-relu pairs, max pools, 2x2 transposed convolutions."""
    import torch
    from torch import nn

    def pair(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1, self.enc2, self.bottom = pair(3, 16), pair(16, 32), pair(32, 64)
            self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, stride=2), pair(64, 32)
            self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 2, stride=2), pair(32, 16)
            self.head = nn.Conv2d(16, 4, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
            b = self.bottom(nn.functional.max_pool2d(e2, 2))
            d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
            return self.head(self.dec1(torch.cat([self.up1(d2), e1], 1)))

    return UNet()


def worker(a):
    """PyTorch's side: one JSON line with the keys of `lenz bench MODEL --train --json`."""
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.set_num_threads(a.threads)
    # As bench/pytorch_workloads.py: the high-water mark reset once torch is imported, so that the
    # peak above start counts the model, its training and the runtime's caches only.
    hwm_reset = reset_peak_rss()
    rss, anon, file_ = (proc_status_bytes(k) for k in ("VmRSS:", "RssAnon:", "RssFile:"))

    torch.manual_seed(0)
    unet = a.worker == "unet"
    model = unet_module() if unet else torchvision.models.get_model(a.worker, weights=None)
    if unet:
        assert sum(p.numel() for p in model.parameters()) == 117412, "UNet differs from models/unet.lenz"
    model.train()
    model = model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(2)
    size = 64 if unet else SIZE
    x = torch.randn(a.batch, 3, size, size, generator=gen).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 4, (a.batch, size, size), generator=gen) if unet else \
        torch.randint(0, 1000, (a.batch,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    bf16 = a.dtype == "bf16"
    times = []
    for s in range(WARMUP + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        if s >= WARMUP:
            times.append(time.perf_counter() - t0)
    m = sorted(times)[len(times) // 2]  # lenz bench's median: the upper middle one
    r = {"workload": a.worker, "batch": a.batch, "steps": a.steps, "warmup_steps": WARMUP,
         "step_ms_median": 1000 * m, "images_per_s": a.batch / m,
         "images_per_s_mean": a.batch * len(times) / sum(times), "loss": float(loss),
         "peak_rss_above_start_bytes": proc_status_bytes("VmHWM:") - rss,
         "anon_rss_above_start_bytes": proc_status_bytes("RssAnon:") - anon,
         "file_rss_above_start_bytes": proc_status_bytes("RssFile:") - file_,
         "hwm_reset": hwm_reset, "dtype": a.dtype, "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(json.dumps(r), flush=True)
    return 0


def ratio_text(ratios):
    if not ratios:
        return "n/a"
    s = f"{statistics.median(ratios):.2f}x"
    if len(ratios) > 1:
        s += f" ({min(ratios):.2f}-{max(ratios):.2f})"
    return s


def ms_text(values):
    return f"{statistics.median(values):,.0f} ms" if values else "failed"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default=",".join(DEFAULT_NETWORKS),
                   help="comma-separated, of " + ",".join(NETWORKS) + " (default: all but unet)")
    p.add_argument("--repeats", type=int, default=3, help="alternating Lenz/PyTorch repetitions (default 3)")
    p.add_argument("--batch", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--dtypes", default="float32,bf16", help="float32 and/or bf16 (default both)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per process, after 2 warm-up ones (default 10)")
    p.add_argument("--threads", type=int, default=2, help="threads for both engines (default 2)")
    p.add_argument("--lenz", default="build/lenz", help="the lenz binary (default build/lenz)")
    p.add_argument("--models", default="out/train_compare", help="where the ONNX exports go (default out/train_compare)")
    p.add_argument("--out", default="", help="write every raw run and the summary to this JSON file")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per process (default 1800)")
    p.add_argument("--python", default=sys.executable or "/usr/bin/python3", help="interpreter for PyTorch")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # NET: run PyTorch's side
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--export", nargs=2, metavar=("NET", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.export:
        export(*a.export)
        return 0
    if a.worker:
        return worker(a)

    networks = [n.strip() for n in a.networks.split(",") if n.strip()]
    if not networks or any(n not in NETWORKS for n in networks):
        p.error(f"--networks takes some of {','.join(NETWORKS)}")
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    if not dtypes or any(d not in ("float32", "bf16") for d in dtypes):
        p.error("--dtypes takes float32 and/or bf16")
    if min(a.repeats, a.batch, a.steps, a.threads) < 1:
        p.error("--repeats, --batch, --steps and --threads must be at least 1")
    lenz = os.path.abspath(a.lenz)
    if not (os.path.isfile(lenz) and os.access(lenz, os.X_OK)):
        sys.exit(f"train_compare.py: no executable Lenz binary at {a.lenz} (build it first, or pass --lenz PATH)")
    if "--train" not in subprocess.run([lenz, "help", "bench"], capture_output=True, text=True).stdout:
        sys.exit(f"train_compare.py: {a.lenz} has no `bench MODEL --train`; rebuild it")
    models = os.path.abspath(a.models)
    os.makedirs(models, exist_ok=True)
    me = os.path.abspath(__file__)
    for n in networks:
        path = os.path.join(models, n + ".onnx")
        if n != "unet" and not os.path.exists(path):
            print(f"exporting {n} to {path} ...", file=sys.stderr, flush=True)
            subprocess.run([a.python, me, "--export", n, path], check=True)

    command_line = " ".join(shlex.quote(x) for x in [sys.executable or "python3"] + sys.argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs, failures = [], []
    for n in networks:
        cmds = {}
        for d in dtypes:
            model_file = UNET_FILE if n == "unet" else os.path.join(models, n + ".onnx")
            cmds[("lenz", d)] = [lenz, "--threads", str(a.threads), "bench", model_file,
                                 "--train", "--batch", str(a.batch), "--batches", str(a.steps), "--dtype", d, "--json"]
            cmds[("torch", d)] = [a.python, me, "--worker", n, "--dtype", d, "--batch", str(a.batch),
                                  "--steps", str(a.steps), "--threads", str(a.threads)]
        for r in range(a.repeats):
            for (engine, d), cmd in cmds.items():
                print(f"[{n} {d} {r + 1}/{a.repeats}] {engine} ...", end="", file=sys.stderr, flush=True)
                rec = {"network": n, "dtype": d, "repetition": r, "engine": engine, "cmd": cmd}
                try:
                    rec["result"], rec["wall_s"], rec["peak_rss_bytes"] = run_one(cmd, a.timeout)
                    print(f" {rec['result']['step_ms_median']:.0f} ms/step, peak above start "
                          f"{rec['result']['peak_rss_above_start_bytes'] / 1e6:.0f} MB ({rec['wall_s']:.0f} s)",
                          file=sys.stderr, flush=True)
                except RunFailed as e:
                    rec["error"] = str(e)
                    failures.append(rec)
                    print(" FAILED: " + str(e).splitlines()[-1][:200], file=sys.stderr, flush=True)
                runs.append(rec)

    def results(n, d, e):
        return {x["repetition"]: x["result"] for x in runs
                if x["network"] == n and x["dtype"] == d and x["engine"] == e and "result" in x}

    summary, rows = {}, []
    for n in networks:
        for d in dtypes:
            lz, pt = results(n, d, "lenz"), results(n, d, "torch")
            ratios = [pt[i]["step_ms_median"] / lz[i]["step_ms_median"] for i in sorted(set(lz) & set(pt))]
            ms = {e: [x["step_ms_median"] for x in v.values()] for e, v in (("lenz", lz), ("torch", pt))}
            mem = {e: [x["peak_rss_above_start_bytes"] for x in v.values()] for e, v in (("lenz", lz), ("torch", pt))}
            summary[f"{n} {d}"] = {
                "lenz_step_ms_median": statistics.median(ms["lenz"]) if ms["lenz"] else None,
                "torch_step_ms_median": statistics.median(ms["torch"]) if ms["torch"] else None,
                "lenz_step_ms": ms["lenz"], "torch_step_ms": ms["torch"], "ratios": ratios,
                "lenz_peak_rss_above_start_bytes_median": statistics.median(mem["lenz"]) if mem["lenz"] else None,
                "torch_peak_rss_above_start_bytes_median": statistics.median(mem["torch"]) if mem["torch"] else None,
            }
            failed = next((x["error"].splitlines()[-1][:80] for x in failures
                           if x["network"] == n and x["dtype"] == d and x["engine"] == "torch"), None)
            torch_cell = ms_text(ms["torch"]) if ms["torch"] or not failed else f"failed: {failed}"
            rows.append(f"| {n} | {d} | {ms_text(ms['lenz'])} | {torch_cell} | {ratio_text(ratios)}"
                        f" | {fmt_mb(mem['lenz'])} / {fmt_mb(mem['torch'])} |")

    torch_version = next((x["result"].get("torch") for x in runs if x["engine"] == "torch" and "result" in x), "?")
    print()
    sizes = " and ".join(sorted({"64x64 (unet)" if n == "unet" else f"{SIZE}x{SIZE}" for n in networks}))
    print(f"Training steps, Lenz vs PyTorch {torch_version}: batch {a.batch}, {sizes}, SGD momentum 0.9, "
          f"{a.threads} thread(s), {a.repeats} alternating repetition(s) of {a.steps} timed steps")
    print()
    print("| network | precision | Lenz step (median) | PyTorch step (median) | Lenz speed / PyTorch's (median ratio, range) "
          "| peak memory above start, Lenz / PyTorch |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    print("Ratio: PyTorch ms / Lenz ms per repetition, median; > 1 means Lenz is faster. PyTorch: channels-last; "
          "bf16 is autocast to bfloat16. Lenz bf16: --dtype bf16.")
    if len(dtypes) > 1:
        print()
        print("| network | Lenz's fastest | PyTorch's fastest | Lenz speed / PyTorch's, best against best (ratio of medians) |")
        print("|---|---|---|---|")
        for n in networks:
            best = {}
            for e in ("lenz", "torch"):
                m = {d: summary[f"{n} {d}"][f"{e}_step_ms_median"] for d in dtypes if summary[f"{n} {d}"][f"{e}_step_ms_median"]}
                if m:
                    d = min(m, key=m.get)
                    best[e] = (d, m[d])
            if len(best) == 2:
                print(f"| {n} | {best['lenz'][0]} {best['lenz'][1]:,.0f} ms | {best['torch'][0]} {best['torch'][1]:,.0f} ms"
                      f" | {best['torch'][1] / best['lenz'][1]:.2f}x |")
    print(f"command: {command_line}")
    if a.out:
        write_report(os.path.abspath(a.out), {
            "command": command_line, "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": a.threads, "repeats": a.repeats, "batch": a.batch, "steps": a.steps, "lenz": lenz,
            "torch": torch_version, "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                             "loadavg_at_end": os.getloadavg()},
            "summary": summary, "runs": runs})
        print(f"raw runs: {a.out}")
    if failures:
        print(f"train_compare.py: {len(failures)} run(s) failed; see the messages above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
