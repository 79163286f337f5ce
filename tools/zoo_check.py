#!/usr/bin/python3
"""Lenz checked against the torchvision exports of tools/zoo_export.py, as a Markdown table.

Run from the repository root, after tools/zoo_export.py:
  /usr/bin/python3 tools/zoo_check.py [--models a,b] [--dir out/zoo] [--lenz build/lenz] [--markdown FILE]
      [--json FILE] [--train [--train-models a,b]]
      [--speed [--batches 1,16] [--repeats 10] [--speed-repeats 1] [--speed-models a,b]]
(Python 3 with NumPy; torch is not needed; --speed needs Node.js and ONNX Runtime: `npm ci
--ignore-scripts` in bench/ort.) The exit status is 1 when any model fails, 0 otherwise.

For each DIR/NAME.onnx with its NAME.json, NAME.input.npy and NAME.output.npy:
- `lenz summary DIR/NAME.onnx --json --batch 32` must give PyTorch's parameter count (`params`: the
  trainable ones; Lenz counts batch-norm running statistics apart) and multiplication count (`mults`,
  per image, the rule zoo_export.py's docstring states). Its memory figures go into the table as
  they are: one prediction (`inference_bytes_textbook`, `inference_bytes_plan`: one image, whatever
  --batch says) and training a batch of 32 (`training_bytes_textbook`, `training_bytes_plan`).
  An export made with --fold-bn has fewer parameters and multiplications than PyTorch's model, so
  for it the counts are shown but not required to match.
- `lenz run DIR/NAME.onnx --input NAME.input.npy` must reproduce PyTorch's output: the largest
  |lenz - torch| over the largest |torch| must be at most 1e-4. Through a hundred layers float32
  rounding alone can exceed that: on deep ResNets PyTorch's own float32 output is up to 2.6e-4 from
  its float64 one. So where zoo_export.py wrote the float64 output (NAME.output64.npy), a model
  also passes when Lenz is no further from it than 1.5 times PyTorch's float32 output is (and both
  distances are in the table). `lenz run` feeds the array to the
  graph's input as it is (an ONNX file's normalisation is the one its graph holds; torchvision's
  classifiers hold none).
- --train: for the models of --train-models (default every model checked), one fine-tuning step
  must run: `lenz train DIR/NAME.onnx --new-head` on a folder of RGB PNG images of the model's
  input size that the script writes (2 classes, one training and one test image each; batch 2,
  1 epoch, no warm-up, so that the one step moves the weights), and its training loss must be
  finite. The column says "ok" or gives the first line of Lenz's error. `--new-head` replaces a
  final dense layer, or a final convolution followed only by layers without weights (SqueezeNet's classifier).
  A segmentation model (its JSON's task) fine-tunes on a segmentation folder instead (two classes,
  the images' halves), per pixel, with its last convolution resized.
- --speed: for the models of --speed-models (default every model checked), for each batch of
  --batches and each of --speed-repeats repetitions, one `lenz --threads T bench DIR/NAME.onnx
  --batch B --repeats R --json` process, then one `node bench/ort/ort_bench.js DIR/NAME.onnx --batch
  B --runs R --threads T` process (ONNX Runtime's CPU provider, all graph optimisations),
  alternating, as bench/ort_compare.py runs them; both time R runs after 3 warm-up runs and report
  the median run. The columns give each engine's median over the repetitions, the median of the
  per-repetition speed ratios (ORT ms / Lenz ms: above 1 when Lenz is faster) and, at the smallest
  batch, each process's peak resident memory (wait4; Node.js included for ONNX Runtime). A Lenz
  benchmark that fails fails the model; an ONNX Runtime one that fails shows as "failed". A model
  that `lenz run` cannot run is not timed.
A model Lenz cannot import fails, with the first line of Lenz's error in the table; the other models
are still checked. --json FILE writes everything measured: each model's export JSON, Lenz's summary
(without its per-layer table), the output difference, the fine-tuning run's metrics and every raw
benchmark run.
"""
import argparse
import json
import math
import os
import platform
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from runs import RunFailed, run_one  # noqa: E402

