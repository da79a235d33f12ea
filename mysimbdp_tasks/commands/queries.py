"""What the platform did for a tenant: today's usage against limits, latest files, rows landed."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session

from ..batch import folders
from ..core import progress
from ..core.cql import ident
from ..core.settings import Settings
from ..core.tenants import MB, Tenant
from ..security import logins, tls
from ..services import events as metrics
from ..services.quotas import Quotas

log = logging.getLogger(__name__)


def usage(quotas: Quotas, tenant: Tenant) -> dict[str, Any]:
    used = quotas.usage(tenant.name)
    out: dict[str, Any] = {}
    if tenant.batch:
        out["files"] = {"used": used["files"], "limit": tenant.batch.max_files_per_day}
        out["mb"] = {"used": round(used["bytes"] / MB, 3), "limit": round(tenant.batch.max_bytes_per_day / MB, 3)}
        out["bytes"] = {"used": used["bytes"], "limit": tenant.batch.max_bytes_per_day}
        out["max_file_mb"] = round(tenant.batch.max_file_size_bytes / MB, 3)
    if tenant.stream:
        out["messages"] = {"used": used["messages"], "limit": tenant.stream.max_messages_per_day}
    return out


def latest_files(settings: Settings, tenant: str, limit: int = 10) -> list[dict[str, Any]]:
    events = [e for e in metrics.read_events(settings.logs, tenant) if e["event"] in ("file_done", "file_rejected")]
    return [
        {"time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["ts"])), "file": e["file"],
         "status": e.get("status", "rejected"), "reason": e.get("reason") or "",
         "rows_ok": e.get("rows_ok"), "rows_refused": e.get("rows_refused")}
        for e in events[-limit:]
    ]


def scheduled_files(client: Any, tenant: str) -> list[dict[str, Any]]:
    """The tenant's admitted files waiting for an ingestion window, earliest first."""
    from ..batch import schedule

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

    return [{"file": j["file"], "ingest_id": j["ingest_id"], "bytes": j["bytes"], "admitted_at": iso(j["admitted_at"]),
             "starts_at": iso(j["opens_at"])} for j in schedule.waiting(client, tenant)]


def queued_files(client: Any, tenant: str) -> list[dict[str, Any]]:
    """The tenant's admitted files waiting for a batch slot, next first, with their place in the
    platform-wide queue."""
    from ..batch import slots

    return [{"file": j["file"], "ingest_id": j["ingest_id"], "bytes": j["bytes"], "priority": j["priority"],
             "position": j["position"],
             "admitted_at": datetime.fromtimestamp(j["admitted_at"], UTC).isoformat(timespec="seconds")}
            for j in slots.queued(client, tenant)]


def file_outcomes(settings: Settings, tenant: str) -> dict[str, Any]:
    """Counts of files by final state, and rejection reasons, from the receipts on disk."""
    import json

    layout = folders.Layout(settings.data)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    for stage in (folders.DONE, folders.FAILED, folders.REJECTED):
        folder = layout.folder(stage, tenant)
        for receipt in folder.glob("*.receipt.json") if folder.exists() else ():
            data = json.loads(receipt.read_text(encoding="utf-8"))
            counts[stage] += 1
            if stage != folders.DONE:
                reasons[data.get("reason") or "?"] += 1
            rows["ok"] += data.get("rows_ok") or 0
            rows["refused"] += data.get("rows_refused") or 0
    processing = layout.folder(folders.PROCESSING, tenant)
    pending = sum(1 for _ in processing.iterdir()) if processing.exists() else 0
    return {"done": counts[folders.DONE], "failed": counts[folders.FAILED], "rejected": counts[folders.REJECTED],
            "in_progress": pending, "refusal_reasons": dict(reasons), "rows_ok": rows["ok"],
            "rows_refused": rows["refused"]}


COUNT_ATTEMPTS = 3


