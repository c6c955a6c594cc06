"""Passwords and login throttling: pure parts of auth."""

import pytest

from smallyi.auth.passwords import hash_password, verify_password
from smallyi.auth.throttle import LoginThrottle
from smallyi.errors import InputError

# Hashes made by other implementations, not by Python's bcrypt:
# - $2a$: the test vectors of jBCrypt / OpenBSD's bcrypt (also what Go's x/crypto and PHP's crypt() check against)
# - $2y$: made with Apache's `htpasswd -nbB -C 5 u PASSWORD` (htpasswd 2.4.71, Debian 12), as PHP's
#   password_hash() writes them
FOREIGN_HASHES = [
    ("", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."),
    ("abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"),
    ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("secret", "$2y$05$dYOFfzzpsT/soGYY3utBF.viiunw.966/ebTDPdBZwZ7X10qPGire"),
    ("pässwörd 中文", "$2y$05$gYfzw.KqTL9nLwUi1S74JOlPjGBH44zBw8paBG5Iu1ZihneU/Vzga"),
]


def test_hash_and_verify_roundtrip() -> None:
    """A fresh hash is bcrypt $2b$ cost 12 and verifies only the right password."""
    h = hash_password("s3cret pass", cost=4)
    assert h.startswith("$2b$04$") and len(h) == 60
    assert verify_password("s3cret pass", h)
    assert not verify_password("wrong", h)
    assert hash_password("x").startswith("$2b$12$")


@pytest.mark.parametrize("prefix", ["$2a$", "$2y$", "$2b$"])
def test_other_tools_prefixes_verify(prefix: str) -> None:
    """Hashes with $2a$ (Go), $2y$ (htpasswd, PHP) and $2b$ prefixes verify."""
    import bcrypt

    base = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
    assert verify_password("secret", prefix + base[4:])
    assert not verify_password("Secret", prefix + base[4:])


@pytest.mark.parametrize(("password", "hashed"), FOREIGN_HASHES)
def test_hashes_made_by_other_tools_verify(password: str, hashed: str) -> None:
    """$2a$ (jBCrypt/OpenBSD vectors) and $2y$ (htpasswd) hashes from other tools verify, and only their password."""
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)


def test_malformed_hash_never_raises() -> None:
    """A malformed hash is a failed verification, not a crash."""
    assert not verify_password("x", "not-a-hash")
    assert not verify_password("x", "$2b$12$short")


def test_overlong_password_refused_when_hashing() -> None:
    """bcrypt reads 72 bytes; a longer password is refused with a reason rather than cut silently."""
    with pytest.raises(InputError, match="72"):
        hash_password("x" * 73)
    with pytest.raises(InputError, match="empty"):
        hash_password("")


def test_throttle_window() -> None:
    """After max failures a (user, client) pair waits out the window; others are unaffected."""
    now = [1000.0]
    t = LoginThrottle(max_failures=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert t.retry_after("admin", "1.2.3.4") == 0
        t.failed("admin", "1.2.3.4")
    assert t.retry_after("admin", "1.2.3.4") == pytest.approx(60)
    assert t.retry_after("admin", "5.6.7.8") == 0
    assert t.retry_after("bob", "1.2.3.4") == 0
    now[0] += 61
    assert t.retry_after("admin", "1.2.3.4") == 0


def test_throttle_success_resets_and_memory_is_bounded() -> None:
    """A success clears the count; the table never holds more than max_keys pairs."""
    t = LoginThrottle(max_failures=2, window=60, max_keys=10)
    t.failed("a", "c")
    t.succeeded("a", "c")
    t.failed("a", "c")
    assert t.retry_after("a", "c") == 0
    for i in range(100):
        t.failed(f"u{i}", "c")
    assert len(t._fails) <= 10
