"""Cron expressions: 5 fields, ``@every 10m`` and the ``@daily``-style shorthands, in a time zone. Pure.

Fields are minute, hour, day of month, month (1-12 or jan-dec), day of week (0-7 or sun-sat, 0 and
7 are Sunday); each takes ``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, ``a/n`` and lists ``a,b``. The day
fields follow Vixie cron / cronie: when either day field starts with ``*`` (``*``, ``*/2``) a day must
match both; when neither does, a day matching either runs (``0 9 1,15 * fri``: the 1st, the 15th and
every Friday). The slots come from croniter, given each field as the explicit list of values this module
parsed (naming a bad field in plain words) and the day rule decided here: croniter reads some spellings
otherwise (``1-1`` as every day, ``1-31`` as ``*``), which tests/unit/test_schedules_cron.py's differential
against cronie's rule caught. On top come two rules of ours: times are
wall-clock in the schedule's zone (a time skipped by a DST jump does not run that day; a time repeated by
a DST fall-back runs once, the first time), and ``@every D`` slots are multiples of D since the Unix
epoch, the same in every process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from smallyi.durations import parse_duration
from smallyi.errors import InputError

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_SHORTHANDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
#: how far ahead a slot is looked for before the expression is called impossible
_HORIZON_DAYS = 366 * 5
_MIN_EVERY = 1.0


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(f"timezone: {name!r} is not an IANA time zone (e.g. UTC, Asia/Shanghai, "
                         "Europe/Berlin)", field="timezone") from None


@dataclass(frozen=True, slots=True)
class Cron:
    text: str
    #: the five fields as croniter reads them (explicit value lists); "" for ``@every``
    spec: str = ""
    #: croniter's ``day_or``: a day matching either day field runs (neither field starts with ``*``)
    day_or: bool = True
    #: seconds between ``@every`` slots (0 for cron fields)
    every: float = 0.0

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first slot strictly after ``after`` (aware), as an aware UTC datetime."""
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        if self.every:
            epoch = after.timestamp()
            k = int(epoch // self.every) + 1
            return datetime.fromtimestamp(k * self.every, UTC)
        for utc in self._utc_slots(after, tz):
            return utc
        raise AssertionError("unreachable")  # pragma: no cover (_utc_slots raises when there is none)

    def _utc_slots(self, after: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Slots after ``after``: croniter's wall-clock times in ``tz`` that exist, each once, as UTC."""
        start = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        # croniter yields times strictly after start: the next whole minute on, as cron would consider
        it = croniter(self.spec, start, day_or=self.day_or, max_years_between_matches=_HORIZON_DAYS // 366)
        while True:
            try:
                t: datetime = it.get_next(datetime)
            except CroniterBadDateError:
                raise InputError(f"cron: {self.text!r} has no time in the next five years", field="cron") from None
            aware = t.replace(tzinfo=tz)  # fold=0: of a time repeated by a fall-back, the first
            utc = aware.astimezone(UTC)
            if utc.astimezone(tz).replace(tzinfo=None) != t:
                continue  # skipped by a DST jump: no such time that day
            if utc > after:
                yield utc

    def slots(self, after: datetime, until: datetime, tz: ZoneInfo, *, limit: int = 1000) -> list[datetime]:
        """Slots in ``(after, until]``, at most ``limit`` (the latest ones when there are more)."""
        out: list[datetime] = []
        if self.every:
            first = int(after.timestamp() // self.every) + 1
            last = int(until.timestamp() // self.every)
            start = max(first, last - limit + 1)
            return [datetime.fromtimestamp(k * self.every, UTC) for k in range(start, last + 1)]
        for t in self._utc_slots(after, tz):
            if t > until:
                return out
            out.append(t)
            if len(out) > limit:
                out.pop(0)
        return out  # pragma: no cover (the slots never end)


def parse(text: str) -> Cron:
    """A cron expression; InputError (field ``cron``) naming the bad part."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("cron: give 5 fields (minute hour day month weekday) or @every 10m", field="cron")
    src = " ".join(text.split())
    low = src.lower()
    if low.startswith("@every"):
        arg = src[len("@every"):].strip()
        if not arg:
            raise InputError("cron: @every needs a duration, e.g. @every 10m", field="cron")
        seconds = parse_duration(arg, field="cron")
        if seconds < _MIN_EVERY:
            raise InputError(f"cron: @every {arg} is shorter than {_MIN_EVERY:g}s", field="cron")
        return Cron(src, every=seconds)
    if low.startswith("@"):
        if low not in _SHORTHANDS:
            raise InputError(f"cron: unknown shorthand {src!r}; use one of {', '.join(_SHORTHANDS)} or @every D",
                             field="cron")
        return _fields(src, _SHORTHANDS[low])
    return _fields(src, src)


def _fields(text: str, spec: str) -> Cron:
    parts = spec.split()
    if len(parts) != 5:
        raise InputError(f"cron: {text!r} has {len(parts)} field(s); give 5 (minute hour day month weekday)",
                         field="cron")
    sets = [_field(p, *f) for p, f in zip(parts, _FIELDS, strict=True)]
    sets[4] = frozenset(d % 7 for d in sets[4])  # 7 is Sunday too
    full = [frozenset(range(lo, hi + 1)) for _n, lo, hi, _names in _FIELDS]
    full[4] = frozenset(range(7))
    star = parts[2].startswith("*") or parts[4].startswith("*")  # cronie's DOM_STAR / DOW_STAR
    if not star and (sets[2] == full[2] or sets[4] == full[4]):
        sets[2], sets[4] = full[2], full[4]  # either of two restricted fields matching: one matches every day
    spec = " ".join("*" if v == f else ",".join(map(str, sorted(v))) for v, f in zip(sets, full, strict=True))
    return Cron(text, spec, day_or=not star)


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        rng, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise InputError(f"cron: {name} {item!r}: the step after '/' must be a whole number >= 1",
                                 field="cron")
            step = int(step_text)
        if rng == "*":
            start, end = low, high
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start, end = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if start > end:
                raise InputError(f"cron: {name} range {rng!r} runs backwards", field="cron")
        else:
            start = _value(rng, name, low, high, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    t = text.strip().lower()
    if t in names:
        return names[t]
    if not t.isdigit():
        raise InputError(f"cron: {name} {text!r} is not a number"
                         + (f" or a name ({', '.join(names)})" if names else ""), field="cron")
    v = int(t)
    if not low <= v <= high:
        raise InputError(f"cron: {name} {v} is out of range {low}-{high}", field="cron")
    return v
