# The Python module's tests (pytest). scripts/test.sh runs them on the release build:
#   PYTHONPATH=build/python LENZ_BUILD_DIR=build /usr/bin/python3 -m pytest tests/python
# LENZ_BUILD_DIR (relative to the repository's root) names the CMake build whose module
# (BUILD/python/lenz) and lenz command they use.
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = (ROOT / os.environ.get("LENZ_BUILD_DIR", "build")).resolve()  # relative to the root
if str(BUILD / "python") not in sys.path:
    sys.path.insert(0, str(BUILD / "python"))

# A run of the command line, short enough for the tests: its steps are what fit repeats.
TRAIN = dict(epochs=1, batch=32, limit_train=3200, limit_test=500, seed=1)


def lenz_cli(*args, check=True):
    """Runs BUILD/lenz; returns the CompletedProcess (text)."""
    return subprocess.run([str(BUILD / "lenz"), *map(str, args)], capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """models/fashion.lenz trained by `lenz train` with TRAIN's settings: its folder and metrics."""
    out = tmp_path_factory.mktemp("cli-run")
    lenz_cli("train", ROOT / "models/fashion.lenz", "--data", "fashion-mnist", "--epochs", TRAIN["epochs"],
             "--batch", TRAIN["batch"], "--limit-train", TRAIN["limit_train"], "--limit-test", TRAIN["limit_test"],
             "--seed", TRAIN["seed"], "--no-report", "--quiet", "--out", out)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return out, metrics


@pytest.fixture(scope="session")
def fashion():
    import lenz

    return lenz.datasets.fashion_mnist()
