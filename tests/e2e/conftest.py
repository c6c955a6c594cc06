"""Browser tests: Playwright drives Debian's Chromium against real ``small-yi serve`` processes and the
real OpenSSH fleet, directly and through Debian's nginx on a path prefix with TLS.

Each module gets two consoles (``direct``: the server itself; ``nginx``: https://127.0.0.1:PORT/small-yi/
in front of a second server with ``server.base_path: /small-yi``), each with its own database and the
first fleet hosts in group ``web``. Screenshots go to ``$SMALLYI_SCREENSHOTS`` (default
``tests/e2e/screenshots``, not committed).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import Console, fleet_config
from playwright.sync_api import Browser, Page, sync_playwright

from smallyi.testing import Fleet
from support import free_port, missing, start_server

CHROMIUM = os.environ.get("SMALLYI_CHROMIUM", "/usr/bin/chromium")
NGINX = os.environ.get("SMALLYI_NGINX", "/usr/sbin/nginx")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PREFIX = "/small-yi"


def _need(path: str, package: str) -> None:
    """CI installs Chromium and nginx (.ci/run): missing there is a failure; on a laptop, a skip that says why."""
    if Path(path).exists():
        return
    missing(f"{path} not found: `apt-get install {package}` (the e2e tests use Debian's {package})")


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the cryptography package (asyncssh needs it)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem = folder / "tls.crt", folder / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def nginx_conf(folder: Path, *, port: int, upstream: str, cert: Path, key: Path) -> Path:
    """The configuration of docs/nginx.md, with paths made local to ``folder`` so it runs unprivileged."""
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / d).mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    types {{ text/html html; text/css css; text/javascript js mjs; image/svg+xml svg; }}

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate     {cert};
        ssl_certificate_key {key};

        location = {PREFIX} {{ return 301 {PREFIX}/; }}
        location {PREFIX}/ {{
            proxy_pass http://{upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1h;
            proxy_buffering off;
            client_max_body_size 16m;
        }}
    }}
}}
""")
    return conf


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (Playwright's own browser download is not used).

    Module-scoped: Playwright's sync API holds an event loop while it runs, which the async tests that
    follow in the same session must not find.
    """
    _need(CHROMIUM, "chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("direct")
    srv = start_server(fleet_config(folder, ssh_fleet))
    yield Console("direct", srv.url + "/", srv)
    srv.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[Console]:
    """A server with ``server.base_path: /small-yi`` behind nginx terminating TLS on a free port."""
    _need(NGINX, "nginx-light")
    folder = tmp_path_factory.mktemp("proxied")
    cfg = fleet_config(folder, ssh_fleet, extra=f"server:\n  base_path: {PREFIX}\n")
    srv = start_server(cfg)
    port = free_port()
    cert, key = make_cert(folder)
    conf = nginx_conf(folder, port=port, upstream=srv.url.removeprefix("http://"), cert=cert, key=key)
    test = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(folder)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"https://127.0.0.1:{port}{PREFIX}/"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(url + "healthz", verify=False, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            srv.stop()
            raise RuntimeError(f"nginx did not come up: {(folder / 'error.log').read_text(errors='replace')}")
        time.sleep(0.1)
    yield Console("nginx", url, srv)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    srv.stop()


@pytest.fixture(params=["direct", "nginx"])
def console(request: pytest.FixtureRequest, ssh_fleet: Fleet) -> Console:
    """Each test that takes this runs twice: against the server, and through nginx on /small-yi with TLS.
    (Both consoles have fleet hosts: ``ssh_fleet`` says so to pytest before ``getfixturevalue`` does.)"""
    return request.getfixturevalue("direct" if request.param == "direct" else "proxied")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context at 1280x800 (self-signed TLS accepted), closed after the test."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, ignore_https_errors=True)
    ctx.set_default_timeout(20_000)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
