"""Provisioning: bring each tenant's keyspace, tables and topics to the configured shape.

``apply`` plans first and changes nothing if any tenant's plan is refused, so a bad file never half
applies. Applying the same file again changes nothing; a new column is added with ``ALTER TABLE``;
a changed type or primary key is refused (Cassandra cannot change either in place: that is a
migration, with a new table, which the operator must decide on).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cassandra.cluster import Session

from ..core import cql, names
from ..core import replication as copies
from ..core.cql import ident
from ..core.errors import ProvisioningError
from ..core.tenants import Tenant
from . import quality_metrics
from .cassandra import replication_map

log = logging.getLogger(__name__)

BATCH_METRICS = names.BATCH_METRICS_TABLE
STREAM_METRICS = names.STREAM_METRICS_TABLE

# One row per ingested file. Partitioned by UTC day so "today's files" is one partition read.
BATCH_METRICS_DDL = f"""
CREATE TABLE IF NOT EXISTS {{ks}}.{BATCH_METRICS} (
    day date,
    ingest_id text,
    file text,
    size_bytes bigint,
    started_at timestamp,
    finished_at timestamp,
    rows_ok bigint,
    rows_refused bigint,
    chunks int,
    status text,
    reason text,
    duration_ms double,
    ms_per_row double,
    PRIMARY KEY ((day), ingest_id)
)"""

# One row per worker per time window of stream ingestion. ``latency_buckets`` is the window's
# end-to-end latency histogram (core/histogram.py): windows add up to the report's percentiles.
STREAM_METRICS_DDL = f"""
CREATE TABLE IF NOT EXISTS {{ks}}.{STREAM_METRICS} (
    day date,
    window_start timestamp,
    worker text,
    window_end timestamp,
    messages bigint,
    bytes bigint,
    tasks int,
    avg_ingest_ms double,
    max_ingest_ms double,
    errors bigint,
    avg_latency_ms double,
    p95_latency_ms double,
    max_latency_ms double,
    latency_buckets map<int, bigint>,
    PRIMARY KEY ((day), window_start, worker)
) WITH CLUSTERING ORDER BY (window_start DESC, worker ASC)"""

# Columns added to the metrics tables after their first version: `tenants apply` adds them to the
# tables of tenants provisioned before.
METRICS_ADDED: dict[str, tuple[tuple[str, str], ...]] = {STREAM_METRICS: (("latency_buckets", "map<int, bigint>"),)}


@dataclass
class Plan:
    tenant: Tenant
    statements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what the statements change, in words (for --dry-run)


def table_columns(session: Session, keyspace: str, table: str) -> dict[str, tuple[str, str, int]]:
    """column -> (type, kind, position) as Cassandra has them; empty if the table does not exist."""
    rows = session.execute(
        "SELECT column_name, type, kind, position FROM system_schema.columns "
        "WHERE keyspace_name = %s AND table_name = %s",
        (keyspace, table),
    )
    return {r.column_name: (r.type, r.kind, r.position) for r in rows}


def keyspace_exists(session: Session, keyspace: str) -> bool:
    rows = session.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,))
    return rows.one() is not None


def keyspace_factors(session: Session, keyspace: str) -> dict[str, int] | None:
    """The keyspace's replication as ``replication.factors`` gives it; None if it does not exist."""
    row = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                          (keyspace,)).one()
    if row is None:
        return None
    found = dict(row.replication)
    if found.pop("class", "").endswith("SimpleStrategy"):
        return {"": int(found.get("replication_factor", 0))}
    return {dc: int(rf) for dc, rf in found.items()}


def plan(session: Session, tenant: Tenant, replication: str) -> Plan:
    """``replication``: the platform's keyspace replication, for tenants that give none of their own."""
    p = Plan(tenant)
    ks, table = tenant.namespace, tenant.table_name
    replication = tenant.replication.keyspace_spec(replication)
    p.statements.append(
        f"CREATE KEYSPACE IF NOT EXISTS {ident(ks)} WITH replication = {replication_map(replication)}"
    )
    current = keyspace_factors(session, ks)
    if current is None:
        p.changes.append(f"create keyspace {ks} ({replication})")
    elif current != (want := copies.factors(replication)):
        p.statements.append(f"ALTER KEYSPACE {ident(ks)} WITH replication = {replication_map(replication)}")
        p.changes.append(f"alter keyspace {ks} replication to {replication}")
        if any(rf > current.get(dc, 0) for dc, rf in want.items()):
            # New replicas get the writes from now on, not the rows already written.
            p.notes.append(f"{tenant.name}: keyspace {ks} now has more replicas; run `nodetool repair -full {ks}` "
                           "on each node so the existing rows reach them (README, Replication)")
    existing = table_columns(session, ks, table)
    if not existing:
        cols = ", ".join(f"{ident(c)} {t}" for c, t in tenant.columns)
        p.statements.append(
            f"CREATE TABLE IF NOT EXISTS {ident(ks)}.{ident(table)} ({cols}, PRIMARY KEY {tenant.key.cql()})"
        )
        p.changes.append(f"create table {ks}.{table} ({', '.join(tenant.column_names)}), key {tenant.key}")
    else:
        _diff_table(p, existing)
    _sink_tables(session, p)
    for metrics, ddl in ((BATCH_METRICS, BATCH_METRICS_DDL), (STREAM_METRICS, STREAM_METRICS_DDL),
                         (quality_metrics.TABLE, quality_metrics.DDL)):
        p.statements.append(ddl.format(ks=ident(ks)))
        have = table_columns(session, ks, metrics) if existing else {}
        if not have:
            p.changes.append(f"create table {ks}.{metrics}")
        for column, ctype in METRICS_ADDED.get(metrics, ()):
            if have and column not in have:  # a table made by an older version
                p.statements.append(f"ALTER TABLE {ident(ks)}.{metrics} ADD {column} {ctype}")
                p.changes.append(f"add column {column} {ctype} to {ks}.{metrics}")
    return p


