#!/usr/bin/python3
"""Lenz against PyTorch on the workloads of `lenz bench`, alternating fresh processes.

    /usr/bin/python3 bench/compare.py [--repeats 5] [--threads 2] [--lenz build/lenz]
                                      [--out bench/results.json] [--workloads a,b] [--quick]
                                      [--dtypes float32,bf16]

For each workload, for each repetition, for each precision: one `lenz bench WORKLOAD --dtype D
--json` process, then one `bench/pytorch_workloads.py WORKLOAD --json` process (with --bf16 for
bf16: autocast and channels-last), alternating, so that all see the same machine load. It prints a
markdown table of the medians and of the median of the per-repetition ratios (Lenz against PyTorch
in the same precision), then each engine's best precision against the other's, and writes every
raw run to --out as JSON. Standard library only.
"""
import argparse
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

WORKLOADS = ["fmnist-train", "fmnist-infer", "fmnist-latency", "seed-infer", "seed-train"]
# The number each workload is judged by: "ips" (images/s, higher is better) or "ms" (latency,
# lower is better). Either way the ratio is > 1 when Lenz is faster.
METRIC = {"fmnist-train": "ips", "fmnist-infer": "ips", "fmnist-latency": "ms", "seed-infer": "ms",
          "seed-train": "ips"}
# --quick: the per-process counts of a smoke test (the warm-up counts stay the workloads' own).
QUICK_ARGS = {"fmnist-train": ["--batches", "3"], "fmnist-infer": ["--repeats", "3"],
              "fmnist-latency": ["--repeats", "50"], "seed-infer": ["--repeats", "2"],
              "seed-train": ["--repeats", "1"]}


def value(result, metric):
    return result["latency_ms"] if metric == "ms" else result["images_per_s"]


def ratio(lenz, torch, metric):
    # images/s: lenz / torch; latency: torch ms / lenz ms. Both > 1 when Lenz is faster.
    a, b = value(lenz, metric), value(torch, metric)
    return (a / b if b > 0 else float("nan")) if metric == "ips" else (b / a if a > 0 else float("nan"))


