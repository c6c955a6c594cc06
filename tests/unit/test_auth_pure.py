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


def test_a_reloaded_throttle_keeps_the_failures_counted_and_applies_the_new_limits() -> None:
    """auth.login_max_failures / address_max_failures reloaded: the next login meets the new limits, and the
    failures already counted still count (raised from 2 to 4, a pair with 3 failures may try once more)."""
    now = [1000.0]
    t = LoginThrottle(max_failures=2, window=60, max_address_failures=10, clock=lambda: now[0])
    t.failed("admin", "1.2.3.4")
    t.failed("admin", "1.2.3.4")
    assert t.retry_after("admin", "1.2.3.4") > 0
    t.reconfigure(max_failures=4, window=60, max_address_failures=3)
    assert t.retry_after("admin", "1.2.3.4") == 0
    t.failed("admin", "1.2.3.4")
    assert t.retry_after("admin", "1.2.3.4") == 0 and t.address_retry_after("1.2.3.4") > 0
    t.failed("admin", "1.2.3.4")
    assert t.retry_after("admin", "1.2.3.4") == pytest.approx(60)


def test_an_address_trying_many_names_is_throttled_whatever_the_names() -> None:
    """Past max_address_failures from one address every login from it waits, for any user name; other
    addresses are not affected; a success does not reset the address's count."""
    now = [1000.0]
    t = LoginThrottle(max_failures=5, window=60, max_address_failures=3, clock=lambda: now[0])
    t.failed("ghost1", "10.0.0.9")
    t.succeeded("admin", "10.0.0.9")
    t.failed("ghost2", "10.0.0.9")
    assert t.address_retry_after("10.0.0.9") == 0
    t.failed("ghost3", "10.0.0.9")
    assert t.address_retry_after("10.0.0.9") == pytest.approx(60)
    assert t.retry_after("ghost4", "10.0.0.9") == 0  # the per-user window alone would let it through
    assert t.address_retry_after("10.0.0.10") == 0
    now[0] += 61
    assert t.address_retry_after("10.0.0.9") == 0


def test_ipv6_clients_are_counted_by_their_64() -> None:
    """A client holding a /64 cannot get a fresh window per address; a v4-mapped address counts as its IPv4."""
    from smallyi.auth.throttle import address_key

    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::7") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:10.1.2.3") == "10.1.2.3" and address_key("10.1.2.3") == "10.1.2.3"
    assert address_key("unknown") == "unknown"
    t = LoginThrottle(max_failures=5, window=60, max_address_failures=2)
    t.failed("a", "2001:db8::1")
    t.failed("b", "2001:db8::2")
    assert t.address_retry_after("2001:db8::3") > 0


def test_only_the_first_refusal_of_a_closed_window_is_reported() -> None:
    """A flood of refusals is one report per closed window, for the address and for a user alike."""
    now = [0.0]
    t = LoginThrottle(max_failures=1, window=10, max_address_failures=2, clock=lambda: now[0])
    assert not t.first_refusal(None, "c")  # not refused: nothing to report
    t.failed("u", "c")
    t.failed("v", "c")
    assert t.first_refusal(None, "c") and not t.first_refusal(None, "c")
    assert t.first_refusal("u", "c") and not t.first_refusal("u", "c")
    now[0] += 11
    assert t.address_retry_after("c") == 0 and t.retry_after("u", "c") == 0
    t.failed("u", "c")
    t.failed("w", "c")
    assert t.first_refusal(None, "c") and t.first_refusal("u", "c")


async def test_password_checks_leave_the_event_loop_free_and_their_queue_is_bounded() -> None:
    """While cost-12 checks run the loop keeps ticking; a check past the queue is refused at once."""
    import asyncio
    import time

    from smallyi.auth.passwords import DUMMY_HASH, PasswordChecker
    from smallyi.errors import Throttled

    checker = PasswordChecker(concurrency=1, queue=1)
    try:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.005)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        checks = [asyncio.create_task(checker.verify("guess", DUMMY_HASH)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Throttled, match="too many logins"):
            await checker.verify("guess", DUMMY_HASH)
        assert await asyncio.gather(*checks) == [False, False]
        ticker.cancel()
        assert max(gaps) < 0.15, f"the loop stalled {max(gaps):.2f}s during a check"
    finally:
        checker.close()
