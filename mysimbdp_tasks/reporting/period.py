"""The period a report covers: ``--since`` / ``--until`` as ISO times or durations back from now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..core.deadletters import parse_since


def parse_time(text: str, now: float) -> float:
    """Epoch seconds of ``text``: ``2h`` means two hours before ``now``; an ISO time without a zone is UTC.

    Raises ValueError saying what was expected (the same forms as ``mysimbdp dead list --since``).
    """
    return parse_since(text, dt.datetime.fromtimestamp(now, dt.UTC)).timestamp()


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
