# examples/notebook.py runs from start to end, as a script, and says what it should.
import os
import subprocess
import sys

from conftest import BUILD, ROOT


def test_notebook_example(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"))
    run = subprocess.run([sys.executable, str(ROOT / "examples/notebook.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Parameters        421,642 trainable" in run.stdout
    assert "epoch 1/1  train loss" in run.stdout
    accuracy = float(run.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 80
    assert "(truly Ankle boot)" in run.stdout
    assert (tmp_path / "runs/notebook/01-conv-28x28x32.png").exists()
