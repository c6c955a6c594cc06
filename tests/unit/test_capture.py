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
