"""The stream benchmark's cheap route to Kafka: pre-built record batches sent as ProduceRequests.

:class:`BatchSender` speaks to the brokers through kafka-python's own network client (its
connections, TLS and SASL login, metadata and request encoding), but does none of the producer's
per-message work while a step is timed. Before the step, :meth:`BatchSender.prepare` builds every
record batch (benchmarks/stream_batches.py); during it, :meth:`BatchSender.run` wakes once per
tick, stamps that tick's batches with the wall clock (their CreateTime), the producer id and the
next sequence numbers, and sends one ProduceRequest per partition leader.

What the tenant client does, kept: the same payloads and keys, the default partitioner's
partitions, ``acks`` and compression from ``producers.stream.producer_config``, and the idempotent
producer (a producer id from InitProducerId, a sequence per partition) where that configuration
enables it. Up to :data:`MAX_IN_FLIGHT` requests are in flight per connection, the most Kafka allows
an idempotent producer. Nothing is retried: a failed batch counts its messages as errors, which the
benchmark reports.

Pacing: tick ``k`` is due ``k * chunk / rate`` seconds after the start, as the tenant client's token
bucket would send them (one tick is its 5 ms linger). A sender that fell behind catches up at most
:data:`BURST_S` of sending at once, like the bucket; the rest of the delay moves the schedule.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError
from kafka.net.compat import KafkaNetClient
from kafka.protocol.producer import InitProducerIdRequest, ProduceRequest
from kafka.structs import TopicPartition

from producers.stream import PACE_BURST, PACE_TICK

from .errors import ProducerError
from .stream_batches import (
    CODECS,
    NO_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    Batch,
    Tick,
    build_ticks,
    next_sequence,
    stamp,
)

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 5  # requests per connection: Kafka's limit for an idempotent producer
REQUEST_TIMEOUT_MS = 30_000
UNPACED_CHUNK = 500  # messages per request when sending as fast as possible
BURST_S = PACE_BURST
FLUSH_SECONDS = 120.0
_Topic = ProduceRequest.TopicProduceData
_Partition = _Topic.PartitionProduceData


@dataclass
class Plan:
    """One step's batches, built: ``total`` messages in ``ticks``, sent for at most ``seconds``."""
    step: int
    total: int
    rate: float
    seconds: float | None
    ticks: list[Tick]


@dataclass
class Outcome:
    """Per own message number: CreateTime acknowledged (ms, -1 if not), wall clock when sent (s)."""
    created: array[int]
    sent_at: array[float]
    sent: int
    errors: int
    last_error: str = ""


def chunk_for(rate: float) -> int:
    """Messages per tick: the tenant client's linger's worth at ``rate``, or a full request unpaced."""
    return max(1, round(rate * PACE_TICK)) if rate > 0 else UNPACED_CHUNK


