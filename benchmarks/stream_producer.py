"""One tenant's message producer for the stream benchmark, in a process of its own.

    python -m benchmarks.stream_producer --like tenant1|tenant2 --tenant NAME --out DIR
                                         [--producer prebuilt|kafka-python] [--tick-ms MS] INPUT...

It reads commands on stdin, one JSON line each. A step (``step``, ``rate`` per second or 0 for
unpaced, ``seconds`` or ``count``, and ``start_at``, a wall clock, or null) is prepared first, and
answered with a ``prepared`` line; it then starts at ``start_at``, or, if that was null, at the
``start_at`` of the next line (``{"go": START_AT}``), so that every producer of a run starts at one
instant however long it took to prepare. Once every message of the step is acknowledged it answers
with one JSON line (:class:`StepSent`). Messages are ``producers.stream.message_for(like, record)``
with the fresh tenant's name and a fresh id ``<id>-s<step>-<seq>``, encoded and keyed as the tenant
client does it, sent with the tenant client's producer configuration.

Two ways to send them (``--producer``):

- ``prebuilt`` (the default): every record of the step is encoded before it starts, and during
  the step the due records are only put into record batches stamped with the send time
  (stream_batches.py, stream_sender.py): 6 to 9 µs of CPU per message at 10,000 msg/s on a busy
  2-core machine, and it keeps the offered rate where kafka-python's producer does not;
- ``kafka-python``: the tenant client's own ``KafkaProducer.send()`` per message (50 to 80 µs of
  CPU per message), for comparison.

For every message it keeps the wall clock when it was sent and the Kafka timestamp the broker
acknowledged (CreateTime: set by kafka-python inside ``send()``, or by the pre-built batch when it
is sent), indexed by ``seq``, and writes them to ``DIR/<tenant>-s<step>-p<index>.times`` (int64
CreateTime ms, then float64 send time s; -1 for a failure). A process per producer keeps them
from sharing one interpreter lock with each other or with the benchmark.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from kafka import KafkaProducer

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import tls
from producers.pacing import TokenBucket
from producers.stream import message_for, producer_config, records_for

from .errors import ProducerError
from .stream_batches import Template
from .stream_lines import Lines
from .stream_sender import BatchSender, Plan

FLUSH_SECONDS = 120.0
KINDS = ("prebuilt", "kafka-python")


@dataclass(frozen=True)
class Command:
    step: int
    rate: float  # messages per second; 0: as fast as possible
    seconds: float | None  # send for this long ...
    count: int | None  # ... or this many messages
    start_at: float | None = None  # wall clock (time.time()) of the first send; None: a "go" line will say

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Command:
        raw = json.loads(line)
        start_at = raw.get("start_at")
        return cls(int(raw["step"]), float(raw.get("rate") or 0), raw.get("seconds"), raw.get("count"),
                   None if start_at is None else float(start_at))


@dataclass(frozen=True)
class StepSent:
    tenant: str
    step: int
    sent: int
    acked: int
    errors: int
    first_send: float  # wall clock of the first and the last send
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


class Messages:
    """One producer's share of a tenant's messages: the samples cycled, each with a fresh id tail."""

    def __init__(self, like: str, tenant: str, inputs: Sequence[Path], index: int = 0, of: int = 1) -> None:
        self.index, self.of = index, of  # this process sends the seqs index, index + of, index + 2 * of, ...
        self.messages = [{**message_for(like, r), "tenant": tenant} for r in records_for(like, inputs)]
        if not self.messages:
            raise SystemExit(f"no records for {like} in {', '.join(map(str, inputs))}")
        self.cycle: Iterator[Template] = itertools.cycle([Template.of(m) for m in self.messages])

    def fresh(self, step: int) -> Iterator[tuple[bytes, bytes]]:
        """(value, key) of this producer's messages of ``step``, its own number k giving the seq."""
        for k in itertools.count():
            yield next(self.cycle).value_and_key(f"-s{step}-{self.index + self.of * k}".encode())


class Sender(Protocol):
    def prepare(self, cmd: Command) -> int: ...  # returns the messages prepared (0: made as sent)
    def run(self, start_at: float) -> StepSent: ...
    def close(self) -> None: ...


