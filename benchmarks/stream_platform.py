"""The stream path of a private platform for the benchmark: a tenant's worker pool and bridge, and
what the benchmark reads back: backlog, dead letters, and each message's row with its write time.

The processes are the batch benchmark's :class:`benchmarks.harness.Platform` (a private
``MYSIMBDP_HOME``, real ``mysimbdp`` processes, logs kept); only the set of processes differs:
a bridge instead of the watcher.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from cassandra.cluster import Session
from cassandra.query import SimpleStatement
from kafka import KafkaConsumer, TopicPartition

from mysimbdp_tasks.core import names, procs
from mysimbdp_tasks.core.cql import ident
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.security import identities, tls
from mysimbdp_tasks.services import topics

from . import harness
from .errors import PlatformError
from .stream_producer import parse_id

BRIDGE_MARK = "bridging"  # the bridge's first log line: "tenant=T bridging T.ingest -> queue T.stream"


class StreamPlatform(harness.Platform):
    """A tenant's worker pool and its bridges (``bridges`` processes in the tenant's one consumer
    group, named ``bridge``, ``bridge.2``, ...), as real processes on a private MYSIMBDP_HOME."""

    def __init__(self, settings: Settings, tenant: Tenant, home: Path, concurrency: int = 2, bridges: int = 1) -> None:
        super().__init__(settings, tenant, home, concurrency)
        self.bridges = ["bridge" if m == 1 else f"bridge.{m}" for m in range(1, bridges + 1)]

    def start(self, timeout: float = 60) -> StreamPlatform:
        self.launch()
        self.wait_started(timeout)
        return self

    def launch(self, bridge_args: Sequence[str] = ()) -> None:
        """Start the pool and the bridge (tasks the bridge enqueues wait for the pool on the queue)."""
        self._spawn("worker", "worker", "--tenant", self.tenant.name, "--concurrency", str(self.concurrency))
        for name in self.bridges:
            self._spawn(name, "bridge", "--tenant", self.tenant.name, *bridge_args)

    def wait_started(self, timeout: float = 60) -> None:
        self._wait_log("worker", harness.READY_MARK, timeout)
        for name in self.bridges:
            self._wait_log(name, BRIDGE_MARK, timeout)

    def _wait_log(self, name: str, mark: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        log = self.logs_dir / f"{name}.log"
        while mark not in log.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise PlatformError(f"{name} of {self.tenant.name} not started after {timeout} s; "
                                            f"logs:\n{self.tails()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        """The bridges first (nothing new is enqueued), then the pool."""
        for name in self.bridges:
            bridge = self.procs.pop(name, None)
            if bridge is not None:
                procs.stop_child(bridge, timeout)
        super().stop(timeout)

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}


class Backlog:
    """Cheap signals of work in flight: the bridge group's Kafka lag and the tenant's stream queue."""

    def __init__(self, settings: Settings, tenants: Sequence[Tenant]) -> None:
        self.tenants = list(tenants)
        self.redis = redis.Redis.from_url(identities.redis_url(settings))
        security = tls.kafka_options(settings, "platform:admin")
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str,
                                      client_id="mysimbdp-bench-stream", enable_auto_commit=False, **security)
        # A consumer in the bridge's group that never subscribes only reads the group's committed
        # offsets (as mysimbdp_tasks.commands.queries does; the admin API differs between kafka-python versions).
        self.groups = {t.name: KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str,
                                             group_id=names.bridge_group(t.name), enable_auto_commit=False,
                                             client_id="mysimbdp-bench-stream", **security) for t in tenants}

    def _partitions(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())]

    def lag(self, tenant: Tenant) -> int:
        """Messages of ``<tenant>.ingest`` the bridge has not committed yet."""
        return topics.lag(self.groups[tenant.name], tenant.ingest_topic)

    def queued(self, tenant: Tenant) -> int:
        """Tasks waiting on ``<tenant>.stream`` (not those a pool process already took)."""
        return int(self.redis.llen(tenant.stream_queue))

    def dead(self, tenant: Tenant) -> int:
        """Messages in ``<tenant>.dead`` so far."""
        tps = self._partitions(tenant.dead_topic)
        return sum(self.consumer.end_offsets(tps).values()) if tps else 0

    def idle(self) -> bool:
        return all(self.lag(t) == 0 and self.queued(t) == 0 for t in self.tenants)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        for group in self.groups.values():
            group.close(autocommit=False)
        self.redis.close()


def timed_column(tenant: Tenant) -> str:
    """A column whose WRITETIME tells when the row was written: the first one outside the primary key.

    WRITETIME is per cell and not defined for key columns; every benchmark message carries the
    column (``created_utc`` for both shipped shapes), so the cell exists in every row.
    """
    keys = set(tenant.key.columns)
    for name in tenant.column_names:
        if name not in keys:
            return name
    raise ValueError(f"tenant {tenant.name}: every column is in the primary key; no WRITETIME to read")


def write_times(session: Session, tenant: Tenant, step: int, fetch_size: int = 5000) -> dict[int, int]:
    """seq -> WRITETIME (microseconds) of every row of ``step`` in the tenant's table.

    A full scan of the table (the rows of earlier steps are skipped by their id): the id is the one
    place a row says which step and message it came from.
    """
    column = timed_column(tenant)
    query = SimpleStatement(f"SELECT {ident('id')}, WRITETIME({ident(column)}) FROM "
                            f"{ident(tenant.namespace)}.{ident(tenant.table_name)}", fetch_size=fetch_size)
    found: dict[int, int] = {}
    for row in session.execute(query, timeout=120):
        parsed = parse_id(row[0])
        if parsed is not None and parsed[0] == step and row[1] is not None:
            found[parsed[1]] = int(row[1])
    return found


def count_rows(session: Session, tenant: Tenant) -> int:
    row: Any = session.execute(f"SELECT COUNT(*) FROM {ident(tenant.namespace)}.{ident(tenant.table_name)}",
                               timeout=120).one()
    return int(row[0])
