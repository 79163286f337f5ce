"""Builds lenz._core with the project's CMake build, so the module links the same library (the
target Lenz::lenz) as the lenz command, from the same sources; setuptools only packages it.

The build folder is build-python/ beside python/, kept between installs, or $LENZ_BUILD_DIR (e.g. an
existing CMake build folder, build; relative to the repository's root, as pip runs this elsewhere).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = (ROOT / os.environ.get("LENZ_BUILD_DIR", "build-python")).resolve()
        if not (build / "CMakeCache.txt").exists():
            # The interpreter itself, not a virtual environment's link to it: its headers and NumPy.
            python = os.path.realpath(sys.executable)
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                            "-DLENZ_BUILD_TESTS=OFF", "-DLENZ_PYTHON=ON", f"-DPython_EXECUTABLE={python}"], check=True)
        else:
            subprocess.run(["cmake", "-DLENZ_PYTHON=ON", str(build)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "--target", "lenz_python"], check=True)
        target = Path(self.get_ext_fullpath(ext.name))
        built = build / "python" / "lenz" / target.name
        if not built.exists():
            sys.exit(f"{built}: not built (the CMake build's Python differs from {sys.executable}?)")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(packages=["lenz"], ext_modules=[Extension("lenz._core", sources=[])], cmdclass={"build_ext": CMakeBuild})
