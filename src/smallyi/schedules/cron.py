"""Cron expressions: 5 fields, ``@every 10m`` and the ``@daily``-style shorthands, in a time zone. Pure.

Fields are minute, hour, day of month, month (1-12 or jan-dec), day of week (0-7 or sun-sat, 0 and
7 are Sunday); each takes ``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, ``a/n`` and lists ``a,b``. When
both day fields are restricted, a day matching either runs (as Vixie cron). Times are wall-clock in
the schedule's zone: a time skipped by a DST jump does not run that day; a time repeated by a DST
fall-back runs once, the first time. ``@every D`` slots are multiples of D since the Unix epoch, the
same in every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()  # 0 = Monday, as datetime.weekday()
    dom_any: bool = True
    dow_any: bool = True
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
        local = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = local + timedelta(days=_HORIZON_DAYS)
        t = local
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            aware = t.replace(tzinfo=tz)
            utc = aware.astimezone(UTC)
            exists = utc.astimezone(tz).replace(tzinfo=None) == t
            if exists and utc > after:
                return utc
            t += timedelta(minutes=1)
        raise InputError(f"cron: {self.text!r} has no time in the next five years", field="cron")

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = t.weekday() in self.weekdays
        if self.dom_any and self.dow_any:
            return True
        if self.dom_any:
            return dow
        if self.dow_any:
            return dom
        return dom or dow

    def slots(self, after: datetime, until: datetime, tz: ZoneInfo, *, limit: int = 1000) -> list[datetime]:
        """Slots in ``(after, until]``, at most ``limit`` (the latest ones when there are more)."""
        out: list[datetime] = []
        if self.every:
            first = int(after.timestamp() // self.every) + 1
            last = int(until.timestamp() // self.every)
            start = max(first, last - limit + 1)
            return [datetime.fromtimestamp(k * self.every, UTC) for k in range(start, last + 1)]
        t = after
        while True:
            t = self.next_after(t, tz)
            if t > until:
                return out
            out.append(t)
            if len(out) > limit:
                out.pop(0)


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
    weekdays = frozenset((d - 1) % 7 for d in sets[4])  # cron: 0/7 Sunday; datetime: 6 Sunday
    return Cron(text, sets[0], sets[1], sets[2], sets[3], weekdays,
                dom_any=parts[2].startswith("*"), dow_any=parts[4].startswith("*"))


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
