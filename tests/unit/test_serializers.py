"""Rows serialized by the sink, or encoded straight from records, are byte for byte what converting and
the driver's own bind make of them, and refused with the same reasons."""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from typing import Any

import pytest
from cassandra import cqltypes
from cassandra.protocol import ColumnMetadata
from cassandra.query import UNSET_VALUE, PreparedStatement

from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.encoding import RowEncoder
from mysimbdp_tasks.core.errors import RowError
from mysimbdp_tasks.services.serializers import RowSerializer

pytestmark = pytest.mark.unit

TYPES = {
    "t": cqltypes.UTF8Type, "a": cqltypes.AsciiType, "i": cqltypes.Int32Type, "b": cqltypes.LongType,
    "s": cqltypes.ShortType, "y": cqltypes.ByteType, "ts": cqltypes.DateType, "d": cqltypes.DecimalType,
    "v": cqltypes.IntegerType, "f": cqltypes.FloatType, "x": cqltypes.DoubleType, "o": cqltypes.BooleanType,
    "u": cqltypes.UUIDType, "dt": cqltypes.SimpleDateType, "tm": cqltypes.TimeType, "ip": cqltypes.InetAddressType,
    "bl": cqltypes.BytesType,
}
CQL = {"t": "text", "a": "ascii", "i": "int", "b": "bigint", "s": "smallint", "y": "tinyint", "ts": "timestamp",
       "d": "decimal", "v": "varint", "f": "float", "x": "double", "o": "boolean", "u": "uuid", "dt": "date",
       "tm": "time", "ip": "inet", "bl": "blob"}


def prepared(keys: list[int]) -> PreparedStatement:
    meta = [ColumnMetadata("ks", "tbl", name, kind) for name, kind in TYPES.items()]
    return PreparedStatement(meta, b"id", keys, "INSERT", "ks", 4, None, None)


RAW: list[dict[str, Any]] = [
    {"t": "héllo 😀", "a": "abc", "i": "-2147483648", "b": 2**63 - 1, "s": "7", "y": -128, "ts": 1430438758,
     "d": "12.50", "v": "9" * 40, "f": "1.5", "x": 0.1, "o": "yes", "u": str(uuid.UUID(int=5)), "dt": "2020-02-29",
     "tm": "12:34:56.789", "ip": "::1", "bl": "0xCAFE"},
    {"t": "", "ts": "2015-05-01 00:05:58.123456+02:00", "x": "NaN", "d": 0.1},
    {"t": "x", "ts": "-62135596800", "i": 3.0},
    {"t": "y", "ts": 1430438758123, "b": "  42 "},
    {"t": "z", "ts": 1430438758.999999},
    {"t": "w", "ts": "1969-12-31T23:59:59.5Z"},
]


@pytest.mark.parametrize("keys", [[0], [0, 6], []])
@pytest.mark.parametrize("raw", RAW)
def test_values_are_the_bytes_bind_makes(raw: dict[str, Any], keys: list[int]) -> None:
    row = RowConverter(CQL, []).convert(raw)
    statement = prepared(keys)
    ours = RowSerializer(statement).values(row)
    theirs = statement.bind(tuple(UNSET_VALUE if v is None else v for v in row)).values
    assert ours == theirs
    bound = statement.bind(tuple(UNSET_VALUE if v is None else v for v in row))
    assert RowSerializer(statement).routing_key(ours) == bound.routing_key


def test_a_value_bind_refuses_raises_what_bind_raises() -> None:
    statement = prepared([0])
    row: list[Any] = [None] * len(TYPES)
    row[0], row[2] = "k", 2**40  # an int the converter would refuse, straight to the sink
    with pytest.raises((TypeError, struct.error)) as ours:
        RowSerializer(statement).values(row)
    with pytest.raises((TypeError, struct.error)) as theirs:
        statement.bind(row)
    assert str(ours.value) == str(theirs.value)


def test_a_composite_key_part_too_long_to_route_is_refused() -> None:
    statement = prepared([0, 1])
    row: list[Any] = [None] * len(TYPES)
    row[0], row[1] = "k" * 70_000, "a"
    with pytest.raises(struct.error):
        RowSerializer(statement).values(row)


def test_timestamps_outside_utc_use_the_drivers_serializer() -> None:
    statement = prepared([])
    row: list[Any] = [None] * len(TYPES)
    row[0] = "k"
    row[6] = dt.datetime(2015, 5, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    row[7] = decimal.Decimal("1.5")
    unset = tuple(UNSET_VALUE if v is None else v for v in row)
    assert RowSerializer(statement).values(row) == statement.bind(unset).values


def encoder(keys: list[str]) -> tuple[RowEncoder, RowSerializer]:
    statement = prepared([list(TYPES).index(k) for k in keys if k in ("t", "ts")])
    rows = RowSerializer(statement)
    return RowEncoder(CQL, keys, rows.serializers(), UNSET_VALUE), rows


def outcome(convert: Any, rows: RowSerializer) -> Any:
    """The bytes a row is written as (a tuple of values is serialized by the sink), or its refusal."""
    try:
        got = convert()
    except RowError as exc:
        return exc.reason, exc.detail
    return got if type(got) is list else rows.values(got)


ODD: list[dict[str, Any]] = [
    {"t": None, "ts": "1430438758"}, {"t": 5, "ts": True}, {"t": "\ud800", "ts": 1}, {"t": "k", "i": 2**31},
    {"t": "k", "ts": "99999999999"}, {"t": "k", "ts": -62135596801}, {"t": "k", "ts": "0000000001"},
    {"t": "", "ts": 1}, {"ts": 1}, {"t": "k", "ts": "  "}, {"t": "k", "bl": "0x"}, {"t": "k", "a": ""},
    {"t": "k", "b": "1.0", "y": 127, "s": -32768}, {"t": "k", "ts": 10**11}, {"t": "k", "ts": -1},
]


@pytest.mark.parametrize("raw", RAW + ODD)
def test_the_encoder_makes_the_bytes_converting_then_binding_makes(raw: dict[str, Any]) -> None:
    encode, rows = encoder(["t", "ts"])
    assert outcome(lambda: encode.convert(raw), rows) == outcome(
        lambda: RowConverter(CQL, ["t", "ts"]).convert(raw), rows)


@pytest.mark.parametrize("fields", [["k", "1430438758", "7"], ["k", "", "7"], ["k"], ["", "1", "1"], ["k", "x", "1"]])
def test_the_encoder_reads_csv_rows_as_the_converter_reads_their_dicts(fields: list[str]) -> None:
    header = ["t", "ts", "i"]
    encode, rows = encoder(["t"])
    assert outcome(lambda: encode.convert_fields(header, fields), rows) == outcome(
        lambda: RowConverter(CQL, ["t"]).convert(dict(zip(header, fields, strict=False))), rows)


@pytest.mark.parametrize("keys", [["t"], ["ts"], ["bl"], ["a"], ["t", "a"], ["i", "t", "bl"]])
@pytest.mark.parametrize("raw", [*ODD, {"t": "k", "a": "", "bl": "", "i": 1}, {"t": "k", "a": "x", "bl": "0x00"}])
def test_the_encoder_checks_any_key_as_the_converter_does(keys: list[str], raw: dict[str, Any]) -> None:
    encode, rows = encoder(keys)
    assert outcome(lambda: encode.convert(raw), rows) == outcome(lambda: RowConverter(CQL, keys).convert(raw), rows)
