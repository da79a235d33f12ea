"""The period a report covers: ``--since`` / ``--until`` as ISO times or durations back from now."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXAMPLES = "a duration back from now (30m, 2h, 1d, 90s, 1w) or an ISO time (2026-12-06T14:00, 2026-12-06)"


def parse_time(text: str, now: float) -> float:
    """Epoch seconds of ``text``: ``2h`` means two hours before ``now``; an ISO time without a zone is UTC.

    Raises ValueError saying what was expected.
    """
    found = _DURATION.match(text)
    if found:
        return now - float(found.group(1)) * _UNIT_S[found.group(2).lower()]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected {EXAMPLES}; got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


@dataclass(frozen=True)
class Period:
    """``since`` (None: from the start of the records) up to ``until``, in epoch seconds."""

    since: float | None
    until: float

    @classmethod
    def of(cls, since: str | None, until: str | None, now: float) -> Period:
        start = parse_time(since, now) if since else None
        end = parse_time(until, now) if until else now
        if start is not None and start >= end:
            raise ValueError(f"--since ({iso(start)}) must be before --until ({iso(end)})")
        return cls(start, end)

    def holds(self, ts: float | None) -> bool:
        return ts is not None and (self.since is None or ts >= self.since) and ts <= self.until

    def days(self) -> list[dt.date] | None:
        """The UTC days the period touches, or None when it has no start (every day)."""
        if self.since is None:
            return None
        first = dt.datetime.fromtimestamp(self.since, dt.UTC).date()
        last = dt.datetime.fromtimestamp(self.until, dt.UTC).date()
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def to_json(self) -> dict[str, str | None]:
        return {"since": iso(self.since) if self.since is not None else None, "until": iso(self.until)}


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
