"""Dead letters as read back from ``<tenant>.dead``: what each says, and which ones a replay chooses.

Pure: records in, letters and choices out. A record is anything with kafka-python's
``ConsumerRecord`` fields (partition, offset, timestamp, key, value, headers). The headers are the
ones :mod:`mysimbdp_tasks.services.deadletters` writes; a letter missing some (written by hand, or by
an older version) is still read, with what it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

REF = re.compile(r"^(\d{1,9}):(\d{1,19})\Z")
DURATION = re.compile(r"^(\d{1,9})\s*([smhd])\Z")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Letter:
    """One dead letter: where it sits in the dead topic, the original message and why it was refused."""

    partition: int  # of the dead topic
    offset: int
    timestamp_ms: int  # when it was dead-lettered
    key: bytes | None
    value: bytes | None  # the original payload, byte for byte
    reason: str
    detail: str
    source: str  # "<ingest topic>:<partition>:<offset>" it came from, or "" if not said
    replay_of: str  # the dead letter this message was a replay of, or ""
    cut_from: int = 0  # the original payload's size when it was kept cut to fit the dead topic, else 0

    @property
    def ref(self) -> str:
        """How a user names it: ``<partition>:<offset>`` in the tenant's dead topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def at(self) -> str:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC).isoformat(timespec="seconds")

    def to_dict(self, payload: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "at": self.at, "reason": self.reason, "detail": self.detail,
                               "source": self.source, "replay_of": self.replay_of,
                               "key": _text(self.key), "bytes": len(self.value or b"")}
        if self.cut_from:
            out["cut_from_bytes"] = self.cut_from
        if payload:
            out["value"] = _text(self.value)
        return out


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def _header(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> str:
    for key, value in headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "backslashreplace")
    return ""


def letter(record: Any) -> Letter:
    """The letter a dead-topic record holds."""
    h = record.headers
    source = ""
    if _header(h, "source_topic"):
        source = f"{_header(h, 'source_topic')}:{_header(h, 'source_partition')}:{_header(h, 'source_offset')}"
    return Letter(partition=record.partition, offset=record.offset, timestamp_ms=record.timestamp or 0,
                  key=record.key, value=record.value, reason=_header(h, "reason") or "unknown",
                  detail=_header(h, "detail"), source=source, replay_of=_header(h, "replay_of"),
                  cut_from=_size(_header(h, "value_bytes")) or _size(_header(h, "key_bytes")))


def _size(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 19 else 0


def parse_ref(text: str) -> str:
    """``3:01207`` -> ``3:1207``; anything else is a ValueError saying what was expected."""
    m = REF.match(text.strip())
    if not m:
        raise ValueError(f"dead letter {text!r}: expected <partition>:<offset> of the dead topic, e.g. 0:42")
    return f"{int(m.group(1))}:{int(m.group(2))}"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A point in time: a duration back from now (``30m``, ``2h``, ``1d``, ``45s``) or an ISO 8601 time
    (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    raw = text.strip()
    m = DURATION.match(raw)
    if m:
        return now - timedelta(seconds=int(m.group(1)) * UNITS[m.group(2)])
    try:
        when = datetime.fromisoformat(raw)  # takes "Z" since Python 3.11
    except ValueError:
        raise ValueError(f"{text!r}: expected a duration such as 30m, 2h or 1d, or an ISO time such as "
                          "2026-12-06T08:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Choice:
    """Which dead letters a command is about; every given condition must hold."""

    reasons: frozenset[str] = frozenset()
    since: datetime | None = None
    refs: frozenset[str] = frozenset()

    def wants(self, item: Letter) -> bool:
        if self.reasons and item.reason not in self.reasons:
            return False
        if self.refs and item.ref not in self.refs:
            return False
        return self.since is None or item.timestamp_ms >= self.since.timestamp() * 1000


def choose(letters: Iterable[Letter], choice: Choice) -> list[Letter]:
    return [x for x in letters if choice.wants(x)]
