"""Stream ingestion in a worker: write a bridged micro-batch and account for it per window.

Every message of a micro-batch ends in Cassandra or as a dead letter on ``<tenant>.dead`` (the
same headers as the bridge's): one that no longer converts (the schema changed since the bridge
validated it) or whose row Cassandra refuses for good (a key over 65,535 bytes, a mutation too
large: the sink splits the write down to that row), and all of them when the batch fails for a
reason retrying cannot cure (:func:`give_up`). Only then is the batch marked done
(:mod:`~mysimbdp_tasks.services.completions`), which lets the bridge commit its offsets. A
service away (Cassandra, Redis, Kafka) raises instead, and the task retries.

Each worker process keeps one reporting window per tenant (in its :mod:`context`, every
``MYSIMBDP_REPORT_EVERY`` seconds). When a window is due it becomes a row of
``<namespace>.stream_ingestion_metrics`` and a ``worker`` report on ``mysimbdp.reports`` (for the
monitor): messages, bytes, average and maximum ingestion time per task, errors, and end-to-end
latency from each message's Kafka timestamp to its write (with its histogram, in the row). A
thread of each process (:func:`_flush_idle`) publishes a window that is due even when no further
batch comes, so the metrics table counts every written message within a window or two.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import Any

from cassandra.cluster import Session

from ..core import deliveries, sinks
from ..core.convert import RowConverter
from ..core.cql import ident
from ..core.errors import RowError, UnknownSinkError
from ..core.names import STREAM_METRICS_TABLE as STREAM_METRICS
from ..core.quality import Checker, merge
from ..core.reports import Report, Window, send_report
from ..core.rows import checked, no_collections
from ..core.tenants import Tenant
from ..services import completions, context, deadletters, outputs, quality_metrics, telemetry
from ..services.deadletters import DeadLetter
from . import wire
from .messages import loads

log = logging.getLogger(__name__)

_COLUMNS = ("day", "window_start", "worker", "window_end", "messages", "bytes", "avg_ingest_ms",
            "max_ingest_ms", "errors", "avg_latency_ms", "p95_latency_ms", "max_latency_ms", "latency_buckets")


def ingest_messages(tenant_name: str, batch: dict[str, Any], task_id: str, send: outputs.Send | None = None) -> int:
    """Write one micro-batch, dead-letter what cannot be written, mark it done; returns the rows written."""
    tenant = context.tenant(tenant_name)
    columns = wire.columns(batch)
    sink = context.sink(tenant)
    converter, check = checked(tenant, sink.encoder)  # with quality rules, values the rules read
    with no_collections():  # a micro-batch makes no cycles: as a batch chunk (core/rows.py)
        rows, kept, records, refused = _rows(converter, columns["v"], check, keep_records=bool(tenant.sinks))
        letters = [wire.letter_at(columns, index, reason, detail) for index, reason, detail in refused]
        t0 = time.perf_counter()
        routes = _routes(tenant, columns, kept, records, letters) if tenant.sinks else None
        gone: set[int] = set()

        def refuse(position: int, reason: str, detail: str) -> None:
            gone.add(position)
            letters.append(wire.letter_at(columns, kept[position], reason, detail))

        # The sink calls back (possibly from the driver's threads) for each row Cassandra refuses for good.
        if routes is None:
            written = sink.write(rows, refuse=refuse)
        else:
            primary = [i for i, targets in enumerate(routes) if sinks.routed(targets, sinks.PRIMARY)]
            written = sink.write([rows[i] for i in primary], refuse=lambda p, r, d: refuse(primary[p], r, d))
            _fan_out(tenant, records, routes, gone, task_id, send)
        del rows
    done = time.time()
    elapsed_ms = (time.perf_counter() - t0) * 1000
    deadletters.send_all(context.kafka_producer(), tenant.name, letters)
    completions.mark_done(context.redis_client(), task_id)
    now_ms = done * 1000
    latencies = waits_ms(columns["ts"], now_ms)
    telemetry.messages_written(tenant.name, written, latencies, (letter.reason for letter in letters))
    if check is not None:
        telemetry.quality_checked(tenant.name, "stream", tenant.quality.actions, check.counts())
    _account(tenant, written, columns["n"], elapsed_ms, latencies, len(letters), done,
             check.counts() if check is not None else None)
    return written


def waits_ms(timestamps: list[int], now_ms: float) -> list[float]:
    """How long each message waited, from its Kafka timestamp. That time is its producer's to set:
    one from the future counts as no wait (a negative one would get the whole report refused)."""
    return [max(0.0, now_ms - ts) for ts in timestamps if ts]


def _rows(converter: RowConverter, values: list[str], check: Checker | None = None, keep_records: bool = True
          ) -> tuple[list[Any], list[int], list[Any], list[tuple[int, str, str]]]:
    """The rows to write, the index of each one's message (and, ``keep_records``, its decoded record),
    and (index, reason, detail) of the messages that do not convert or fail a ``refuse`` quality
    rule (reason ``quality:<rule>``)."""
    rows: list[Any] = []
    kept: list[int] = []
    records: list[Any] = []
    refused: list[tuple[int, str, str]] = []
    decode, convert = loads, converter.convert
    for index, value in enumerate(values):
        try:
            record = decode(value)
            row = convert(record)
            if check is not None:
                refusal = check(row)
                if refusal is not None:
                    refused.append((index, *refusal))
                    continue
            rows.append(row)
            kept.append(index)
            if keep_records:
                records.append(record)
        except RowError as exc:  # the bridge validated it; only a changed schema gets here
            refused.append((index, exc.reason, exc.detail))
        except Exception as exc:  # noqa: BLE001 - whatever one message triggers is its fault alone
            refused.append((index, "unusable_message", f"{type(exc).__name__}: {str(exc)[:200]}"))
    return rows, kept, records, refused


def _routes(tenant: Tenant, columns: dict[str, Any], kept: list[int], records: list[Any], letters: list[DeadLetter]
            ) -> list[frozenset[str] | None]:
    """The sinks each message asks for (None: all); one naming a sink the tenant lacks is dead-lettered
    (the bridge checked, so only a config changed since gets here) and goes nowhere."""
    routes: list[frozenset[str] | None] = []
    for index, record in zip(kept, records, strict=True):
        try:
            routes.append(sinks.route(record, tenant.sinks))
        except UnknownSinkError as exc:
            letters.append(wire.letter_at(columns, index, exc.reason, exc.detail))
            routes.append(frozenset())
    return routes


def _fan_out(tenant: Tenant, records: list[Any], routes: list[frozenset[str] | None], gone: set[int],
             task_id: str, send: outputs.Send | None) -> None:
    """The accepted messages' records, to each extra sink they are routed to."""
    kept = [(r, targets) for i, (r, targets) in enumerate(zip(records, routes, strict=True))
            if i not in gone and targets != frozenset()]
    routed = {s.name: [r for r, targets in kept if sinks.routed(targets, s.name)] for s in tenant.sinks}
    outputs.fan_out(tenant, routed, task_id.replace(":", "_").replace("/", "_"), deliveries.today(), send)


