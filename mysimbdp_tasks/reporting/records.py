"""What a tenant's report is computed from: plain records, read by :mod:`.sources`, used by :mod:`.aggregate`.

Each record is one thing the platform already keeps: a row of ``batch_ingestion_metrics`` (one per
file), a row of ``stream_ingestion_metrics`` (one per worker per window), a line of the tenant's
event log, a dead letter of ``<tenant>.dead``, and today's quota counters from Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileRun:
    """One ingested file (a row of ``batch_ingestion_metrics``); times in epoch seconds."""

    ingest_id: str
    file: str
    size_bytes: int
    started_at: float
    finished_at: float
    rows_ok: int
    rows_refused: int
    status: str  # "done" | "failed"
    reason: str
    duration_ms: float


@dataclass(frozen=True)
class StreamWindow:
    """One worker's reporting window (a row of ``stream_ingestion_metrics``)."""

    worker: str
    window_start: float
    window_end: float
    messages: int  # written to Cassandra
    bytes: int
    errors: int  # dead-lettered by the worker (they are in the dead letters too)
    avg_ingest_ms: float
    max_latency_ms: float | None = None
    latency_buckets: dict[int, int] | None = None  # end-to-end latency histogram (core/histogram.py)


@dataclass(frozen=True)
class DeadLetterRecord:
    """One refused message: when it was refused (the dead letter's Kafka timestamp) and why."""

    ts: float
    reason: str
    detail: str
    source: str = ""  # "<ingest topic>:<partition>:<offset>" it came from, if the letter says


@dataclass(frozen=True)
class QuotaLine:
    """Today's use of one daily limit."""

    what: str  # "files", "MB", "messages"
    used: float
    limit: float


@dataclass
class Inputs:
    """Everything one tenant's report is computed from."""

    tenant: str
    batch: bool  # the tenant has batch settings
    stream: bool
    files: list[FileRun] = field(default_factory=list)
    windows: list[StreamWindow] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # the tenant's event log lines
    dead: list[DeadLetterRecord] = field(default_factory=list)
    quota: list[QuotaLine] = field(default_factory=list)
    quota_day: str = ""  # the UTC day of the counters
