"""Deliver accepted rows to a tenant's extra sinks (core/sinks.py), each on its own.

The tenant's own table is written first, by the caller, as before: it is the record of what
landed. Then each extra sink gets the rows routed to it, in the same task (:func:`fan_out`). A sink
that is away (a transient failure: Kafka or Cassandra unreachable, a topic gone) does not hold the
others up: its rows are sent as a task of their own (``mysimbdp.deliver_rows``, the per-sink outbox),
retried with backoff until the sink is back, and the others are already done. A sink that refuses
the rows for good (a permanent failure) gets them kept aside as JSON under
``<home>/sinks-failed/<tenant>/<sink>/<origin>.json``: nothing is lost.

Exactly once per key where the sink is idempotent (Cassandra upserts; a lake part is renamed into
place under a name fixed by the delivery's origin, so a repeat replaces it), at least once with the
``_key`` dedupe key for Kafka.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from ..core import deliveries, sinks
from ..core.convert import RowConverter
from ..core.errors import PermanentIngestError, RowError, TransientIngestError
from ..core.sinks import SinkSpec
from ..core.tenants import Tenant
from ..security import tls
from . import cassandra, context, deadletters, telemetry
from .sink import Sink

log = logging.getLogger(__name__)

DELIVER_ROWS = "mysimbdp.deliver_rows"  # deliver one delivery to one sink, retried on its own
FAILED = "sinks-failed"
KAFKA_BLOCK_MS = 5000  # a topic gone blocks a send this long for metadata, then fails (and the task retries)
KAFKA_ACK_S = 30.0
AWAY_S = 30.0  # after a transient failure, a sink's rows go straight to their own task this long

Send = Callable[..., Any]  # Celery's send_task


class _Cache(dict[str, Any]):
    """This process's extra-sink clients, dropped with its connections after fork (context.reset)."""


def _cache() -> _Cache:
    process = context.current()
    with process.lock:
        found = process.helpers.get(_Cache)
        if found is None:
            found = process.helpers[_Cache] = _Cache()
        return found


def _producer() -> KafkaProducer:
    cache = _cache()
    with context.current().lock:
        if "kafka" not in cache:
            settings = context.settings()
            cache["kafka"] = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=20,
                                           max_block_ms=KAFKA_BLOCK_MS, client_id=f"mysimbdp-sinks-{os.getpid()}",
                                           **tls.kafka_options(settings, "platform:worker"))
        return cache["kafka"]


def table_tenant(tenant: Tenant, spec: SinkSpec) -> Tenant:
    """The tenant as a cassandra sink's table sees it: same keyspace and columns, its own table and key."""
    return dataclasses.replace(tenant, table_name=spec.table, key=spec.key or tenant.key)


def _table(tenant: Tenant, spec: SinkSpec) -> Sink:
    cache = _cache()
    key = f"table:{tenant.name}:{spec.name}:{tenant.to_json()}"
    with context.current().lock:
        if key not in cache:
            cache[key] = Sink(context.session(), table_tenant(tenant, spec))
        return cache[key]


def _attempt(tenant: Tenant, spec: SinkSpec, delivery: Mapping[str, Any]) -> int:
    """:func:`_write`, unless the sink failed transiently in this process less than ``AWAY_S`` ago.

    Then its rows go straight to their own task, without waiting ``KAFKA_BLOCK_MS`` (or the
    driver's timeouts) once more: while a sink is away, one attempt per process per ``AWAY_S``
    probes it, and the chunks and micro-batches of the tenant are not held up by it.
    """
    cache, mark = _cache(), f"away:{tenant.name}:{spec.name}"
    left = cache.get(mark, 0.0) - time.monotonic()
    if left > 0:
        message = (f"sink {spec.name} of tenant {tenant.name} failed less than {AWAY_S:.0f} s ago; "
                   f"next try in {left:.0f} s")
        raise KafkaTimeoutError(message) if spec.kind == "kafka" else TransientIngestError(message)
    try:
        written = _write(tenant, spec, delivery)
    except Exception as exc:
        if transient(exc):
            cache[mark] = time.monotonic() + AWAY_S
        raise
    cache.pop(mark, None)
    return written


def _write(tenant: Tenant, spec: SinkSpec, delivery: Mapping[str, Any]) -> int:
    """Write one delivery to one sink; return the rows written. Raises what the sink raised."""
    records = delivery["records"]
    if spec.kind == "cassandra":
        converter = RowConverter(tenant.column_types, (spec.key or tenant.key).columns)
        refused: list[str] = []
        values = []
        for record in records:
            try:
                values.append(converter.convert(record))
            except RowError as exc:  # e.g. a column of this table's key that the tenant's key lets be null
                refused.append(exc.reason)
        written = _table(tenant, spec).write(values, refuse=lambda _position, reason, _detail: refused.append(reason))
        if refused:
            log.warning("tenant=%s sink=%s origin=%s %d rows refused by the table (%s)", tenant.name, spec.name,
                        delivery["origin"], len(refused), ", ".join(sorted(set(refused))))
        return written
    rows = deliveries.json_rows(RowConverter(tenant.column_types, tenant.key.columns), tenant.key.columns, records)
    if spec.kind == "kafka":
        return _to_kafka(tenant, spec, rows)
    return _to_files(tenant, spec, rows, delivery)


def _to_kafka(tenant: Tenant, spec: SinkSpec, rows: list[dict[str, Any]]) -> int:
    producer = _producer()
    topic = sinks.topic(tenant.name, spec.name)
    futures = [producer.send(topic, key=row[deliveries.KEY].encode(), value=_dumps(row)) for row in rows]
    for future in futures:
        future.get(timeout=KAFKA_ACK_S)
    return len(rows)


