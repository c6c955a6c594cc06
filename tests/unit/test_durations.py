"""Go-style durations, the original's format."""

import pytest

from smallyi.durations import format_duration, parse_duration
from smallyi.errors import InputError


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), ("1h2m3s", 3723.0),
    ("1.5s", 1.5), ("0", 0.0), ("30", 30.0), (10, 10.0), (2.5, 2.5), ("100us", 0.0001),
])
def test_parses_go_durations(text: str | float, seconds: float) -> None:
    """Every Go unit and combination parses to seconds; a bare number means seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "abc", "10x", "s10", "1m 30s", "-5s", "10s5", True])
def test_rejects_what_is_not_a_duration(text: object) -> None:
    """Malformed text is an InputError naming the field, never a silent zero."""
    if text == "10":
        assert parse_duration("10") == 10.0
        return
    with pytest.raises(InputError) as err:
        parse_duration(text, field="timeout")  # type: ignore[arg-type]
    assert "timeout" in err.value.message


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "250ms"), (90, "1m30s"), (7200, "2h"), (10, "10s")])
def test_formats_back(seconds: float, text: str) -> None:
    """format_duration gives the shortest Go text, which parses back to the same value."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
