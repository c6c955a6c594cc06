"""A real HTTPS git server on loopback for the GitOps tests: ``git http-backend`` (smart HTTP) behind
HTTP Basic auth, with a throwaway CA and server certificate, in a thread of the test process.

It lives beside support.py (not in it) because only the remote-repository tests need TLS and CGI; it
records each request's method, path, user and whether the credentials were right, so a test can tell
"git never got in" from "git never asked".
"""

from __future__ import annotations

import base64
import datetime
import hmac
import ipaddress
import os
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _exec_path() -> Path:
    return Path(subprocess.run(["git", "--exec-path"], check=True, capture_output=True, text=True).stdout.strip())


def http_backend() -> Path | None:
    """``git http-backend`` of the local git, or None when this git was built without it."""
    path = _exec_path() / "git-http-backend"
    return path if os.access(path, os.X_OK) else None


def make_certificates(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signs for ``host`` (an IP SAN, as curl checks it):
    returns (ca.pem, server.pem, server.key). A CA plus a leaf, not one self-signed leaf, because that is
    what a private CA looks like and both TLS libraries git may be built with (OpenSSL, GnuTLS) accept it."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "small-yi test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


@dataclass
class Request:
    """One request the server saw."""

    method: str
    path: str
    user: str | None
    authorized: bool


@dataclass
class GitHTTPSServer:
    """``git http-backend`` over HTTPS for every repository under ``root``, for one user and token.

    Use as a context manager; ``url(name)`` is the repository's URL with the credentials in it."""

    root: Path
    user: str
    token: str
    certs: Path
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        backend = http_backend()
        if backend is None:
            raise RuntimeError("git http-backend is not installed")
        self._backend = backend
        self.ca, cert, key = make_certificates(self.certs)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="git-https", daemon=True)

    def __enter__(self) -> GitHTTPSServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def url(self, name: str, *, user: str | None = None, token: str | None = None) -> str:
        """``https://USER:TOKEN@127.0.0.1:PORT/NAME`` (another user or token to test a wrong one; "" for none)."""
        user = self.user if user is None else user
        token = self.token if token is None else token
        creds = f"{user}:{token}@" if user or token else ""
        return f"https://{creds}127.0.0.1:{self.port}/{name}"

    def _check(self, header: str | None) -> tuple[str | None, bool]:
        if not header or not header.startswith("Basic "):
            return None, False
        try:
            user, _, token = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, False
        return user, user == self.user and hmac.compare_digest(token, self.token)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # the test reads ``requests``; stderr noise would only hide its output

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                user, ok = server._check(self.headers.get("Authorization"))
                parts = urlsplit(self.path)
                server.requests.append(Request(self.command, parts.path, user, ok))
                if not ok:  # what a Git host answers: ask for Basic credentials
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self._body()
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(server.root),
                       "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": parts.path,
                       "QUERY_STRING": parts.query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": user or "", "REMOTE_ADDR": "127.0.0.1",
                       "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1"}
                for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
                    if self.headers.get(header):
                        env[var] = self.headers[header]
                out = subprocess.run([str(server._backend)], input=body, capture_output=True, env=env,
                                     timeout=30).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                if not _:
                    head, _, payload = out.partition(b"\n\n")
                status, headers = 200, []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def which_git() -> str:
    """The real git binary (for a shim that logs and then runs it)."""
    path = shutil.which("git")
    if path is None:
        raise RuntimeError("git is not installed")
    return os.path.realpath(path)
