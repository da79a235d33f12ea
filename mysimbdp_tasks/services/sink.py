"""coredms sink: write converted rows into a tenant's table, fast and safely.

- One prepared ``INSERT`` per tenant table; values are always bound, never formatted into CQL.
- Rows are grouped into ``UNLOGGED`` batches by the replica that owns them (so a batch is one hop on
  the coordinator), each kept under a byte and a row limit below Cassandra's batch thresholds
  (``batch_size_warn_threshold`` 64 KiB on the local stack; the fail threshold is larger).
- Batches run with bounded concurrency through the driver's async API.
- A failed batch is retried with exponential backoff; if it still fails the whole write raises
  :class:`~mysimbdp_tasks.core.errors.TransientIngestError` so the task retries later. Writes are upserts
  on the tenant's primary key, so replaying any of them is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, PreparedStatement

from ..core.cql import ident
from ..core.errors import TransientIngestError
from ..core.tenants import Tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkOptions:
    batch_max_rows: int = 200
    batch_max_bytes: int = 48 * 1024  # under the default fail threshold (50 KiB) of any cluster
    concurrency: int = 12
    retries: int = 5
    backoff_s: float = 0.2


def insert_cql(tenant: Tenant) -> str:
    cols = tenant.column_names
    return (f"INSERT INTO {ident(tenant.namespace)}.{ident(tenant.table_name)} "
            f"({', '.join(ident(c) for c in cols)}) VALUES ({', '.join('?' for _ in cols)})")


def _size(row: Sequence[Any]) -> int:
    # A cheap over-estimate of the serialized size: text by its length, everything else 16 bytes.
    return sum(len(v) * 2 if isinstance(v, str) else 16 for v in row) + 8


class Sink:
    def __init__(self, session: Session, tenant: Tenant, options: SinkOptions | None = None) -> None:
        self.session = session
        self.tenant = tenant
        self.options = options or SinkOptions()
        self.insert: PreparedStatement = session.prepare(insert_cql(tenant))
        self.insert.consistency_level = ConsistencyLevel.LOCAL_QUORUM
        self._multi_node = len(session.cluster.metadata.all_hosts()) > 1

    # -- grouping --------------------------------------------------------------------------
    def batches(self, rows: Iterable[Sequence[Any]]) -> Iterator[BatchStatement]:
        """Group rows into batches per owning replica, within the row and byte limits."""
        opts = self.options
        open_batches: dict[Any, tuple[BatchStatement, list[int]]] = {}
        for row in rows:
            if None in row:
                # An absent value leaves the column alone instead of writing a null: no tombstones.
                row = tuple(UNSET_VALUE if v is None else v for v in row)
            bound = self.insert.bind(row)
            owner = self._owner(bound) if self._multi_node else None
            entry = open_batches.get(owner)
            if entry is None:
                entry = open_batches[owner] = (self._new_batch(), [0])
            batch, size = entry
            batch.add(bound)
            size[0] += _size(row)
            if len(batch) >= opts.batch_max_rows or size[0] >= opts.batch_max_bytes:
                del open_batches[owner]
                yield batch
        for batch, _ in open_batches.values():
            yield batch

    def _new_batch(self) -> BatchStatement:
        return BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=ConsistencyLevel.LOCAL_QUORUM)

    def _owner(self, bound: Any) -> Any:
        token_map = self.session.cluster.metadata.token_map
        key = bound.routing_key
        if token_map is None or key is None:
            return None
        replicas = token_map.get_replicas(self.tenant.namespace, token_map.token_class.from_key(key))
        return replicas[0] if replicas else None

    # -- writing ---------------------------------------------------------------------------
    def write(self, rows: Iterable[Sequence[Any]]) -> int:
        """Write every row; return how many. Raises TransientIngestError if Cassandra keeps failing."""
        return _Writer(self).run(self.batches(rows))


class _Writer:
    """Keeps at most ``concurrency`` batches in flight; retries failed ones with backoff."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.slots = threading.Semaphore(sink.options.concurrency)
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)
        self.in_flight = 0
        self.rows = 0
        self.failure: BaseException | None = None

    def run(self, batches: Iterable[BatchStatement]) -> int:
        for batch in batches:
            self.slots.acquire()
            if self.failure is not None:
                self.slots.release()
                break
            with self.lock:
                self.in_flight += 1
            self._send(batch, attempt=0)
        with self.done:
            while self.in_flight:
                self.done.wait()
        if self.failure is not None:
            raise TransientIngestError(f"cassandra write failed after {self.sink.options.retries} retries: "
                                       f"{type(self.failure).__name__}: {self.failure}") from self.failure
        return self.rows

    def _send(self, batch: BatchStatement, attempt: int) -> None:
        try:
            future = self.sink.session.execute_async(batch)
        except Exception as exc:  # noqa: BLE001 - e.g. NoHostAvailable raised synchronously; retried like async ones
            self._failed(exc, batch, attempt)
            return
        future.add_callbacks(self._ok, self._failed, callback_args=(len(batch),), errback_args=(batch, attempt))

    def _ok(self, _result: Any, n: int) -> None:
        with self.lock:
            self.rows += n
        self._release()

    def _failed(self, exc: BaseException, batch: BatchStatement, attempt: int) -> None:
        if attempt < self.sink.options.retries and self.failure is None:
            delay = self.sink.options.backoff_s * (2 ** attempt)
            log.warning("tenant=%s batch of %d rows failed (%s: %s); retry %d in %.1fs", self.sink.tenant.name,
                        len(batch), type(exc).__name__, exc, attempt + 1, delay)
            # Retry from a timer thread: never sleep on the driver's event loop.
            threading.Timer(delay, self._send, args=(batch, attempt + 1)).start()
            return
        with self.lock:
            if self.failure is None:
                self.failure = exc
        self._release()

    def _release(self) -> None:
        with self.done:
            self.in_flight -= 1
            self.done.notify_all()
        self.slots.release()

