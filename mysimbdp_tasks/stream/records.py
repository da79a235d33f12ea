"""Reading the records of a fetched Kafka batch for the bridge, with less Python per record.

kafka-python (3.0) decodes each record of a v2 batch through about thirty Python calls: a
generator per batch and one per fetch, ``DefaultRecordBatch.__next__`` and ``_read_msg`` (eight
``decode_varint`` calls, a ``DefaultRecord`` with a property per field), ``validate_crc`` (always
true for v2 records: the CRC covers the batch), two ``_deserialize`` calls and the header sizes.
In the bridge that was about 40 % of its CPU per message.

:class:`FastPartitionRecords` replaces only the inner loop of the consumer's
``Fetcher.PartitionRecords._unpack_records`` for batches of format v2: every batch is still
checked against its CRC first, control batches are still skipped, compressed batches are still
decompressed by kafka-python, and each record becomes the same ``ConsumerRecord`` with the same
fields. Per record it reads the fields in one plain loop (no record object, no properties, no
deserializer calls), slices key and value from one ``bytes`` copy of the batch, and reads no
headers when there are none.
Anything else (transactions read committed, deserializers, the older formats) goes through
kafka-python's own code, so this is only ever a faster route to the same records.

It relies on kafka-python's internals (``Fetcher.PartitionRecords`` and ``DefaultRecordBatch``'s
buffer after ``__iter__``), which setup.cfg pins to a major version;
tests/unit/test_stream_records.py compares its records with kafka-python's for every kind of
batch, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord, Fetcher, IsolationLevel
from kafka.errors import CorruptRecordError
from kafka.record.util import decode_varint

log = logging.getLogger(__name__)

_new = tuple.__new__  # ConsumerRecord(...) without the namedtuple's Python-level __new__


def decode(data: bytes, pos: int, count: int, base_offset: int, first_timestamp: int,
           log_append_time: int | None) -> Iterator[tuple[int, int, bytes | None, bytes | None, list[Any], int]]:
    """The records of an uncompressed v2 batch body ``data[pos:]``: (offset, timestamp, key, value,
    headers, size in bytes) each, as kafka-python's ``_read_msg`` reads them."""
    try:
        for _ in range(count):
            # Length => Varint
            length, pos = decode_varint(data, pos)
            start = pos
            end = start + length
            pos += 1  # Attributes => Int8, unused
            # TimestampDelta => Varlong
            ts_delta, pos = decode_varint(data, pos)
            # OffsetDelta => Varint
            offset_delta, pos = decode_varint(data, pos)
            # Key => Bytes, Value => Bytes (a length of -1: null)
            key_len, pos = decode_varint(data, pos)
            key = data[pos:pos + key_len] if key_len >= 0 else None
            value_len, pos = decode_varint(data, pos + max(key_len, 0))
            value = data[pos:pos + value_len] if value_len >= 0 else None
            pos += max(value_len, 0)
            # Headers => [HeaderKey HeaderValue]: none is the byte 0
            if data[pos] == 0:
                headers: list[Any] = []
                pos += 1
            else:
                headers, pos = _headers(data, pos)
            if pos != end or len(data) < end:
                raise CorruptRecordError(f"Invalid record size: expected to read {length} bytes in record payload, "
                                         f"but instead read {pos - start}")
            timestamp = first_timestamp + ts_delta if log_append_time is None else log_append_time
            yield base_offset + offset_delta, timestamp, key, value, headers, length
    except (ValueError, IndexError) as exc:  # cut short: as kafka-python says it
        raise CorruptRecordError(f"Found invalid record structure: {exc!r}") from None
    if pos != len(data):
        raise CorruptRecordError(f"{len(data) - pos} unconsumed bytes after all records consumed")


def _headers(data: bytes, pos: int) -> tuple[list[tuple[str, bytes | None]], int]:
    count, pos = decode_varint(data, pos)
    if count < 0:
        raise CorruptRecordError(f"Found invalid number of record headers {count}")
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        key_len, pos = decode_varint(data, pos)
        if key_len < 0:
            raise CorruptRecordError(f"Invalid negative header key size {key_len}")
        # A header's name is whatever the client sent: bytes that are not UTF-8 are kept as
        # surrogates (kafka-python's strict decoding would fail every later poll of the partition).
        key = data[pos:pos + key_len].decode("utf-8", "surrogateescape")
        pos += key_len
        value_len, pos = decode_varint(data, pos)
        if value_len >= 0:
            headers.append((key, data[pos:pos + value_len]))
            pos += value_len
        else:
            headers.append((key, None))
    return headers, pos


