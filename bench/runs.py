"""What bench/compare.py and bench/ort_compare.py share: running one benchmark process and
reading its JSON line, and the raw report. Standard library only."""
import json
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RunFailed(Exception):
    pass


def run_one(cmd, timeout):
    """Runs one benchmark process; returns (its JSON line parsed, wall seconds, peak RSS bytes).

    The peak resident memory of the whole process comes from the kernel's accounting of the
    finished child (wait4's ru_maxrss), so it is measured the same way for both engines, runtime
    and libraries included, whatever each reports about itself. Output goes to temporary files so
    that the child never blocks on a full pipe while the parent waits for it.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        except OSError as e:
            raise RunFailed(f"cannot start {cmd[0]}: {e}")
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                p.kill()
                os.wait4(p.pid, 0)
                p.returncode = -9
                raise RunFailed(f"timed out after {timeout} s")
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    tail = "\n".join(stderr.strip().splitlines()[-8:])
    if p.returncode != 0:
        raise RunFailed(f"exit status {p.returncode}" + (f"; stderr:\n{tail}" if tail else ""))
    lines = [ln for ln in stdout.splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise RunFailed("no JSON line on stdout; stdout:\n" + stdout[-1000:] + (f"\nstderr:\n{tail}" if tail else ""))
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise RunFailed(f"unreadable JSON ({e}): {lines[-1][:500]}")
    if "images_per_s" not in result:
        raise RunFailed(f"JSON without images_per_s: {lines[-1][:500]}")
    return result, wall, usage.ru_maxrss * 1024


def fmt_mb(values):
    return f"{statistics.median(values) / 1e6:.1f} MB" if values else "?"


def write_report(path, report):
    """Writes the raw runs as JSON, making the folder if need be."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
