#!/usr/bin/python3
"""Lenz against ONNX Runtime on the same .onnx files, alternating fresh processes.

    /usr/bin/python3 bench/ort_compare.py MODEL [MODEL ...] [--batches 1,16] [--repeats 3]
                                          [--threads 2] [--runs 20] [--lenz build/lenz]
                                          [--node node] [--json FILE]

MODEL is an .onnx file, or `fmnist` or `seed`: models/fashion.lenz or models/seed.lenz with the
weights of seed 1, written as ONNX by `lenz export` into a temporary folder first. For each model,
each batch and each repetition it runs one `lenz --threads T bench MODEL.onnx --batch N --repeats R
--json` process, then one `node bench/ort/ort_bench.js MODEL.onnx --batch N --runs R --threads T`
process (ONNX Runtime's CPU provider, all graph optimisations, T intra-op threads, one inter-op
thread), alternating, so that both see the same machine load. Both time R runs after 3 warm-up runs
and report the median run. It prints a markdown table per model and batch: each engine's median
over the repetitions, the median of the per-repetition speed ratios (Lenz against ONNX Runtime) and
the peak resident memory of each, and with --json writes every raw run. Standard library only;
ONNX Runtime comes from npm (`npm ci --ignore-scripts` in bench/ort).
"""
import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from runs import ROOT, RunFailed, fmt_mb, run_one, write_report  # noqa: E402

ORT_SCRIPT = os.path.join(HERE, "ort", "ort_bench.js")
# Names that stand for one of the repository's model files, exported to ONNX before the runs.
NAMED_MODELS = {"fmnist": "models/fashion.lenz", "seed": "models/seed.lenz"}
LENZ_WARMUP = 3  # the warm-up runs of `lenz bench` on a model file; ONNX Runtime gets as many


def export_named(name, lenz, folder, timeout):
    """Writes the model file a name stands for as ONNX (weights of seed 1) into folder; returns the path."""
    onnx = os.path.join(folder, f"{name}.onnx")
    cmd = [lenz, "export", NAMED_MODELS[name], onnx, "--quiet"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"ort_compare.py: {' '.join(map(shlex.quote, cmd))} failed (exit status {p.returncode}):\n{p.stderr.strip()}")
    return onnx