class _Base:
    def __init__(self, tenant: str, messages: Messages, out: Path) -> None:
        self.tenant, self.messages, self.out = tenant, messages, out
        self.topic = names.ingest_topic(tenant)

    def _result(self, step: int, created: array[int], sent_at: array[float], sent: int, errors: int) -> StepSent:
        """``created`` and ``sent_at`` by own number (-1 and 0.0 for a message not sent or not acknowledged)."""
        path = self.out / f"{self.tenant}-s{step}-p{self.messages.index}.times"
        path.write_bytes(created.tobytes() + sent_at.tobytes())
        n = len(created)
        return StepSent(self.tenant, step, sent, n - created.count(-1), errors, sent_at[0] if n else 0.0,
                        sent_at[-1] if n else 0.0, str(path), self.messages.index, self.messages.of)


class PrebuiltSender(_Base):
    """Records encoded before the step, sent in record batches stamped when due (stream_sender.py)."""

    def __init__(self, tenant: str, messages: Messages, out: Path, config: Mapping[str, Any],
                 tick_s: float | None = None) -> None:
        super().__init__(tenant, messages, out)
        self.sender = BatchSender(config, self.topic, tick_s=tick_s)
        self.plan: Plan | None = None

    def prepare(self, cmd: Command) -> int:
        self.plan = self.sender.prepare(cmd.step, self.messages.fresh(cmd.step), cmd.rate, cmd.seconds, cmd.count)
        return self.plan.total

    def run(self, start_at: float) -> StepSent:
        assert self.plan is not None, "prepare a step first"
        plan, self.plan = self.plan, None
        outcome = self.sender.run(plan, start_at)
        return self._result(plan.step, outcome.created, outcome.sent_at, outcome.sent, outcome.errors)

    def close(self) -> None:
        self.sender.close()


class KafkaPythonSender(_Base):
    """The tenant client's ``KafkaProducer.send()`` per message, paced by its token bucket."""

    def __init__(self, tenant: str, messages: Messages, out: Path, config: Mapping[str, Any]) -> None:
        super().__init__(tenant, messages, out)
        self.producer = KafkaProducer(**config)
        self.producer.partitions_for(self.topic)  # fetch metadata now, not on the first timed send
        self.cmd: Command | None = None

    def prepare(self, cmd: Command) -> int:
        self.cmd = cmd
        return 0

    def run(self, start_at: float) -> StepSent:
        assert self.cmd is not None, "prepare a step first"
        cmd, self.cmd = self.cmd, None
        created: array[int] = array("q")
        sent_at: array[float] = array("d")
        errors = [0]

        def ok(seq: int, metadata: Any) -> None:
            created[seq] = int(metadata.timestamp)

        def failed(_seq: int, _exc: BaseException) -> None:
            errors[0] += 1

        messages = self.messages.fresh(cmd.step)
        bucket = TokenBucket(cmd.rate, time.monotonic()) if cmd.rate > 0 else None
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        end = started + cmd.seconds if cmd.seconds else None
        seq = 0  # this process's own count; the message's seq is index + of * seq
        while cmd.count is None or seq < cmd.count:
            now = time.monotonic()
            if end is not None and now >= end:
                break
            if bucket is not None:
                wait = bucket.take(now)
                if wait > 0:
                    time.sleep(wait if end is None else min(wait, max(end - now, 0.0)))
                    continue
            value, key = next(messages)
            created.append(-1)
            sent_at.append(time.time())
            future = self.producer.send(self.topic, value=value, key=key)
            future.add_callback(ok, seq)
            future.add_errback(failed, seq)
            seq += 1
        self.producer.flush(timeout=FLUSH_SECONDS)
        return self._result(cmd.step, created, sent_at, seq, errors[0])

    def close(self) -> None:
        self.producer.close(timeout=10)


def make_sender(kind: str, tenant: str, messages: Messages, out: Path, config: Mapping[str, Any],
                tick_s: float | None = None) -> Sender:
    if kind == "prebuilt":
        return PrebuiltSender(tenant, messages, out, config, tick_s)
    if kind == "kafka-python":
        return KafkaPythonSender(tenant, messages, out, config)
    raise ProducerError(f"unknown producer {kind!r}: expected one of {', '.join(KINDS)}")


