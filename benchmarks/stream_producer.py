"""One tenant's message producer for the stream benchmark, in a process of its own.

    python -m benchmarks.stream_producer --like tenant1|tenant2 --tenant NAME --out DIR INPUT...

It reads one command per line on stdin (JSON: ``step``, ``rate`` per second or 0 for unpaced,
``seconds`` or ``count``, ``start_at`` wall clock) and answers each with one JSON line on stdout
once every message of the step is acknowledged. Messages are ``producers.stream.message_for(like,
record)`` with the fresh tenant's name and a fresh id ``<id>-s<step>-<seq>``, encoded and keyed as the
tenant client does it, sent with the tenant client's producer configuration.

For every message it keeps the wall clock just before ``send()`` and the Kafka timestamp the broker
acknowledged (CreateTime: set by the client inside ``send()``), indexed by ``seq``, and writes them
to ``DIR/<tenant>-s<step>.times`` (int64 CreateTime ms, then float64 send time s; -1 for a failure).
A process per tenant keeps the producers from sharing one interpreter lock with each other or with
the benchmark.
"""

from __future__ import annotations

import argparse
import itertools
import json
import select
import subprocess
import sys
import time
import uuid
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import tls
from producers.stream import (
    TokenBucket,
    encode,
    key_for,
    message_for,
    producer_config,
    records_for,
)

from .errors import ProducerError

FLUSH_SECONDS = 120.0



@dataclass(frozen=True)
class Command:
    step: int
    rate: float  # messages per second; 0: as fast as possible
    seconds: float | None  # send for this long ...
    count: int | None  # ... or this many messages
    start_at: float  # wall clock (time.time()) of the first send

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Command:
        raw = json.loads(line)
        return cls(int(raw["step"]), float(raw.get("rate") or 0), raw.get("seconds"), raw.get("count"),
                   float(raw.get("start_at") or 0))


@dataclass(frozen=True)
class StepSent:
    tenant: str
    step: int
    sent: int
    acked: int
    errors: int
    first_send: float  # wall clock of the first and the last send() call
    last_send: float
    times: str  # the file of per-message timestamps
    index: int = 0  # the producer's place among its tenant's (it sent seqs index, index + of, ...)
    of: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> StepSent:
        return cls(**json.loads(line))


def message_id(base: str, step: int, seq: int) -> str:
    return f"{base}-s{step}-{seq}"


def parse_id(text: str) -> tuple[int, int] | None:
    """(step, seq) of a benchmark id, or None for an id of another shape."""
    base, _, tail = text.rpartition("-")
    base, _, step = base.rpartition("-s")
    if not (base and step.isdigit() and tail.isdigit()):
        return None
    return int(step), int(tail)


def read_times(path: Path) -> tuple[array[int], array[float]]:
    """The (CreateTime ms, send time s) arrays a step wrote, indexed by ``seq``."""
    data = path.read_bytes()
    n = len(data) // 16
    created, sent = array("q"), array("d")
    created.frombytes(data[:8 * n])
    sent.frombytes(data[8 * n:])
    return created, sent


# Stands for a message's fresh id tail while it is pre-serialised: ASCII that JSON never escapes.
ID_MARK = f"@{uuid.uuid4().hex}@"


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


def merge(results: Sequence[StepSent], path: Path) -> StepSent:
    """One tenant's step as if one producer sent it all: the per-message times of its producers
    interleaved by seq into ``path`` (-1 / 0.0 where a producer sent fewer), and their counts."""
    created: array[int] = array("q")
    sent_at: array[float] = array("d")
    for r in results:
        own_created, own_sent = read_times(Path(r.times))
        for k, (c, t) in enumerate(zip(own_created, own_sent, strict=True)):
            seq = r.index + r.of * k
            if seq >= len(created):
                created.extend([-1] * (seq + 1 - len(created)))
                sent_at.extend([0.0] * (seq + 1 - len(sent_at)))
            created[seq], sent_at[seq] = c, t
    path.write_bytes(created.tobytes() + sent_at.tobytes())
    sending = [r for r in results if r.sent]
    return StepSent(results[0].tenant, results[0].step, sum(r.sent for r in results), sum(r.acked for r in results),
                    sum(r.errors for r in results), min((r.first_send for r in sending), default=0.0),
                    max((r.last_send for r in sending), default=0.0), str(path))


