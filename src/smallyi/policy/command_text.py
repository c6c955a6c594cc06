"""Text that reaches a host's shell intact: no NUL byte, nothing UTF-8 cannot encode. Pure.

A command travels as a C string. OpenSSH's server drops the connection when an exec request holds a
NUL (the host then reports that the command may or may not have run), and a local ``/bin/sh -c`` gets
the text cut at the NUL, so the host runs less than the policy checked, the approver saw and the archive
keeps. A character UTF-8 cannot encode (a lone surrogate: bytes on the command line that were not UTF-8)
cannot be sent at all. Both are refused where a command comes in, naming the field and the offset.
"""

from __future__ import annotations

from smallyi.errors import InputError


def problem(text: str, what: str = "the command") -> str | None:
    """Why ``text`` cannot be sent to a shell as it is, or None if it can."""
    nul = text.find("\0")
    if nul >= 0:
        return (f"{what} contains a NUL byte (\\x00) at offset {nul}; a shell command cannot hold one "
                "(the host would run the text before it, or nothing): remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"{what} is not UTF-8 text: offset {exc.start} holds a byte that is not UTF-8 "
                f"({text[exc.start]!r}); write the command in UTF-8")
    return None


def check(text: str, *, field: str, what: str = "the command") -> str:
    """``text`` if it can reach a shell intact; else InputError naming ``field``."""
    why = problem(text, what)
    if why is not None:
        raise InputError(f"{field}: {why}", field=field)
    return text