def fmt_value(result_values, metric, step_ms=None):
    if not result_values:
        return "failed"
    m = statistics.median(result_values)
    if metric == "ms":
        return f"{m:.3f} ms" if m < 10 else f"{m:.1f} ms"
    s = f"{m:,.0f} img/s" if m >= 100 else f"{m:.1f} img/s"
    if step_ms:
        s += f" ({statistics.median(step_ms):.1f} ms/step)"
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="alternating lenz/torch repetitions per workload (default 5)")
    p.add_argument("--threads", type=int, default=2, help="threads for both engines (default 2)")
    p.add_argument("--lenz", default="build/lenz", help="the lenz binary (default build/lenz)")
    p.add_argument("--out", default="bench/results.json", help="raw runs as JSON (default bench/results.json; '' for none)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset, in this order: " + ",".join(WORKLOADS))
    p.add_argument("--quick", action="store_true", help="smoke test: one repetition, small timed counts")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per process (default 900)")
    p.add_argument("--python", default=sys.executable or "/usr/bin/python3", help="interpreter for the PyTorch side")
    p.add_argument("--dtypes", default="float32,bf16",
                   help="precisions to compare, each against the same in PyTorch (default float32,bf16)")
    a = p.parse_args()
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    if not dtypes or any(d not in ("float32", "bf16") for d in dtypes):
        p.error("--dtypes takes float32 and/or bf16")

    workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or not workloads:
        p.error(f"unknown workload(s) {', '.join(unknown) or '(none given)'}; expected some of {', '.join(WORKLOADS)}")
    if a.quick:
        a.repeats = 1
    if a.repeats < 1 or a.threads < 1:
        p.error("--repeats and --threads must be at least 1")
    lenz = os.path.abspath(a.lenz)
    if not (os.path.isfile(lenz) and os.access(lenz, os.X_OK)):
        sys.exit(f"compare.py: no executable Lenz binary at {a.lenz} (build it first, or pass --lenz PATH)")
    probe = subprocess.run([lenz, "--help"], cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0 or not any(ln.split()[:1] == ["bench"] for ln in probe.stdout.splitlines()):
        sys.exit(f"compare.py: {a.lenz} lists no 'bench' subcommand in its --help; rebuild it")
    torch_script = os.path.join(HERE, "pytorch_workloads.py")
    command_line = " ".join(shlex.quote(x) for x in [sys.executable or "python3"] + sys.argv)

    runs, failures = [], []
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for w in workloads:
        extra = QUICK_ARGS[w] if a.quick else []
        cmds = {}
        for d in dtypes:
            cmds[("lenz", d)] = [lenz, "--threads", str(a.threads), "bench", w, "--dtype", d, "--json"] + extra
            cmds[("torch", d)] = ([a.python, torch_script, w, "--threads", str(a.threads), "--json"]
                                  + (["--bf16"] if d == "bf16" else []) + extra)
        for r in range(a.repeats):
            for (engine, d), cmd in cmds.items():
                print(f"[{w} {d} {r + 1}/{a.repeats}] {engine} ...", end="", file=sys.stderr, flush=True)
                rec = {"workload": w, "dtype": d, "repetition": r, "engine": engine, "cmd": cmd}
                try:
                    rec["result"], rec["wall_s"], rec["peak_rss_bytes"] = run_one(cmd, a.timeout)
                    print(f" {value(rec['result'], METRIC[w]):.4g} {'ms' if METRIC[w] == 'ms' else 'img/s'}"
                          f" ({rec['wall_s']:.1f} s)", file=sys.stderr, flush=True)
                except RunFailed as e:
                    rec["error"] = str(e)
                    failures.append(rec)
                    print(" FAILED", file=sys.stderr, flush=True)
                    print(f"compare.py: {engine} failed on {w} (repetition {r + 1}): {' '.join(map(shlex.quote, cmd))}\n"
                          f"  {str(e).replace(chr(10), chr(10) + '  ')}", file=sys.stderr, flush=True)
                runs.append(rec)

    # Summary per workload and precision.
    summary, rows, best_rows = {}, [], []
    for w, d in [(w, d) for w in workloads for d in dtypes]:
        metric = METRIC[w]
        ok = {e: {r["repetition"]: r["result"] for r in runs
                  if r["workload"] == w and r["dtype"] == d and r["engine"] == e and "result" in r}
              for e in ("lenz", "torch")}
        pairs = sorted(set(ok["lenz"]) & set(ok["torch"]))
        ratios = [ratio(ok["lenz"][i], ok["torch"][i], metric) for i in pairs]
        vals = {e: [value(x, metric) for x in ok[e].values()] for e in ok}
        steps = {e: [x["step_ms_median"] for x in ok[e].values() if "step_ms_median" in x] for e in ok}
        mem = {e: [x["peak_rss_above_start_bytes"] for x in ok[e].values() if "peak_rss_above_start_bytes" in x] for e in ok}
        summary[f"{w} {d}"] = {
            "metric": "latency_ms" if metric == "ms" else "images_per_s",
            "lenz_median": statistics.median(vals["lenz"]) if vals["lenz"] else None,
            "torch_median": statistics.median(vals["torch"]) if vals["torch"] else None,
            "ratios": ratios,
            "ratio_median": statistics.median(ratios) if ratios else None,
            "lenz_peak_rss_above_start_bytes_median": statistics.median(mem["lenz"]) if mem["lenz"] else None,
            "torch_peak_rss_above_start_bytes_median": statistics.median(mem["torch"]) if mem["torch"] else None,
        }
        if ratios:
            rs = f"{statistics.median(ratios):.2f}x"
            if len(ratios) > 1:
                rs += f" ({min(ratios):.2f}-{max(ratios):.2f})"
        else:
            rs = "n/a"
        rows.append(f"| {w} | {d} | {fmt_value(vals['lenz'], metric, steps['lenz'])} | {fmt_value(vals['torch'], metric, steps['torch'])}"
                    f" | {rs} | {fmt_mb(mem['lenz'])} / {fmt_mb(mem['torch'])} |")

    # Each engine at its best precision, as a user who picks the fastest setting of each would see.
    for w in workloads:
        metric = METRIC[w]
        better = min if metric == "ms" else max
        best = {}
        for e in ("lenz", "torch"):
            medians = {d: summary[f"{w} {d}"][f"{e}_median"] for d in dtypes if summary[f"{w} {d}"][f"{e}_median"]}
            if medians:
                d = better(medians, key=medians.get)
                best[e] = (d, medians[d])
        if len(best) == 2:
            (ld, lv), (td, tv) = best["lenz"], best["torch"]
            r = (lv / tv) if metric == "ips" else (tv / lv)
            best_rows.append(f"| {w} | {ld} | {td} | {r:.2f}x |")

    torch_version = next((r["result"].get("torch") for r in runs if r["engine"] == "torch" and "result" in r), "?")
    print()
    print(f"Lenz vs PyTorch {torch_version}, {a.threads} thread(s), {a.repeats} alternating repetition(s) per workload"
          + (" (--quick: reduced counts)" if a.quick else ""))
    print()
    print("| workload | precision | Lenz (median) | PyTorch (median) | speed-up (median ratio, range) | peak memory above start, Lenz / PyTorch |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    print("speed-up: images/s Lenz / images/s PyTorch (latency workloads: ms PyTorch / ms Lenz), per repetition, median;"
          " > 1 means Lenz is faster. PyTorch bf16: autocast to bfloat16, channels-last.")
    if len(dtypes) > 1:
        print()
        print("| workload | Lenz's fastest precision | PyTorch's fastest | speed-up, best against best (ratio of medians) |")
        print("|---|---|---|---|")
        for row in best_rows:
            print(row)
    print(f"command: {command_line}")
    # Where the resident memory goes: the process's own (anonymous) pages against shared-library
    # code read in from disk (file-backed), at the end of the run, next to Lenz's own plan.
    print()
    print("| workload | Lenz plan | Lenz anonymous / file-backed at the end | PyTorch anonymous / file-backed |")
    print("|---|---|---|---|")
    for w, d in [(w, d) for w in workloads for d in dtypes]:
        res = {e: [r["result"] for r in runs if r["workload"] == w and r["dtype"] == d and r["engine"] == e and "result" in r]
               for e in ("lenz", "torch")}
        split = lambda e: " / ".join(fmt_mb([x[k] for x in res[e] if k in x])  # noqa: E731
                                      for k in ("anon_rss_above_start_bytes", "file_rss_above_start_bytes"))
        plan = fmt_mb([x[k] for x in res["lenz"] for k in ("inference_bytes_plan", "training_bytes_plan") if k in x])
        print(f"| {w} {d} | {plan} | {split('lenz')} | {split('torch')} |")

    if a.out:
        out = a.out if os.path.isabs(a.out) else os.path.abspath(a.out)
        report = {
            "command": command_line,
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": a.threads,
            "repeats": a.repeats,
            "quick": a.quick,
            "lenz": lenz,
            "python": a.python,
            "torch": torch_version,
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
            "summary": summary,
            "runs": runs,
        }
        write_report(out, report)
        print(f"raw runs: {a.out}")
    if failures:
        print(f"compare.py: {len(failures)} run(s) failed; see the messages above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
