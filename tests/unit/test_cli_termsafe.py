"""What the CLI prints of a host's or a user's text: control sequences shown, never sent to the terminal."""

from __future__ import annotations

import json

import pytest

from smallyi.cli.termsafe import safe, safe_json

CASES = [
    # (what came in, what the operator sees)
    ("plain text, tabs\tkept", "plain text, tabs\tkept"),
    ("中文 and émoji ✓", "中文 and émoji ✓"),
    ("\x1b]52;c;SGVsbG8=\x07", "^[]52;c;SGVsbG8=^G"),  # OSC 52: write the clipboard
    ("\x1b[2J\x1b[H", "^[[2J^[[H"),  # clear the screen, cursor home
    ("ok\x1b[1A\x1b[2Ktask 9 success", "ok^[[1A^[[2Ktask 9 success"),  # forge the line above
    ("progress 10%\rdone", "progress 10%^Mdone"),  # a lone CR would overwrite the line
    ("rm -rf /\x08\x08\x08\x08\x08\x08\x08\x08ls", "rm -rf /^H^H^H^H^H^H^H^Hls"),
    ("\x1bP+q544e\x1b\\", "^[P+q544e^[\\"),  # DCS
    ("\x1b_app\x1b\\", "^[_app^[\\"),  # APC
    ("two\nlines", "two^Jlines"),  # a newline in one value cannot start a line of its own
    ("bell\x07 nul\x00 del\x7f", "bell^G nul^@ del^?"),
    ("\x9b31m8-bit CSI\x9d0;t\x9c", "\\u009b31m8-bit CSI\\u009d0;t\\u009c"),
    ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
    ("\u2066iso\u2069 \u200f\u061c", "\\u2066iso\\u2069 \\u200f\\u061c"),
    ("lone \udcff surrogate", "lone \\udcff surrogate"),
]


@pytest.mark.parametrize(("raw", "shown"), CASES)
def test_control_characters_are_shown_not_sent(raw: str, shown: str) -> None:
    """Every control sequence, lone CR, backspace and BIDI override is shown in visible notation."""
    assert safe(raw) == shown


def test_nothing_a_terminal_acts_on_is_left() -> None:
    """Whatever the input, the result has no ESC, no C0 but tab, no C1, no BIDI control, and encodes."""
    everything = "".join(chr(c) for c in range(0x300)) + "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    out = safe(everything)
    assert not any(ord(c) < 0x20 and c != "\t" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
    assert not any(c in out for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    out.encode("utf-8")


def test_color_keeps_sgr_only_and_resets() -> None:
    """With color, SGR colours pass through and the line ends reset; other sequences are still shown."""
    assert safe("\x1b[1;31mred\x1b[0m ok", color=True) == "\x1b[1;31mred\x1b[0m ok\x1b[0m"
    assert safe("\x1b[31mred\x1b]52;c;eA==\x07\x1b[2J", color=True) == "\x1b[31mred^[]52;c;eA==^G^[[2J\x1b[0m"
    assert safe("\x1b[31mred", color=False) == "^[[31mred"
    assert safe("no colour \x1b[2J", color=True) == "no colour ^[[2J"


def test_newlines_kept_on_request() -> None:
    """For text already laid out in lines, newlines stay; everything else is shown as usual."""
    assert safe("a\x1b[2J\nb\r", newlines=True) == "a^[[2J\nb^M"


def test_json_keeps_its_values_and_loses_c1_and_bidi() -> None:
    """The JSON the CLI prints parses to the same values, with C1 and BIDI controls written as escapes."""
    value = {"text": "a\x1b[2J \x9b1m \u202eevil \udcff", "中文": "ok"}
    doc = safe_json(json.dumps(value, ensure_ascii=False))
    assert "\x1b" not in doc and "\x9b" not in doc and "\u202e" not in doc and "\udcff" not in doc
    assert "中文" in doc
    assert json.loads(doc) == value


def test_the_consoles_never_read_markup_and_show_what_a_print_forgot() -> None:
    """The CLI's consoles print stored text as it is (no markup) and, should a print not escape a value,
    still show its escape sequences instead of sending them (Rich itself drops BEL, BS and CR)."""
    import io

    from smallyi.cli.common import _console, esc

    c = _console()
    c.file = io.StringIO()
    c.print("echo [red]x[/dim] \x1b]52;c;eA==\x07 \x1b[2J\rdone")
    c.print(f"[bold]kept[/] {esc('[red]x[/dim]')}", markup=True)
    out = c.file.getvalue()
    assert out.splitlines() == ["echo [red]x[/dim] ^[]52;c;eA== ^[[2Jdone", "kept [red]x[/dim]"]
