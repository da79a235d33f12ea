"""The stream benchmark's pre-built record batches: what the broker reads from them is the tenant client's."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator

import pytest
from kafka.partitioner import DefaultPartitioner
from kafka.record.default_records import DefaultRecordBatch

from benchmarks import stream_batches as batches
from benchmarks.errors import ProducerError
from benchmarks.stream_batches import Template, build_ticks, partition_for, stamp
from benchmarks.stream_producer import Command, StepSent, serve
from benchmarks.stream_sender import UNPACED_CHUNK, chunk_for
from producers import samples
from producers.stream import encode, key_for, message_for, records_for

pytestmark = pytest.mark.unit

PARTITIONS = [0, 1, 2]
LEADERS = {0: 1, 1: 1, 2: 2}  # two brokers: one request per leader


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


def test_batches_carry_the_tenant_clients_messages_on_its_partitions() -> None:
    made = list(itertools.islice(_fresh(3), 230))
    ticks = build_ticks(iter((v, k) for v, k, _ in made), total=230, chunk=50, rate=5000, partitions=PARTITIONS,
                        leaders=LEADERS, codec=batches.CODECS[None])

    assert [(t.first, t.count) for t in ticks] == [(0, 50), (50, 50), (100, 50), (150, 50), (200, 30)]
    assert [t.at for t in ticks] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])  # 50 messages per 10 ms
    seen: list[int] = []
    partitioner, cluster = DefaultPartitioner(), _Cluster("t")
    for tick in ticks:
        for leader, group in tick.by_leader.items():
            for batch in group:
                assert LEADERS[batch.partition] == leader
                stamp(batch, 1_700_000_000_123, 42, 7, 1000)
                read = _read(batch.buffer)
                assert (read.producer_id, read.producer_epoch, read.base_sequence) == (42, 7, 1000)
                assert (read.first_timestamp, read.max_timestamp) == (1_700_000_000_123, 1_700_000_000_123)
                records = list(read)
                assert [r.timestamp for r in records] == [1_700_000_000_123] * batch.count  # CreateTime: when sent
                for own, record in zip(batch.members, records, strict=True):
                    value, key, message = made[own]
                    assert (record.value, record.key) == (encode(message), key_for(message)) == (value, key)
                    assert json.loads(record.value)["id"].endswith(f"-s3-{own}")
                    assert batch.partition == partition_for(key, PARTITIONS)
                    assert batch.partition == partitioner.partition("t", key, key, value, value, cluster)
                seen += list(batch.members)
    assert sorted(seen) == list(range(230))  # each message once
    assert len({b.partition for t in ticks for g in t.by_leader.values() for b in g}) == 3


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


def test_stamping_again_gives_a_new_valid_crc() -> None:
    (tick,) = build_ticks(iter((v, k) for v, k, _ in itertools.islice(_fresh(1), 10)), 10, 10, 0.0, [0], {0: 1},
                          batches.CODECS[None])
    (batch,) = tick.by_leader[1]
    stamp(batch, 1_000, -1, -1, -1)
    first = bytes(batch.buffer)
    stamp(batch, 2_000, -1, -1, -1)
    assert bytes(batch.buffer) != first
    read = _read(batch.buffer)
    assert read.first_timestamp == 2_000 and read.producer_id == -1 and read.base_sequence == -1
    assert tick.at == 0.0  # unpaced: every tick due at once


def test_sequences_wrap_as_int32() -> None:
    assert batches.next_sequence(10, 5) == 15
    assert batches.next_sequence(2 ** 31 - 2, 5) == 3


def test_a_tick_is_the_clients_linger_at_the_rate() -> None:
    assert chunk_for(10_000) == 50 and chunk_for(100) == 1 and chunk_for(0) == UNPACED_CHUNK
    with pytest.raises(ValueError, match="at least one message"):
        build_ticks(iter(()), 10, 0, 1.0, [0], {0: 1}, 0)


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

