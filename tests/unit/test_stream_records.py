"""The bridge's reading of fetched record batches gives exactly the records kafka-python gives.

Batches are built with kafka-python's own record builders (the bytes a broker returns in a fetch),
then read by kafka-python's ``PartitionRecords`` and by the bridge's ``FastPartitionRecords``: the
records, the offset the fetcher moves to, and the refusal of a corrupt batch must be the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from mysimbdp_tasks.stream.records import FastPartitionRecords

pytestmark = pytest.mark.unit

TP = TopicPartition("t1.ingest", 2)
NONE, GZIP = 0, 1


def fetched(*batches: list[tuple[int, bytes | None, bytes | None, list[Any]]], magic: int = 2,
            compression: int = NONE, first_offset: int = 0) -> bytes:
    """The bytes of a fetch holding these batches of (timestamp, key, value, headers)."""
    out, offset = b"", first_offset
    for records in batches:
        builder = MemoryRecordsBuilder(magic=magic, compression_type=compression, batch_size=1 << 24, offset=offset)
        for timestamp, key, value, headers in records:
            assert builder.append(timestamp, key, value, headers) is not None
            offset += 1
        builder.close()
        out += bytes(builder.buffer())
    return out


def read(cls: Any, data: bytes, fetch_offset: int = 0, take: int | None = None) -> tuple[list[Any], int]:
    part = cls(fetch_offset, TP, MemoryRecords(data), check_crcs=True)
    records = part.take(take)
    return records, part.next_fetch_offset


def same(data: bytes, **kwargs: Any) -> list[Any]:
    ours = read(FastPartitionRecords, data, **kwargs)
    theirs = read(Fetcher.PartitionRecords, data, **kwargs)
    assert ours == theirs
    return ours[0]


def messages(n: int, start_ts: int = 1_700_000_000_000) -> list[tuple[int, bytes | None, bytes | None, list[Any]]]:
    """Keys and values of every varint width, a null key, an empty and a null value, big time steps."""
    out: list[tuple[int, bytes | None, bytes | None, list[Any]]] = []
    for i in range(n):
        key = None if i % 7 == 0 else f"id-{i}".encode() * (1 + i % 40)
        body = "é\\\"x" * (i * 13 % 5000)
        value: bytes | None = f'{{"id": "{i}", "body": "{body}"}}'.encode()
        if i % 11 == 0:
            value = b""
        if i % 13 == 0:
            value = None
        out.append((start_ts + i * i * 37, key, value, []))
    return out


def test_the_records_of_plain_batches_are_kafka_pythons_own() -> None:
    got = same(fetched(messages(300), messages(5, start_ts=1_600_000_000_000), messages(1)))
    assert [r.offset for r in got] == list(range(306))
    assert got[1].value is not None and got[1].value.startswith(b'{"id": "1"')


def test_headers_compressed_batches_and_an_older_format_read_the_same() -> None:
    some = [("h", b"v"), ("é", None), ("", b"")]
    with_headers: list[tuple[int, bytes | None, bytes | None, list[Any]]] = [
        (1_700_000_000_000 + i, b"k", b"{}", some if i % 2 else []) for i in range(20)]
    got = same(fetched(with_headers))
    assert got[1].headers == [("h", b"v"), ("é", None), ("", b"")] and got[1].serialized_header_size > 0
    same(fetched(messages(50), messages(50), compression=GZIP))
    same(fetched(messages(30), magic=1))


def test_a_fetch_starting_inside_a_batch_and_a_partial_take_move_the_position_alike() -> None:
    data = fetched(messages(40), messages(40), first_offset=1000)
    got = same(data, fetch_offset=1025)
    assert got[0].offset == 1025 and got[-1].offset == 1079
    got = same(data, fetch_offset=1000, take=50)
    assert len(got) == 50


def test_a_corrupt_batch_is_refused_as_kafka_python_refuses_it() -> None:
    data = bytearray(fetched(messages(20)))
    data[-5] ^= 0xFF  # inside the last record's value: the batch's CRC no longer matches
    for cls in (FastPartitionRecords, Fetcher.PartitionRecords):
        with pytest.raises(CorruptRecordError, match="crc"):
            read(cls, bytes(data))


def test_a_header_name_that_is_not_utf8_is_read_and_the_records_after_it_too() -> None:
    """A client may send any bytes as a header's name, and the broker keeps them. kafka-python's own
    reading fails on them at every poll of the partition; the tenant's bridge and the shared monitor
    must read on."""
    import struct

    from kafka.record.default_records import DefaultRecordBatch
    from kafka.record.util import calc_crc32c

    data = bytearray(fetched([(1_700_000_000_000, None, b'{"id": "before"}', []),
                              (1_700_000_000_001, None, b'{"id": "odd"}', [("zz", b"v")]),
                              (1_700_000_000_002, None, b'{"id": "after"}', [])]))
    at = data.index(b"zz")
    data[at:at + 2] = b"\xff\xfe"
    struct.pack_into(">I", data, DefaultRecordBatch.CRC_OFFSET,
                     calc_crc32c(memoryview(data)[DefaultRecordBatch.ATTRIBUTES_OFFSET:]))
    theirs = Fetcher.PartitionRecords(0, TP, MemoryRecords(bytes(data)), check_crcs=True)
    assert [r.value for r in theirs.take(None)] == [b'{"id": "before"}']
    with pytest.raises(CorruptRecordError):
        theirs.take(None)
    records, next_offset = read(FastPartitionRecords, bytes(data))
    assert [r.value for r in records] == [b'{"id": "before"}', b'{"id": "odd"}', b'{"id": "after"}']
    assert records[1].headers == [("\udcff\udcfe", b"v")] and records[1].serialized_header_size == 3
    assert next_offset == 3
