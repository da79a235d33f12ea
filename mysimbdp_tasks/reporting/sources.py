"""Reading a tenant's records for its report: Cassandra's metrics tables, the event log, the dead
letters in Kafka, today's quota counters in Redis. Thin: each function turns one source into the
plain records of :mod:`.records`; everything else is :mod:`.aggregate`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import redis
from cassandra.cluster import Session

from ..core.cql import ident
from ..core.names import BATCH_METRICS_TABLE, STREAM_METRICS_TABLE
from ..core.settings import Settings
from ..core.tenants import MB, Tenant
from ..services import events, replay
from ..services.provisioning import table_columns
from ..services.quotas import Quotas, today
from .period import Period
from .records import DeadLetterRecord, FileRun, Inputs, QuotaLine, StreamWindow

_FILE_COLUMNS = ("ingest_id", "file", "size_bytes", "started_at", "finished_at", "rows_ok", "rows_refused", "status",
                 "reason", "duration_ms")
_WINDOW_COLUMNS = ("worker", "window_start", "window_end", "messages", "bytes", "errors", "avg_ingest_ms",
                   "max_latency_ms")


def gather(settings: Settings, tenant: Tenant, period: Period, session: Session, client: redis.Redis) -> Inputs:
    return Inputs(
        tenant=tenant.name, batch=tenant.batch is not None, stream=tenant.stream is not None,
        files=list(file_runs(session, tenant, period)), windows=list(stream_windows(session, tenant, period)),
        events=events.read_events(settings.logs, tenant.name),
        dead=dead_letters(settings, tenant) if tenant.stream is not None else [],
        quota=quota(client, tenant), quota_day=today(),
    )


def _epoch(value: dt.datetime | None) -> float:
    """The driver returns timestamps as naive datetimes in UTC."""
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def _rows(session: Session, tenant: Tenant, table: str, columns: tuple[str, ...], period: Period) -> Iterator[Any]:
    """The table's rows in the period's days (each day is one partition), or all rows without a start."""
    select = f"SELECT {', '.join(columns)} FROM {ident(tenant.namespace)}.{table}"
    # A row's day is the day its file or window started: one that started the day before the period
    # may still have ended in it.
    days = Period(period.since - 86400, period.until).days() if period.since is not None else None
    if days is None:
        yield from session.execute(select, timeout=60)
        return
    stmt = session.prepare(select + " WHERE day = ?")
    for day in days:
        yield from session.execute(stmt, (day,), timeout=60)


def file_runs(session: Session, tenant: Tenant, period: Period) -> Iterator[FileRun]:
    for r in _rows(session, tenant, BATCH_METRICS_TABLE, _FILE_COLUMNS, period):
        yield FileRun(ingest_id=r.ingest_id, file=r.file or "", size_bytes=r.size_bytes or 0,
                      started_at=_epoch(r.started_at), finished_at=_epoch(r.finished_at), rows_ok=r.rows_ok or 0,
                      rows_refused=r.rows_refused or 0, status=r.status or "", reason=r.reason or "",
                      duration_ms=r.duration_ms or 0.0)


def stream_windows(session: Session, tenant: Tenant, period: Period) -> Iterator[StreamWindow]:
    # A table provisioned before the histogram column existed (until `tenants apply` adds it).
    has_buckets = "latency_buckets" in table_columns(session, tenant.namespace, STREAM_METRICS_TABLE)
    columns = _WINDOW_COLUMNS + (("latency_buckets",) if has_buckets else ())
    for r in _rows(session, tenant, STREAM_METRICS_TABLE, columns, period):
        buckets = getattr(r, "latency_buckets", None)
        yield StreamWindow(worker=r.worker, window_start=_epoch(r.window_start), window_end=_epoch(r.window_end),
                           messages=r.messages or 0, bytes=r.bytes or 0, errors=r.errors or 0,
                           avg_ingest_ms=r.avg_ingest_ms or 0.0, max_latency_ms=r.max_latency_ms,
                           latency_buckets=dict(buckets) if buckets else None)


def dead_letters(settings: Settings, tenant: Tenant) -> list[DeadLetterRecord]:
    """The tenant's dead letters (``<tenant>.dead``, read to its end as ``mysimbdp dead list`` does)."""
    return [DeadLetterRecord(ts=x.timestamp_ms / 1000, reason=x.reason, detail=x.detail, source=x.source)
            for x in replay.read(settings, tenant.name)]


def quota(client: redis.Redis, tenant: Tenant) -> list[QuotaLine]:
    """Today's use of each daily limit the tenant has."""
    used = Quotas(client).usage(tenant.name)
    lines = []
    if tenant.batch:
        lines.append(QuotaLine("files", used["files"], tenant.batch.max_files_per_day))
        lines.append(QuotaLine("MB", round(used["bytes"] / MB, 3), round(tenant.batch.max_bytes_per_day / MB, 3)))
    if tenant.stream:
        lines.append(QuotaLine("messages", used["messages"], tenant.stream.max_messages_per_day))
    return lines
