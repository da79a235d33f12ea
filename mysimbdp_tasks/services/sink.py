"""coredms sink: write converted rows into a tenant's table, fast and safely.

- One prepared ``INSERT`` per tenant table; values are always bound, never formatted into CQL.
- Rows are grouped into ``UNLOGGED`` batches by the replica that owns them (so a batch is one hop on
  the coordinator), each kept under a byte and a row limit below Cassandra's batch thresholds
  (``batch_size_warn_threshold`` 64 KiB on the local stack; the fail threshold is larger).
- Batches run with bounded concurrency through the driver's async API.
- A failed batch is first classified (:func:`is_permanent`). A *permanent* failure (Cassandra refuses
  the request, e.g. a key over 65,535 bytes or a mutation too large, or a value cannot be bound) is
  about some row of it: the batch is split in halves until the offending rows are alone, the rest
  is written and each offending row is reported to the caller's ``refuse`` with
  ``rejected_by_cassandra`` (or ``unbindable``) and the message. A *transient* failure (a node
  down, slow or restarting) is retried with exponential backoff; if it persists the whole write
  raises :class:`~mysimbdp_tasks.core.errors.TransientIngestError` so the task retries later.
  Writes are upserts on the tenant's primary key, so replaying any of them is harmless.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel, InvalidRequest, Unauthorized
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from ..core.cql import ident
from ..core.encoding import RowEncoder
from ..core.errors import PermanentIngestError, TransientIngestError
from ..core.tenants import Tenant
from . import telemetry
from .serializers import UNSET_VALUE, RowSerializer

log = logging.getLogger(__name__)

#: Raised by the driver when it cannot serialize a value (at bind, or packing a routing key).
BIND_ERRORS: tuple[type[BaseException], ...] = (TypeError, struct.error, OverflowError, ValueError)
#: Cassandra refusing the request itself: sending the same rows again gets the same answer.
REJECTIONS: tuple[type[BaseException], ...] = (InvalidRequest,)

Refuse = Callable[[int, str, str], None]  # (position of the row in the input, reason, detail)
Group = list[tuple[int, list[Any]]]  # rows of one batch (serialized values), with their positions


def is_permanent(exc: BaseException) -> bool:
    """Whether a write failure is about the rows written rather than the service.

    Permanent: Cassandra's validation errors (``InvalidRequest``: key too long, mutation or batch
    too large, ...) and the driver's serialization errors. Everything else (``NoHostAvailable``,
    ``OperationTimedOut``, ``ConnectionException``, ``Unavailable``, ``WriteTimeout``, ...) is
    transient: the same rows may well be written once the service is back.
    """
    return isinstance(exc, REJECTIONS + BIND_ERRORS)


def _reason(exc: BaseException) -> tuple[str, str]:
    reason = "rejected_by_cassandra" if isinstance(exc, REJECTIONS) else "unbindable"
    kind = type(exc)
    name = kind.__name__ if kind.__module__ in ("builtins", "cassandra") else f"{kind.__module__}.{kind.__name__}"
    return reason, f"{name}: {str(exc)[:300]}"


def _ignore(_position: int, reason: str, detail: str) -> None:
    log.error("row refused by the sink and not reported to any caller: %s: %s", reason, detail)


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


#: About what Cassandra's batch limit counts per cell beyond its value: timestamp, TTL, deletion time.
_CELL = 16
#: The longest part of a composite partition key the driver can pack for routing (an unsigned short).
_KEY_PART_MAX = 0xFFFF


def _size(values: list[Any]) -> int:
    """The row's size as Cassandra's batch limit counts it (``Cell.dataSize``), nulls included."""
    return sum(len(v) for v in values if v is not UNSET_VALUE) + _CELL * len(values)


class Sink:
    def __init__(self, session: Session, tenant: Tenant, options: SinkOptions | None = None) -> None:
        self.session = session
        self.tenant = tenant
        self.options = options or SinkOptions()
        self.insert: PreparedStatement = session.prepare(insert_cql(tenant))
        # The tenant's write consistency (core/replication.py): LOCAL_QUORUM unless it says otherwise.
        self.consistency = ConsistencyLevel.name_to_value[tenant.replication.write_consistency]
        self.insert.consistency_level = self.consistency
        self._rows = RowSerializer(self.insert)
        self._keyspace = self.insert.keyspace
        #: Converts records straight to this sink's bytes: hand it to ``rows.ingest_chunk`` with ``write``.
        self.encoder = RowEncoder(tenant.column_types, tenant.key.columns, self._rows.serializers(), UNSET_VALUE)
        self._multi_node = len(session.cluster.metadata.all_hosts()) > 1

    # -- grouping --------------------------------------------------------------------------
    def groups(self, rows: Iterable[Sequence[Any]], refuse: Refuse) -> Iterator[Group]:
        """Serialize rows and group them per owning replica, within the row and byte limits.

        A row is a tuple of converted values, or a list of bytes from :attr:`encoder`. A row the
        driver cannot bind is refused here and never reaches a batch.
        """
        opts = self.options
        max_rows, max_bytes = opts.batch_max_rows, opts.batch_max_bytes
        serialize, check_key = self._rows.values, self._rows.check_key
        owner_of = self._owner if self._multi_node else None
        open_groups: dict[Any, tuple[Group, list[int]]] = {}
        for position, row in enumerate(rows):
            try:
                # A list is already bytes, from the encoder; a tuple is serialized (its key checked) here.
                values = row if type(row) is list else serialize(row)
                try:
                    row_size = sum(map(len, values)) + _CELL * len(values)
                except TypeError:  # an UNSET_VALUE has no length
                    row_size = _size(values)
                if row_size > _KEY_PART_MAX and values is row:  # only then can a key part be too long
                    check_key(values)
                owner = None if owner_of is None else owner_of(values)
            except BIND_ERRORS as exc:
                refuse(position, *_reason(exc))
                continue
            entry = open_groups.get(owner)
            if entry is None:
                entry = open_groups[owner] = ([], [0])
            group, size = entry
            group.append((position, values))
            size[0] += row_size
            if len(group) >= max_rows or size[0] >= max_bytes:
                del open_groups[owner]
                yield group
        for group, _ in open_groups.values():
            yield group

    def statement(self, group: Group) -> BatchStatement | BoundStatement:
        """One row alone goes as itself: a rejection then names that row, not a batch."""
        if len(group) == 1:
            bound = BoundStatement(self.insert)
            bound.values = group[0][1]
            return bound
        batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self.consistency)
        # What BatchStatement.add(bound) keeps of each row, without a BoundStatement per row.
        query_id = self.insert.query_id
        batch._statements_and_parameters = [(True, query_id, values) for _, values in group]  # noqa: SLF001
        batch.routing_key = self._rows.routing_key(group[0][1])
        batch.keyspace = self._keyspace
        return batch

    def _owner(self, values: Sequence[Any]) -> Any:
        token_map = self.session.cluster.metadata.token_map
        key = self._rows.routing_key(values)
        if token_map is None or key is None:
            return None
        replicas = token_map.get_replicas(self.tenant.namespace, token_map.token_class.from_key(key))
        return replicas[0] if replicas else None

    # -- writing ---------------------------------------------------------------------------
    def write(self, rows: Iterable[Sequence[Any]], refuse: Refuse | None = None) -> int:
        """Write every row Cassandra accepts; return how many were written.

        Rows it refuses for good are reported to ``refuse`` (logged when there is none). Raises
        TransientIngestError if Cassandra keeps failing in a way that may pass.
        """
        refuse = refuse or _ignore
        with telemetry.sink_write(self.tenant.name):
            return _Writer(self, refuse).run(self.groups(rows, refuse))


class _Writer:
    """Keeps at most ``concurrency`` batches in flight; retries transient failures with backoff and
    splits batches that fail permanently down to the rows at fault."""

    def __init__(self, sink: Sink, refuse: Refuse) -> None:
        self.sink = sink
        self.refuse = refuse
        self.slots = threading.Semaphore(sink.options.concurrency)
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)
        self.in_flight = 0
        self.rows = 0
        self.unslotted = 0  # halves of split batches in flight that hold no slot of their own
        self.failure: BaseException | None = None

    def run(self, groups: Iterable[Group]) -> int:
        for group in groups:
            self.slots.acquire()
            if self.failure is not None:
                self.slots.release()
                break
            with self.lock:
                self.in_flight += 1
            self._send(group, attempt=0)
        with self.done:
            while self.in_flight:
                self.done.wait()
        if isinstance(self.failure, Unauthorized):  # secure mode: this role may not write this table
            raise PermanentIngestError("unauthorized", f"Cassandra refused this pool's role: {self.failure}"[:400])
        if self.failure is not None:
            raise TransientIngestError(f"cassandra write failed after {self.sink.options.retries} retries: "
                                       f"{type(self.failure).__name__}: {self.failure}") from self.failure
        return self.rows

    def _send(self, group: Group, attempt: int) -> None:
        try:
            statement = self.sink.statement(group)
            future = self.sink.session.execute_async(statement)
        except Exception as exc:  # noqa: BLE001 - e.g. NoHostAvailable or a routing-key struct.error, raised synchronously
            self._failed(exc, group, attempt)
            return
        future.add_callbacks(self._ok, self._failed, callback_args=(group, statement), errback_args=(group, attempt))

    def _ok(self, _result: Any, group: Group, statement: BatchStatement | BoundStatement) -> None:
        n = len(group)
        # The driver's future sits in a reference cycle (its query plan) that only the cyclic
        # collector frees, and through its message and callbacks it holds every row of the batch:
        # emptied here, the rows are freed as soon as they are written, not at the next collection.
        group.clear()
        if isinstance(statement, BatchStatement):
            statement._statements_and_parameters.clear()  # noqa: SLF001 - the message's list of rows
        with self.lock:
            self.rows += n
        self._release()

    def _failed(self, exc: BaseException, group: Group, attempt: int) -> None:
        tenant = self.sink.tenant.name
        if isinstance(exc, Unauthorized):  # no row of it, and no retry, can pass: stop the whole write
            attempt = self.sink.options.retries
        elif is_permanent(exc):
            if len(group) == 1:
                position = group[0][0]
                log.warning("tenant=%s row %d refused by Cassandra: %s: %s", tenant, position, type(exc).__name__,
                            str(exc)[:300])
                self.refuse(position, *_reason(exc))
                self._release()
                return
            # Some row of the batch is at fault: send each half on its own, in this same slot.
            half = len(group) // 2
            log.info("tenant=%s batch of %d rows refused (%s); splitting it to find the rows at fault", tenant,
                     len(group), type(exc).__name__)
            with self.lock:
                # Two halves replace one batch: one more in flight, but no slot is taken for it
                # (waiting for one from the driver's thread could deadlock); see _release.
                self.in_flight += 1
                self.unslotted += 1
            threading.Thread(target=self._split, args=(group[:half], group[half:]), daemon=True).start()
            return
        if attempt < self.sink.options.retries and self.failure is None:
            delay = self.sink.options.backoff_s * (2 ** attempt)
            log.warning("tenant=%s batch of %d rows failed (%s: %s); retry %d in %.1fs", tenant,
                        len(group), type(exc).__name__, exc, attempt + 1, delay)
            telemetry.sink_retry(tenant)
            # Retry from a timer thread: never sleep on the driver's event loop.
            threading.Timer(delay, self._send, args=(group, attempt + 1)).start()
            return
        with self.lock:
            if self.failure is None:
                self.failure = exc
        self._release()

    def _split(self, first: Group, second: Group) -> None:
        # Off the driver's event loop: sending from an errback could re-enter it synchronously.
        self._send(first, attempt=0)
        self._send(second, attempt=0)

    def _release(self) -> None:
        with self.done:
            self.in_flight -= 1
            self.done.notify_all()
            slotless = self.unslotted > 0
            if slotless:
                self.unslotted -= 1
        if not slotless:
            self.slots.release()
