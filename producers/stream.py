"""clientstreamingestapp: send a tenant's records to its Kafka topic as JSON messages, near real time.

    python -m producers.stream --tenant tenant1|tenant2 [--rate R] [--count N] [--report-every S]
                               [--bootstrap HOST:PORT] [--topic T] INPUT...

tenant1 reads full Reddit JSON records and keeps created_utc, ups, subreddit, id, author, score;
tenant2 reads Reddit CSV exports and keeps created_utc, subreddit, id, author, body. Each record
becomes one UTF-8 JSON object with those fields plus ``"tenant"``, sent to ``<tenant>.ingest`` with
the key ``<subreddit>/<id>`` (the partition key of both tenants' tables), so that all messages about
one row go to one partition, in order. Every ``--report-every`` seconds and at the end a client
report (messages acked, bytes, send latency, errors) goes to ``<tenant>.reports``.

On a secure stack (``mysimbdp stack up --secure``) the producer connects with TLS, verifying the
stack's CA, and logs in as the tenant's own Kafka user (``tenant:<name>`` in the secrets store):
Kafka lets it write only its own ingest and reports topics.

Delivery: ``acks="all"`` with the idempotent producer (kafka-python 2.1 and later). Ordering per key
needs either idempotence or one request in flight: kafka-python keeps at most one batch in flight
per partition in both cases (other partitions still overlap, up to five requests per connection),
so they cost the same; idempotence also keeps a retried batch from being written twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.codec import has_lz4
from kafka.errors import KafkaError, KafkaTimeoutError

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core import progress as bars
from mysimbdp_tasks.core.errors import MysimbdpError, StreamError
from mysimbdp_tasks.core.reports import Reservoir, Window, send_report
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import tls

from .batch import PROFILES, Profile, profile_for
from .pacing import LINGER_MS, TokenBucket
from .readers import InputError, iter_csv_rows, iter_json_objects

log = logging.getLogger(__name__)

KEY_FIELDS = ("subreddit", "id")  # both tenants' tables are partitioned by (subreddit, id)
PROGRESS_SECONDS = 1.0
FLUSH_SECONDS = 120.0
MAX_BLOCK_MS = 15_000  # metadata and a full buffer: a broker gone this long is an error


@dataclass(frozen=True)
class SendStats:
    sent: int
    acked: int
    errors: int
    bytes: int  # message values acked, in bytes
    seconds: float  # from the first send to the last acknowledgement
    avg_latency_ms: float  # send() until the broker acked
    p99_latency_ms: float
    max_latency_ms: float


@dataclass(frozen=True)
class Progress:
    tenant: str
    sent: int
    acked: int
    errors: int
    rate: float  # messages acked per second since the previous snapshot
    elapsed: float
    done: bool
    last_error: str = ""


ProgressFn = Callable[[Progress], None]


# --- records and messages -----------------------------------------------------------------------


def message_for(tenant: str, record: dict[str, Any]) -> dict[str, Any]:
    """The message a tenant sends for one source record: its fields (null if absent) and the tenant."""
    profile = profile_for(tenant)
    message = {f: record.get(f) for f in profile.fields}
    created = message.get("created_utc")
    if isinstance(created, str) and created.isascii() and created.isdigit():
        message["created_utc"] = int(created)  # CSV has no types; epoch seconds are a JSON number
    message["tenant"] = tenant
    return message


def key_for(message: dict[str, Any]) -> bytes:
    return "/".join("" if message.get(f) is None else str(message[f]) for f in KEY_FIELDS).encode("utf-8")


_UTF8_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ASCII_JSON = json.JSONEncoder(separators=(",", ":"))


def encode(message: dict[str, Any]) -> bytes:
    try:
        return _UTF8_JSON.encode(message).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud83d" escape: only ASCII escapes carry it
        return _ASCII_JSON.encode(message).encode("ascii")


def records_for(tenant: str, inputs: Sequence[Path], count: int | None = None) -> Iterator[dict[str, Any]]:
    """The source records of ``inputs``, read as a stream; ``count`` of them, cycling if needed.

    Without ``count``, one pass. From the second pass on, each record's id becomes ``<id>-r<pass>``
    so that every message is a new row rather than an overwrite of one already sent.
    """
    profile = profile_for(tenant)
    if count is not None and count <= 0:
        return
    n, passes = 0, 1
    while True:
        in_pass = 0
        for record in _read(profile, inputs):
            if passes > 1 and record.get("id") is not None:
                record = {**record, "id": f"{record['id']}-r{passes}"}
            yield record
            n += 1
            in_pass += 1
            if count is not None and n >= count:
                return
        if count is None:
            return
        if not in_pass:
            raise InputError(f"no records in {', '.join(str(p) for p in inputs)}")
        passes += 1


def _read(profile: Profile, inputs: Sequence[Path]) -> Iterator[dict[str, Any]]:
    for src in inputs:
        try:  # -sig: exports from spreadsheets start with a byte-order mark
            f = open(src, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed by the with below)
        except OSError as e:
            raise InputError(f"{src}: cannot open: {e.strerror or e}") from None
        with f:
            try:
                if profile.fmt == "csv":
                    for row in iter_csv_rows(f, profile.fields, str(src)):
                        yield dict(zip(profile.fields, row, strict=True))
                else:
                    yield from iter_json_objects(f, str(src))
            except UnicodeDecodeError as e:
                raise InputError(f"{src}: not UTF-8 text: {e.reason}") from None


# --- sending -------------------------------------------------------------------------------------


# Ordered per partition across retries: with idempotence (no duplicates either) where the client
# has it, else with a single request in flight.
_ORDERED: dict[str, Any] = (
    {"enable_idempotence": True, "max_in_flight_requests_per_connection": 5}  # the most idempotence allows
    if "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG
    else {"max_in_flight_requests_per_connection": 1}
)
# Newer than kafka-python 2.0: used where the installed client knows it.
_BOOTSTRAP_TIMEOUT = {"bootstrap_timeout_ms": 10_000} if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG else {}


def producer_config(bootstrap: str, tenant: str, security: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """kafka-python options; ``security``: TLS and login options of a secure stack (security/tls.py)."""
    return {
        **(security or {}),
        "bootstrap_servers": [b.strip() for b in bootstrap.split(",") if b.strip()],
        "client_id": f"mysimbdp-stream-{tenant}",
        "acks": "all",
        **_ORDERED,
        "linger_ms": LINGER_MS,
        "batch_size": 64 * 1024,
        "compression_type": "lz4" if has_lz4() else None,  # only if the codec is already installed
        "max_block_ms": MAX_BLOCK_MS,
        **_BOOTSTRAP_TIMEOUT,  # no broker after 10 s: say so rather than hang
    }


class _Tracker:
    """Acks and failures, counted from kafka-python's I/O thread; read from the sending thread."""

    def __init__(self, window: Window) -> None:
        self.lock = threading.Lock()
        self.window = window
        self.acked = self.errors = self.bytes = 0
        self.latency_sum = self.latency_max = 0.0
        self.latencies = Reservoir()
        self.last_error = ""
        self.last_ack = 0.0

    def ok(self, started: float, size: int, _metadata: Any) -> None:
        now = time.perf_counter()
        ms = (now - started) * 1000.0
        with self.lock:
            self.acked += 1
            self.bytes += size
            self.latency_sum += ms
            self.latency_max = max(self.latency_max, ms)
            self.latencies.add(ms)
            self.last_ack = now
            self.window.add(1, size, ms)

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.window.add(1, 0, 0.0, error=True)


