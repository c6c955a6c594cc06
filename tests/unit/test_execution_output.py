"""Line splitting of host output: lines, newlines, decoding, cutting, bounded memory."""

from __future__ import annotations

import random

from smallyi.execution.events import Event, HostOutput
from smallyi.execution.output import LineSplitter, _cut, line_cut_marker


def split(chunks: list[bytes], limit: int = 100) -> list[HostOutput]:
    got: list[Event] = []
    s = LineSplitter("h", "stdout", got.append, limit)
    for c in chunks:
        s.feed(c)
    s.flush()
    assert all(isinstance(e, HostOutput) for e in got)
    return got  # type: ignore[return-value]


def texts(events: list[HostOutput]) -> list[str]:
    return [e.text for e in events]


def test_lines_split_across_chunks() -> None:
    """A line split over several chunks comes out whole, once."""
    assert texts(split([b"hel", b"lo\nwor", b"ld\n", b"x\ny\n"])) == ["hello", "world", "x", "y"]


def test_crlf_and_bare_cr() -> None:
    """``\\r\\n`` ends a line like ``\\n``; a ``\\r`` elsewhere is kept."""
    out = split([b"a\r\nb\rc\r\n", b"d\r", b"\n"])
    assert texts(out) == ["a", "b\rc", "d"]
    assert [e.size for e in out] == [3, 5, 3]


def test_partial_last_line_flushed_without_newline_size() -> None:
    """The unterminated last line is flushed at the end; its size has no newline."""
    out = split([b"one\ntwo"])
    assert texts(out) == ["one", "two"]
    assert [e.size for e in out] == [4, 3]


def test_empty_lines_kept() -> None:
    """Empty lines are lines too."""
    assert texts(split([b"\n\na\n\n"])) == ["", "", "a", ""]


def test_invalid_utf8_replaced() -> None:
    """Invalid UTF-8 becomes U+FFFD instead of raising."""
    out = split([b"ok \xff\xfe\n\x00\x01binary\n"])
    assert out[0].text == "ok \ufffd\ufffd"
    assert out[1].text == "\x00\x01binary"


def test_long_line_cut_and_marked() -> None:
    """A line past the limit is cut to it and ends with a marker counting the bytes cut; its size counts
    everything sent."""
    out = split([b"a" * 250 + b"\nshort\n"], limit=100)
    assert out[0].text == "a" * 100 + " ... [150 bytes cut from this line]"
    assert out[0].truncated and out[0].cut == 150 and out[0].size == 251
    assert out[1].text == "short" and not out[1].truncated and out[1].cut == 0


def test_long_line_over_chunks_cut_once() -> None:
    """A long line arriving in many chunks yields one cut event with the total size and the bytes cut."""
    out = split([b"b" * 60] * 10 + [b"\r\n"], limit=100)
    assert len(out) == 1 and out[0].text == "b" * 100 + line_cut_marker(500)
    assert out[0].cut == 500 and out[0].size == 602  # the CR of CRLF ends the line: it is not a cut byte


def test_cut_never_splits_a_utf8_character() -> None:
    """Cutting backs off to a character boundary instead of leaving half a character."""
    line = ("é" * 80).encode()  # 160 bytes, 2 per character
    out = split([line + b"\n"], limit=101)
    assert out[0].text == "é" * 50 + line_cut_marker(60) and out[0].cut == 60


def test_endless_line_holds_bounded_memory() -> None:
    """A line that never ends keeps at most the limit in memory, and is flushed cut at the end."""
    got: list[Event] = []
    s = LineSplitter("h", "stdout", got.append, 100)
    for _ in range(10_000):
        s.feed(b"z" * 1000)
        assert len(s._buf) <= 101
    assert got == []
    s.flush()
    assert len(got) == 1
    ev = got[0]
    assert isinstance(ev, HostOutput) and ev.size == 10_000_000 and ev.cut == 10_000_000 - 100
    assert ev.text == "z" * 100 + line_cut_marker(9_999_900)


def test_exactly_limit_with_crlf_not_truncated() -> None:
    """A line exactly at the limit followed by ``\\r\\n`` is not marked truncated."""
    out = split([b"c" * 50, b"c" * 50 + b"\r", b"\n"], limit=100)
    assert out[0].text == "c" * 100 and not out[0].truncated and out[0].size == 102


def test_close_drops_later_output() -> None:
    """After close, bytes from a closing channel are ignored."""
    got: list[Event] = []
    s = LineSplitter("h", "stderr", got.append, 100)
    s.feed(b"x")
    s.close()
    s.feed(b"late\n")
    s.flush()
    assert [e.text for e in got if isinstance(e, HostOutput)] == ["x"]
    assert isinstance(got[0], HostOutput) and got[0].stream == "stderr"


def reference(data: bytes, limit: int) -> list[tuple[str, int, int]]:
    """The splitter's contract, on the whole output at once."""
    lines = data.split(b"\n")
    last = lines.pop()
    out = [(line, len(line) + 1) for line in lines] + ([(last, len(last))] if last else [])
    result = []
    for line, size in out:
        if line.endswith(b"\r"):
            line = line[:-1]
        cut = 0
        if len(line) > limit:
            kept = _cut(line, limit)
            cut = len(line) - len(kept)
            line = kept
        text = line.decode("utf-8", "replace") + (line_cut_marker(cut) if cut else "")
        result.append((text, size, cut))
    return result


def test_any_chunking_gives_the_same_lines() -> None:
    """However the bytes are chunked, ASCII or not, the lines equal splitting the whole output."""
    rng = random.Random(7)
    alphabet = [b"a", b"b", b" ", b"\n", b"\r", b"\r\n", "é".encode(), "€".encode(), b"\xff", b"\x00"]
    for _ in range(300):
        data = b"".join(rng.choice(alphabet) * rng.choice([1, 1, 1, 5, 40]) for _ in range(rng.randint(0, 80)))
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 6))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        got = [(e.text, e.size, e.cut) for e in split(chunks, limit=12)]
        assert got == reference(data, 12), (data, cuts)
