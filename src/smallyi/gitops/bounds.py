"""The bounds on rendering a commit, and the output writer that enforces one of them as text is produced. Pure.

Templates come from whoever can push, so rendering one is running their program: it gets a time
limit, a memory limit and a limit on each file's size. The size is checked while the template writes
(``bounded_text``), never after, so a loop printing without end stops at the limit instead of filling
the memory first. Time and memory are enforced by the process that renders (``gitops.worker``): a
:class:`RenderStopped` ends the whole render, naming where it stopped.

The writer takes any template's output as an iterator of text pieces (Jinja2's ``generate``; another
engine's pieces the same way), so a bound is "render a source with a context to text" for any engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class RenderLimits:
    """``gitops.render_timeout``, ``gitops.render_memory`` and ``gitops.render_max_output``."""

    #: seconds for one commit's whole rendering (every template for every host)
    timeout: float = 30.0
    #: bytes of address space the rendering process may use
    memory: int = 1024 * MiB
    #: bytes one rendered file (or path) may have
    output: int = 4 * MiB


def size_text(n: int) -> str:
    """``4 MiB``, ``512 KiB`` or ``100 bytes``: sizes as the config writes them."""
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


class OutputTooLarge(Exception):
    """One file's text grew past its limit: that file is not rendered, the others go on."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"renders more than {size_text(limit)} (gitops.render_max_output); "
                         "it was stopped at that size")
        self.limit = limit


class RenderStopped(BaseException):
    """A limit of the whole render was reached (time, memory): rendering stops here.

    A BaseException, so that no ``except Exception`` on the way (a template's own error handling, the
    per-file error report) can catch it and carry on rendering past the limit.
    """

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        #: the template, line and host it stopped in, once known
        self.where = where


class RenderTimeout(RenderStopped):
    """The render ran past ``gitops.render_timeout`` (raised by the rendering process's timer)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rendering took longer than {seconds:g}s (gitops.render_timeout); it was stopped there")


def out_of_memory(limit: int) -> str:
    return f"rendering needed more than {size_text(limit)} of memory (gitops.render_memory); it was stopped there"


def bounded_text(pieces: Iterable[str], limit: int) -> str:
    """Join ``pieces`` as they come; OutputTooLarge as soon as the text passes ``limit`` UTF-8 bytes.

    Characters are counted while writing (a character is at least one byte, so more characters than
    ``limit`` is over it for sure); the exact byte count is checked once at the end.
    """
    out: list[str] = []
    chars = 0
    iterator = iter(pieces)
    try:
        for piece in iterator:
            chars += len(piece)
            if chars > limit:
                raise OutputTooLarge(limit)
            out.append(piece)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # a generator stopped early runs its cleanup now, not at some later collection
    text = "".join(out)
    if chars * 4 > limit and len(text.encode("utf-8")) > limit:
        raise OutputTooLarge(limit)
    return text