class _Sender:
    def __init__(self, producer: Any, tenant: str, topic: str, report_every: float,
                 progress: ProgressFn | None, reports: bool = True) -> None:
        self.producer, self.tenant, self.topic, self.progress = producer, tenant, topic, progress
        self.reports = reports
        self.tracker = _Tracker(Window("client", tenant, report_every, start=time.time()))
        self.sent = 0
        self.started = time.perf_counter()
        self.next_tick = time.monotonic() + PROGRESS_SECONDS
        self.prev_acked, self.prev_at = 0, time.monotonic()

    def one(self, record: dict[str, Any]) -> None:
        message = message_for(self.tenant, record)
        value = encode(message)
        started = time.perf_counter()
        try:
            future = self.producer.send(self.topic, value=value, key=key_for(message))
        except KafkaTimeoutError as e:  # the buffer stayed full for max_block_ms: no broker takes data
            self.tracker.fail(e)
            raise StreamError(f"{self.topic}: the broker took no message for {MAX_BLOCK_MS // 1000} s: {e}") from None
        except KafkaError as e:  # refused before it left, e.g. larger than the broker accepts
            self.tracker.fail(e)
            return
        self.sent += 1
        future.add_callback(self.tracker.ok, started, len(value))
        future.add_errback(self.tracker.fail)

    def tick(self, done: bool = False) -> None:
        now = time.monotonic()
        if self.progress is not None and (done or now >= self.next_tick):
            self.next_tick = now + PROGRESS_SECONDS
            t = self.tracker
            with t.lock:
                acked, errors, last_error = t.acked, t.errors, t.last_error
            rate = (acked - self.prev_acked) / max(now - self.prev_at, 1e-9)
            self.prev_acked, self.prev_at = acked, now
            self.progress(Progress(self.tenant, self.sent, acked, errors, rate,
                                   time.perf_counter() - self.started, done, last_error))
        wall = time.time()
        if done or self.tracker.window.due(wall):
            with self.tracker.lock:
                report = self.tracker.window.flush(wall)
            if report is not None and self.reports:
                send_report(self.producer, report, names.reports_topic(self.tenant))

    def stats(self) -> SendStats:
        t = self.tracker
        with t.lock:
            end = t.last_ack if t.acked else time.perf_counter()
            return SendStats(
                sent=self.sent, acked=t.acked, errors=t.errors, bytes=t.bytes, seconds=end - self.started,
                avg_latency_ms=t.latency_sum / t.acked if t.acked else 0.0,
                p99_latency_ms=t.latencies.percentile(99) or 0.0, max_latency_ms=t.latency_max,
            )


