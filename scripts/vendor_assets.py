#!/usr/bin/env python3
"""Copy the console's npm packages (xterm.js and its fit addon, with their licences) into
``src/smallyi/web/static/vendor/``, running ``npm ci`` first when ``node_modules`` is missing.

Run by ``make setup`` and by the setuptools build (``setup.py``), so the wheel carries the files and
a user installing it needs no Node.js. The vendored files are build output: never committed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "smallyi" / "web" / "static" / "vendor"
#: (file in node_modules, file under vendor/)
FILES = [
    ("@xterm/xterm/lib/xterm.mjs", "xterm/xterm.mjs"),
    ("@xterm/xterm/css/xterm.css", "xterm/xterm.css"),
    ("@xterm/xterm/LICENSE", "xterm/LICENSE"),
    ("@xterm/addon-fit/lib/addon-fit.mjs", "xterm/addon-fit.mjs"),
    ("@xterm/addon-fit/LICENSE", "xterm/LICENSE.addon-fit"),
]


def vendored() -> bool:
    return all((VENDOR / dst).is_file() for _src, dst in FILES)


def main() -> int:
    modules = ROOT / "node_modules"
    if not all((modules / src).is_file() for src, _dst in FILES):
        if not (ROOT / "package-lock.json").is_file():
            if vendored():
                return 0  # an sdist that already carries the built files
            print("vendor_assets: package-lock.json not found", file=sys.stderr)
            return 1
        npm = shutil.which("npm")
        if npm is None:
            if vendored():
                return 0
            print("vendor_assets: the console needs xterm.js: install Node.js and npm, then run `npm ci`",
                  file=sys.stderr)
            return 1
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
    for src, dst in FILES:
        target = VENDOR / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(modules / src, target)
    print(f"vendor_assets: {len(FILES)} files in {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
