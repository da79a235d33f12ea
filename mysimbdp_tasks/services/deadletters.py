"""Dead letters: refused stream messages, on ``<tenant>.dead``, with the reason in the headers.

The bridge refuses messages it cannot validate or admit, and a worker refuses those it cannot
write (Cassandra rejects a row, or the whole micro-batch fails for good). Both send them here the
same way: the original payload and key, and the headers ``reason``, ``detail``, ``tenant``,
``source_topic``, ``source_partition`` and ``source_offset``. :func:`send_all` returns only once
Kafka has acknowledged every one, so a caller may then count them as delivered.

A letter must fit in one Kafka record, and the headers make it larger than the message it holds:
a message that was itself near Kafka's limit is kept cut to :data:`MAX_LETTER_BYTES`, with the
headers ``value_bytes`` / ``key_bytes`` (its original size) and ``value_sha256`` / ``key_sha256``
(of the original), and is never replayed. One letter Kafka refuses anyway (it is too large or
invalid: a retry cannot help) is logged with its tenant, origin and reason instead of stopping
the caller; Kafka away still raises.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from ..core import names

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 30.0
#: The most a letter's key, value and headers may hold: under kafka-python's default request size
#: (1 MiB) and the broker's default record batch (1 MiB + 12), with room for the batch's own bytes.
MAX_LETTER_BYTES = 1_000_000
MAX_DETAIL_CHARS = 2_000
#: What Kafka answers for one record that can never be written: logged, and the others go on.
REFUSED_RECORD = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError, CorruptRecordError)


@dataclass(frozen=True)
class DeadLetter:
    partition: int  # where the message came from, in the tenant's ingest topic
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str  # machine-readable, e.g. "bad_json", "rejected_by_cassandra"
    detail: str


def is_transient(exc: BaseException) -> bool:
    """Kafka being away or slow (the send may well succeed later), rather than refusing the record."""
    return isinstance(exc, KafkaError) and exc.retriable


def headers(tenant: str, letter: DeadLetter) -> list[tuple[str, bytes]]:
    return [("reason", letter.reason.encode()),
            ("detail", letter.detail[:MAX_DETAIL_CHARS].encode("utf-8", "backslashreplace")),
            ("tenant", tenant.encode()), ("source_topic", names.ingest_topic(tenant).encode()),
            ("source_partition", str(letter.partition).encode()), ("source_offset", str(letter.offset).encode())]


def fitted(key: bytes | None, value: bytes | None, heads: list[tuple[str, bytes]]
           ) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """Key, value and headers of a letter within :data:`MAX_LETTER_BYTES`: as given when they fit, else
    the value (then the key) cut, with the original's size and SHA-256 in headers."""
    def size() -> int:
        return len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in heads) + 64 * len(heads)

    for field in ("value", "key"):
        over = size() - MAX_LETTER_BYTES
        whole = value if field == "value" else key
        if over <= 0 or not whole:
            continue
        heads = [*heads, (f"{field}_bytes", str(len(whole)).encode()),
                 (f"{field}_sha256", hashlib.sha256(whole).hexdigest().encode())]
        cut = whole[:max(0, len(whole) - (size() - MAX_LETTER_BYTES))]
        if field == "value":
            value = cut
        else:
            key = cut
    return key, value, heads


def send_all(producer: KafkaProducer, tenant: str, letters: Sequence[DeadLetter],
             timeout_s: float = ACK_TIMEOUT_S) -> None:
    """Send every letter to the tenant's dead topic and wait until Kafka acknowledged each one.

    Raises the producer's error if Kafka refused one (then the caller must not count them sent).
    """
    if not letters:
        return
    topic = names.dead_topic(tenant)
    futures = []
    for letter in letters:
        log.info("tenant=%s partition=%d offset=%d dead-lettered reason=%s detail=%s", tenant, letter.partition,
                 letter.offset, letter.reason, letter.detail)
        # Kafka refuses a record with neither key nor value (a keyless tombstone): send it empty.
        value = b"" if letter.value is None and letter.key is None else letter.value
        key, value, heads = fitted(letter.key, value, headers(tenant, letter))
        try:  # the client checks a record's size as it takes it
            futures.append((letter, producer.send(topic, value=value, key=key, headers=heads)))
        except REFUSED_RECORD as exc:
            _refused(tenant, letter, exc)
    producer.flush(timeout=timeout_s)
    for letter, future in futures:
        try:
            future.get(timeout=timeout_s)
        except REFUSED_RECORD as exc:
            _refused(tenant, letter, exc)


def _refused(tenant: str, letter: DeadLetter, exc: Exception) -> None:
    log.error("tenant=%s partition=%d offset=%d reason=%s dead letter refused by Kafka, kept only in this log: "
              "%s: %s", tenant, letter.partition, letter.offset, letter.reason, type(exc).__name__, exc)
