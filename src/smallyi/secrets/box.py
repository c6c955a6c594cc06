"""AES-256-GCM under a key ring: each ciphertext names the key that made it, so rotation can be gradual."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smallyi.errors import ConfigError, StorageError

KEY_BYTES = 32
NONCE_BYTES = 12


class Box:
    """Encrypts with the current key; decrypts with whichever key of the ring a ciphertext names."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ConfigError(f"the current master key {current!r} is not in the key ring")
        for kid, k in keys.items():
            if len(k) != KEY_BYTES:
                raise ConfigError(f"master key {kid!r} is {len(k)} bytes; it must be {KEY_BYTES} (base64 of 32 bytes)")
        self.keys = dict(keys)
        self.current = current

    def encrypt(self, plaintext: bytes, *, name: str) -> str:
        """``v1:<key id>:<base64 nonce+ciphertext>``; ``name`` is bound in (a ciphertext moved to another
        secret's row does not decrypt)."""
        nonce = os.urandom(NONCE_BYTES)
        ct = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, name.encode())
        return f"v1:{self.current}:{base64.b64encode(nonce + ct).decode()}"

    def key_of(self, token: str) -> str:
        parts = token.split(":", 2)
        if len(parts) != 3 or parts[0] != "v1":
            raise StorageError("a stored secret has an unknown format; was the database edited?")
        return parts[1]

    def decrypt(self, token: str, *, name: str) -> bytes:
        kid = self.key_of(token)
        key = self.keys.get(kid)
        if key is None:
            raise ConfigError(f"secret {name!r} was encrypted with master key {kid!r}, which is not configured; "
                              "restore that key (or its key file) to read it")
        raw = base64.b64decode(token.split(":", 2)[2])
        try:
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode())
        except InvalidTag:
            raise StorageError(f"secret {name!r} does not decrypt: it was altered, or belongs to another "
                               "secret") from None