class ProducerProcess:
    """The benchmark's handle on one producer process: send it commands, read its answers."""

    def __init__(self, like: str, tenant: str, bootstrap: str, out: Path, inputs: Sequence[Path], log: Path,
                 cwd: Path, timeout: float = 60, index: int = 0, of: int = 1, kind: str = KINDS[0],
                 tick_ms: float | None = None) -> None:
        self.tenant, self.log, self.kind = tenant, log, kind
        argv = [sys.executable, "-m", "benchmarks.stream_producer", "--like", like, "--tenant", tenant,
                "--bootstrap", bootstrap, "--out", str(out), "--index", str(index), "--of", str(of),
                "--producer", kind, *(("--tick-ms", f"{tick_ms:g}") if tick_ms is not None else ()),
                *map(str, inputs)]
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, bufsize=0,
                                         cwd=cwd, start_new_session=True)
        assert self.proc.stdout is not None
        self.lines = Lines(self.proc.stdout.fileno())  # unbuffered: select sees every answer not yet read
        self.ready = self._line(timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _line(self, timeout: float) -> dict[str, Any]:
        line = self.lines.next(timeout)
        if not line:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise ProducerError(f"the producer of {self.tenant} gave no answer in {timeout:.0f} s "
                                f"(exit code {self.proc.poll()}); {self.log}:\n{tail}")
        return dict(json.loads(line))

    def _write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))

    def send(self, cmd: Command) -> None:
        """Start a step: prepared, then sent from ``cmd.start_at`` (or from the next :meth:`go`)."""
        self._write(cmd.to_json())

    def prepared(self, timeout: float) -> dict[str, Any]:
        """The answer that the step is prepared: ``{"prepared": step, "messages": n, "seconds": s}``."""
        answer = self._line(timeout)
        if "prepared" not in answer:
            raise ProducerError(f"the producer of {self.tenant} answered {answer} where it should say 'prepared'")
        return answer

    def go(self, start_at: float) -> None:
        self._write(json.dumps({"go": start_at}))

    def result(self, timeout: float) -> StepSent:
        answer = self._line(timeout)
        while "prepared" in answer:  # a step sent with its start_at: the prepared line comes first
            answer = self._line(timeout)
        return StepSent(**answer)

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


def serve(sender: Sender, lines: Iterator[str]) -> None:
    """Answer the commands of ``lines`` (see the module's doc) until they end."""
    for line in lines:
        if not line.strip():
            continue
        cmd = Command.from_json(line)
        started = time.process_time()
        count = sender.prepare(cmd)
        print(json.dumps({"prepared": cmd.step, "messages": count,
                          "cpu_s": round(time.process_time() - started, 3)}), flush=True)
        start_at = cmd.start_at
        if start_at is None:
            go = next((json.loads(line) for line in lines if line.strip()), None)
            if go is None:  # the benchmark ended before it said go
                return
            if "go" not in go:
                raise ProducerError(f"expected a go line after step {cmd.step}, got {go}")
            start_at = float(go["go"])
        print(sender.run(start_at).to_json(), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_producer", description=__doc__.split("\n")[0])
    parser.add_argument("--like", required=True, choices=("tenant1", "tenant2"), help="the shipped tenant's shape")
    parser.add_argument("--tenant", required=True, help="the fresh tenant's name (its topic and message field)")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--out", required=True, type=Path, help="folder for the per-step timestamp files")
    parser.add_argument("--index", type=int, default=0, help="this producer's place among the tenant's producers")
    parser.add_argument("--of", type=int, default=1, help="how many producers the tenant has (each sends every "
                                                          "of-th seq, from its index)")
    parser.add_argument("--producer", choices=KINDS, default=KINDS[0],
                        help="prebuilt: records encoded before each step (default); kafka-python: the tenant "
                             "client's KafkaProducer.send() per message")
    parser.add_argument("--tick-ms", type=float, metavar="MS",
                        help="prebuilt: send what is due every MS milliseconds (default: the tenant client's linger)")
    parser.add_argument("inputs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.tick_ms is not None and args.tick_ms <= 0:
        parser.error("--tick-ms must be positive")
    # A secure stack (its home's marker, or MYSIMBDP_SECURE): TLS and the tenant's own login.
    security = tls.kafka_options(Settings.from_env(), f"tenant:{args.tenant}")
    messages = Messages(args.like, args.tenant, args.inputs, args.index, args.of)
    sender = make_sender(args.producer, args.tenant, messages, args.out,
                         producer_config(args.bootstrap, args.tenant, security),
                         None if args.tick_ms is None else args.tick_ms / 1000)
    print(json.dumps({"ready": args.tenant, "records": len(messages.messages), "producer": args.producer}), flush=True)
    try:
        serve(sender, iter(sys.stdin))
    finally:
        sender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