ORT_SCRIPT = os.path.join(ROOT, "bench", "ort", "ort_bench.js")
TRAINING_BATCH = 32
TOLERANCE = 1e-4  # of the largest |output|
# Or, where float32 rounding alone exceeds that: Lenz's distance from the float64 output may be this
# many times PyTorch float32's own.
FLOAT32_MARGIN = 1.5
WARMUP = 3  # untimed runs before the timed ones, lenz bench's own for a model file
# The fine-tuning check's image folder: CLASSES classes, per class TRAIN_IMAGES training and
# TEST_IMAGES test images; one epoch at batch CLASSES * TRAIN_IMAGES is one step.
CLASSES, TRAIN_IMAGES, TEST_IMAGES = 2, 1, 1

BASE_COLUMNS = ["model", "parameters", "MACs", "inference textbook (batch 1)", "inference plan",
                f"training textbook (batch {TRAINING_BATCH})", "training plan", "max rel. diff", "vs float64 (PyTorch's float32)"]
TRAIN_COLUMN = "fine-tuning step"


def speed_columns(batches):
    columns = []
    for b in batches:
        columns += [f"Lenz ms (batch {b})", f"ORT ms (batch {b})", f"Lenz / ORT speed (batch {b})"]
    return columns + [f"peak RSS Lenz (batch {min(batches)})", f"peak RSS ORT (batch {min(batches)})"]


