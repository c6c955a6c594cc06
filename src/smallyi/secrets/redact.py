"""Keep secrets out of log lines: known secret values, bearer tokens, private keys, password fields."""

from __future__ import annotations

import contextlib
import logging
import re

MASK = "***"
_PATTERNS = [
    (re.compile(r"\b(?:sys|syt)_[A-Za-z0-9_-]{20,}"), MASK),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), MASK),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)(?:\"[^\"]*\"|'[^']*'|\S+)"),
     r"\1" + MASK),
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), r"\1" + MASK),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1" + MASK + "@"),
]


class Redactor:
    """Replaces secrets in text. Values added with :meth:`add` (stored secrets) are masked too."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if len(value) >= 6:  # shorter values would mask ordinary words
            self._values.add(value)

    def redact(self, text: str) -> str:
        for v in self._values:
            if v in text:
                text = text.replace(v, MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


_REDACTORS: list[Redactor] = []
_SHARED = Redactor()


def shared() -> Redactor:
    """The process's redactor: every store in the process adds its secrets to the same one."""
    return _SHARED


def _clean(text: str) -> str:
    for r in _REDACTORS:
        text = r.redact(text)
    return text


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    try:
        msg = record.getMessage()
    except Exception:
        return record
    clean = _clean(msg)
    if clean != msg:
        record.msg, record.args = clean, None
    # a traceback quotes exception messages (a URL with its token, a failed command's output) and its
    # frames' source lines: formatted and redacted here, so no handler formats the raw one later
    if record.exc_info and record.exc_info[0] is not None:
        with contextlib.suppress(Exception):  # an unformattable traceback stays as it was
            record.exc_text = _clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
    if record.stack_info:
        record.stack_info = _clean(record.stack_info)
    return record


def install(redactor: Redactor) -> None:
    """Redact every log record made from now on, whatever logger or handler it goes to (a record factory)."""
    if redactor in _REDACTORS:
        return
    _REDACTORS.append(redactor)
    old = logging.getLogRecordFactory()
    if getattr(old, "smallyi_redacting", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        return _redacted(old(*args, **kwargs))

    factory.smallyi_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
