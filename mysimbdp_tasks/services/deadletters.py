"""Dead letters: refused stream messages, on ``<tenant>.dead``, with the reason in the headers.

The bridge refuses messages it cannot validate or admit, and a worker refuses those it cannot
write (Cassandra rejects a row, or the whole micro-batch fails for good). Both send them here the
same way: the original payload and key, and the headers ``reason``, ``detail``, ``tenant``,
``source_topic``, ``source_partition`` and ``source_offset``. :func:`send_all` returns only once
Kafka has acknowledged every one, so a caller may then count them as delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ..core import names

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 30.0


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
    return [("reason", letter.reason.encode()), ("detail", letter.detail.encode("utf-8", "backslashreplace")),
            ("tenant", tenant.encode()), ("source_topic", names.ingest_topic(tenant).encode()),
            ("source_partition", str(letter.partition).encode()), ("source_offset", str(letter.offset).encode())]


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
        futures.append(producer.send(topic, value=value, key=letter.key, headers=headers(tenant, letter)))
    producer.flush(timeout=timeout_s)
    for future in futures:
        future.get(timeout=timeout_s)
