"""Bounded output capture and task status rules."""

from smallyi.tasks.capture import StreamCapture
from smallyi.types import HostStatus, TaskStatus, task_status_from_hosts


def test_small_output_kept_whole() -> None:
    """Output within the head budget is kept entirely, nothing marked cut."""
    c = StreamCapture(100, 100)
    for i in range(5):
        assert c.add(i, f"line {i}", 7)
    assert c.text() == "\n".join(f"line {i}" for i in range(5))
    assert c.cut_lines == 0 and c.total == 35


def test_flood_keeps_head_and_tail_and_counts_the_middle() -> None:
    """A flood keeps the first and last bytes and counts exactly what it cut."""
    c = StreamCapture(head_bytes=30, tail_bytes=30)
    for i in range(1000):
        c.add(i, f"l{i:04d}", 6)  # 5 chars + newline
    assert c.head == [f"l{i:04d}" for i in range(5)]
    assert [t for _, t in c.tail()] == [f"l{i:04d}" for i in range(995, 1000)]
    assert c.cut_lines == 990 and c.cut_bytes == 990 * 6
    assert c.total == 6000
    assert "990 lines, 5940 bytes cut" in c.text()


def test_a_cut_line_is_kept_to_its_limit_and_its_cut_counted() -> None:
    """A line the splitter cut (20 KB sent, 16 KiB kept) takes the head budget it keeps, and the bytes
    it lost count as cut: the result says truncated, with the number."""
    c = StreamCapture(head_bytes=64 * 1024, tail_bytes=64 * 1024)
    kept = "x" * 16384 + " ... [4097 bytes cut from this line]"
    assert c.add(1, kept, 20481, cut=4097)
    assert c.head == [kept] and c.total == 20481
    assert c.cut_total == 4097 and c.cut_bytes == 0 and c.cut_lines == 0  # no middle: nothing between head and tail
    assert c.text() == kept


def test_a_huge_line_keeps_its_head() -> None:
    """A 5 MB line (cut to 16 KiB) is kept, in the head or in the tail, not dropped whole."""
    c = StreamCapture(head_bytes=64 * 1024, tail_bytes=64 * 1024)
    assert c.add(1, "y" * 16384, 5_000_001, cut=5_000_000 - 16384)
    assert c.head == ["y" * 16384] and c.cut_total == 5_000_000 - 16384
    full = StreamCapture(head_bytes=10, tail_bytes=64 * 1024)  # the head is full: it goes to the tail
    full.add(1, "h" * 9, 10)
    assert not full.add(2, "y" * 16384, 5_000_001, cut=5_000_000 - 16384)
    assert [t for _, t in full.tail()] == ["y" * 16384] and full.cut_total == 5_000_000 - 16384


def test_a_cut_line_dropped_from_the_tail_counts_whole_in_the_middle() -> None:
    """When the tail drops a line that was cut, the middle counts everything the host sent for it, once."""
    c = StreamCapture(head_bytes=0, tail_bytes=20)
    c.add(1, "a" * 10, 31, cut=20)  # 11 kept (with its newline), 20 cut
    assert c.cut_total == 20 and c.cut_lines == 0
    c.add(2, "b" * 10, 11)  # 22 bytes kept > 20: drops line 1, all 31 bytes of it
    assert c.cut_lines == 1 and c.cut_bytes == 31 and c.cut_total == 31
    c.add(3, "c" * 10, 11)
    assert c.cut_lines == 2 and c.cut_bytes == 42 and c.cut_total == 42
    assert "2 lines, 42 bytes cut" in c.text()


def test_task_status_follows_hosts() -> None:
    """A task succeeds only if every host did; interrupted and cancelled say so."""
    S = HostStatus
    assert task_status_from_hosts([S.SUCCESS, S.SUCCESS]) is TaskStatus.SUCCESS
    assert task_status_from_hosts([S.SUCCESS, S.TIMEOUT]) is TaskStatus.FAILED
    assert task_status_from_hosts([S.UNREACHABLE]) is TaskStatus.FAILED
    assert task_status_from_hosts([S.SUCCESS, S.CANCELLED, S.FAILED]) is TaskStatus.CANCELLED
    assert task_status_from_hosts([S.CANCELLED, S.INTERRUPTED]) is TaskStatus.INTERRUPTED
    assert task_status_from_hosts([]) is TaskStatus.SUCCESS


def test_take_tail_hands_out_new_lines_and_what_was_cut_after_it_was_taken() -> None:
    """The archive gets each kept tail line once, and a range to remove for taken lines cut since."""
    c = StreamCapture(head_bytes=6, tail_bytes=18)
    c.add(1, "head1", 6)
    for seq in range(2, 5):  # tail: 2 3 4
        assert not c.add(seq, f"tail{seq}", 6, at=f"t{seq}")
    assert c.take_tail() == ([(2, "tail2", "t2"), (3, "tail3", "t3"), (4, "tail4", "t4")], None)
    assert c.take_tail() == ([], None)
    c.add(5, "tail5", 6, at="t5")  # cuts 2 (taken)
    assert c.untaken() == [(5, "tail5", "t5")]
    assert c.take_tail() == ([(5, "tail5", "t5")], (1, 2))
    for seq in range(6, 10):  # cuts 3, 4, 5 (taken) and 6 (never taken)
        c.add(seq, f"tail{seq}", 6, at=f"t{seq}")
    assert c.take_tail() == ([(7, "tail7", "t7"), (8, "tail8", "t8"), (9, "tail9", "t9")], (2, 5))
    assert c.take_tail() == ([], None)
    assert [t for _, t in c.tail()] == ["tail7", "tail8", "tail9"]


def test_take_tail_with_no_tail_budget_hands_out_nothing() -> None:
    """tail_bytes 0: every line past the head is only counted; the archive gets nothing to add or remove."""
    c = StreamCapture(head_bytes=0, tail_bytes=0)
    for seq in range(1, 50):
        c.add(seq, "x", 2)
    assert c.take_tail() == ([], None)
    assert c.cut_lines == 49


def test_interrupted_text_puts_the_marker_between_head_and_tail() -> None:
    """A host cut while running and then interrupted: the marker goes after the head's lines
    (one per newline of the head the pipeline recorded), with the bytes cut so far."""
    from smallyi.tasks.service import interrupted_text

    assert interrupted_text(["a", "b", "y", "z"], "a\nb\n", 120) == "a\nb\n... [120 bytes cut] ...\ny\nz"
    assert interrupted_text(["", "z"], "\n", 7) == "\n... [7 bytes cut] ...\nz"  # an empty head line counts
    assert interrupted_text(["y", "z"], "", 7) == "... [7 bytes cut] ...\ny\nz"  # no head at all
    assert interrupted_text(["a", "b"], "", 0) == "a\nb"  # nothing cut: the lines as archived
