"""Build hook: vendor the console's npm assets (xterm.js) into the package before it is built.

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithAssets(build_py):
    def run(self) -> None:
        script = Path(__file__).parent / "scripts" / "vendor_assets.py"
        if script.is_file():
            subprocess.run([sys.executable, str(script)], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithAssets})
