"""Paths as rules compare them: lexically normalised, so spelling cannot dodge a rule. Pure.

``/etc//passwd``, ``/etc/./passwd``, ``/../etc/passwd`` and ``/tmp/../etc/passwd`` are all
``/etc/passwd`` to the kernel; :func:`normal` makes them so for the rules too (``key=/path`` words such as
dd's ``of=`` included; a relative path stays relative). Only ``//``, ``.`` and ``..`` are resolved, never
symlinks, which is why an allow pattern never admits ``..`` (``/tmp/link/..`` is the link target's parent).

The working directory is unknown and may be ``/``: ``.``, ``..`` and globs of them (``*``, ``./*``,
``../*``) are also judged as if rooted, so ``cd / && rm -rf *`` meets ``rm -rf /``. A glob of a directory
counts as the directory (``/*`` is ``/``). A run-time expansion may hold ``..`` and climb out of its
literal start (``/tmp/$X`` with ``X=../etc/passwd``), so it may be any path.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

from smallyi.policy.shell import Word

_GLOB = set("*?[")
_KEYED = re.compile(r"(-{0,2}[A-Za-z0-9_][A-Za-z0-9_.-]*=)(/.*)", re.S)


def _collapse(path: str) -> str:
    return posixpath.normpath(re.sub("/+", "/", path))  # normpath keeps a leading "//"; Linux does not


def _split(text: str) -> tuple[str, str]:
    """(``key=`` or "", the path): dd's ``of=/dev/sda`` is a path after its key."""
    m = _KEYED.fullmatch(text)
    return (m.group(1), m.group(2)) if m else ("", text)


def _is_path(path: str) -> bool:
    return path.startswith("/") or path in (".", "..") or path.startswith(("./", "../"))


def normal(text: str) -> str:
    """``text`` with ``//``, ``.`` and ``..`` resolved if it is a path (``/x``, ``./x``, ``key=/x``); else as is."""
    key, path = _split(text)
    return key + _collapse(path) if _is_path(path) else text


def normal_pattern(text: str) -> str:
    """A rule's word tidied like :func:`normal`, but keeping ``..`` (a pattern may name it on purpose) and
    globs intact: only repeated slashes, ``.`` components and a trailing slash go."""
    key, path = _split(text)
    if not path.startswith("/"):
        return text
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return key + "/" + "/".join(parts)


def _dots_only(path: str) -> bool:
    """Is ``path`` (relative, normalised) the working directory or one of its parents?"""
    return all(p in (".", "..") for p in path.split("/"))


def spellings(text: str) -> set[str]:
    """The ways a known word may be compared: as written, normalised, and rooted if it names the working
    directory or a parent of it (``.`` after ``cd /`` is ``/``)."""
    out = {text, normal(text)}
    if _is_path(text) and _dots_only(normal(text)):
        out.add("/")
    return out


def _glob_variants(w: Word) -> list[str] | None:
    """A glob word's text, normalised, and rooted when it globs the working directory (or a parent); None
    if it may resolve upwards (``/tmp/.*`` can be ``/tmp/..``, ``/tmp/*/..`` goes through a link)."""
    key, path = _split(w.text)
    parts = path.split("/")
    seen_glob = False
    for p in parts:
        if p.startswith(".") and set(p) & _GLOB:
            return None
        if p == ".." and seen_glob:
            return None
        seen_glob = seen_glob or bool(set(p) & _GLOB)
    path = _collapse(path) if "/" in path else path
    out = [key + path]
    head = path.rsplit("/", 1)[0] if "/" in path else "."
    if not key and not path.startswith("/") and _dots_only(head):
        out.append(_collapse("/" + path))
    return out


def _glob_matches(glob: str, literal: str) -> bool:
    """Could the shell's expansion of ``glob`` be ``literal``, or is ``glob`` the contents of ``literal``?

    ``*`` does not cross ``/`` in a shell glob (``/*`` is never ``/etc/shadow``), except bash's ``**``.
    """
    if "**" in glob:
        return fnmatch.fnmatchcase(literal, glob) or literal.startswith(_cut(glob).rstrip("/") or "/")
    g, lit = glob.split("/"), literal.split("/")
    if len(g) == len(lit) and all(fnmatch.fnmatchcase(b, a) for a, b in zip(g, lit, strict=True)):
        return True
    head, _, last = glob.rpartition("/")
    return bool(set(last) & _GLOB) and (head or ("/" if glob.startswith("/") else "")) == literal


def _cut(text: str) -> str:
    for i, c in enumerate(text):
        if c in _GLOB or c == "{":
            return text[:i]
    return text


def could_be(pattern: str, w: Word) -> bool:
    """Might the run-time value of the unknown word ``w`` match ``pattern`` (a rule's word)?

    A glob is matched as a glob. A word with an expansion counts by the literal start it is sure to have,
    except against a path: the expansion may hold ``..``, so an absolute one may be any absolute path and a
    relative one any path at all. find's ``{}`` lies under find's start point (``unwrap``).
    """
    variants = None
    if w.raw != "{}" and set(w.raw) & _GLOB and not set(w.raw) & set("$`{"):
        variants = _glob_variants(w)  # a glob and nothing else
    a = _cut(pattern)
    if variants is not None:
        if not set(pattern) & _GLOB:
            return any(_glob_matches(v, pattern) for v in variants)
        starts = [_cut(v) for v in variants]
    elif w.raw == "{}":
        starts = [w.prefix]
    else:
        start = _cut(w.prefix)
        if _split(pattern)[1].startswith("/"):
            key, path = _split(start)
            start = key + "/" if path.startswith("/") else ""
        starts = [start]
    return any(a.startswith(b) or b.startswith(a) for b in starts)