def rows_in_table(session: Session, tenant: Tenant) -> int:
    """Rows in the tenant's table. A whole-table count may run out of Cassandra's own time on a busy
    node (a ReadFailure or ReadTimeout, e.g. right after a large load): it is tried again."""
    from cassandra import ReadFailure, ReadTimeout

    for attempt in range(1, COUNT_ATTEMPTS + 1):
        try:
            row = session.execute(f"SELECT COUNT(*) FROM {ident(tenant.namespace)}.{ident(tenant.table_name)}",
                                  timeout=120).one()
            return int(row[0])
        except (ReadFailure, ReadTimeout) as exc:
            if attempt == COUNT_ATTEMPTS:
                raise
            log.warning("%s: counting %s.%s failed (%s), attempt %d of %d; trying again", tenant.name,
                        tenant.namespace, tenant.table_name, type(exc).__name__, attempt, COUNT_ATTEMPTS)
            time.sleep(2.0 * attempt)
    raise AssertionError("unreachable")


def pending_files(settings: Settings) -> int:
    """Files in staging or processing: work not finished yet."""
    layout = folders.Layout(settings.data)
    n = 0
    for stage in (folders.STAGING, folders.PROCESSING):
        root = layout.folder(stage)
        if root.exists():
            n += sum(1 for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return n


def wait_quiet(pending: Callable[[], int], timeout: float, quiet: float = 3.0, poll: float = 0.5,
               what: str = "pending") -> bool:
    """Wait until ``pending()`` stays 0 for ``quiet`` seconds; False if ``timeout`` passes first.

    On a terminal a bar shows the seconds waited out of ``timeout`` and how many are still pending.
    """
    with progress.ticking(progress.bar(f"waiting for {what}", total=round(timeout), unit="s",
                                       bar_format="{desc}: {n:.0f}/{total:.0f} s |{bar}|{postfix}")) as bar:
        return _wait_quiet(pending, timeout, quiet, poll, bar)


def _wait_quiet(pending: Callable[[], int], timeout: float, quiet: float, poll: float, bar: Any) -> bool:
    started = time.monotonic()
    deadline = started + timeout
    idle_since: float | None = None
    while time.monotonic() < deadline:
        left = pending()
        bar.n = min(bar.total, time.monotonic() - started)
        bar.set_postfix_str(f"{left} pending")
        if left == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= quiet:
                return True
        else:
            idle_since = None
        time.sleep(poll)
    return False


def wait_idle(settings: Settings, timeout: float) -> bool:
    """Wait until no file is staged or in processing; False on timeout."""
    return wait_quiet(lambda: pending_files(settings), timeout, what="files")


def dead_letters(settings: Settings, tenant: Tenant, timeout_ms: int = 2000) -> Counter[str]:
    """Dead-lettered messages of the tenant by reason, read from ``<tenant>.dead``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(tenant.dead_topic, bootstrap_servers=settings.kafka_bootstrap_str,
                             **tls.command_kafka_options(settings),
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=timeout_ms)
    reasons: Counter[str] = Counter()
    try:
        for record in consumer:
            reasons[dict(record.headers).get("reason", b"?").decode()] += 1
    finally:
        consumer.close()
    return reasons


def stream_backlog(settings: Settings, tenants: list[Tenant]) -> int:
    """Messages not yet bridged plus stream tasks not yet taken by a worker."""
    from kafka import KafkaConsumer

    from ..core import names
    from ..services import topics

    client = logins.redis_client(settings)
    backlog = sum(int(client.llen(t.stream_queue)) for t in tenants)
    for t in tenants:
        # A consumer in the bridge's group that never subscribes only reads the group's offsets.
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, group_id=names.bridge_group(t.name),
                                 **tls.command_kafka_options(settings),
                                 enable_auto_commit=False)
        try:
            backlog += topics.lag(consumer, t.ingest_topic)
        finally:
            consumer.close(autocommit=False)
    return backlog


def wait_stream_idle(settings: Settings, tenants: list[Tenant], timeout: float) -> bool:
    """Wait until every message has been bridged and every stream task taken; False on timeout."""
    return wait_quiet(lambda: stream_backlog(settings, tenants), timeout, poll=1.0, what="messages")