def give_up(tenant_name: str, batch: dict[str, Any], task_id: str, exc: BaseException) -> None:
    """The micro-batch failed for a reason retrying cannot cure: dead-letter all of it, mark it done."""
    messages = wire.messages(batch)
    log.error("tenant=%s task=%s stream batch of %d messages failed in the worker; dead-lettering it: %s: %s",
              tenant_name, task_id, len(messages), type(exc).__name__, str(exc)[:300])
    letters = wire.given_up(messages, exc)
    deadletters.send_all(context.kafka_producer(), tenant_name, letters)
    telemetry.messages_refused(tenant_name, (letter.reason for letter in letters))
    completions.mark_done(context.redis_client(), task_id)


def _account(tenant: Tenant, written: int, size: int, elapsed_ms: float, latencies: list[float], errors: int,
             now: float, quality: dict[str, Any] | None = None) -> None:
    process = context.current()
    with process.lock:
        if quality is not None:
            process.quality[tenant.name] = merge([process.quality.get(tenant.name), quality])
        window = process.windows.get(tenant.name)
        if window is None:
            window = process.windows[tenant.name] = Window("worker", tenant.name, context.settings().report_every,
                                                           start=time.time())
            _ensure_flusher(process)
        window.add(written, size, elapsed_ms, latencies_ms=latencies)
        if errors:
            window.add(errors, 0, 0.0, error=True)
        report = window.flush(now) if window.due(now) else None
    if report is None:
        return
    try:
        publish(tenant, report)
    except Exception as exc:  # noqa: BLE001 - the batch is written and done; only this window's report is lost
        log.warning("tenant=%s metrics window %.0f-%.0f lost (%s: %s)", tenant.name, report.window_start,
                    report.window_end, type(exc).__name__, exc)


def publish(tenant: Tenant, report: Report) -> None:
    """Write the window's metrics row (and its quality counts, if any) and send it to the monitor."""
    record_window(context.session(), tenant, report)
    process = context.current()
    with process.lock:
        counts = process.quality.pop(tenant.name, None)
    if counts:
        quality_metrics.record(context.session(), tenant, "stream", _worker(), report.window_start, counts)
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
        start.date(), start, _worker(), end, report.messages, report.bytes,
        report.avg_ms, report.max_ms, report.errors, report.avg_latency_ms, report.p95_latency_ms,
        report.max_latency_ms, report.latency_buckets,
    ))


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _ensure_flusher(process: context.Process) -> None:
    """Start this process's idle-window flusher once (a forked child starts its own; called under the lock)."""
    if process.flusher is None or not process.flusher.is_alive():
        process.flusher = threading.Thread(target=_flush_idle, args=(process,), name="metrics-windows", daemon=True)
        process.flusher.start()


def _flush_idle(process: context.Process) -> None:
    interval = context.settings().report_every
    while True:
        time.sleep(interval / 2)
        now = time.time()
        with process.lock:
            due = [(name, w.flush(now)) for name, w in process.windows.items() if w.due(now)]
        for name, report in due:
            if report is None:
                continue
            try:
                publish(context.tenant(name), report)
            except Exception as exc:  # noqa: BLE001 - a service away: this window's row is lost, the next comes
                log.warning("tenant=%s metrics window %.0f-%.0f lost (%s: %s)", name, report.window_start,
                            report.window_end, type(exc).__name__, exc)


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
