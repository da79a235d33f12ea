"""The stream benchmark's pre-built record batches: what the broker reads from them is the tenant client's."""

from __future__ import annotations

import io
import itertools
import json
import random
from collections.abc import Iterator

import pytest
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner import murmur2 as kafka_murmur2
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from benchmarks import stream_batches as batches
from benchmarks.errors import ProducerError
from benchmarks.stream_batches import Template, assemble, murmur2, partition_for, plan
from benchmarks.stream_producer import Command, StepSent, serve
from benchmarks.stream_sender import BatchSender, due, tick_of
from producers import samples
from producers.pacing import PACE_TICK
from producers.stream import encode, key_for, message_for, records_for

pytestmark = pytest.mark.unit

PARTITIONS = [0, 1, 2]
LEADERS = {0: 1, 1: 1, 2: 2}  # two brokers
MS = 1_700_000_000_123


def _fresh(step: int) -> Iterator[tuple[bytes, bytes, dict[str, object]]]:
    """(value, key, message) of fresh tenant2-shaped messages, as the producer makes them."""
    records = list(records_for("tenant2", [samples.default_dir() / "1000rows.csv"], count=50))
    for seq, record in enumerate(itertools.cycle(records)):
        message = {**message_for("tenant2", record), "tenant": "bx"}
        value, key = Template.of(message).value_and_key(f"-s{step}-{seq}".encode())
        yield value, key, {**message, "id": f"{message['id']}-s{step}-{seq}"}


def _read(buffer: bytearray) -> DefaultRecordBatch:
    batch = DefaultRecordBatch(bytes(buffer))
    assert batch.validate_crc(), "the broker would refuse a batch whose CRC-32C does not match"
    return batch


def _by_kafka_python(records: list[tuple[bytes, bytes]], producer_id: int, epoch: int, sequence: int) -> bytes:
    """The batch kafka-python's producer builds of ``records`` (value, key) appended at ``MS``."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=producer_id,
                                        producer_epoch=epoch, base_sequence=sequence, batch_size=2 ** 30)
    for offset, (value, key) in enumerate(records):
        builder.append(offset, MS, key, value, [])
    return bytes(builder.build())


def test_a_batch_is_byte_for_byte_the_one_kafka_python_builds() -> None:
    made = list(itertools.islice(_fresh(3), 300))
    queues = plan(iter((v, k) for v, k, _ in made), 300, PARTITIONS, LEADERS)
    for queue in queues:
        start, end = queue.take(upto=300, max_bytes=2 ** 30)
        assert (start, end) == (0, len(queue.members)) and end > 64  # offset deltas of two varint bytes too
        records = [made[own][:2] for own in queue.members]
        assert bytes(assemble(queue, start, end, MS, 42, 7, 1000)) == _by_kafka_python(records, 42, 7, 1000)


def test_records_land_on_the_default_partitioners_partitions_each_once() -> None:
    made = list(itertools.islice(_fresh(5), 230))
    queues = plan(iter((v, k) for v, k, _ in made), 230, PARTITIONS, LEADERS)
    partitioner, cluster = DefaultPartitioner(), _Cluster("t")
    seen = []
    for queue in queues:
        assert queue.leader == LEADERS[queue.partition]
        start, end = queue.take(230, 2 ** 30)
        read = _read(assemble(queue, start, end, MS, -1, -1, -1))
        assert (read.first_timestamp, read.max_timestamp, read.producer_id) == (MS, MS, -1)
        for own, record in zip(queue.members, read, strict=True):
            value, key, message = made[own]
            assert (record.value, record.key, record.timestamp) == (encode(message), key_for(message), MS)
            assert json.loads(record.value)["id"].endswith(f"-s5-{own}")
            assert queue.partition == partitioner.partition("t", key, key, value, value, cluster)
            seen.append(own)
    assert sorted(seen) == list(range(230))
    assert all(list(q.members) == sorted(q.members) for q in queues)  # in send order
    assert len({q.partition for q in queues if q.members}) == 3


def test_due_records_are_taken_in_order_within_the_batch_size() -> None:
    (queue,) = plan(iter((v, k) for v, k, _ in itertools.islice(_fresh(1), 40)), 40, [0], {0: 1})
    assert queue.take(upto=10, max_bytes=2 ** 30) == (0, 10)
    assert queue.take(upto=10, max_bytes=2 ** 30) == (10, 10)  # nothing more is due
    start, end = queue.take(upto=40, max_bytes=3 * (queue.ends[12] - queue.ends[11]))
    assert start == 10 and 10 < end < 40  # a full batch: the rest waits for the next request
    assert queue.take(upto=40, max_bytes=1) == (end, end + 1)  # a record larger than a batch still goes
    assert queue.take(upto=40, max_bytes=2 ** 30) == (end + 1, 40)


class _Cluster:
    """The metadata kafka-python's partitioner reads: one topic of three partitions, all available."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, _topic: str) -> set[int]:
        return set(PARTITIONS)

    def available_partitions_for_topic(self, _topic: str) -> set[int]:
        return set(PARTITIONS)