class FastPartitionRecords(Fetcher.PartitionRecords):
    """kafka-python's ``PartitionRecords`` with the records of v2 batches read by :func:`decode`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._fast = (kwargs.get("key_deserializer") is None and kwargs.get("value_deserializer") is None
                      and kwargs.get("isolation_level", IsolationLevel.READ_UNCOMMITTED)
                      == IsolationLevel.READ_UNCOMMITTED)
        super().__init__(*args, **kwargs)

    def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any) -> Iterator[Any]:
        if not self._fast:
            yield from super()._unpack_records(tp, records, key_deserializer, value_deserializer)
            return
        try:
            batch = records.next_batch()
            last_batch = None
            while batch is not None:
                last_batch = batch
                if self.check_crcs and not batch.validate_crc():
                    raise CorruptRecordError(f"Record batch for partition {self.topic_partition} at offset "
                                             f"{batch.base_offset} failed crc check")
                if batch.magic != 2:
                    yield from self._slow(tp, batch)
                elif batch.is_control_batch:
                    self.leader_epoch = batch.leader_epoch
                    self.next_fetch_offset = batch.next_offset
                else:
                    self.leader_epoch = batch.leader_epoch
                    yield from self._fast_batch(tp, batch)
                batch = records.next_batch()
            if last_batch is not None and last_batch.magic == 2:
                self.next_fetch_offset = last_batch.next_offset
            self.drain()
        except StopIteration:  # as kafka-python: a StopIteration inside would end the generator silently
            log.exception("StopIteration raised unpacking messageset")
            raise RuntimeError("StopIteration raised unpacking messageset") from None

    def _fast_batch(self, tp: Any, batch: Any) -> Iterator[Any]:
        iter(batch)  # decompresses a compressed batch into its buffer
        data = bytes(batch._buffer)  # noqa: SLF001 - one copy; slicing bytes gives bytes (a bytearray's would copy twice)
        topic, partition, epoch = tp.topic, tp.partition, self.leader_epoch
        ts_type = batch.timestamp_type
        append_time = batch.max_timestamp if ts_type == batch.LOG_APPEND_TIME else None
        start = batch._pos  # noqa: SLF001 - where the records begin (after the header, or 0 once decompressed)
        records = decode(data, start, batch.records_count, batch.base_offset, batch.first_timestamp, append_time)
        for offset, timestamp, key, value, headers, size in records:
            self.records_read += 1
            self.bytes_read += size
            self.next_fetch_offset = offset + 1
            yield _new(ConsumerRecord, (
                topic, partition, epoch, offset, timestamp, ts_type, key, value, headers, None,
                -1 if key is None else len(key), -1 if value is None else len(value),
                _headers_size(headers)))

    def _slow(self, tp: Any, batch: Any) -> Iterator[Any]:
        """Records of an older format, as kafka-python gives them (no deserializers here)."""
        for record in batch:
            if self.check_crcs and not record.validate_crc():
                raise CorruptRecordError(f"Record for partition {self.topic_partition} at offset {record.offset} "
                                         "failed crc check")
            key, value, headers = record.key, record.value, record.headers
            self.records_read += 1
            self.bytes_read += record.size_in_bytes
            self.next_fetch_offset = record.offset + 1
            yield ConsumerRecord(
                tp.topic, tp.partition, self.leader_epoch, record.offset, record.timestamp, record.timestamp_type,
                key, value, headers, record.checksum, -1 if key is None else len(key),
                -1 if value is None else len(value), _headers_size(headers))


def _headers_size(headers: list[Any]) -> int:
    return sum(len(k.encode("utf-8", "surrogateescape")) + (len(v) if v is not None else 0)
               for k, v in headers) if headers else -1


def speed_up(consumer: KafkaConsumer) -> bool:
    """Have ``consumer`` read its fetched records with :class:`FastPartitionRecords`; False (and
    kafka-python's own reading) if its fetcher is not the one this module knows."""
    fetcher = getattr(consumer, "_fetcher", None)
    if not isinstance(fetcher, Fetcher) or getattr(fetcher, "PartitionRecords", None) is not Fetcher.PartitionRecords:
        log.warning("kafka-python's fetcher is not the one of 3.0; records are read its own (slower) way")
        return False
    fetcher.PartitionRecords = FastPartitionRecords
    return True
