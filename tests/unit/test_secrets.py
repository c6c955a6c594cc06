"""Secrets at rest (smallyi.secrets): AES-GCM boxes bound to names, the key file, redaction of log lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smallyi.config import SecretsSettings
from smallyi.errors import ConfigError, StorageError
from smallyi.secrets import keyring
from smallyi.secrets.box import Box
from smallyi.secrets.redact import Redactor


def box(key: bytes | None = None) -> Box:
    k = key or keyring.new_key()
    return Box({keyring.key_id(k): k}, keyring.key_id(k))


def test_a_secret_round_trips_and_is_bound_to_its_name() -> None:
    """Encrypted text decrypts under its own name only, and does not contain the plaintext."""
    b = box()
    token = b.encrypt(b"hunter2-password", name="db")
    assert b"hunter2" not in token.encode() and b.decrypt(token, name="db") == b"hunter2-password"
    with pytest.raises(StorageError, match="does not decrypt"):
        b.decrypt(token, name="other")


def test_a_tampered_ciphertext_is_refused() -> None:
    """Flipping one character of the ciphertext makes decryption fail loudly (GCM authenticates)."""
    b = box()
    token = b.encrypt(b"value", name="n")
    bad = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(StorageError):
        b.decrypt(bad, name="n")


def test_the_key_file_is_created_0600_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    """First start makes the key file with mode 0600; a group/world-readable file is a config error."""
    cfg = SecretsSettings(key_file=str(tmp_path / "k" / "master.key"))
    b1, where = keyring.load(cfg)
    path = Path(cfg.key_file)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and where == str(path)
    b2, _ = keyring.load(cfg)
    assert b2.current == b1.current
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        keyring.load(cfg)


def test_a_configured_key_must_be_32_bytes_of_base64() -> None:
    """A key from the config or environment that is not base64 of 32 bytes is refused, saying how to make one."""
    with pytest.raises(ConfigError, match="must be 32"):
        keyring.load(SecretsSettings(master_key="c2hvcnQ="))
    with pytest.raises(ConfigError, match="not base64"):
        keyring.load(SecretsSettings(master_key="not base64!"))


def test_rotation_keeps_old_ciphertexts_readable_through_the_ring() -> None:
    """A box holding old and new keys decrypts both; new ciphertexts name the new key."""
    old, new = keyring.new_key(), keyring.new_key()
    token = box(old).encrypt(b"v", name="n")
    ring = Box({keyring.key_id(old): old, keyring.key_id(new): new}, keyring.key_id(new))
    assert ring.decrypt(token, name="n") == b"v"
    assert ring.key_of(ring.encrypt(b"v", name="n")) == keyring.key_id(new)


def test_redaction_masks_tokens_keys_passwords_and_known_values() -> None:
    """Bearer tokens, private keys, password=..., URL passwords and stored secret values become ***."""
    r = Redactor()
    r.add("webhook-secret-123")
    text = ("login sys_" + "a" * 40 + " password=hunter2 postgresql://u:pw@h/db webhook-secret-123 "
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----")
    out = r.redact(text)
    for leaked in ("sys_aaaa", "hunter2", ":pw@", "webhook-secret-123", "AAAA"):
        assert leaked not in out
    assert out.count("***") >= 5


def test_tracebacks_in_log_records_are_redacted_too() -> None:
    """An exception quoting a secret (a robot URL's token, a stored value) is masked in the logged
    traceback, whatever handler formats it; the traceback itself is still there."""
    import io
    import logging

    from smallyi.secrets import redact

    r = Redactor()
    r.add("hunter2-stored-value")
    redact.install(r)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("smallyi.test.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ConnectionError("POST https://robot.example/send?access_token=tok-9f8e7d6c5b failed; "
                                  "value hunter2-stored-value")
        except ConnectionError:
            log.exception("sending failed")
        log.warning("here", stack_info=True)
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "ERROR sending failed" in text and "Traceback (most recent call last)" in text
    assert "ConnectionError: POST https://robot.example/send?access_token=***" in text
    assert "tok-9f8e7d6c5b" not in text and "hunter2-stored-value" not in text
    assert "Stack (most recent call last)" in text
