# The pip route: `pip install --no-build-isolation ./python` in a virtual environment that sees
# Debian's packages (PEP 668 keeps pip out of the system's Python), offline, building in the CMake
# build under test so that it takes seconds.
import os
import subprocess
import sys

from conftest import BUILD, ROOT


def test_pip_install_in_a_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = dict(os.environ, LENZ_BUILD_DIR=str(BUILD), PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--no-build-isolation", str(ROOT / "python")],
                   check=True, env=env, cwd=tmp_path)
    script = ("import lenz, numpy as np; m = lenz.Model.from_text('input 8x8x1\\nflatten\\ndense 3 softmax');"
              "print(lenz.__file__); print(m.predict(np.zeros((2, 8, 8, 1), np.uint8)).shape)")
    run = subprocess.run([str(venv / "bin/python"), "-c", script], check=True, env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    where, shape = run.stdout.split("\n")[:2]
    assert where.startswith(str(venv)) and shape == "(2, 3)"
