"""Ingestion windows: when a tenant's batch files may run, in UTC.

A tenant's ``windows`` is a list of ranges ``"[DAYS ]HH:MM[:SS]-HH:MM[:SS]"``: ``"22:00-06:00"``
(every night, across midnight), ``"mon-fri 18:30-23:00"``, ``"sat,sun 00:00-24:00"``. A range
includes its start and excludes its end; one that ends before it starts runs past midnight, and its
days name the day it starts. No windows means always open. Pure: no clock but the one given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SECONDS = 86400
_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_RANGE = re.compile(rf"^(?:(?P<days>[a-z,\-]+)\s+)?{_TIME}\s*-\s*{_TIME}\Z")
FORM = '"[days ]HH:MM-HH:MM" in UTC, e.g. "22:00-06:00" or "mon-fri 18:30-23:00"'


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # weekday numbers (Monday 0) on which the range starts
    start: int  # seconds since midnight
    end: int  # seconds since midnight, 1..86400; end <= start runs past midnight
    text: str

    @property
    def length(self) -> int:
        return self.end - self.start if self.end > self.start else DAY_SECONDS - self.start + self.end

    def opened_before(self, now: datetime) -> datetime | None:
        """The start of this window's occurrence that contains ``now``, if one does."""
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for back in (0, 1):  # today's occurrence, or yesterday's running past midnight
            begin = midnight - timedelta(days=back) + timedelta(seconds=self.start)
            if begin.weekday() in self.days and begin <= now < begin + timedelta(seconds=self.length):
                return begin
        return None

    def next_start(self, now: datetime) -> datetime:
        """The first start of this window strictly after ``now``."""
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for ahead in range(8):
            begin = midnight + timedelta(days=ahead, seconds=self.start)
            if begin > now and begin.weekday() in self.days:
                return begin
        raise AssertionError("a window opens at least once a week")  # days is never empty


def _seconds(h: str, m: str, s: str | None, end: bool) -> int:
    hours, minutes, secs = int(h), int(m), int(s or 0)
    if minutes > 59 or secs > 59 or hours > 24 or (hours == 24 and (minutes or secs)) or (hours == 24 and not end):
        raise ValueError("a time of day is HH:MM or HH:MM:SS from 00:00 to 24:00 (24:00 only as an end)")
    return hours * 3600 + minutes * 60 + secs


def _days(text: str | None) -> frozenset[int]:
    if not text:
        return frozenset(range(7))
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"days are {', '.join(DAYS)}, as a list (sat,sun) or a range (mon-fri); got {part!r}")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(out)


def parse(text: object) -> Window:
    """One range; ValueError saying what is expected otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string {FORM}, got {type(text).__name__}")
    m = _RANGE.match(text.strip().lower())
    if not m:
        raise ValueError(f"expected {FORM}, got {text!r}")
    g = m.groups()
    try:
        days = _days(m.group("days"))
        start, end = _seconds(g[1], g[2], g[3], end=False), _seconds(g[4], g[5], g[6], end=True)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if start == end:
        raise ValueError(f"{text!r} is empty (it starts where it ends); 00:00-24:00 is the whole day")
    return Window(days, start, end, text.strip())


def is_open(windows: Sequence[Window], now: datetime) -> bool:
    return not windows or any(w.opened_before(now) is not None for w in windows)


def next_open(windows: Sequence[Window], now: datetime) -> datetime:
    """``now`` if a window is open, else when the first one opens."""
    if is_open(windows, now):
        return now
    return min(w.next_start(now) for w in windows)


def parse_all(raw: object, bad: Callable[[str, str], None]) -> tuple[Window, ...]:
    """A tenant's ``windows`` list; each problem goes to ``bad(path, message)`` (see core.tenants)."""
    if not isinstance(raw, list):
        bad("windows", f"expected a list of ranges {FORM}")
        return ()
    out = []
    for i, text in enumerate(raw):
        try:
            out.append(parse(text))
        except ValueError as exc:
            bad(f"windows[{i}]", str(exc))
    return tuple(out)
