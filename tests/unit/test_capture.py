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
        assert not c.add(seq, f"tail{seq}", 6)
    assert c.take_tail() == ([(2, "tail2"), (3, "tail3"), (4, "tail4")], None)
    assert c.take_tail() == ([], None)
    c.add(5, "tail5", 6)  # cuts 2 (taken)
    assert c.untaken() == [(5, "tail5")]
    assert c.take_tail() == ([(5, "tail5")], (1, 2))
    for seq in range(6, 10):  # cuts 3, 4, 5 (taken) and 6 (never taken)
        c.add(seq, f"tail{seq}", 6)
    assert c.take_tail() == ([(7, "tail7"), (8, "tail8"), (9, "tail9")], (2, 5))
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
