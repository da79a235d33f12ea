"""Stream ingestion in a worker: write a bridged micro-batch and account for it per window.

Each worker process keeps one reporting window per tenant (in its :mod:`context`, every
``MYSIMBDP_REPORT_EVERY`` seconds). When a window is due it becomes a row of
``<namespace>.stream_ingestion_metrics`` and a ``worker`` report on ``mysimbdp.reports`` (for the
monitor): messages, bytes, average and maximum ingestion time per task, errors, and end-to-end
latency from each message's Kafka timestamp to its write.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from typing import Any

from cassandra.cluster import Session

from ..core.cql import ident
from ..core.errors import RowError
from ..core.names import STREAM_METRICS_TABLE as STREAM_METRICS
from ..core.reports import Report, Window, send_report
from ..core.rows import converter_for
from ..core.tenants import Tenant
from ..services import context

log = logging.getLogger(__name__)

_COLUMNS = ("day", "window_start", "worker", "window_end", "messages", "bytes", "avg_ingest_ms",
            "max_ingest_ms", "errors", "avg_latency_ms", "p95_latency_ms", "max_latency_ms")


def ingest_messages(tenant: Tenant, batch: dict[str, Any]) -> int:
    """Convert and write one micro-batch; returns the rows written."""
    converter = converter_for(tenant)
    rows, errors = [], 0
    for message in batch["messages"]:
        try:
            rows.append(converter.convert(message["data"]))
        except RowError as exc:  # the bridge validated it; only a changed schema gets here
            errors += 1
            log.error("tenant=%s partition=%s offset=%s refused in worker: %s", tenant.name, message.get("p"),
                      message.get("o"), exc)
    t0 = time.perf_counter()
    written = context.sink(tenant).write(rows)
    done = time.time()
    elapsed_ms = (time.perf_counter() - t0) * 1000
    latencies = [done * 1000 - m["ts"] for m in batch["messages"] if m.get("ts")]
    process = context.current()
    with process.lock:
        window = process.windows.get(tenant.name)
        if window is None:
            window = process.windows[tenant.name] = Window("worker", tenant.name, context.settings().report_every,
                                                           start=time.time())
        window.add(written, sum(m.get("n", 0) for m in batch["messages"]), elapsed_ms, latencies_ms=latencies)
        if errors:
            window.add(errors, 0, 0.0, error=True)
        report = window.flush(done) if window.due(done) else None
    if report is not None:
        publish(tenant, report)
    return written


def publish(tenant: Tenant, report: Report) -> None:
    """Write the window's metrics row and send it to the monitor."""
    record_window(context.session(), tenant, report)
    send_report(context.kafka_producer(), report)
    log.info("tenant=%s window messages=%d avg_ingest_ms=%.1f p95_latency_ms=%s errors=%d", tenant.name,
             report.messages, report.avg_ms, report.p95_latency_ms, report.errors)


def record_window(session: Session, tenant: Tenant, report: Report) -> None:
    stmt = session.prepare(
        f"INSERT INTO {ident(tenant.namespace)}.{STREAM_METRICS} ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
    )
    start = dt.datetime.fromtimestamp(report.window_start, dt.UTC)
    end = dt.datetime.fromtimestamp(report.window_end, dt.UTC)
    session.execute(stmt, (
        start.date(), start, f"{socket.gethostname()}:{os.getpid()}", end, report.messages, report.bytes,
        report.avg_ms, report.max_ms, report.errors, report.avg_latency_ms, report.p95_latency_ms,
        report.max_latency_ms,
    ))


def flush_all() -> None:
    """Publish every open window (at process shutdown)."""
    now = time.time()
    process = context.current()
    with process.lock:
        pending = [(name, w.flush(now)) for name, w in process.windows.items()]
        process.windows.clear()
    for name, report in pending:
        if report is not None:
            try:
                publish(context.tenant(name), report)
            except Exception:  # shutting down: a lost window must not hide the exit
                log.exception("tenant=%s last metrics window lost at shutdown", name)