def fmt_latency(values, batch):
    """The median latency per batch, with the images per second it makes."""
    if not values:
        return "failed"
    ms = statistics.median(values)
    ips = batch * 1000 / ms
    return (f"{ms:.3f} ms" if ms < 10 else f"{ms:.1f} ms") + (f" ({ips:,.0f} img/s)" if ips >= 100 else f" ({ips:.1f} img/s)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="MODEL", help="an .onnx file, or fmnist / seed (the repository's models, exported)")
    p.add_argument("--batches", default="1,16", help="comma-separated batch sizes (default 1,16)")
    p.add_argument("--repeats", type=int, default=3, help="alternating Lenz / ONNX Runtime repetitions per model and batch (default 3)")
    p.add_argument("--threads", type=int, default=2, help="threads for both engines (default 2)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per process, after 3 warm-up runs (default 20, lenz bench's own)")
    p.add_argument("--lenz", default="build/lenz", help="the lenz binary (default build/lenz)")
    p.add_argument("--node", default="node", help="the Node.js interpreter for the ONNX Runtime side (default node)")
    p.add_argument("--json", metavar="FILE", help="write every raw run and the summary to FILE as JSON")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per process (default 900)")
    a = p.parse_args()
    try:
        batches = [int(b) for b in a.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches takes comma-separated integers, not '{a.batches}'")
    if not batches or min(batches) < 1:
        p.error("--batches needs at least one batch size, each at least 1")
    if a.repeats < 1 or a.threads < 1 or a.runs < 1:
        p.error("--repeats, --threads and --runs must be at least 1")
    for m in a.models:
        if m not in NAMED_MODELS and not (m.endswith(".onnx") and os.path.isfile(m)):
            p.error(f"'{m}' is neither an existing .onnx file nor one of {', '.join(NAMED_MODELS)}")
    lenz = os.path.abspath(a.lenz)
    if not (os.path.isfile(lenz) and os.access(lenz, os.X_OK)):
        sys.exit(f"ort_compare.py: no executable Lenz binary at {a.lenz} (build it first, or pass --lenz PATH)")
    if not os.path.isdir(os.path.join(HERE, "ort", "node_modules", "onnxruntime-node")):
        sys.exit("ort_compare.py: onnxruntime-node is not installed; run `npm ci --ignore-scripts` in bench/ort")
    command_line = " ".join(shlex.quote(x) for x in [sys.executable or "python3"] + sys.argv)

    runs, failures = [], []
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with tempfile.TemporaryDirectory(prefix="lenz-ort-") as folder:
        onnx = {m: export_named(m, lenz, folder, a.timeout) if m in NAMED_MODELS else os.path.abspath(m) for m in a.models}
        for m in a.models:
            for batch in batches:
                cmds = {
                    "lenz": [lenz, "--threads", str(a.threads), "bench", onnx[m], "--batch", str(batch),
                             "--repeats", str(a.runs), "--json"],
                    "onnxruntime": [a.node, ORT_SCRIPT, onnx[m], "--batch", str(batch), "--warmup", str(LENZ_WARMUP),
                                    "--runs", str(a.runs), "--threads", str(a.threads)],
                }
                for r in range(a.repeats):
                    for engine, cmd in cmds.items():
                        print(f"[{m} batch {batch} {r + 1}/{a.repeats}] {engine} ...", end="", file=sys.stderr, flush=True)
                        rec = {"model": m, "batch": batch, "repetition": r, "engine": engine, "cmd": cmd}
                        try:
                            rec["result"], rec["wall_s"], rec["peak_rss_bytes"] = run_one(cmd, a.timeout)
                            print(f" {rec['result']['latency_ms']:.4g} ms ({rec['wall_s']:.1f} s)", file=sys.stderr, flush=True)
                        except RunFailed as e:
                            rec["error"] = str(e)
                            failures.append(rec)
                            print(" FAILED", file=sys.stderr, flush=True)
                            print(f"ort_compare.py: {engine} failed on {m} batch {batch} (repetition {r + 1}): "
                                  f"{' '.join(map(shlex.quote, cmd))}\n  {str(e).replace(chr(10), chr(10) + '  ')}",
                                  file=sys.stderr, flush=True)
                        runs.append(rec)

    summary, rows = {}, []
    for m in a.models:
        for batch in batches:
            ok = {e: {r["repetition"]: r for r in runs
                      if r["model"] == m and r["batch"] == batch and r["engine"] == e and "result" in r}
                  for e in ("lenz", "onnxruntime")}
            ms = {e: [r["result"]["latency_ms"] for r in ok[e].values()] for e in ok}
            whole = {e: [r["peak_rss_bytes"] for r in ok[e].values()] for e in ok}
            above = {e: [r["result"]["peak_rss_above_start_bytes"] for r in ok[e].values()
                         if "peak_rss_above_start_bytes" in r["result"]] for e in ok}
            # Same batch, so ORT's ms / Lenz's ms = Lenz's images/s / ORT's: > 1 when Lenz is faster.
            ratios = [ok["onnxruntime"][i]["result"]["latency_ms"] / ok["lenz"][i]["result"]["latency_ms"]
                      for i in sorted(set(ok["lenz"]) & set(ok["onnxruntime"]))]
            summary[f"{m} batch {batch}"] = {
                "model": m,
                "batch": batch,
                "lenz_latency_ms_median": statistics.median(ms["lenz"]) if ms["lenz"] else None,
                "onnxruntime_latency_ms_median": statistics.median(ms["onnxruntime"]) if ms["onnxruntime"] else None,
                "ratios": ratios,
                "ratio_median": statistics.median(ratios) if ratios else None,
                "lenz_peak_rss_bytes_median": statistics.median(whole["lenz"]) if whole["lenz"] else None,
                "onnxruntime_peak_rss_bytes_median": statistics.median(whole["onnxruntime"]) if whole["onnxruntime"] else None,
                "lenz_peak_rss_above_start_bytes_median": statistics.median(above["lenz"]) if above["lenz"] else None,
                "onnxruntime_peak_rss_above_start_bytes_median":
                    statistics.median(above["onnxruntime"]) if above["onnxruntime"] else None,
            }
            if ratios:
                rs = f"{statistics.median(ratios):.2f}x" + (f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else "")
            else:
                rs = "n/a"
            rows.append(f"| {m} | {batch} | {fmt_latency(ms['onnxruntime'], batch)} | {fmt_latency(ms['lenz'], batch)} | {rs}"
                        f" | {fmt_mb(whole['lenz'])} / {fmt_mb(whole['onnxruntime'])}"
                        f" | {fmt_mb(above['lenz'])} / {fmt_mb(above['onnxruntime'])} |")

    ort_version = next((r["result"].get("onnxruntime") for r in runs if r["engine"] == "onnxruntime" and "result" in r), "?")
    print()
    print(f"Lenz vs ONNX Runtime {ort_version} (CPU), {a.threads} thread(s), {a.repeats} alternating repetition(s),"
          f" {a.runs} timed runs per process")
    print()
    print("| model | batch | ONNX Runtime (median) | Lenz (median) | speed, Lenz / ORT (median ratio, range)"
          " | peak RSS, Lenz / ORT | peak RSS above start, Lenz / ORT |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    print("Latency: each process's median run, then the median over repetitions. Speed ratio: ORT ms / Lenz ms per"
          " repetition, median; > 1 means Lenz is faster. Peak RSS: the whole process (wait4), Node.js included for ORT;"
          " above start: each engine's own figure, its peak less its resident memory before the model is loaded.")
    print(f"command: {command_line}")

    if a.json:
        report = {
            "command": command_line,
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": a.threads,
            "repeats": a.repeats,
            "timed_runs": a.runs,
            "lenz": lenz,
            "onnxruntime": ort_version,
            "models": {m: NAMED_MODELS.get(m, os.path.abspath(m)) for m in a.models},
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
            "summary": summary,
            "runs": runs,
        }
        write_report(a.json, report)
        print(f"raw runs: {a.json}")
    if failures:
        print(f"ort_compare.py: {len(failures)} run(s) failed; see the messages above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
