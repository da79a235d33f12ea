"""A benchmark step's Kafka record batches, built before the step and stamped when they are sent.

The tenant client (``producers.stream``) serialises each message, hashes its key to a partition and
appends it to a record batch inside kafka-python's ``send()``: about 75 µs of CPU per message, more
than the platform spends on it. A load generator that does this work while it is being timed
takes the cores the platform needs. Here the same work is done before the step:

- each message is the tenant client's bytes (:class:`Template`: ``producers.stream.encode`` and
  ``key_for`` of the message, with a fresh id tail), hashed to its partition with the murmur2 of
  kafka-python's default partitioner (the Java client's, for keyed messages);
- the messages of one tick (the pacing interval) are grouped per partition into v2 record batches by
  kafka-python's own ``DefaultRecordBatchBuilder`` (compressed as the client would compress them),
  every record with timestamp delta 0.

At send time :func:`stamp` writes the batch's first and max timestamp (so every record's
CreateTime is the instant its batch is sent), the producer id, epoch and base sequence of the
idempotent producer, and the batch's CRC-32C over them: a few microseconds per batch, in C.

Pure: no service, no clock.
"""

from __future__ import annotations

import struct
import uuid
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka.partitioner import murmur2
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

from producers.stream import encode, key_for

# Stands for a message's fresh id tail while it is pre-serialised: ASCII that JSON never escapes.
ID_MARK = f"@{uuid.uuid4().hex}@"

# The v2 batch header (kafka-python's HEADER_STRUCT): FirstTimestamp, MaxTimestamp, ProducerId,
# ProducerEpoch and BaseSequence follow one another from byte 27; the CRC covers Attributes onwards.
_STAMP = struct.Struct(">qqqhi")
_STAMP_OFFSET = struct.calcsize(">qiibIhi")
_CRC = struct.Struct(">I")
_CRC_OFFSET = DefaultRecordBatch.CRC_OFFSET
_CRC_FROM = DefaultRecordBatch.ATTRIBUTES_OFFSET
CODECS = {None: DefaultRecordBatch.CODEC_NONE, "gzip": DefaultRecordBatch.CODEC_GZIP,
          "snappy": DefaultRecordBatch.CODEC_SNAPPY, "lz4": DefaultRecordBatch.CODEC_LZ4,
          "zstd": DefaultRecordBatch.CODEC_ZSTD}
NO_PRODUCER_ID, NO_EPOCH, NO_SEQUENCE = -1, -1, -1
SEQUENCE_WRAP = 2 ** 31  # sequences are int32 and wrap to 0 after the largest


@dataclass(frozen=True)
class Template:
    """One message serialised once, around its id: the fresh message of ``tail`` (``-s<step>-<seq>``)
    is ``head + tail + rest`` keyed ``key_head + tail + key_rest``, the bytes ``encode`` and
    ``key_for`` give for it, without serialising it again per send."""
    head: bytes
    rest: bytes
    key_head: bytes
    key_rest: bytes

    @classmethod
    def of(cls, message: dict[str, Any]) -> Template:
        marked = {**message, "id": f"{message['id']}{ID_MARK}"}
        head, rest = encode(marked).split(ID_MARK.encode("utf-8"))
        key_head, key_rest = key_for(marked).split(ID_MARK.encode("utf-8"))
        return cls(head, rest, key_head, key_rest)

    def value_and_key(self, tail: bytes) -> tuple[bytes, bytes]:
        return self.head + tail + self.rest, self.key_head + tail + self.key_rest


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition kafka-python's (and Java's) default partitioner picks for a keyed message."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


@dataclass
class Batch:
    """One partition's records of one tick: ``members`` are the producer's own message numbers."""
    partition: int
    members: array[int]
    buffer: bytearray

    @property
    def count(self) -> int:
        return len(self.members)


@dataclass
class Tick:
    """The messages sent at one instant: ``at`` seconds after the step's start, one request per leader."""
    at: float
    first: int  # the producer's own number of its first message
    count: int
    by_leader: dict[int, list[Batch]] = field(default_factory=dict)


def build_batch(partition: int, members: array[int], records: Sequence[tuple[bytes, bytes]], codec: int) -> Batch:
    """A v2 record batch of ``records`` (value, key) as kafka-python's producer builds it, not yet stamped."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                        producer_id=NO_PRODUCER_ID, producer_epoch=NO_EPOCH,
                                        base_sequence=NO_SEQUENCE, batch_size=2 ** 31 - 1)
    for offset, (value, key) in enumerate(records):
        builder.append(offset, 0, key, value, [])
    return Batch(partition, members, builder.build())


def build_ticks(messages: Iterator[tuple[bytes, bytes]], total: int, chunk: int, rate: float,
                partitions: Sequence[int], leaders: Mapping[int, int], codec: int) -> list[Tick]:
    """The ``total`` next ``messages`` (value, key) in ticks of ``chunk``; tick ``k`` is due ``k *
    chunk / rate`` seconds into the step (0 for all if ``rate`` is 0: as fast as possible)."""
    if chunk <= 0:
        raise ValueError(f"a tick needs at least one message, got {chunk}")
    ordered = sorted(partitions)
    ticks = []
    for first in range(0, total, chunk):
        count = min(chunk, total - first)
        grouped: dict[int, tuple[array[int], list[tuple[bytes, bytes]]]] = {}
        for own in range(first, first + count):
            value, key = next(messages)
            members, records = grouped.setdefault(partition_for(key, ordered), (array("l"), []))
            members.append(own)
            records.append((value, key))
        tick = Tick(first / rate if rate > 0 else 0.0, first, count)
        for partition in sorted(grouped):
            members, records = grouped[partition]
            tick.by_leader.setdefault(leaders[partition], []).append(build_batch(partition, members, records, codec))
        ticks.append(tick)
    return ticks


def stamp(batch: Batch, ms: int, producer_id: int, epoch: int, sequence: int) -> None:
    """Make ``batch`` the batch sent at ``ms`` (CreateTime of all its records) by that producer with
    that base sequence, and recompute its CRC-32C."""
    buffer = batch.buffer
    _STAMP.pack_into(buffer, _STAMP_OFFSET, ms, ms, producer_id, epoch, sequence)
    _CRC.pack_into(buffer, _CRC_OFFSET, calc_crc32c(memoryview(buffer)[_CRC_FROM:]))


def next_sequence(sequence: int, count: int) -> int:
    return (sequence + count) % SEQUENCE_WRAP
