"""Go-style durations, the original's format."""

import pytest

from smallyi.durations import format_duration, format_size, parse_duration, parse_rate, parse_size
from smallyi.errors import InputError


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), ("1h2m3s", 3723.0),
    ("1.5s", 1.5), ("0", 0.0), ("30", 30.0), ("10", 10.0), (" 7.5 ", 7.5), (10, 10.0), (2.5, 2.5),
    ("100us", 0.0001),
])
def test_parses_go_durations(text: str | float, seconds: float) -> None:
    """Every Go unit and combination parses to seconds; a bare number means seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "s10", "1m 30s", "-5s", "-5", "10s5", "inf", "nan", "1e3",
                                  "+5", True, -1, float("inf"), float("nan")])
def test_rejects_what_is_not_a_duration(text: object) -> None:
    """Malformed text is an InputError naming the field, never a silent zero or an endless wait."""
    with pytest.raises(InputError) as err:
        parse_duration(text, field="timeout")  # type: ignore[arg-type]
    assert "timeout" in err.value.message


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "250ms"), (90, "1m30s"), (7200, "2h"), (10, "10s")])
def test_formats_back(seconds: float, text: str) -> None:
    """format_duration gives the shortest Go text, which parses back to the same value."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "rate"), [("20/s", 20.0), ("600/m", 10.0), ("3600/h", 1.0), ("5", 5.0),
                                              (2.5, 2.5), ("", 0.0), (None, 0.0), ("0", 0.0)])
def test_parses_rates(value: str | float | None, rate: float) -> None:
    """A rate per second, minute or hour is connections per second; empty means unlimited."""
    assert parse_rate(value) == pytest.approx(rate)


@pytest.mark.parametrize("value", ["fast", "20/d", "-1/s", "inf/s", "nan", "1e9/s", "/s", -3.0, float("inf")])
def test_rejects_what_is_not_a_rate(value: str | float) -> None:
    """A rate that is not a plain non-negative number per unit is an error, not unlimited."""
    with pytest.raises(InputError, match="rate"):
        parse_rate(value)


@pytest.mark.parametrize(("text", "size"), [
    ("32MiB", 32 * 1024**2), ("512KiB", 512 * 1024), ("1GiB", 1024**3), ("10MB", 10_000_000), ("4096", 4096),
    ("4096B", 4096), (" 2 mib ", 2 * 1024**2), ("1.5KiB", 1536), (65536, 65536), ("64k", 64_000), ("0", 0),
])
def test_parses_sizes(text: str | int, size: int) -> None:
    """Sizes take bytes or a unit: KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000, case-insensitive."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "32 MiBs", "-1", "1e6", "32TiB", "ten", True, -5, 1.5])
def test_rejects_what_is_not_a_size(text: object) -> None:
    """Anything else is an InputError naming the field and showing the forms that work."""
    with pytest.raises(InputError) as err:
        parse_size(text, field="terminal.max_recording")  # type: ignore[arg-type]
    assert "terminal.max_recording" in err.value.message


def test_formats_sizes() -> None:
    """format_size gives the largest binary unit that divides the size."""
    assert [format_size(n) for n in (32 * 1024**2, 1536, 1000, 1024**3)] == ["32MiB", "1536B", "1000B", "1GiB"]


@pytest.mark.parametrize("text", ["0", "0s", "0ms", "0h0m", 0, 0.0])
def test_a_zero_timeout_is_refused_with_what_to_do(text: str | float) -> None:
    """A command timeout of 0 (which the engine reads as "no limit") is refused, saying to give a long one."""
    from smallyi.durations import parse_timeout

    with pytest.raises(InputError) as err:
        parse_timeout(text, field="--timeout")
    assert err.value.field == "--timeout"
    assert err.value.message.startswith("--timeout: must be more than 0s") and "e.g. 6h" in err.value.message


def test_a_timeout_more_than_zero_parses() -> None:
    """Any positive duration is a timeout, however short or long."""
    from smallyi.durations import parse_timeout

    assert parse_timeout("1ms") == pytest.approx(0.001)
    assert parse_timeout("72h") == 72 * 3600