def lenz(binary, *args):
    """Lenz's exit status, stdout, and the first line of its stderr."""
    done = subprocess.run([binary, *args], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    return done.returncode, done.stdout, lines[0] if lines else f"exit status {done.returncode}"


def count_cell(torch_count, lenz_count):
    """PyTorch's count, with Lenz's beside it where they differ."""
    if lenz_count is None or lenz_count == torch_count:
        return f"{torch_count:,}"
    return f"{torch_count:,} (Lenz {lenz_count:,})"


def write_png(path, pixels):
    """An (H, W, 3) uint8 array as an 8-bit RGB PNG (standard library only)."""
    height, width, _ = pixels.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def image_folder(scratch, size, cache={}):
    """SCRATCH/images-SIZE/{train,test}/cK/*.png, written once per size: each class its own colour, with noise."""
    if size in cache:
        return cache[size]
    folder = os.path.join(scratch, f"images-{size}")
    rng = np.random.default_rng(0)
    for split, count in (("train", TRAIN_IMAGES), ("test", TEST_IMAGES)):
        for label in range(CLASSES):
            os.makedirs(os.path.join(folder, split, f"c{label}"))
            colour = np.array([60 + 120 * label, 180 - 100 * label, 90], dtype=np.int16)
            for i in range(count):
                noise = rng.integers(-40, 41, size=(size, size, 3), dtype=np.int16)
                write_png(os.path.join(folder, split, f"c{label}", f"img{i}.png"),
                          np.clip(colour + noise, 0, 255).astype(np.uint8))
    cache[size] = folder
    return folder


def write_grey_png(path, values):
    """An (H, W) uint8 array as an 8-bit grey PNG: a segmentation mask."""
    height, width = values.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row.tobytes() for row in values)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def segmentation_folder(scratch, size, cache={}):
    """SCRATCH/masks-SIZE: classes.txt, images/ and masks/ of {train,test}, written once per size: CLASSES
    classes, the image's left half one colour (class 0), its right half another (class 1), with noise."""
    if size in cache:
        return cache[size]
    folder = os.path.join(scratch, f"masks-{size}")
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    with open(os.path.join(folder, "classes.txt"), "w") as f:
        f.write("".join(f"c{k}\n" for k in range(CLASSES)))
    for split, count in (("train", TRAIN_IMAGES), ("test", TEST_IMAGES)):
        for kind in ("images", "masks"):
            os.makedirs(os.path.join(folder, kind, split))
        for i in range(count * CLASSES):
            mask = np.zeros((size, size), np.uint8)
            mask[:, size // 2:] = 1
            image = np.where(mask[..., None] == 1, np.array([200, 60, 90], np.int16), np.array([60, 180, 90], np.int16))
            noise = rng.integers(-40, 41, size=(size, size, 3), dtype=np.int16)
            write_png(os.path.join(folder, "images", split, f"img{i}.png"), np.clip(image + noise, 0, 255).astype(np.uint8))
            write_grey_png(os.path.join(folder, "masks", split, f"img{i}.png"), mask)
    cache[size] = folder
    return folder


def fine_tune(name, onnx, size, binary, threads, scratch, segmentation=False):
    """One `lenz train --new-head` step on the image folder (a segmentation model: the folder of masks);
    returns ("ok" or the error line, record)."""
    out = os.path.join(scratch, f"train-{name}")
    data = segmentation_folder(scratch, size) if segmentation else image_folder(scratch, size)
    cmd = [binary, "--threads", str(threads), "train", onnx, "--data", data, "--new-head",
           "--epochs", "1", "--batch", str(CLASSES * TRAIN_IMAGES), "--warmup", "0", "--no-report", "--quiet",
           "--out", out]
    start = time.time()
    rc, _, err = lenz(*cmd)
    record = {"cmd": cmd, "exit_status": rc, "wall_s": round(time.time() - start, 3)}
    try:
        if rc != 0:
            return err, {**record, "error": err}
        try:
            with open(os.path.join(out, "metrics.jsonl")) as f:
                metrics = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            return f"no readable metrics.jsonl: {e}", {**record, "error": str(e)}
        record["metrics"] = metrics
        loss = metrics[-1].get("train_loss") if metrics else None
        if not isinstance(loss, (int, float)) or not math.isfinite(loss):
            message = f"training loss not finite: {loss}"
            return message, {**record, "error": message}
        return "ok", record
    finally:
        subprocess.run(["rm", "-rf", out])


def median(values):
    return statistics.median(values) if values else None


def fmt_ms(ms):
    if ms is None:
        return "failed"
    return f"{ms:.2f}" if ms < 10 else f"{ms:,.1f}" if ms < 1000 else f"{ms:,.0f}"


def fmt_mb(n):
    return "failed" if n is None else f"{n / 1e6:,.0f} MB"


def speed(name, onnx, binary, args):
    """Alternating lenz bench / ort_bench.js runs per batch; returns (cells, record, Lenz's error or None)."""
    cells, record, lenz_error = {}, {"batches": {}}, None
    for batch in args.batches:
        cmds = {"lenz": [binary, "--threads", str(args.threads), "bench", onnx, "--batch", str(batch),
                         "--repeats", str(args.repeats), "--json"],
                "onnxruntime": [args.node, ORT_SCRIPT, onnx, "--batch", str(batch), "--warmup", str(WARMUP),
                                "--runs", str(args.repeats), "--threads", str(args.threads)]}
        runs = []
        for r in range(args.speed_repeats):
            for engine, cmd in cmds.items():
                rec = {"repetition": r, "engine": engine, "cmd": cmd}
                try:
                    rec["result"], rec["wall_s"], rec["peak_rss_bytes"] = run_one(cmd, args.timeout)
                except RunFailed as e:
                    rec["error"] = str(e)
                    print(f"zoo_check.py: {engine} failed on {name} batch {batch}: "
                          f"{' '.join(map(shlex.quote, cmd))}\n  {str(e).replace(chr(10), chr(10) + '  ')}",
                          file=sys.stderr, flush=True)
                    if engine == "lenz" and lenz_error is None:
                        lenz_error = "lenz bench: " + (str(e).strip().splitlines() or [""])[0]
                runs.append(rec)
        ok = {e: {r["repetition"]: r for r in runs if r["engine"] == e and "result" in r} for e in cmds}
        ms = {e: median([r["result"]["latency_ms"] for r in ok[e].values()]) for e in cmds}
        rss = {e: median([r["peak_rss_bytes"] for r in ok[e].values()]) for e in cmds}
        # Same batch, so ORT's ms / Lenz's ms = Lenz's images/s / ORT's: above 1 when Lenz is faster.
        ratios = [ok["onnxruntime"][i]["result"]["latency_ms"] / ok["lenz"][i]["result"]["latency_ms"]
                  for i in sorted(set(ok["lenz"]) & set(ok["onnxruntime"]))]
        record["batches"][str(batch)] = {
            "lenz_latency_ms_median": ms["lenz"], "onnxruntime_latency_ms_median": ms["onnxruntime"],
            "ratios": ratios, "ratio_median": median(ratios),
            "lenz_peak_rss_bytes_median": rss["lenz"], "onnxruntime_peak_rss_bytes_median": rss["onnxruntime"],
            "runs": runs}
        cells[f"Lenz ms (batch {batch})"] = fmt_ms(ms["lenz"])
        cells[f"ORT ms (batch {batch})"] = fmt_ms(ms["onnxruntime"])
        cells[f"Lenz / ORT speed (batch {batch})"] = f"{median(ratios):.2f}x" if ratios else "-"
        if batch == min(args.batches):
            cells[f"peak RSS Lenz (batch {batch})"] = fmt_mb(rss["lenz"])
            cells[f"peak RSS ORT (batch {batch})"] = fmt_mb(rss["onnxruntime"])
        print(f"  {name} batch {batch}: Lenz {fmt_ms(ms['lenz'])} ms, ORT {fmt_ms(ms['onnxruntime'])} ms",
              file=sys.stderr, flush=True)
    return cells, record, lenz_error


def check(name, directory, binary, scratch, args):
    """One table row, as a dict of the columns' cells, plus 'passed'; and everything measured, for --json."""
    stem = os.path.join(directory, name)
    row = {"model": name}
    record = {"model": name}
    missing = [stem + ext for ext in (".onnx", ".json", ".input.npy", ".output.npy") if not os.path.exists(stem + ext)]
    if missing:
        error = f"no {missing[0]} (tools/zoo_export.py writes it)"
        row.update({"result": "fail", "error": error, "passed": False})
        record.update({"passed": False, "errors": [error]})
        return row, record
    with open(stem + ".json") as f:
        expected = json.load(f)
    record["export"] = expected
    errors = []

    rc, out, err = lenz(binary, "summary", stem + ".onnx", "--json", "--batch", str(TRAINING_BATCH))
    summary = json.loads(out) if rc == 0 else {}
    if rc != 0:
        errors.append(err)
    record["summary"] = {k: v for k, v in summary.items() if k != "layers"}  # the per-layer table is left out
    row["parameters"] = count_cell(expected["params"], summary.get("params"))
    row["MACs"] = count_cell(expected["macs"], summary.get("mults"))
    for column, key in [("inference textbook (batch 1)", "inference_bytes_textbook"),
                        ("inference plan", "inference_bytes_plan"),
                        (f"training textbook (batch {TRAINING_BATCH})", "training_bytes_textbook"),
                        ("training plan", "training_bytes_plan")]:
        row[column] = f"{summary[key]:,}" if key in summary else "-"
    if summary and not expected.get("fold_bn"):
        for what, key, count in [("parameters", "params", expected["params"]), ("MACs", "mults", expected["macs"])]:
            if summary[key] != count:
                errors.append(f"{what} differ from PyTorch's")

    output = os.path.join(scratch, name + ".npy")
    rc, _, err = lenz(binary, "run", stem + ".onnx", "--input", stem + ".input.npy", "--output", output)
    close, ran = False, rc == 0
    record["max_rel_diff"] = None
    if rc != 0:
        if err not in errors:
            errors.append(err)
        row["max rel. diff"] = "-"
    else:
        got, want = np.load(output), np.load(stem + ".output.npy")
        os.remove(output)
        if got.shape != want.shape:
            errors.append(f"output {got.shape}, PyTorch's {want.shape}")
            row["max rel. diff"] = "-"
        else:
            diff = float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())
            close = diff <= TOLERANCE
            record["max_rel_diff"] = diff
            row["max rel. diff"] = f"{diff:.1e}"
            row["vs float64 (PyTorch's float32)"] = "-"
            exact = stem + ".output64.npy"
            if os.path.exists(exact) and "torch_float32_error" in expected:
                want64 = np.load(exact)
                lenz_error = float(np.abs(got.astype(np.float64) - want64).max() / np.abs(want64).max())
                record["lenz_float64_error"] = lenz_error
                record["torch_float32_error"] = expected["torch_float32_error"]
                row["vs float64 (PyTorch's float32)"] = f"{lenz_error:.1e} ({expected['torch_float32_error']:.1e})"
                close = close or lenz_error <= FLOAT32_MARGIN * expected["torch_float32_error"]
            if not close:
                errors.append(f"output differs by {diff:.1e} of its largest value (tolerance {TOLERANCE:g})")

    if args.train:
        if args.train_models is None or name in args.train_models:
            row[TRAIN_COLUMN], record["fine_tuning"] = fine_tune(
                name, stem + ".onnx", expected["input_size"], binary, args.threads, scratch,
                expected.get("task") == "segmentation")
            if row[TRAIN_COLUMN] != "ok":
                errors.append("fine-tuning step failed")
        else:
            row[TRAIN_COLUMN] = "not run"
    if args.speed:
        if not ran:
            row.update(dict.fromkeys(speed_columns(args.batches), "-"))  # it does not run: nothing to time
        elif args.speed_models is None or name in args.speed_models:
            cells, record["speed"], lenz_error = speed(name, stem + ".onnx", binary, args)
            row.update(cells)
            if lenz_error:
                errors.append(lenz_error)
        else:
            row.update(dict.fromkeys(speed_columns(args.batches), "not timed"))

    row["passed"] = close and not errors
    row["result"] = "pass" if row["passed"] else "fail"
    row["error"] = "; ".join(errors)
    record.update({"passed": row["passed"], "errors": errors})
    return row, record


