"""Performance reports: what clients, the bridge and workers tell the monitor about one window.

Every reporter sends one ``Report`` per reporting window, keyed by tenant, as a small JSON object:
bridges and workers to ``mysimbdp.reports``, a tenant's clients to ``<tenant>.reports``.
``Window`` accumulates one window's numbers and turns them into a report; it does no I/O and takes
the time as an argument, so it is tested with a fake clock.

Meaning of the timing fields by source:

- ``client``: ``avg_ms`` / ``max_ms`` are the send latency, from ``send()`` until the broker acked.
- ``bridge``: ``lag`` is the number of messages waiting in the tenant's topic.
- ``worker``: ``avg_ms`` / ``max_ms`` are the ingestion time of one task; ``*_latency_ms`` are
  end to end, from the message's Kafka timestamp until its row was written, and
  ``latency_buckets`` is their histogram (:mod:`.histogram`), kept in the worker's metrics row for
  the per-tenant report; it does not travel to the monitor.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from . import histogram
from .names import REPORTS_TOPIC as REPORTS

SOURCES = ("client", "bridge", "worker")
RESERVOIR_SIZE = 10_000


@dataclass(frozen=True)
class Report:
    source: str  # "client" | "bridge" | "worker"
    tenant: str
    window_start: float  # epoch seconds
    window_end: float
    messages: int
    bytes: int
    avg_ms: float
    max_ms: float
    errors: int
    lag: int | None = None
    avg_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    max_latency_ms: float | None = None
    host: str = ""
    pid: int = 0
    latency_buckets: dict[int, int] | None = field(default=None, compare=False)  # not on the wire

    def to_json(self) -> builtins.bytes:
        wire = {k: v for k, v in asdict(self).items() if k not in _LOCAL}
        return json.dumps(wire, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: builtins.bytes | str | None) -> Report:
        """Parse and validate a report; raise ValueError naming the field and what was expected.

        Fields this version does not know are ignored, so a newer reporter can add one without
        breaking an older monitor.
        """
        if not isinstance(data, (builtins.bytes, str)):  # a tombstone (None) or worse
            raise ValueError(f"report: expected JSON text, got {type(data).__name__}")
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"report: not valid JSON: {e}") from None
        except RecursionError:
            raise ValueError("report: not valid JSON: nested too deeply") from None
        except ValueError as e:  # e.g. an integer of more digits than int() accepts
            raise ValueError(f"report: not valid JSON: {str(e)[:200]}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"report: expected a JSON object, got {type(obj).__name__}")
        values = {f.name: _field(obj, f.name) for f in fields(cls)
                  if f.name not in _LOCAL and (f.name in obj or f.name in _REQUIRED)}
        report = cls(**values)
        if report.source not in SOURCES:
            raise ValueError(f"report.source: unknown source {report.source!r}; expected one of {', '.join(SOURCES)}")
        if not report.tenant:
            raise ValueError("report.tenant: must not be empty")
        if len(report.tenant) > MAX_TENANT_CHARS:  # no tenant is named so; it would flood the logs
            raise ValueError(f"report.tenant: longer than {MAX_TENANT_CHARS} characters")
        if report.window_end < report.window_start:
            raise ValueError(f"report.window_end: {report.window_end} is before window_start {report.window_start}")
        return report


_INT, _FLOAT, _STR = "an integer", "a number", "a string"
_KINDS: dict[str, str] = {
    "source": _STR, "tenant": _STR, "window_start": _FLOAT, "window_end": _FLOAT, "messages": _INT,
    "bytes": _INT, "avg_ms": _FLOAT, "max_ms": _FLOAT, "errors": _INT, "lag": _INT,
    "avg_latency_ms": _FLOAT, "p95_latency_ms": _FLOAT, "max_latency_ms": _FLOAT, "host": _STR, "pid": _INT,
}
_LOCAL = frozenset({"latency_buckets"})  # kept by the reporter, never sent
_OPTIONAL = frozenset({"lag", "avg_latency_ms", "p95_latency_ms", "max_latency_ms"})
_REQUIRED = frozenset(_KINDS) - _OPTIONAL - {"host", "pid"}
_NON_NEGATIVE = frozenset({"messages", "bytes", "errors", "lag", "avg_ms", "max_ms", "avg_latency_ms",
                           "p95_latency_ms", "max_latency_ms"})


# Larger numbers mean a broken or hostile reporter: no window holds 2**63 messages. The bound also
# keeps every value convertible to float (ints of hundreds of digits are not).
MAX_NUMBER = float(2**63)
MAX_TENANT_CHARS = 100


def _shown(value: Any) -> str:
    """A short picture of a value for an error message: a hostile one may be huge or deep."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)[:80]


def _field(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj:
        raise ValueError(f"report.{name}: missing (expected {_KINDS[name]})")
    value = obj[name]
    if value is None and name in _OPTIONAL:
        return None
    kind = _KINDS[name]
    if kind == _STR:
        ok = isinstance(value, str)
    elif kind == _INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        # Not NaN or infinity; an int too large for a float is caught by the range check below.
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            not isinstance(value, float) or math.isfinite(value))
    if ok and kind != _STR and not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise ValueError(f"report.{name}: {_shown(value)} is out of range (at most {MAX_NUMBER:.0e})")
    if not ok:
        raise ValueError(f"report.{name}: expected {kind}, got {_shown(value)}")
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError(f"report.{name}: must not be negative, got {value!r}")
    return float(value) if kind == _FLOAT else value


