"""Text from a host or a user, made safe to print on the operator's terminal (pure).

What a host prints, and what users stored (host names, labels, descriptions, commands, reasons, SOP
and file names), reaches a terminal that obeys control sequences: OSC 52 writes the clipboard, CSI
moves the cursor and clears the screen (so a host could forge a ``task 7 success`` line), a lone
carriage return or backspaces overwrite what was printed, BIDI overrides reorder what is shown.
:func:`safe` shows every such character instead of sending it, so one printed value is one visible
line of inert text:

- C0 controls (newline and carriage return included; tab is kept) and DEL in caret notation, as
  ``cat -v`` does: ESC is ``^[``, CR ``^M``, BEL ``^G``, backspace ``^H``, DEL ``^?``;
- C1 controls (U+0080-U+009F: 8-bit CSI, OSC, DCS...), BIDI embeddings, overrides, isolates and marks
  (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) and lone surrogates as ``\\u009b``,
  ``\\u202e``...

Only with ``color=True`` are SGR sequences (``ESC [ params m``: colours, bold, underline) passed
through, and a line that used them ends with a reset; every other sequence is still shown.
"""

from __future__ import annotations

import enum
import re

#: SGR (Select Graphic Rendition): the one escape sequence ``--color`` lets through
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_RESET = "\x1b[0m"
#: what a terminal may act on instead of showing (see the module docstring); the second keeps newlines
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_BUT_NEWLINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: the same characters, to escape inside JSON text (C0 controls are JSON escapes already)
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _shown(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x20:
        return "^" + chr(c + 0x40)
    if c == 0x7F:
        return "^?"
    return f"\\u{c:04x}"


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def safe(text: str, *, color: bool = False, newlines: bool = False) -> str:
    """``text`` as one line of inert text: control characters shown, never sent (module docstring).

    With ``color``, SGR colour sequences are kept (and reset at the end); anything else is shown.
    With ``newlines``, a newline stays one (for text already laid out in lines, e.g. by Rich).
    """
    if text.isprintable():  # the common case: nothing to show differently (tabs and ESC are not printable)
        return text
    unsafe = _UNSAFE_BUT_NEWLINE if newlines else _UNSAFE
    if color and "\x1b[" in text:
        parts = _SGR.split(text)
        if len(parts) > 1:
            sgrs = _SGR.findall(text)
            out = [unsafe.sub(_shown, parts[0])]
            for sgr, part in zip(sgrs, parts[1:], strict=True):
                out += [sgr, unsafe.sub(_shown, part)]
            return "".join(out) + _RESET
    return unsafe.sub(_shown, text)


def safe_json(doc: str) -> str:
    """A JSON document with the characters a terminal acts on written as ``\\uXXXX`` escapes.

    ``json.dumps(..., ensure_ascii=False)`` escapes C0 controls but writes C1 controls and BIDI
    overrides as they are; the escaped document parses to the same values.
    """
    return _UNSAFE_IN_JSON.sub(_json_escape, doc)


class Show(enum.Enum):
    """How a host's text reaches the terminal: ``--raw`` and ``--color`` choose."""

    #: control sequences shown as text (``^[``, ``\\u202e``...): the default
    SAFE = "safe"
    #: the same, but SGR colour sequences kept
    COLOR = "color"
    #: as the host sent it (UTF-8, invalid bytes replaced)
    RAW = "raw"

    @classmethod
    def of(cls, *, raw: bool, color: bool) -> Show:
        return cls.RAW if raw else cls.COLOR if color else cls.SAFE

    def text(self, text: str) -> str:
        """One line of a host's output, as this mode prints it."""
        if self is Show.RAW:
            return text
        return safe(text, color=self is Show.COLOR)