def send(tenant: str, records: Iterable[dict[str, Any]], bootstrap: str, rate: float = 0,
         report_every: float = 5, progress: ProgressFn | None = None, *, topic: str | None = None,
         security: Mapping[str, Any] | None = None) -> SendStats:
    """Send ``message_for(tenant, r)`` for each record to ``topic`` (default ``<tenant>.ingest``).

    Returns once every message is acknowledged or failed; ``rate`` > 0 caps messages per second.
    Raises StreamError if no broker answers or the topic does not exist.
    """
    profile_for(tenant)
    topic = topic or names.ingest_topic(tenant)
    try:
        producer = KafkaProducer(**producer_config(bootstrap, tenant, security))
    except KafkaError as e:
        raise StreamError(f"no Kafka broker at {bootstrap}: {e} (is the stack up? `mysimbdp stack status`)") from None
    try:
        if not _has_topic(producer, topic):
            raise StreamError(f"topic {topic} does not exist at {bootstrap}: apply the tenant first "
                              f"(`mysimbdp tenants apply tenants/tenants.json`)")
        reports = _has_topic(producer, names.reports_topic(tenant))
        if not reports:  # the data matters more than the report about it
            log.warning("tenant %s: topic %s does not exist; sending without reports", tenant,
                        names.reports_topic(tenant))
        sender = _Sender(producer, tenant, topic, report_every, progress, reports)
        log.info("tenant %s: sending to %s (rate %s msg/s)", tenant, topic, rate or "unlimited")
        bucket = TokenBucket(rate, time.monotonic()) if rate > 0 else None
        for record in records:
            while bucket is not None and (wait := bucket.take(time.monotonic())) > 0:
                sender.tick()
                time.sleep(min(wait, PROGRESS_SECONDS))
            sender.one(record)
            sender.tick()
        producer.flush(timeout=FLUSH_SECONDS)
        stats = sender.stats()
        sender.tick(done=True)  # the last report covers the tail of the run
        producer.flush(timeout=FLUSH_SECONDS)
        log.info("tenant %s: %s sent, %s acked, %s errors to %s in %.2f s, send latency avg %.1f ms p99 %.1f ms",
                 tenant, stats.sent, stats.acked, stats.errors, topic, stats.seconds, stats.avg_latency_ms,
                 stats.p99_latency_ms)
        return stats
    finally:
        producer.close(timeout=10)


