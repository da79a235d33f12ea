"""``<namespace>.quality_metrics``: rows checked and failed per quality rule, per file and per stream window.

One row per rule for each ingested file (``source`` ``file``, ``ref`` its ingest id, ``at`` when it
started: a finalize run twice writes the same rows) and for each worker's stream window
(``source`` ``stream``, ``ref`` the worker, ``at`` the window's start). Values are always bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from cassandra.cluster import Session

from ..core.cql import ident
from ..core.names import QUALITY_METRICS_TABLE as TABLE
from ..core.tenants import Tenant

# Partitioned by UTC day, like the other metrics tables: "since yesterday" is two partitions.
DDL = f"""
CREATE TABLE IF NOT EXISTS {{ks}}.{TABLE} (
    day date,
    at timestamp,
    source text,
    ref text,
    rule text,
    action text,
    file text,
    checked bigint,
    failed bigint,
    PRIMARY KEY ((day), at, source, ref, rule)
)"""

_COLUMNS = ("day", "at", "source", "ref", "rule", "action", "file", "checked", "failed")


def record(session: Session, tenant: Tenant, source: str, ref: str, at: float, counts: Mapping[str, Any],
           file: str = "") -> None:
    """Write one row per rule of ``counts`` (:meth:`~mysimbdp_tasks.core.quality.Checker.counts`)."""
    stmt = session.prepare(f"INSERT INTO {ident(tenant.namespace)}.{TABLE} ({', '.join(_COLUMNS)}) "
                           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    actions = tenant.quality.actions
    for rule, failed in (counts.get("failed") or {}).items():
        session.execute(stmt, (moment.date(), moment, source, ref, rule, actions.get(rule, "unknown"), file,
                               int(counts.get("checked", 0)), int(failed)))


def read(session: Session, tenant: Tenant, since: float | None, until: float) -> Iterator[dict[str, Any]]:
    """The rows from ``since`` (None: all of them) to ``until``, as dicts."""
    select = f"SELECT {', '.join(_COLUMNS)} FROM {ident(tenant.namespace)}.{TABLE}"
    if since is None:
        rows: Any = session.execute(select, timeout=60)
    else:
        stmt = session.prepare(select + " WHERE day = ? AND at >= ?")
        first = dt.datetime.fromtimestamp(since, dt.UTC)
        days = (dt.datetime.fromtimestamp(until, dt.UTC).date() - first.date()).days
        rows = (r for n in range(days + 1)
                for r in session.execute(stmt, (first.date() + dt.timedelta(days=n), first), timeout=60))
    for r in rows:
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)  # the driver gives naive UTC datetimes
        if at.timestamp() <= until:
            yield {name: getattr(r, name) for name in _COLUMNS} | {"at": at.timestamp()}
