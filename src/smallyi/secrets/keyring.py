"""Where the master key comes from, and its rotation.

In order: ``secrets.master_key`` in the config, the environment variable ``secrets.master_key_env``
(read by ``config``), else the key file ``secrets.key_file``, created with mode 0600 on first start.
The key file holds one ``<id>:<base64 key>`` per line, the current key first; during a rotation it
holds both keys, so a crash at any point leaves every secret readable.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path

from smallyi.config import AuditSettings, SecretsSettings
from smallyi.errors import ConfigError
from smallyi.secrets.box import KEY_BYTES, Box
from smallyi.storage import private

log = logging.getLogger(__name__)


def key_id(key: bytes) -> str:
    """A short name for a key that reveals nothing about it."""
    return hashlib.sha256(b"small-yi master key id\0" + key).hexdigest()[:12]


def decode_key(text: str, *, where: str, what: str = "master key") -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ConfigError(f"{where}: the {what} is not base64 (make one: head -c32 /dev/urandom | base64)") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: the {what} is {len(key)} bytes; it must be {KEY_BYTES}")
    return key


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _read_file(path: Path, what: str = "master key") -> list[bytes]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{what} file {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    keys = []
    for n, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if line.strip():
            keys.append(decode_key(line.split(":", 1)[-1], where=f"{path}:{n}", what=what))
    if not keys:
        raise ConfigError(f"{what} file {path} is empty; restore it from a backup, or remove it to start "
                          "afresh (what was made with the lost key can no longer be checked or read)")
    return keys


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically, mode 0600 from the start."""
    tmp = path.with_name(path.name + ".tmp")
    with private.open_new(tmp, "w", encoding="ascii") as f:  # 0600 even over a left-over wider .tmp
        f.write("".join(f"{key_id(k)}:{base64.b64encode(k).decode()}\n" for k in keys))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check(secrets: SecretsSettings, audit: AuditSettings) -> None:
    """The configured keys, creating none: a key from the config or the environment decodes; a key file
    that exists is private and holds keys. A missing file is made later, once the whole config is good."""
    if secrets.master_key:
        decode_key(secrets.master_key, where="secrets.master_key")
    elif Path(secrets.key_file).exists():
        _read_file(Path(secrets.key_file))
    if audit.mac_key:
        decode_key(audit.mac_key, where="audit.mac_key", what="audit key")
    elif audit.key_file and Path(audit.key_file).exists():
        _read_file(Path(audit.key_file), "audit key")


def load(cfg: SecretsSettings, *, create: bool = True) -> tuple[Box, str]:
    """(the box, where its key came from). Creates the key file on first use when allowed."""
    keys, source = _keys(cfg.master_key, "secrets.master_key", cfg.key_file, what="master key", create=create,
                         needed_by="secrets stored under it need it")
    return Box({key_id(k): k for k in keys}, key_id(keys[0])), source


def load_audit_keys(cfg: AuditSettings, *, create: bool = True) -> tuple[dict[str, bytes], str, str]:
    """(audit MAC keys by id, the current key's id, where they came from): ``audit.mac_key`` (or its
    environment variable), else the audit key file, created with mode 0600 on first use.

    A key of its own, not the master key: rotating the master key must not orphan the MACs of years of
    audit records, and the audit key can be handed to whoever verifies the trail without the power to
    read any secret. The file may hold older keys below the current one, to verify what they signed.
    """
    keys, source = _keys(cfg.mac_key, "audit.mac_key", cfg.key_file, what="audit key", create=create,
                         needed_by="audit records are MAC'd with it")
    return {key_id(k): k for k in keys}, key_id(keys[0]), source


def _keys(given: str | None, setting: str, key_file: str, *, what: str, create: bool,
          needed_by: str) -> tuple[list[bytes], str]:
    """(the keys, current first; where they came from): ``given`` (the ``setting`` of the config or its
    environment variable), else the key file, made with one new key on first use when ``create``."""
    if given:
        return [decode_key(given, where=setting, what=what)], "config or environment"
    path = Path(key_file)
    if not path.exists():
        if not create:
            raise ConfigError(f"no {what}: {path} does not exist and {setting} is not set")
        write_key_file(path, [new_key()])
        log.info("created the %s file %s (mode 0600); back it up: %s", what, path, needed_by)
    return _read_file(path, what), str(path)
