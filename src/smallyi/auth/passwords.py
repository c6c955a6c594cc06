"""bcrypt password hashes, compatible with the original's ``$2a$12$`` and with Go, htpasswd and PHP.

bcrypt only reads the first 72 bytes of a password; other tools silently truncate, so verification
does the same for compatibility, while ``hash_password`` refuses longer passwords outright.
"""

from __future__ import annotations

import bcrypt

from smallyi.errors import InputError

COST = 12
MAX_BYTES = 72
_PREFIXES = (b"$2a$", b"$2b$", b"$2y$", b"$2x$")


def hash_password(password: str, *, cost: int = COST) -> str:
    """A new bcrypt hash (``$2b$``) of ``password``."""
    raw = password.encode()
    if not raw:
        raise InputError("the password is empty", field="password")
    if len(raw) > MAX_BYTES:
        raise InputError(
            f"the password is {len(raw)} bytes; bcrypt uses at most {MAX_BYTES}, choose a shorter one",
            field="password",
        )
    return bcrypt.hashpw(raw, bcrypt.gensalt(cost)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    """True if ``password`` matches; False for a wrong password or a malformed hash (never raises)."""
    h = password_hash.encode()
    if not h.startswith(_PREFIXES):
        return False
    try:
        return bcrypt.checkpw(password.encode()[:MAX_BYTES], h)
    except ValueError:
        return False


# a hash of a random password, checked against when the user does not exist, so that timing does not
# tell which usernames exist
DUMMY_HASH = "$2b$12$C6UzMDM.H6dfI/f/IKxGhuJpL8FVQ5S2oPz6m6TV0xWkRmnYLAyNy"
