#!/usr/bin/python3
"""Lenz int8 against Lenz float32 on the inference workloads of `lenz bench`, alternating processes.

    /usr/bin/python3 bench/int8_speed.py [--repeats 5] [--threads 2] [--lenz build/lenz]
                                         [--workloads fmnist-infer,fmnist-latency,seed-infer]
                                         [--out bench/int8.json]

For each workload and repetition it runs `lenz bench WORKLOAD --dtype float32 --json`, then the same
with `--dtype int8` (the workload's model with the weights of seed 1, calibrated on the benchmark's
own input, as `lenz bench` does for a model never quantised), so that both see the same machine
load. It prints a markdown table of the medians and of the median per-repetition speed-up, and
writes every raw run to --out. Standard library only.
"""
import argparse
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from runs import ROOT, RunFailed, run_one, write_report  # noqa: E402

LATENCY = {"fmnist-latency", "seed-infer"}  # judged by the median latency; the others by images/s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lenz", default=os.path.join(ROOT, "build", "lenz"))
    p.add_argument("--workloads", default="fmnist-infer,fmnist-latency,seed-infer")
    p.add_argument("--out", default=os.path.join(HERE, "int8.json"))
    p.add_argument("--timeout", type=float, default=600)
    a = p.parse_args()
    workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    runs = []
    for r in range(a.repeats):
        for w in workloads:
            for dtype in ("float32", "int8"):
                cmd = [a.lenz, "--threads", str(a.threads), "bench", w, "--dtype", dtype, "--json"]
                rec = {"workload": w, "dtype": dtype, "repetition": r, "cmd": cmd}
                try:
                    rec["result"], rec["wall_s"], rec["peak_rss_bytes"] = run_one(cmd, a.timeout)
                    shown = rec["result"]["latency_ms"] if w in LATENCY else rec["result"]["images_per_s"]
                    print(f"[{w} {dtype} {r + 1}/{a.repeats}] {shown:.3f}", file=sys.stderr)
                except RunFailed as e:
                    rec["error"] = str(e)
                    print(f"[{w} {dtype} {r + 1}/{a.repeats}] failed: {e}", file=sys.stderr)
                runs.append(rec)
    print(f"\nLenz int8 against Lenz float32, {a.threads} thread(s), {a.repeats} alternating repetition(s)\n")
    print("| workload | float32 | int8 | int8 speed-up (median ratio, range) |")
    print("|---|---|---|---|")
    for w in workloads:
        by = {d: {x["repetition"]: x["result"] for x in runs
                  if x["workload"] == w and x["dtype"] == d and "result" in x} for d in ("float32", "int8")}
        key = "latency_ms" if w in LATENCY else "images_per_s"
        ratios = [(by["float32"][r][key] / by["int8"][r][key]) if w in LATENCY else
                  (by["int8"][r][key] / by["float32"][r][key]) for r in by["float32"] if r in by["int8"]]
        shown = {d: statistics.median([x[key] for x in by[d].values()]) if by[d] else None for d in by}
        unit = (lambda v: f"{v:.3f} ms") if w in LATENCY else (lambda v: f"{v:,.0f} img/s")
        cells = [unit(shown[d]) if shown[d] is not None else "failed" for d in ("float32", "int8")]
        ratio = (f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-")
        print(f"| {w} | {cells[0]} | {cells[1]} | {ratio} |")
    print(f"\ncommand: /usr/bin/python3 bench/int8_speed.py --repeats {a.repeats} --threads {a.threads}")
    write_report(a.out, {"machine": platform.processor() or platform.machine(), "time": time.ctime(),
                         "threads": a.threads, "runs": runs})


if __name__ == "__main__":
    main()