class BatchSender:
    def __init__(self, config: Mapping[str, Any], topic: str, timeout_s: float = 15.0) -> None:
        """``config``: the tenant client's producer configuration (``producers.stream.producer_config``)."""
        self.topic = topic
        self.acks = -1 if config.get("acks", "all") == "all" else int(config["acks"])
        self.codec = CODECS[config.get("compression_type")]
        self.client = KafkaNetClient(**{**config, "max_in_flight_requests_per_connection": MAX_IN_FLIGHT,
                                        "request_timeout_ms": REQUEST_TIMEOUT_MS})
        self.where = ",".join(config.get("bootstrap_servers") or ())
        self.partitions, self.leaders = self._metadata(timeout_s)
        self.producer_id, self.epoch = (self._producer_id(timeout_s) if config.get("enable_idempotence")
                                        else (NO_PRODUCER_ID, NO_EPOCH))
        self.sequences = dict.fromkeys(self.partitions, 0)
        self.in_flight = 0
        self._outcome = Outcome(array("q"), array("d"), 0, 0)

    # -- set-up --------------------------------------------------------------------------------
    def _metadata(self, timeout_s: float) -> tuple[list[int], dict[int, int]]:
        deadline = time.monotonic() + timeout_s
        cluster = self.client.cluster
        try:
            self.client.get_broker_version(timeout_ms=timeout_s * 1000)
            future = cluster.add_topic(self.topic)
            while time.monotonic() < deadline:
                self.client.poll(timeout_ms=200, future=future)
                parts = cluster.partitions_for_topic(self.topic)
                leaders = {p: cluster.leader_for_partition(TopicPartition(self.topic, p)) for p in parts or ()}
                if parts and all(node is not None and node >= 0 for node in leaders.values()):
                    return sorted(parts), leaders
                if future.is_done:
                    future = cluster.request_update()
        except KafkaError as e:
            raise ProducerError(f"no Kafka broker at {self.where}: {e}") from None
        raise ProducerError(f"topic {self.topic}: no partitions with a leader at {self.where} within {timeout_s:g} s "
                            "(does the topic exist?)")

    def _producer_id(self, timeout_s: float) -> tuple[int, int]:
        node = self.client.least_loaded_node(bootstrap_fallback=True)
        request = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=0, producer_id=NO_PRODUCER_ID,
                                        producer_epoch=NO_EPOCH, max_version=4)
        try:  # as kafka-python's idempotent producer asks for one (transaction timeout 0: no transaction)
            response = self.client.send_and_receive(node, request, timeout_ms=timeout_s * 1000)
        except KafkaError as e:
            raise ProducerError(f"{self.topic}: no producer id from {self.where}: {e}") from None
        if response.error_code:
            raise ProducerError(f"{self.topic}: InitProducerId refused by {self.where}: error {response.error_code}")
        return int(response.producer_id), int(response.producer_epoch)

    # -- a step --------------------------------------------------------------------------------
    def prepare(self, step: int, messages: Iterator[tuple[bytes, bytes]], rate: float, seconds: float | None,
                count: int | None) -> Plan:
        """Build the step's batches: ``count`` messages, or ``rate * seconds`` of them."""
        if count is None:
            if not (rate > 0 and seconds):
                raise ProducerError("pre-built batches need a count, or a rate and seconds "
                                    "(sending unpaced for a time needs --producer kafka-python)")
            count = math.ceil(rate * seconds)
        ticks = build_ticks(messages, count, chunk_for(rate), rate, self.partitions, self.leaders, self.codec)
        return Plan(step, count, rate, seconds, ticks)

    def run(self, plan: Plan, start_at: float) -> Outcome:
        """Send ``plan`` from wall clock ``start_at``; returns once every request is answered (or
        :data:`FLUSH_SECONDS` after the last send)."""
        out = self._outcome = Outcome(array("q", [-1]) * plan.total, array("d", [0.0]) * plan.total, 0, 0)
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        start = time.monotonic()
        end = start + plan.seconds if plan.seconds else None
        shift = 0.0  # how far the schedule moved for stalls longer than the burst
        poll = self.client.poll
        k = 0
        while k < len(plan.ticks):
            now = time.monotonic()
            if end is not None and now >= end:
                break
            tick = plan.ticks[k]
            due = start + shift + tick.at
            if now < due:
                poll(timeout_ms=(due - now) * 1000)
                continue
            shift += max(0.0, now - due - BURST_S)
            if not all(self.client.ready(node) for node in tick.by_leader):
                poll(timeout_ms=10)  # returns at the first answer that frees a request slot
                continue
            self._send(tick)
            out.sent = tick.first + tick.count
            k += 1
        deadline = time.monotonic() + FLUSH_SECONDS
        while self.in_flight and time.monotonic() < deadline:
            poll(timeout_ms=100)
        del out.created[out.sent:], out.sent_at[out.sent:]
        return out

    def _send(self, tick: Tick) -> None:
        wall = time.time()
        ms = int(wall * 1000)  # as kafka-python stamps a record's CreateTime
        self._outcome.sent_at[tick.first:tick.first + tick.count] = array("d", [wall]) * tick.count
        idempotent = self.producer_id != NO_PRODUCER_ID
        for node, batches in tick.by_leader.items():
            for batch in batches:
                sequence = self.sequences[batch.partition] if idempotent else NO_SEQUENCE
                stamp(batch, ms, self.producer_id, self.epoch, sequence)
                if idempotent:
                    self.sequences[batch.partition] = next_sequence(sequence, batch.count)
            request = ProduceRequest(
                transactional_id=None, acks=self.acks, timeout_ms=REQUEST_TIMEOUT_MS,
                topic_data=[_Topic(name=self.topic, partition_data=[
                    _Partition(index=b.partition, records=b.buffer) for b in batches])],
                max_version=9)  # as kafka-python's producer asks
            self.in_flight += 1
            future = self.client.send(node, request)
            future.add_callback(self._answered, batches, ms)
            future.add_errback(self._failed, batches)

    def _answered(self, batches: Sequence[Batch], ms: int, response: Any) -> None:
        self.in_flight -= 1
        created = self._outcome.created
        if response is None:  # acks=0: no answer to wait for
            for batch in batches:
                for own in batch.members:
                    created[own] = ms
            return
        by_partition = {b.partition: b for b in batches}
        for topic in response.responses:
            for answer in topic.partition_responses:
                batch = by_partition[answer.index]
                if answer.error_code:
                    self._count_failure(batch, f"error code {answer.error_code} from partition {answer.index}"
                                               f"{': ' + answer.error_message if answer.error_message else ''}")
                    continue
                at = answer.log_append_time_ms if answer.log_append_time_ms != -1 else ms
                for own in batch.members:
                    created[own] = at

    def _failed(self, batches: Sequence[Batch], exc: BaseException) -> None:
        self.in_flight -= 1
        for batch in batches:
            self._count_failure(batch, f"{type(exc).__name__}: {exc}")

    def _count_failure(self, batch: Batch, why: str) -> None:
        if not self._outcome.errors:
            log.error("%s: a batch of %d messages to partition %d failed: %s", self.topic, batch.count,
                      batch.partition, why)
        self._outcome.errors += batch.count
        self._outcome.last_error = why

    def close(self) -> None:
        self.client.close()
