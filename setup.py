"""Build hook: vendor the front-end files (xterm.js, Swagger UI; scripts/vendor_assets.py) before setuptools
looks for the package's files, so the wheel carries them and their folders are found like the others.

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import setup

_VENDOR = Path(__file__).parent / "scripts" / "vendor_assets.py"
if _VENDOR.is_file():  # a checkout (an sdist already carries the files)
    subprocess.run([sys.executable, str(_VENDOR)], check=True, stdout=subprocess.DEVNULL)

setup()
