"""Keep secrets out of log lines: known secret values, bearer tokens, private keys, password fields."""

from __future__ import annotations

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


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message with the secrets masked."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        clean = self.redactor.redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def install(redactor: Redactor, logger: logging.Logger | None = None) -> RedactingFilter:
    """Add the filter to every handler of ``logger`` (the root logger by default), once."""
    logger = logger or logging.getLogger()
    flt = RedactingFilter(redactor)
    for h in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(flt)
    return flt
