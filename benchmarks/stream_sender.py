"""The stream benchmark's cheap route to Kafka: records encoded before the step, sent as ProduceRequests.

:class:`BatchSender` speaks to the brokers through kafka-python's own network client (its
connections, TLS and SASL login, metadata and request encoding), but does none of the producer's
per-message work while a step is timed. Before the step, :meth:`BatchSender.prepare` encodes every
record into its partition's queue (benchmarks/stream_batches.py); during it, :meth:`BatchSender.run`
wakes when a tick's worth of messages is due, puts each partition's due records into one record
batch stamped with the time the earliest of them was due (their CreateTime: kafka-python stamps a
record when the application calls ``send()``, so the time it lingers counts in its latency), the
producer id and the next sequence number, and sends one ProduceRequest per partition leader.

What the tenant client does, kept: the same payloads and keys, the default partitioner's
partitions, ``acks``, ``batch_size`` and compression from ``producers.stream.producer_config``, and
the idempotent producer (a producer id from InitProducerId, a sequence per partition) where that
configuration enables it. Up to :data:`MAX_IN_FLIGHT` requests are in flight per connection, the
most Kafka allows an idempotent producer; messages that become due meanwhile wait and go together
in the next request, as they would in the client's accumulator. Nothing is retried: a failed batch
counts its messages as errors, which the benchmark reports.

Pacing: message ``k`` is due ``k / rate`` seconds after the start, and the sender wakes when a
tick's worth (the client's 5 ms linger) is due, as the tenant client's token bucket paces it. A
sender that fell behind catches up at most :data:`BURST_S` of sending at once, like the bucket; the
rest of the delay moves the schedule.

Wake-ups: between ticks the sender sleeps; answers wait in the socket. At a tick, one non-blocking
poll takes every answer that came, and each request is written to its socket as it is made (not an
event-loop turn later, after a wake-up for writability): one select per request, where waiting in
``poll`` until the tick woke it for every answer and every write, about four selects per request.
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

from producers.pacing import PACE_BURST, PACE_TICK

from .errors import ProducerError
from .stream_batches import CODECS, NO_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, Queue, assemble, next_sequence, plan

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 5  # requests per connection: Kafka's limit for an idempotent producer
REQUEST_TIMEOUT_MS = 30_000
BURST_S = PACE_BURST
FLUSH_SECONDS = 120.0
DEFAULT_BATCH_BYTES = 64 * 1024
_Topic = ProduceRequest.TopicProduceData
_Partition = _Topic.PartitionProduceData
_Sent = tuple[Queue, int, int]  # a queue's records [start, end) in one batch


@dataclass
class Plan:
    """One step's records, encoded: ``total`` messages in their partitions' queues, sent for at most ``seconds``."""
    step: int
    total: int
    rate: float
    seconds: float | None
    queues: list[Queue]


@dataclass
class Outcome:
    """Per own message number: CreateTime acknowledged (ms, -1 if not), wall clock when sent (s, 0 if not)."""
    created: array[int]
    sent_at: array[float]
    sent: int
    errors: int
    last_error: str = ""


def tick_of(rate: float, tick_s: float = PACE_TICK) -> int:
    """Messages per wake-up: ``tick_s`` worth at ``rate`` (at least one)."""
    return max(1, round(rate * tick_s))


def due(elapsed: float, rate: float, total: int) -> int:
    """How many messages are due ``elapsed`` seconds into a step at ``rate`` (all of them unpaced)."""
    return total if rate <= 0 else min(total, int(elapsed * rate) + 1)


class BatchSender:
    def __init__(self, config: Mapping[str, Any], topic: str, timeout_s: float = 15.0,
                 tick_s: float | None = None) -> None:
        """``config``: the tenant client's producer configuration (``producers.stream.producer_config``);
        ``tick_s``: how often to send what is due (default: the configuration's linger)."""
        self.topic = topic
        self.tick_s = tick_s if tick_s is not None else float(config.get("linger_ms") or PACE_TICK * 1000) / 1000
        self.acks = -1 if config.get("acks", "all") == "all" else int(config["acks"])
        self.codec = CODECS[config.get("compression_type")]
        self.batch_bytes = int(config.get("batch_size") or DEFAULT_BATCH_BYTES)
        in_flight = min(MAX_IN_FLIGHT, int(config.get("max_in_flight_requests_per_connection") or MAX_IN_FLIGHT))
        self.client = KafkaNetClient(**{**config, "max_in_flight_requests_per_connection": in_flight,
                                        "request_timeout_ms": REQUEST_TIMEOUT_MS})
        self.where = ",".join(config.get("bootstrap_servers") or ())
        self.partitions, self.leaders = self._metadata(timeout_s)
        self.producer_id, self.epoch = (self._producer_id(timeout_s) if config.get("enable_idempotence")
                                        else (NO_PRODUCER_ID, NO_EPOCH))
        self.sequences = dict.fromkeys(self.partitions, 0)
        self.in_flight = 0
        self._schedule = (0.0, 0.0, 0.0)  # wall clock of a step's start, its rate, how far it moved
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
        """Encode the step's records: ``count`` messages, or ``rate * seconds`` of them."""
        if count is None:
            if not (rate > 0 and seconds):
                raise ProducerError("pre-built records need a count, or a rate and seconds "
                                    "(sending unpaced for a time needs --producer kafka-python)")
            count = math.ceil(rate * seconds)
        return Plan(step, count, rate, seconds, plan(messages, count, self.partitions, self.leaders))

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
        self._schedule = (time.time() - (time.monotonic() - start), plan.rate, 0.0)
        tick, burst = tick_of(plan.rate, self.tick_s), max(1, round(plan.rate * max(BURST_S, self.tick_s)))
        while out.sent < plan.total:
            now = time.monotonic()
            if end is not None and now >= end:
                break
            ready = due(now - start - shift, plan.rate, plan.total)
            if plan.rate > 0 and ready - out.sent > burst:  # a stall: catch up one burst, skip the rest
                shift += (ready - out.sent - burst) / plan.rate
                ready = out.sent + burst
                self._schedule = (self._schedule[0], plan.rate, shift)
            if ready - out.sent < min(tick, plan.total - out.sent):  # linger until a tick's worth is due
                self._sleep_until(start + shift + (out.sent + tick - 1) / plan.rate, end)
                continue
            self._take_answers()
            if not all(self.client.ready(q.leader) for q in plan.queues):
                self._wait_answer()
                continue
            self._send(plan.queues, ready)
        deadline = time.monotonic() + FLUSH_SECONDS
        while self.in_flight and time.monotonic() < deadline:
            self.client.poll(timeout_ms=100)
        last = max((q.members[q.sent - 1] for q in plan.queues if q.sent), default=-1)
        del out.created[last + 1:], out.sent_at[last + 1:]
        return out

    # -- the event loop, woken as little as the pacing allows -------------------------------------
    def _sleep_until(self, wake: float, end: float | None) -> None:
        """Sleep until monotonic ``wake`` (or ``end``): answers wait in the socket until the next tick,
        one select instead of one wake-up per event."""
        delay = min(wake, end if end is not None else wake) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _take_answers(self) -> None:
        """Handle what arrived since the last tick (answers free request slots), without waiting."""
        self.client.poll(timeout_ms=0)

    def _wait_answer(self) -> None:
        """Every request slot of a leader taken: wait for an answer (one wake-up), at most a tick."""
        self.client.poll(timeout_ms=self.tick_s * 1000)

    def _write_now(self, node: int) -> None:
        """Put the request just made for ``node`` on its socket now, as its CreateTime says, rather than
        one event-loop turn later (the write task would register for writability, then wake to write):
        whatever the socket does not take stays queued for that task."""
        conn = self.client._manager._conns.get(node)  # noqa: SLF001 - kafka-python's connection of the node
        transport = getattr(conn, "transport", None)
        if transport is None:
            return
        _, err = transport._sock_send()  # noqa: SLF001
        if err is not None:
            transport.abort(error=err)  # as the write task does: the connection's requests fail

    def _send(self, queues: Sequence[Queue], upto: int) -> None:
        """Every queue's records numbered below ``upto`` (a batch's worth each), one request per leader."""
        wall = time.time()
        ms = self._create_time(queues, upto, wall)
        sent_at = self._outcome.sent_at
        idempotent = self.producer_id != NO_PRODUCER_ID
        by_leader: dict[int, list[tuple[_Sent, bytearray]]] = {}
        for queue in queues:
            start, end = queue.take(upto, self.batch_bytes)
            if start == end:
                continue
            sequence = self.sequences[queue.partition] if idempotent else NO_SEQUENCE
            if idempotent:
                self.sequences[queue.partition] = next_sequence(sequence, end - start)
            batch = assemble(queue, start, end, ms, self.producer_id, self.epoch, sequence, self.codec)
            by_leader.setdefault(queue.leader, []).append(((queue, start, end), batch))
            for own in queue.members[start:end]:
                sent_at[own] = wall
            self._outcome.sent += end - start
        for node, batches in by_leader.items():
            request = ProduceRequest(
                transactional_id=None, acks=self.acks, timeout_ms=REQUEST_TIMEOUT_MS,
                topic_data=[_Topic(name=self.topic, partition_data=[
                    _Partition(index=sent[0].partition, records=batch) for sent, batch in batches])],
                max_version=9)  # as kafka-python's producer asks
            self.in_flight += 1
            future = self.client.send(node, request)
            self._write_now(node)
            future.add_callback(self._answered, [sent for sent, _ in batches], ms)
            future.add_errback(self._failed, [sent for sent, _ in batches])

    def _create_time(self, queues: Sequence[Queue], upto: int, wall: float) -> int:
        """The CreateTime (ms) of a request: when its earliest record was due, the moment the tenant's
        application would have handed it to ``send()``, where kafka-python stamps it. The time a record
        lingers until its tick therefore counts in its latency, whatever the tick."""
        wall_start, rate, shift = self._schedule
        first = min((q.members[q.sent] for q in queues if q.sent < len(q.members) and q.members[q.sent] < upto),
                    default=None)
        if first is None or rate <= 0:
            return int(wall * 1000)
        return min(int(wall * 1000), int((wall_start + shift + first / rate) * 1000))

    def _answered(self, batches: Sequence[_Sent], ms: int, response: Any) -> None:
        self.in_flight -= 1
        if response is None:  # acks=0: no answer to wait for
            for sent in batches:
                self._mark(sent, ms)
            return
        by_partition = {sent[0].partition: sent for sent in batches}
        for topic in response.responses:
            for answer in topic.partition_responses:
                sent = by_partition[answer.index]
                if answer.error_code:
                    self._count_failure(sent, f"error code {answer.error_code} from partition {answer.index}"
                                              f"{': ' + answer.error_message if answer.error_message else ''}")
                else:
                    self._mark(sent, answer.log_append_time_ms if answer.log_append_time_ms != -1 else ms)

    def _mark(self, sent: _Sent, at: int) -> None:
        queue, start, end = sent
        created = self._outcome.created
        for own in queue.members[start:end]:
            created[own] = at

    def _failed(self, batches: Sequence[_Sent], exc: BaseException) -> None:
        self.in_flight -= 1
        for sent in batches:
            self._count_failure(sent, f"{type(exc).__name__}: {exc}")

    def _count_failure(self, sent: _Sent, why: str) -> None:
        queue, start, end = sent
        if not self._outcome.errors:
            log.error("%s: a batch of %d messages to partition %d failed: %s", self.topic, end - start,
                      queue.partition, why)
        self._outcome.errors += end - start
        self._outcome.last_error = why

    def close(self) -> None:
        self.client.close()
