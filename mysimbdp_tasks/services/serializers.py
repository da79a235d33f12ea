"""Values in the bytes Cassandra's protocol carries, made once per value without ``BoundStatement``.

The driver's ``PreparedStatement.bind`` builds a ``BoundStatement`` per row and, per value, looks up
column-encryption policy and builds a ``ColDesc`` before it calls the column type's ``serialize``:
about half of a worker's CPU per row went there (py-spy, benchmarks/probe.py). Here each column
gets its serializer once, from the prepared statement's metadata, and a row becomes a list of
bytes that ``BatchMessage.send_body`` writes as they are (cassandra-driver 3.30,
``protocol.write_value``). The bytes are the driver's own: the common types use the same packing
functions the driver's ``serialize`` uses, and every other type calls that ``serialize``.
Column encryption is not used by the platform (no policy is set on the cluster).

A null (``None``) becomes ``UNSET_VALUE``: an absent value leaves the column alone instead of
writing a tombstone.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Sequence
from typing import Any

from cassandra import cqltypes
from cassandra.marshal import int8_pack, int16_pack, int32_pack, int64_pack
from cassandra.query import UNSET_VALUE, PreparedStatement

__all__ = ["UNSET_VALUE", "RowSerializer"]

Serialize = Callable[[Any], Any]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DateType: Any = cqltypes.DateType


def _timestamp(value: Any) -> bytes:
    """``DateType.serialize`` without ``calendar.timegm``: the same float expression on the same
    whole seconds, so the same 8 bytes, for the aware datetimes the converters make."""
    if type(value) is not dt.datetime or value.tzinfo is not dt.UTC:
        return _DateType.serialize(value, 4)
    since = value - _EPOCH
    seconds = since.days * 86400 + since.seconds  # = timegm(value.utctimetuple())
    return int64_pack(int(seconds * 1e3 + value.microsecond / 1e3))


# The driver's serialize of these types is exactly one call of these functions.
_FAST: dict[str, Serialize] = {
    "text": str.encode,  # UTF-8; a method descriptor, so no Python frame per value
    "varchar": str.encode,
    "int": int32_pack,
    "bigint": int64_pack,
    "counter": int64_pack,
    "smallint": int16_pack,
    "tinyint": int8_pack,
    "timestamp": _timestamp,
}


def column_serializer(cql_type: Any, protocol_version: int) -> Serialize:
    fast = _FAST.get(getattr(cql_type, "typename", ""))
    if fast is not None:
        return fast
    serialize = cql_type.serialize

    def slow(value: Any) -> Any:
        return serialize(value, protocol_version)

    return slow


class RowSerializer:
    """One prepared INSERT's rows as protocol values, with their routing key."""

    __slots__ = ("_composite", "_key_indexes", "_serializers", "prepared")

    def __init__(self, prepared: PreparedStatement) -> None:
        self.prepared = prepared
        version = prepared.protocol_version
        self._serializers: tuple[Serialize, ...] = tuple(
            column_serializer(col.type, version) for col in prepared.column_metadata)
        self._key_indexes: tuple[int, ...] = tuple(prepared.routing_key_indexes or ())
        self._composite = len(self._key_indexes) > 1

    def serializers(self) -> dict[str, Serialize]:
        """Each column's serializer by name, for a :class:`~mysimbdp_tasks.core.encoding.RowEncoder`."""
        return {col.name: ser for col, ser in zip(self.prepared.column_metadata, self._serializers, strict=True)}

    def values(self, row: Sequence[Any]) -> list[Any]:
        """The row's values as bytes (``UNSET_VALUE`` for a null); raises what ``bind`` would raise
        (TypeError, struct.error, OverflowError, ValueError) for a value that cannot be bound."""
        try:
            out = [UNSET_VALUE if v is None else ser(v) for ser, v in zip(self._serializers, row, strict=True)]
        except (TypeError, struct.error, OverflowError, ValueError):
            # Rare: let the driver bind it, so a refusal says what it always said (naming the column
            # and the type), and a value it can bind after all is bound its way.
            return list(self.prepared.bind(tuple(UNSET_VALUE if v is None else v for v in row)).values)
        self.check_key(out)
        return out

    def check_key(self, values: list[Any]) -> None:
        """Raise the driver's struct.error for a partition key part it could not pack for routing."""
        if self._composite:
            for index in self._key_indexes:
                if values[index] is not UNSET_VALUE and len(values[index]) > 0xFFFF:
                    self.routing_key(values)

    def routing_key(self, values: Sequence[Any]) -> bytes | None:
        """The partition key's bytes as the driver packs them (``BoundStatement.routing_key``)."""
        indexes = self._key_indexes
        if not indexes:
            return None
        if len(indexes) == 1:
            return values[indexes[0]]
        return b"".join(struct.pack(f">H{len(values[i])}sB", len(values[i]), values[i], 0) for i in indexes)