def markdown(rows, columns):
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(columns), line(["---"] * len(columns)),
                      *(line(row.get(c, "") for c in columns) for row in rows)]) + "\n"


def markdown_preamble(args, records):
    """The --markdown file's opening: how its table was made, and what passing means."""
    sizes, opsets = {}, set()
    for r in records:
        if "export" in r:
            sizes.setdefault(r["export"]["input_size"], []).append(r["model"])
            opsets.add(str(r["export"]["opset"]))
    common = max(sizes, key=lambda k: len(sizes[k])) if sizes else None
    inputs = [f"{common}x{common}"] + [f"{', '.join(names)} {size}x{size}" for size, names in sorted(sizes.items())
                                       if size != common] if sizes else ["?"]
    command = " ".join(shlex.quote(os.path.relpath(x, ROOT) if os.path.isabs(x) and x.startswith(ROOT) else x)
                       for x in ["tools/zoo_check.py"] + sys.argv[1:])
    passed = sum(r["passed"] for r in records)
    checks = ["its parameters and MACs per image equal PyTorch's",
              "its output on the same two images differs from PyTorch's by at most 1e-4 of the largest value (or, where PyTorch's own float32 output is further than that from its float64 one, Lenz is no further from the float64 output than 1.5 times PyTorch float32's distance)"]
    if args.train:
        checks.append("one fine-tuning step (`lenz train --new-head`, batch 2) runs where it was tried")
    if args.speed:
        checks.append("`lenz bench` runs where it was timed")
    joined = " and ".join(checks) if len(checks) == 2 else "; ".join(checks[:-1]) + "; and " + checks[-1]
    speed = ""
    if args.speed:
        speed = (f" Speed: `lenz --threads {args.threads} bench` and ONNX Runtime's CPU provider "
                 f"(`bench/ort/ort_bench.js`, {args.threads} threads) alternating, {args.speed_repeats} "
                 f"process{'es' if args.speed_repeats > 1 else ''} each per batch, each the median of "
                 f"{args.repeats} timed runs after {WARMUP} warm-up runs; \"Lenz / ORT speed\" is ORT's ms "
                 "over Lenz's, above 1 when Lenz is faster; "
                 "peak RSS is the whole process's (Node.js included for ONNX Runtime).")
    return (f"# torchvision's CNN classifiers in Lenz\n\n"
            f"Written by `{command}` on {time.strftime('%Y-%m-%d')} with "
            f"{lenz(args.lenz, '--version')[1].strip() or 'lenz'}, from the exports of `tools/zoo_export.py` "
            f"(torchvision 0.14, seeded random weights and batch-norm statistics, ONNX opset "
            f"{', '.join(sorted(opsets)) or '?'}; input {'; '.join(inputs)}). "
            f"**{passed} of {len(records)} models pass.**\n\n"
            f"A model passes when Lenz imports it, {joined}. Where Lenz's "
            f"count differs from PyTorch's it follows in parentheses. The memory columns are bytes, from "
            f"`lenz summary --json --batch {TRAINING_BATCH}`.{speed} `tools/zoo_check.py`'s docstring gives "
            "the details.\n\n")