def test_murmur2_is_kafka_pythons() -> None:
    rng = random.Random(9)
    keys = [bytes(rng.getrandbits(8) for _ in range(n)) for n in range(40) for _ in range(20)]
    keys += [k for _, k, _ in itertools.islice(_fresh(2), 500)] + ["ñandú/c-r2".encode()]
    assert [murmur2(k) for k in keys] == [kafka_murmur2(k) for k in keys]
    assert partition_for(b"AskReddit/cqug90j", [0, 1, 2]) == (kafka_murmur2(b"AskReddit/cqug90j") & 0x7FFFFFFF) % 3


def test_sequences_wrap_as_int32() -> None:
    assert batches.next_sequence(10, 5) == 15
    assert batches.next_sequence(2 ** 31 - 2, 5) == 3


def test_pacing_is_the_clients_linger_at_the_rate() -> None:
    assert tick_of(10_000, 0.005) == 50 and tick_of(100, 0.005) == 1
    assert tick_of(10_000) == round(10_000 * PACE_TICK)  # by default, the tenant client's linger
    assert due(0.0, 1000, 50) == 1 and due(0.0105, 1000, 50) == 11 and due(9.0, 1000, 50) == 50
    assert due(0.0, 0, 50) == 50  # unpaced: everything at once


def test_a_request_is_stamped_when_its_earliest_record_was_due() -> None:
    """kafka-python stamps a record inside send(): the time it lingers until its tick is latency too."""
    evens, odds = batches.Queue(0, 1), batches.Queue(1, 1)
    for own in range(6):
        (evens if own % 2 == 0 else odds).add(own, b"v", b"k")
    stamp = BatchSender._create_time  # noqa: SLF001 - the sender's clock, without a Kafka connection
    step = type("Step", (), {"_schedule": (1000.0, 64.0, 0.0)})()  # started at 1000 s, 64 msg/s
    assert stamp(step, [evens, odds], 4, 1000.05) == 1_000_000  # record 0, due at the start
    evens.sent = 1
    assert stamp(step, [evens, odds], 4, 1000.05) == 1_000_015  # record 1, due 15.6 ms in
    step._schedule = (1000.0, 64.0, 0.5)  # noqa: SLF001 - a stall moved the schedule by half a second
    assert stamp(step, [evens, odds], 4, 1000.75) == 1_000_515
    assert stamp(step, [evens, odds], 4, 1000.0) == 1_000_000  # never after the send itself
    assert stamp(step, [evens, odds], 1, 1000.75) == 1_000_750  # nothing due: the wall clock


class _Recorder:
    """A sender that records what it was asked (the command protocol needs no Kafka)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def prepare(self, cmd: Command) -> int:
        self.calls.append(("prepare", cmd.step))
        return 7

    def run(self, start_at: float) -> StepSent:
        self.calls.append(("run", start_at))
        return StepSent("bx", 1, 7, 7, 0, start_at, start_at, "t.times")

    def close(self) -> None:
        self.calls.append(("close", None))


def test_a_step_is_prepared_then_started_by_its_go_line(capsys: pytest.CaptureFixture[str]) -> None:
    sender = _Recorder()
    lines = [Command(1, 100.0, 2.0, None).to_json(), json.dumps({"go": 123.5}),
             Command(2, 0.0, None, 10, 99.0).to_json()]  # with its own start: no go line
    serve(sender, iter(lines))
    assert sender.calls == [("prepare", 1), ("run", 123.5), ("prepare", 2), ("run", 99.0)]
    answers = [json.loads(line) for line in io.StringIO(capsys.readouterr().out)]
    assert [a.get("prepared") for a in answers] == [1, None, 2, None]
    assert answers[0]["messages"] == 7 and answers[1]["sent"] == 7


def test_a_go_line_must_follow_a_step_without_a_start(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ProducerError, match="expected a go line after step 1"):
        serve(_Recorder(), iter([Command(1, 100.0, 2.0, None).to_json(), Command(2, 1.0, 1.0, None).to_json()]))
    capsys.readouterr()