def _sink_tables(session: Session, p: Plan) -> None:
    """The tables of the tenant's ``cassandra`` sinks: its columns, each with its own key (core/sinks.py)."""
    tenant = p.tenant
    for spec in tenant.sinks:
        if spec.kind != "cassandra":
            continue
        own = Plan(dataclasses.replace(tenant, table_name=spec.table, key=spec.key or tenant.key))
        existing = table_columns(session, tenant.namespace, spec.table)
        if existing:
            _diff_table(own, existing)
        else:
            cols = ", ".join(f"{ident(c)} {t}" for c, t in tenant.columns)
            own.statements.append(f"CREATE TABLE IF NOT EXISTS {ident(tenant.namespace)}.{ident(spec.table)} "
                                  f"({cols}, PRIMARY KEY {own.tenant.key.cql()})")
            own.changes.append(f"create table {tenant.namespace}.{spec.table} for sink {spec.name}, "
                               f"key {own.tenant.key}")
        p.statements += own.statements
        p.changes += own.changes
        p.notes += own.notes
        p.problems += own.problems


def _diff_table(p: Plan, existing: dict[str, tuple[str, str, int]]) -> None:
    tenant = p.tenant
    where = f"{tenant.name}: table {tenant.namespace}.{tenant.table_name}"
    have_partition = tuple(c for c, _ in sorted(((c, v[2]) for c, v in existing.items() if v[1] == "partition_key"),
                                                key=lambda x: x[1]))
    have_clustering = tuple(c for c, _ in sorted(((c, v[2]) for c, v in existing.items() if v[1] == "clustering"),
                                                 key=lambda x: x[1]))
    if (have_partition, have_clustering) != (tenant.key.partition, tenant.key.clustering):
        have = f"(({', '.join(have_partition)}){''.join(', ' + c for c in have_clustering)})"
        p.problems.append(f"{where}: primary key is {have} in Cassandra but {tenant.key} in the config; "
                          "a primary key cannot be changed in place (create a new table_name and migrate)")
    for column, ctype in tenant.columns:
        want = cql.CANONICAL_TYPE.get(ctype, ctype)
        if column not in existing:
            p.statements.append(f"ALTER TABLE {ident(tenant.namespace)}.{ident(tenant.table_name)} "
                                f"ADD {ident(column)} {ctype}")
            p.notes.append(f"{where}: adding column {column} {ctype}")
            p.changes.append(f"add column {column} {ctype} to {tenant.namespace}.{tenant.table_name}")
        elif existing[column][0] != want:
            p.problems.append(f"{where}: column {column} is {existing[column][0]} in Cassandra but {ctype} in the "
                              "config; a column's type cannot be changed in place")
    for column in existing:
        if column not in tenant.column_types:
            p.notes.append(f"{where}: column {column} exists in Cassandra but not in the config; kept as it is")


def refused(problems: list[str]) -> ProvisioningError:
    return ProvisioningError("refused, nothing was changed:\n" + "\n".join(f"  - {m}" for m in problems))


def apply(session: Session, tenants: Iterable[Tenant], replication: str,
          echo: Callable[[str], None] = print) -> list[Plan]:
    """Plan every tenant, refuse all if any plan has a problem, else run the statements."""
    plans = [plan(session, t, replication) for t in tenants]
    problems = [msg for p in plans for msg in p.problems]
    if problems:
        raise refused(problems)
    execute(session, plans, echo)
    return plans


def execute(session: Session, plans: list[Plan], echo: Callable[[str], None] = print) -> None:
    """Run planned statements (plans without problems: ``apply`` checks, or its caller)."""
    for p in plans:
        for note in p.notes:
            echo(note)
        for statement in p.statements:
            log.debug("tenant=%s ddl=%s", p.tenant.name, statement)
            # The driver waits for schema agreement after each DDL statement (max_schema_agreement_wait),
            # so every node knows a table before a worker prepares statements on it.
            session.execute(statement, timeout=60)


def provisioned(session: Session, tenant: Tenant) -> bool:
    """True when the tenant's data table and both metrics tables exist with its columns."""
    have = table_columns(session, tenant.namespace, tenant.table_name)
    return (
        all(c in have for c in tenant.column_types)
        and bool(table_columns(session, tenant.namespace, BATCH_METRICS))
        and bool(table_columns(session, tenant.namespace, STREAM_METRICS))
    )


def drop_data(session: Session, tenant: Tenant) -> None:
    session.execute(f"DROP KEYSPACE IF EXISTS {ident(tenant.namespace)}", timeout=60)
