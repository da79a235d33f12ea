"""A benchmark step's Kafka records, encoded before the step and put into record batches when sent.

The tenant client (``producers.stream``) serialises each message, hashes its key to a partition and
appends it to a record batch inside kafka-python's ``send()``: about 75 µs of CPU per message, more
than the platform spends on it. A load generator that does this work while it is being timed
takes the cores the platform needs. Here that work is done before the step (:func:`plan`):

- each message is the tenant client's bytes (:class:`Template`: ``producers.stream.encode`` and
  ``key_for`` of the message, with a fresh id tail), hashed to its partition with the murmur2 of
  kafka-python's (and Java's) default partitioner for keyed messages;
- each record is encoded as far as it can be: its key and value with their lengths, no headers.

When messages are due, :func:`assemble` puts a partition's due records into one v2 record batch,
as kafka-python's ``DefaultRecordBatchBuilder`` would (byte for byte: tests/unit/test_stream_batches.py):
each record's length, attributes, timestamp delta 0 and offset delta go in front of its encoded
part, the header gets the send time as first and max timestamp (so every record's CreateTime is the
instant its batch is sent), the producer id, epoch and base sequence, and the CRC-32C in C. That is
a few table look-ups and one ``join`` per record, so however many messages became due while the
broker was busy go out in one batch, as the client's accumulator would send them.

Pure: no service, no clock.
"""

from __future__ import annotations

import struct
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import codec as kafka_codec
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.util import calc_crc32c, encode_varint

from producers.stream import encode, key_for

# Stands for a message's fresh id tail while it is pre-serialised: ASCII that JSON never escapes.
ID_MARK = f"@{uuid.uuid4().hex}@"

_HEADER = DefaultRecordBatch.HEADER_STRUCT
_CRC = struct.Struct(">I")
_CRC_OFFSET = DefaultRecordBatch.CRC_OFFSET
_CRC_FROM = DefaultRecordBatch.ATTRIBUTES_OFFSET
_AFTER_LENGTH = DefaultRecordBatch.AFTER_LEN_OFFSET
NO_PRODUCER_ID, NO_EPOCH, NO_SEQUENCE = -1, -1, -1
SEQUENCE_WRAP = 2 ** 31  # sequences are int32 and wrap to 0 after the largest
MAX_RECORDS = 8191  # per batch: offset deltas then take at most two varint bytes
_ENCODERS: dict[int, Callable[[bytes], bytes] | None] = {
    DefaultRecordBatch.CODEC_GZIP: kafka_codec.gzip_encode, DefaultRecordBatch.CODEC_SNAPPY: kafka_codec.snappy_encode,
    DefaultRecordBatch.CODEC_LZ4: kafka_codec.lz4_encode, DefaultRecordBatch.CODEC_ZSTD: kafka_codec.zstd_encode}
CODECS = {None: DefaultRecordBatch.CODEC_NONE, "gzip": DefaultRecordBatch.CODEC_GZIP,
          "snappy": DefaultRecordBatch.CODEC_SNAPPY, "lz4": DefaultRecordBatch.CODEC_LZ4,
          "zstd": DefaultRecordBatch.CODEC_ZSTD}


def varint(value: int) -> bytes:
    """Kafka's zigzag varint of ``value``."""
    out = bytearray()
    encode_varint(value, out.append)
    return bytes(out)


# Record lengths, looked up rather than encoded at send time (grown by plan() for longer records), and
# each record's attributes (0), timestamp delta (0) and offset delta, by offset delta.
_VARINTS = [varint(n) for n in range(2 ** 14)]
_FRONTS = [b"\x00\x00" + varint(n) for n in range(MAX_RECORDS)]
_NARROW = 64  # offset deltas below it take one varint byte, the rest of a batch's two
_WIDE_FRONTS = _FRONTS[_NARROW:]
_MASK32, _M = 0xFFFFFFFF, 0x5BD1E995


