#!/usr/bin/env python3
"""Put the front-end files the server ships (xterm.js for the console, Swagger UI for ``/api/docs``) into
``src/smallyi/web/static/vendor/``, without Node.js.

The versions are the ones pinned in ``package-lock.json``. Each package's tarball is downloaded from the
npm registry, checked against the lock file's integrity hash (sha512, as npm checks it) before anything is
unpacked, and only the files listed below are taken out of it. Tarballs are cached in
``~/.cache/small-yi/npm`` (``$XDG_CACHE_HOME``), so a second set-up works offline.

The registry is npm's: ``$npm_config_registry`` or a ``registry=`` line of ``.npmrc`` (this folder's, then
``~/.npmrc``) when set, npm's default otherwise; ``$HTTPS_PROXY`` is honoured.

Run by ``make setup`` and by the setuptools build (``setup.py``), so the wheel carries the files and a user
installing it needs neither Node.js nor network. The vendored files are build output: never committed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "smallyi" / "web" / "static" / "vendor"
LOCK = ROOT / "package-lock.json"
#: npm's own default, used when no registry is configured
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
#: package -> [(file in the package, file under vendor/)]
FILES: dict[str, list[tuple[str, str]]] = {
    "@xterm/xterm": [
        ("lib/xterm.mjs", "xterm/xterm.mjs"),
        ("css/xterm.css", "xterm/xterm.css"),
        ("LICENSE", "xterm/LICENSE"),
    ],
    "@xterm/addon-fit": [
        ("lib/addon-fit.mjs", "xterm/addon-fit.mjs"),
        ("LICENSE", "xterm/LICENSE.addon-fit"),
    ],
    "swagger-ui-dist": [
        ("swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"),
        ("swagger-ui.css", "swagger-ui/swagger-ui.css"),
        ("favicon-32x32.png", "swagger-ui/favicon-32x32.png"),
        ("LICENSE", "swagger-ui/LICENSE"),
    ],
}


class VendorError(Exception):
    """A package could not be fetched or did not match the lock file."""


def vendored() -> bool:
    return all((VENDOR / dst).is_file() for files in FILES.values() for _src, dst in files)


def registry() -> str:
    url = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")  # noqa: SIM112 (npm reads both)
    for rc in (ROOT / ".npmrc", Path.home() / ".npmrc"):
        if url:
            break
        if rc.is_file():
            m = re.search(r"^\s*registry\s*=\s*(\S+)", rc.read_text(errors="replace"), re.M)
            url = m.group(1) if m else None
    return (url or DEFAULT_REGISTRY).rstrip("/") + "/"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "small-yi" / "npm"


def pinned(lock: dict[str, object], name: str) -> tuple[str, str]:
    """(version, integrity) of ``name`` in the lock file."""
    packages = lock.get("packages")
    entry = packages.get(f"node_modules/{name}") if isinstance(packages, dict) else None
    if not isinstance(entry, dict) or "version" not in entry or "integrity" not in entry:
        raise VendorError(f"{name} is not pinned with an integrity hash in {LOCK.name}")
    return str(entry["version"]), str(entry["integrity"])


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    algo, _, digest = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256"):
        raise VendorError(f"{what}: unsupported integrity algorithm {algo!r} in {LOCK.name}")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != digest:
        raise VendorError(f"{what}: the download does not match {LOCK.name}'s integrity hash "
                          f"(expected {algo}-{digest}, got {algo}-{got}); not unpacked")


def tarball(name: str, version: str, integrity: str) -> bytes:
    """The package's tarball, from the cache or the registry, checked against ``integrity``."""
    what = f"{name}@{version}"
    cached = cache_dir() / f"{name.replace('/', '+')}-{version}.tgz"
    if cached.is_file():
        data = cached.read_bytes()
        try:
            check_integrity(data, integrity, what)
            return data
        except VendorError:
            cached.unlink()  # a damaged cache entry: fetch it again
    url = f"{registry()}{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (an https URL built above)
            data = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise VendorError(f"{what}: could not download {url}: {exc}; set npm_config_registry or "
                          "HTTPS_PROXY if this machine reaches npm another way") from exc
    check_integrity(data, integrity, what)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(cached)
    return data


def extract(data: bytes, name: str, files: list[tuple[str, str]]) -> None:
    """Copy the listed members (``package/<file>``) out of the tarball; nothing else is written."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for src, dst in files:
            try:
                member = tar.getmember(f"package/{src}")
            except KeyError as exc:
                raise VendorError(f"{name}: the package has no {src}") from exc
            fh = tar.extractfile(member) if member.isfile() else None
            if fh is None:
                raise VendorError(f"{name}: {src} is not a regular file in the package")
            write(VENDOR / dst, fh.read())


def write(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(content)
    tmp.replace(target)


def main() -> int:
    if not LOCK.is_file():
        if vendored():
            return 0  # an sdist that already carries the built files
        print(f"vendor_assets: {LOCK.name} not found", file=sys.stderr)
        return 1
    lock = json.loads(LOCK.read_text())
    count = 0
    try:
        for name, files in FILES.items():
            extract(tarball(name, *pinned(lock, name)), name, files)
            count += len(files)
    except VendorError as exc:
        print(f"vendor_assets: {exc}", file=sys.stderr)
        return 1
    print(f"vendor_assets: {count} files in {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
