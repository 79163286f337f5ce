#!/usr/bin/python3
"""Lenz checked against the torchvision exports of tools/zoo_export.py, as a Markdown table.

Run from the repository root, after tools/zoo_export.py:
  /usr/bin/python3 tools/zoo_check.py [--models a,b] [--dir out/zoo] [--lenz build/lenz] [--markdown FILE]
(Python 3 with NumPy; torch is not needed.) The exit status is 1 when any model fails, 0 otherwise.

For each DIR/NAME.onnx with its NAME.json, NAME.input.npy and NAME.output.npy:
- `lenz summary DIR/NAME.onnx --json --batch 32` must give PyTorch's parameter count (`params`: the
  trainable ones; Lenz counts batch-norm running statistics apart) and multiplication count (`mults`,
  per image, the rule zoo_export.py's docstring states). Its memory figures go into the table as
  they are: one prediction (`inference_bytes_textbook`, `inference_bytes_plan`: one image, whatever
  --batch says) and training a batch of 32 (`training_bytes_textbook`, `training_bytes_plan`).
  An export made with --fold-bn has fewer parameters and multiplications than PyTorch's model, so
  for it the counts are shown but not required to match.
- `lenz run DIR/NAME.onnx --input NAME.input.npy` must reproduce PyTorch's output: the largest
  |lenz - torch| over the largest |torch| must be at most 1e-4. `lenz run` feeds the array to the
  graph's input as it is (an ONNX file's normalisation is the one its graph holds; torchvision's
  classifiers hold none).
A model Lenz cannot import fails, with the first line of Lenz's error in the table; the other models
are still checked.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING_BATCH = 32
TOLERANCE = 1e-4  # of the largest |output|

COLUMNS = ["model", "parameters", "MACs", "inference textbook (batch 1)", "inference plan",
           f"training textbook (batch {TRAINING_BATCH})", "training plan", "max rel. diff", "result", "error"]


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


def check(name, directory, binary, scratch):
    """One table row, as a dict of the columns' cells, plus 'passed'."""
    stem = os.path.join(directory, name)
    row = dict.fromkeys(COLUMNS, "")
    row["model"] = name
    missing = [stem + ext for ext in (".onnx", ".json", ".input.npy", ".output.npy") if not os.path.exists(stem + ext)]
    if missing:
        row.update({"result": "fail", "error": f"no {missing[0]} (tools/zoo_export.py writes it)", "passed": False})
        return row
    with open(stem + ".json") as f:
        expected = json.load(f)
    errors = []

    rc, out, err = lenz(binary, "summary", stem + ".onnx", "--json", "--batch", str(TRAINING_BATCH))
    summary = json.loads(out) if rc == 0 else {}
    if rc != 0:
        errors.append(err)
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
    close = False
    if rc != 0:
        if err not in errors:
            errors.append(err)
        row["max rel. diff"] = "-"
    else:
        got, want = np.load(output), np.load(stem + ".output.npy")
        if got.shape != want.shape:
            errors.append(f"output {got.shape}, PyTorch's {want.shape}")
            row["max rel. diff"] = "-"
        else:
            diff = float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())
            close = diff <= TOLERANCE
            row["max rel. diff"] = f"{diff:.1e}"
            if not close:
                errors.append(f"output differs by {diff:.1e} of its largest value (tolerance {TOLERANCE:g})")

    row["passed"] = close and not errors
    row["result"] = "pass" if row["passed"] else "fail"
    row["error"] = "; ".join(errors)
    return row


def markdown(rows):
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(COLUMNS), line(["---"] * len(COLUMNS)),
                      *(line(row[c] for c in COLUMNS) for row in rows)]) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated names (default: every NAME.onnx in --dir)")
    parser.add_argument("--dir", default=os.path.join(ROOT, "out", "zoo"), help="the exports (default out/zoo)")
    parser.add_argument("--lenz", default=os.path.join(ROOT, "build", "lenz"), help="Lenz's binary (default build/lenz)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table here")
    args = parser.parse_args()
    if not os.access(args.lenz, os.X_OK):
        parser.error(f"no Lenz binary at {args.lenz} (build it, or name one with --lenz)")
    if args.models:
        names = [n for n in args.models.split(",") if n]
    else:
        exports = os.listdir(args.dir) if os.path.isdir(args.dir) else []
        names = sorted(f[:-len(".onnx")] for f in exports if f.endswith(".onnx"))
    if not names:
        parser.error(f"no models to check in {args.dir} (tools/zoo_export.py writes them)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as scratch:
        for name in names:
            start = time.time()
            rows.append(check(name, args.dir, args.lenz, scratch))
            print(f"{name:22s} {rows[-1]['result']}  {time.time() - start:6.1f} s", file=sys.stderr, flush=True)
    table = markdown(rows)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
