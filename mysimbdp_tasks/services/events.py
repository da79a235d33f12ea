"""Per-tenant metrics: rows in ``<namespace>.batch_ingestion_metrics`` and JSON-lines event logs.

Event logs are ``$MYSIMBDP_HOME/logs/<tenant>.events.jsonl``: one JSON object per line, one line per
file (``file_done``), per refused row (``row_refused``), per refused file (``file_rejected``) and per
failure. They are data: the per-tenant report can be computed from them alone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cql import ident
from ..core.names import BATCH_METRICS_TABLE as BATCH_METRICS
from ..core.tenants import Tenant

if TYPE_CHECKING:  # the watcher emits events and must not load the Cassandra driver
    from cassandra.cluster import Session

log = logging.getLogger(__name__)

_BATCH_COLUMNS = ("day", "ingest_id", "file", "size_bytes", "started_at", "finished_at", "rows_ok",
                  "rows_refused", "chunks", "status", "reason", "duration_ms", "ms_per_row")


def emit(logs: Path, tenant: str, event: str, **fields: Any) -> None:
    """Append one event line. O_APPEND keeps lines from concurrent processes whole.

    Never raises: an event log is a record of work already done, so a full disk or an odd file
    name (lone surrogates from a non-UTF-8 name are escaped) costs the line, not the work.
    """
    record = {"ts": round(time.time(), 3), "tenant": tenant, "event": event, **fields}
    try:
        try:
            line = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            line = json.dumps(record, ensure_ascii=True, default=str).encode("ascii")
        logs.mkdir(parents=True, exist_ok=True)
        fd = os.open(logs / f"{tenant}.events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line + b"\n")
        finally:
            os.close(fd)
    except (OSError, ValueError, TypeError) as exc:
        log.error("tenant=%r event=%s not logged: %s", tenant, event, exc)


def read_events(logs: Path, tenant: str) -> list[dict[str, Any]]:
    """The tenant's events, oldest first. A line that is not a JSON object (cut short by a full disk
    or a crash mid-write) is skipped with a warning: the other lines still tell what happened."""
    path = logs / f"{tenant}.events.jsonl"
    if not path.exists():
        return []
    found: list[dict[str, Any]] = []
    skipped = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                found.append(record)
            else:
                skipped += 1
    if skipped:
        log.warning("tenant=%s events: %d unreadable line(s) in %s skipped", tenant, skipped, path)
    return found


def record_batch(session: Session, tenant: Tenant, receipt: dict[str, Any]) -> None:
    """Upsert the file's metrics row (keyed by ingestion id, so a retried finalize is harmless)."""
    stmt = session.prepare(
        f"INSERT INTO {ident(tenant.namespace)}.{BATCH_METRICS} ({', '.join(_BATCH_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in _BATCH_COLUMNS)})"
    )
    started = dt.datetime.fromtimestamp(receipt["started_at"], dt.UTC)
    finished = dt.datetime.fromtimestamp(receipt["finished_at"], dt.UTC)
    rows = receipt["rows_ok"] + receipt["rows_refused"]
    session.execute(stmt, (
        started.date(), receipt["ingest_id"], receipt["file"], receipt["bytes"], started, finished,
        receipt["rows_ok"], receipt["rows_refused"], receipt.get("chunks", 1), receipt["status"],
        receipt.get("reason") or "", receipt["timings"]["total_ms"],
        receipt["timings"]["total_ms"] / rows if rows else None,
    ))