def murmur2(data: bytes) -> int:
    """kafka-python's ``murmur2`` (the Java client's), in fewer Python steps: the same value for any bytes."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & _MASK32
        k = ((k ^ (k >> 24)) * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[whole + 2] << 16
        if extra >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK32
    h = ((h ^ (h >> 13)) * _M) & _MASK32
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition kafka-python's (and Java's) default partitioner picks for a keyed message."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


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


@dataclass
class Queue:
    """One partition's records of a step, in send order; ``sent`` of them are gone."""
    partition: int
    leader: int
    members: array[int] = field(default_factory=lambda: array("q"))  # the producer's own message numbers
    parts: list[bytes] = field(default_factory=list)  # key length, key, value length, value, no headers
    sizes: array[int] = field(default_factory=lambda: array("l"))  # a record's length without its offset delta
    ends: array[int] = field(default_factory=lambda: array("q"))  # bytes of the records up to each, cumulative
    sent: int = 0

    def add(self, own: int, value: bytes, key: bytes) -> None:
        part = b"".join((varint(len(key)), key, varint(len(value)), value, b"\x00"))
        self.members.append(own)
        self.parts.append(part)
        self.sizes.append(2 + len(part))  # + attributes and timestamp delta (one byte each)
        self.ends.append((self.ends[-1] if self.ends else 0) + len(part) + 6)

    def take(self, upto: int, max_bytes: int) -> tuple[int, int]:
        """The next records to send, ``[start, end)``: those numbered below ``upto``, at most
        ``max_bytes`` of them (but at least one) and :data:`MAX_RECORDS`."""
        start = self.sent
        end = bisect_left(self.members, upto, lo=start)
        if end > start:
            before = self.ends[start - 1] if start else 0
            end = min(end, max(start + 1, bisect_right(self.ends, before + max_bytes, lo=start)), start + MAX_RECORDS)
        self.sent = end
        return start, end


def plan(messages: Iterator[tuple[bytes, bytes]], total: int, partitions: Sequence[int],
         leaders: Mapping[int, int]) -> list[Queue]:
    """The next ``total`` ``messages`` (value, key), numbered from 0, encoded into their partitions' queues."""
    ordered = sorted(partitions)
    queues = {p: Queue(p, leaders[p]) for p in ordered}
    for own in range(total):
        value, key = next(messages)
        queues[partition_for(key, ordered)].add(own, value, key)
    longest = max((max(q.sizes) for q in queues.values() if q.sizes), default=0) + 2
    _VARINTS.extend(varint(n) for n in range(len(_VARINTS), longest + 1))
    return [queues[p] for p in ordered]


def assemble(queue: Queue, start: int, end: int, ms: int, producer_id: int, epoch: int, sequence: int,
             codec: int = DefaultRecordBatch.CODEC_NONE) -> bytearray:
    """Records ``[start, end)`` of ``queue`` as one v2 record batch sent at ``ms`` (CreateTime of all its
    records) by that producer with that base sequence, compressed with ``codec`` if that helps."""
    # Offset deltas below _NARROW take one varint byte, the rest two: a record's length counts them.
    table, narrow = _VARINTS, min(_NARROW, end - start)
    parts, sizes = queue.parts[start:end], queue.sizes[start:end]
    records = b"".join(
        [table[size + 1] + front + part
         for front, part, size in zip(_FRONTS[:narrow], parts[:narrow], sizes[:narrow], strict=True)]
        + [table[size + 2] + front + part
           for front, part, size in zip(_WIDE_FRONTS[:end - start - narrow], parts[narrow:], sizes[narrow:],
                                        strict=True)])
    attributes = 0
    encoder = _ENCODERS.get(codec)
    if encoder is not None:
        packed = encoder(records)
        if len(packed) < len(records):  # as kafka-python: compressed only if it is smaller
            records, attributes = packed, codec
    buffer = bytearray(_HEADER.size)
    buffer += records
    count = end - start
    _HEADER.pack_into(buffer, 0, 0, len(buffer) - _AFTER_LENGTH, 0, 2, 0, attributes, count - 1, ms, ms,
                      producer_id, epoch, sequence, count)
    _CRC.pack_into(buffer, _CRC_OFFSET, calc_crc32c(memoryview(buffer)[_CRC_FROM:]))
    return buffer


def next_sequence(sequence: int, count: int) -> int:
    return (sequence + count) % SEQUENCE_WRAP