def name_list(text):
    return [n for n in text.split(",") if n]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=name_list, help="comma-separated names (default: every NAME.onnx in --dir)")
    parser.add_argument("--dir", default=os.path.join(ROOT, "out", "zoo"), help="the exports (default out/zoo)")
    parser.add_argument("--lenz", default=os.path.join(ROOT, "build", "lenz"), help="Lenz's binary (default build/lenz)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table here")
    parser.add_argument("--json", metavar="FILE", help="write everything measured here, raw benchmark runs included")
    parser.add_argument("--threads", type=int, default=2, help="threads for training and both benchmarks (default 2)")
    parser.add_argument("--train", action="store_true", help="also run one fine-tuning step (lenz train --new-head)")
    parser.add_argument("--train-models", type=name_list,
                        help="--train: fine-tune only these (default every model checked)")
    parser.add_argument("--speed", action="store_true", help="also time Lenz against ONNX Runtime")
    parser.add_argument("--batches", type=name_list, default=["1", "16"], help="--speed: batch sizes (default 1,16)")
    parser.add_argument("--repeats", type=int, default=10, help="--speed: timed runs per process (default 10)")
    parser.add_argument("--speed-repeats", type=int, default=1,
                        help="--speed: alternating Lenz / ONNX Runtime processes per model and batch (default 1)")
    parser.add_argument("--speed-models", type=name_list, help="--speed: time only these (default every model checked)")
    parser.add_argument("--node", default="node", help="--speed: the Node.js interpreter (default node)")
    parser.add_argument("--timeout", type=float, default=900, help="--speed: seconds allowed per process (default 900)")
    args = parser.parse_args()
    try:
        args.batches = [int(b) for b in args.batches]
    except ValueError:
        parser.error("--batches takes comma-separated integers")
    if not args.batches or min(args.batches) < 1:
        parser.error("--batches needs at least one batch size, each at least 1")
    if min(args.threads, args.repeats, args.speed_repeats) < 1:
        parser.error("--threads, --repeats and --speed-repeats must be at least 1")
    args.lenz = os.path.abspath(args.lenz)
    if not os.access(args.lenz, os.X_OK):
        parser.error(f"no Lenz binary at {args.lenz} (build it, or name one with --lenz)")
    if args.speed and not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules", "onnxruntime-node")):
        parser.error("--speed needs ONNX Runtime: run `npm ci --ignore-scripts` in bench/ort")
    if args.models:
        names = args.models
    else:
        exports = os.listdir(args.dir) if os.path.isdir(args.dir) else []
        names = sorted(f[:-len(".onnx")] for f in exports if f.endswith(".onnx"))
    if not names:
        parser.error(f"no models to check in {args.dir} (tools/zoo_export.py writes them)")
    for option, chosen in (("--train-models", args.train_models), ("--speed-models", args.speed_models)):
        unknown = [n for n in chosen or [] if n not in names]
        if unknown:
            parser.error(f"{option} names models not checked: {', '.join(unknown)}")
    columns = BASE_COLUMNS + ([TRAIN_COLUMN] if args.train else []) + \
        (speed_columns(args.batches) if args.speed else []) + ["result", "error"]

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows, records = [], []
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as scratch:
        for name in names:
            start = time.time()
            row, record = check(name, args.dir, args.lenz, scratch, args)
            record["wall_s"] = round(time.time() - start, 3)
            rows.append(row)
            records.append(record)
            print(f"{name:22s} {row['result']}  {record['wall_s']:6.1f} s", file=sys.stderr, flush=True)
    table = markdown(rows, columns)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_preamble(args, records) + table)
    if args.json:
        ort_version = next((run["result"].get("onnxruntime") for rec in records
                            for b in rec.get("speed", {}).get("batches", {}).values()
                            for run in b["runs"] if run["engine"] == "onnxruntime" and "result" in run), None)
        report = {
            "command": " ".join(shlex.quote(x) for x in [sys.executable or "python3"] + sys.argv),
            "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "lenz": args.lenz, "lenz_version": lenz(args.lenz, "--version")[1].strip(),
            "onnxruntime": ort_version, "dir": os.path.abspath(args.dir), "tolerance": TOLERANCE,
            "training_batch": TRAINING_BATCH, "threads": args.threads, "train": args.train,
            "speed": {"batches": args.batches, "repeats": args.repeats, "speed_repeats": args.speed_repeats,
                      "models": args.speed_models or names} if args.speed else None,
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
            "passed": sum(r["passed"] for r in records), "failed": sum(not r["passed"] for r in records),
            "models": records}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