def _dumps(row: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(row)
    except TypeError:  # an integer beyond 64 bits (varint): orjson refuses, json writes it
        return json.dumps(row, separators=(",", ":")).encode()


def _to_files(tenant: Tenant, spec: SinkSpec, rows: list[dict[str, Any]], delivery: Mapping[str, Any]) -> int:
    folder = deliveries.lake_folder(context.settings().home, tenant.name, spec.name, delivery["day"])
    folder.mkdir(parents=True, exist_ok=True)
    parts = deliveries.part_names(delivery["origin"], len(rows), spec.max_rows, spec.format)
    columns = [*tenant.column_names, deliveries.KEY]
    for i, name in enumerate(parts):
        chunk = rows[i * spec.max_rows:(i + 1) * spec.max_rows]
        temp = folder / f".{name}.tmp"
        if spec.format == "parquet":
            import pyarrow as pa  # only a files sink needs it
            import pyarrow.parquet as pq
            pq.write_table(pa.Table.from_pylist(chunk, schema=_schema(tenant, columns)), temp)
        else:
            with temp.open("wb") as out:
                out.writelines(_dumps(row) + b"\n" for row in chunk)
        with temp.open("rb") as done:
            os.fsync(done.fileno())
        os.replace(temp, folder / name)  # complete parts only: readers never see a half-written one
    return len(rows)


def _schema(tenant: Tenant, columns: Sequence[str]) -> Any:
    """The lake's Arrow schema, fixed by the tenant's schema so every part of a sink reads alike."""
    import pyarrow as pa
    arrow = {"int": pa.int32(), "bigint": pa.int64(), "smallint": pa.int16(), "tinyint": pa.int8(),
             "varint": pa.string(), "counter": pa.int64(), "float": pa.float32(), "double": pa.float64(),
             "boolean": pa.bool_()}
    types = tenant.column_types
    return pa.schema([(c, arrow.get(types.get(c, ""), pa.string())) for c in columns])


def transient(exc: BaseException) -> bool:
    return cassandra.is_transient(exc) or deadletters.is_transient(exc) or isinstance(exc, OSError)


def fan_out(tenant: Tenant, routed: Mapping[str, list[dict[str, Any]]], origin: str, day: str,
            send: Send | None) -> dict[str, dict[str, Any]]:
    """Deliver each extra sink's records now; a sink that is away gets a task of its own.

    ``routed`` maps a sink's name to its accepted records. Returns each sink's outcome.
    """
    outcomes: dict[str, dict[str, Any]] = {}
    for spec in tenant.sinks:
        records = routed.get(spec.name, [])
        if not records:
            continue
        delivery = {"origin": origin, "day": day, "records": records}
        try:
            written = _attempt(tenant, spec, delivery)
        except Exception as exc:  # noqa: BLE001 - one sink's failure is its own; the others go on
            if transient(exc) and send is not None:
                log.warning("tenant=%s sink=%s origin=%s %d rows wait for the sink (%s: %s); retrying on their own",
                            tenant.name, spec.name, origin, len(records), type(exc).__name__, str(exc)[:200])
                send(DELIVER_ROWS, args=(tenant.name, spec.name, delivery), queue=tenant.batch_queue,
                     argsrepr=f"tenant={tenant.name!r} sink={spec.name!r} origin={origin!r}", kwargsrepr="{}")
                outcomes[spec.name] = deliveries.outcome(len(records), 0, "pending")
                telemetry.sink_rows(tenant.name, spec.name, "pending", len(records))
            else:
                park(tenant.name, spec.name, delivery, exc)
                outcomes[spec.name] = deliveries.outcome(len(records), 0, "failed")
            continue
        outcomes[spec.name] = deliveries.outcome(len(records), written, "delivered")
        telemetry.sink_rows(tenant.name, spec.name, "delivered", written)
    return outcomes


def deliver(tenant_name: str, sink_name: str, delivery: Mapping[str, Any]) -> int:
    """The per-sink task's body: write the delivery, or raise (a transient failure retries the task)."""
    tenant = context.tenant(tenant_name)
    spec = next((s for s in tenant.sinks if s.name == sink_name), None)
    if spec is None:
        raise PermanentIngestError("unknown_sink", f"tenant {tenant_name} has no sink {sink_name!r} any more")
    written = _attempt(tenant, spec, delivery)
    log.info("tenant=%s sink=%s origin=%s rows=%d delivered after waiting", tenant_name, sink_name,
             delivery["origin"], written)
    telemetry.sink_rows(tenant_name, sink_name, "delivered", written)
    return written


def park(tenant_name: str, sink_name: str, delivery: Mapping[str, Any], exc: BaseException) -> None:
    """Keep a delivery the sink refused for good, with the reason, where an operator can resend it."""
    folder = context.settings().home / FAILED / tenant_name / sink_name
    folder.mkdir(parents=True, exist_ok=True)
    reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    path = folder / f"{delivery['origin']}.json"
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({**delivery, "reason": reason}), encoding="utf-8")
    os.replace(temp, path)
    log.error("tenant=%s sink=%s origin=%s %d rows refused by the sink, kept in %s: %s", tenant_name, sink_name,
              delivery["origin"], len(delivery["records"]), path, reason)
    telemetry.sink_rows(tenant_name, sink_name, "failed", len(delivery["records"]))