class Producer:
    def __init__(self, like: str, tenant: str, inputs: Sequence[Path], bootstrap: str, out: Path,
                 index: int = 0, of: int = 1, security: Mapping[str, Any] | None = None) -> None:
        self.like, self.tenant, self.out = like, tenant, out
        self.index, self.of = index, of  # this process sends the seqs index, index + of, index + 2 * of, ...
        self.messages = [{**message_for(like, r), "tenant": tenant} for r in records_for(like, inputs)]
        if not self.messages:
            raise SystemExit(f"no records for {like} in {', '.join(map(str, inputs))}")
        self.cycle: Iterator[Template] = itertools.cycle([Template.of(m) for m in self.messages])
        self.producer = KafkaProducer(**producer_config(bootstrap, tenant, security))
        self.topic = names.ingest_topic(tenant)
        self.producer.partitions_for(self.topic)  # fetch metadata now, not on the first timed send

    def run(self, cmd: Command) -> StepSent:
        created: array[int] = array("q")
        sent_at: array[float] = array("d")
        errors = [0]

        def ok(seq: int, metadata: Any) -> None:
            created[seq] = int(metadata.timestamp)

        def failed(_seq: int, _exc: BaseException) -> None:
            errors[0] += 1

        bucket = TokenBucket(cmd.rate, time.monotonic()) if cmd.rate > 0 else None
        delay = cmd.start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        end = started + cmd.seconds if cmd.seconds else None
        seq = 0  # this process's own count; the message's seq is index + of * seq
        while (cmd.count is None or seq < cmd.count):
            now = time.monotonic()
            if end is not None and now >= end:
                break
            if bucket is not None:
                wait = bucket.take(now)
                if wait > 0:
                    time.sleep(wait if end is None else min(wait, max(end - now, 0.0)))
                    continue
            value, key = next(self.cycle).value_and_key(f"-s{cmd.step}-{self.index + self.of * seq}".encode())
            created.append(-1)
            sent_at.append(time.time())
            future = self.producer.send(self.topic, value=value, key=key)
            future.add_callback(ok, seq)
            future.add_errback(failed, seq)
            seq += 1
        self.producer.flush(timeout=FLUSH_SECONDS)
        path = self.out / f"{self.tenant}-s{cmd.step}-p{self.index}.times"
        path.write_bytes(created.tobytes() + sent_at.tobytes())
        acked = sum(1 for c in created if c >= 0)
        return StepSent(self.tenant, cmd.step, seq, acked, errors[0], sent_at[0] if seq else 0.0,
                        sent_at[-1] if seq else 0.0, str(path), self.index, self.of)

    def close(self) -> None:
        self.producer.close(timeout=10)


class ProducerProcess:
    """The benchmark's handle on one producer process: send it commands, read its answers."""

    def __init__(self, like: str, tenant: str, bootstrap: str, out: Path, inputs: Sequence[Path], log: Path,
                 cwd: Path, timeout: float = 60, index: int = 0, of: int = 1) -> None:
        self.tenant, self.log = tenant, log
        argv = [sys.executable, "-m", "benchmarks.stream_producer", "--like", like, "--tenant", tenant,
                "--bootstrap", bootstrap, "--out", str(out), "--index", str(index), "--of", str(of),
                *map(str, inputs)]
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                         cwd=cwd, start_new_session=True)
        self.ready = self._line(timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise ProducerError(f"the producer of {self.tenant} gave no answer in {timeout:.0f} s "
                                f"(exit code {self.proc.poll()}); {self.log}:\n{tail}")
        return dict(json.loads(line))

    def send(self, cmd: Command) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd.to_json() + "\n")
        self.proc.stdin.flush()

    def result(self, timeout: float) -> StepSent:
        return StepSent(**self._line(timeout))

    def close(self, timeout: float = 30) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # end of commands: the process closes its producer and exits
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_producer", description=__doc__.split("\n")[0])
    parser.add_argument("--like", required=True, choices=("tenant1", "tenant2"), help="the shipped tenant's shape")
    parser.add_argument("--tenant", required=True, help="the fresh tenant's name (its topic and message field)")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--out", required=True, type=Path, help="folder for the per-step timestamp files")
    parser.add_argument("--index", type=int, default=0, help="this producer's place among the tenant's producers")
    parser.add_argument("--of", type=int, default=1, help="how many producers the tenant has (each sends every "
                                                          "of-th seq, from its index)")
    parser.add_argument("inputs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    # A secure stack (its home's marker, or MYSIMBDP_SECURE): TLS and the tenant's own login.
    security = tls.kafka_options(Settings.from_env(), f"tenant:{args.tenant}")
    producer = Producer(args.like, args.tenant, args.inputs, args.bootstrap, args.out, args.index, args.of,
                        security)
    print(json.dumps({"ready": args.tenant, "records": len(producer.messages)}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip():
                print(producer.run(Command.from_json(line)).to_json(), flush=True)
    finally:
        producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