class Reservoir:
    """A uniform random sample of at most ``size`` values, for percentiles.

    Li's algorithm L: once the sample is full, the number of values to pass over before the next
    one is kept is drawn at once, so a window of a million latencies costs a few thousand random
    numbers rather than a million (the sample is as uniform as with Vitter's algorithm R).
    """

    def __init__(self, size: int = RESERVOIR_SIZE, rng: random.Random | None = None) -> None:
        if size < 1:
            raise ValueError(f"reservoir size must be positive, got {size}")
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = rng or random.Random()
        self._w = 1.0
        self._next = 0  # the count of values seen at which the next one is kept (once full)

    def _skip(self) -> None:
        """Draw how far the next kept value is (called when the sample is full and one was kept)."""
        rand = self._rng.random
        self._w *= math.exp(math.log(1.0 - rand()) / self.size)
        # 1 - w is 0.0 only after ~2**53 values; the log of 0 would raise, so there keep every value.
        gap = math.log(1.0 - rand()) / math.log(1.0 - self._w) if self._w < 1.0 else 0.0
        self._next = self.seen + int(gap) + 1

    def add(self, value: float) -> None:
        self.extend((value,))

    def extend(self, values: Sequence[float]) -> None:
        """Add each of ``values`` in turn."""
        room = self.size - len(self.values)
        if room > 0:
            taken = values[:room]
            self.values.extend(taken)
            self.seen += len(taken)
            values = values[room:]
            if len(self.values) == self.size:
                self._skip()
        start, end = self.seen, self.seen + len(values)
        while self._next <= end and values:
            self.values[self._rng.randrange(self.size)] = values[self._next - start - 1]
            self.seen = self._next
            self._skip()
        self.seen = end

    def percentile(self, q: float) -> float | None:
        """The nearest-rank ``q``-th percentile (0 < q <= 100) of the sample, or None if empty."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]


class Window:
    """The numbers of one reporting window of one reporter; ``flush`` turns them into a Report.

    ``add`` records one unit of work: a message acked (clients) or a task done (workers). With
    ``error=True`` the unit failed: its messages (at least one) count as errors and nothing else is
    recorded, so the averages describe successful work only. Not thread-safe: callers that add from
    several threads hold a lock.
    """

    def __init__(self, source: str, tenant: str, interval: float = 5.0, *, start: float,
                 emit_empty: bool = False, reservoir_size: int = RESERVOIR_SIZE,
                 rng: random.Random | None = None, host: str | None = None, pid: int | None = None) -> None:
        if source not in SOURCES:
            raise ValueError(f"unknown report source {source!r}; expected one of {', '.join(SOURCES)}")
        if interval <= 0:
            raise ValueError(f"report interval must be positive, got {interval}")
        self.source, self.tenant, self.interval, self.emit_empty = source, tenant, interval, emit_empty
        self.host = socket.gethostname() if host is None else host
        self.pid = os.getpid() if pid is None else pid
        self._reservoir_size, self._rng = reservoir_size, rng
        self._reset(start)

    def _reset(self, start: float) -> None:
        self.start = start
        self.messages = self.bytes = self.errors = self.units = 0
        self.total_ms = self.max_ms = 0.0
        self.latencies = Reservoir(self._reservoir_size, self._rng)
        self.latency_sum = self.latency_max = 0.0
        self.latency_buckets: dict[int, int] = {}

    def add(self, n_messages: int, n_bytes: int, elapsed_ms: float, error: bool = False,
            latencies_ms: Sequence[float] = ()) -> None:
        if error:
            self.errors += max(n_messages, 1)
            return
        self.units += 1
        self.messages += n_messages
        self.bytes += n_bytes
        self.total_ms += elapsed_ms
        self.max_ms = max(self.max_ms, elapsed_ms)
        if latencies_ms:
            self.latencies.extend(latencies_ms)
            self.latency_sum += sum(latencies_ms)
            self.latency_max = max(self.latency_max, max(latencies_ms))
            histogram.add(self.latency_buckets, latencies_ms)

    @property
    def empty(self) -> bool:
        return not (self.units or self.errors)

    def due(self, now: float) -> bool:
        return now - self.start >= self.interval

    def flush(self, now: float, lag: int | None = None) -> Report | None:
        """The report of the window that ends at ``now``; a new window starts at ``now``.

        Returns None when nothing happened, unless ``emit_empty`` (a bridge reports its lag even
        when no message came) or a ``lag`` is given.
        """
        if self.empty and not self.emit_empty and lag is None:
            self._reset(now)
            return None
        n = self.latencies.seen
        report = Report(
            source=self.source, tenant=self.tenant, window_start=self.start, window_end=max(now, self.start),
            messages=self.messages, bytes=self.bytes, avg_ms=self.total_ms / self.units if self.units else 0.0,
            max_ms=self.max_ms, errors=self.errors, lag=lag,
            avg_latency_ms=self.latency_sum / n if n else None, p95_latency_ms=self.latencies.percentile(95),
            max_latency_ms=self.latency_max if n else None, host=self.host, pid=self.pid,
            latency_buckets=dict(self.latency_buckets) if n else None,
        )
        self._reset(now)
        return report


class Producer(Protocol):
    """The part of kafka-python's KafkaProducer that ``send_report`` uses."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any: ...


def send_report(producer: Producer, report: Report, topic: str = REPORTS) -> Any:
    """Send ``report`` to the reports topic keyed by tenant; returns the producer's future."""
    return producer.send(topic, value=report.to_json(), key=report.tenant.encode("utf-8"))