def _has_topic(producer: Any, topic: str) -> bool:
    try:
        producer.partitions_for(topic)
    except KafkaError:  # metadata never named the topic within max_block_ms
        return False
    return True


# --- command line --------------------------------------------------------------------------------


def print_progress(p: Progress) -> None:
    state = "done" if p.done else "..."
    error = f" (last: {p.last_error})" if p.errors and p.last_error else ""
    print(f"{p.tenant}: sent {p.sent}, acked {p.acked}, {p.rate:.0f} msg/s, errors {p.errors}{error}, "
          f"{p.elapsed:.1f} s {state}", file=sys.stderr, flush=True)


def _progress(tenant: str, count: int | None) -> ProgressFn:
    """A bar of messages acknowledged on a terminal; otherwise a line every few seconds."""
    if not bars.on_terminal():
        return print_progress
    show = bars.follow(f"{tenant}: acked", count, "msg")
    return lambda p: show(p.acked, f"{p.rate:.0f} msg/s, errors {p.errors}", p.done)


def _positive(kind: type[int | float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producers.stream", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant", required=True, choices=sorted(PROFILES))
    parser.add_argument("--rate", type=_positive(float), default=0.0,
                        help="messages per second (default 0: as fast as possible)")
    parser.add_argument("--count", type=_positive(int),
                        help="messages to send (default: each input record once). If larger than the "
                             "inputs, they are sent again and again; repeated records get fresh ids "
                             "<id>-r2, <id>-r3, ... so each message is a new row")
    parser.add_argument("--report-every", type=float, default=5.0, metavar="S",
                        help="seconds between client reports to <tenant>.reports (default 5)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT",
                        help="Kafka bootstrap servers (default: $MYSIMBDP_KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    parser.add_argument("--topic", help="send to this topic instead of <tenant>.ingest")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="Reddit JSON records (tenant1) or a Reddit CSV export (tenant2)")
    args = parser.parse_args(argv)
    if args.report_every <= 0:
        parser.error("--report-every must be positive")
    try:
        settings = Settings.from_env()
        bootstrap = args.bootstrap or settings.kafka_bootstrap_str
        stats = send(args.tenant, records_for(args.tenant, args.inputs, args.count), bootstrap,
                     rate=args.rate, report_every=args.report_every,
                     progress=None if args.quiet else _progress(args.tenant, args.count), topic=args.topic,
                     security=tls.kafka_options(settings, f"tenant:{args.tenant}"))
    except MysimbdpError as e:
        print(f"producers.stream: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"{args.tenant}\tsent={stats.sent}\tacked={stats.acked}\terrors={stats.errors}\tbytes={stats.bytes}\t"
          f"seconds={stats.seconds:.2f}\tavg_latency_ms={stats.avg_latency_ms:.2f}\t"
          f"p99_latency_ms={stats.p99_latency_ms:.2f}", flush=True)
    return 1 if stats.errors or stats.acked < stats.sent else 0


if __name__ == "__main__":
    sys.exit(main())
