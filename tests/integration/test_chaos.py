"""Chaos: processes killed with SIGKILL every few seconds for a minute lose, double and miss nothing.

While one tenant ingests files (a generated CSV file of 42 MiB and a few small ones, dropped along
the minute) and another a stream of JSON messages at up to 1,500 msg/s (idempotent producer,
``acks=all``), the test SIGKILLs, every 2 to 4 s, one of: either tenant's worker pool (its whole
process group), the stream bridge, or the watcher, and starts it again after a one-second pause, as
a supervisor would. After the last kill it waits for everything to land, then asserts what a tenant
is promised:

- every row of every file and every message is in Cassandra, exactly once per primary key: the set
  of keys in each table equals the set sent, and each row holds the values sent;
- every file has exactly one receipt, ``done``, counting each of its rows once;
- the daily quotas count each file (and its bytes) and each message exactly once.

A failure names what was lost or doubled: the keys (and whether the broker still holds their
tasks, unacknowledged or queued, or nowhere), the files (where they are on disk, which of their
tasks are still needed and where the broker holds them), the counters. The recovery times (from the
last kill until the stream, the files and everything had landed), the kills of each kind, the send
rate and the rows checked are printed and written to ``chaos.json`` in the test's temporary folder.

The platform runs with its default settings. ``MYSIMBDP_VISIBILITY_TIMEOUT`` and the other
``MYSIMBDP_*`` variables of the environment reach its processes, e.g. to see how a shorter
visibility timeout changes the recovery time.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from cassandra import OperationTimedOut, ReadTimeout
from cassandra.query import SimpleStatement
from kafka import KafkaProducer
from kit import DATA, Platform

from mysimbdp_tasks.batch import folders, sweeper
from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import topics
from mysimbdp_tasks.services.quotas import Quotas
from mysimbdp_tasks.stream import wire
from producers.batch import wrangle
from producers.generate import generate
from producers.pacing import TokenBucket
from producers.stream import encode, key_for, message_for, producer_config, records_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

CHAOS_SECONDS = 60.0
KILL_GAP_S = (2.0, 4.0)  # seconds between two kills, drawn at random (seeded)
RESTART_PAUSE_S = 1.0  # a supervisor's pause before it starts the killed process again
RATE = 1500.0  # stream messages per second at most (a busy machine sends fewer)
MESSAGES = 75_000  # 50 s at RATE: the stream runs through the minute of kills
BIG_MIB = 42.0  # about 44 MB
SMALL_MIB = 1.0
STAGE_EVERY_S = 8.0  # a small file is dropped this often during the kills
RECOVERY_DEADLINE_S = 420.0  # generous: the machine is shared, and a failure should say what is missing
SEED = 8


@dataclass
class Sent:
    """What a tenant handed the platform: files or messages, and the rows they must become."""

    rows: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)  # key -> values
    conflicting: set[tuple[Any, ...]] = field(default_factory=set)  # keys sent with different values
    files: dict[str, tuple[Path, int]] = field(default_factory=dict)  # staged name -> (source, records)
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)

    def add(self, key: tuple[Any, ...], values: tuple[Any, ...]) -> None:
        if self.rows.setdefault(key, values) != values:
            self.conflicting.add(key)  # which one lands is not defined: its values are not compared


@dataclass
class Target:
    """One kind of process to kill: ``name`` of ``platform``."""

    label: str
    platform: Platform
    name: str
    kills: int = 0


# -- what is sent --------------------------------------------------------------------------------


def _files(tenant: Tenant, work: Path) -> Sent:
    """A big generated CSV file, the Reddit CSV samples and small generated files, in staging order."""
    sent = Sent()
    sources: list[tuple[Path, int]] = []
    big = generate("tenant2", int(BIG_MIB * 1024 * 1024), work / "big.csv", seed=SEED, samples_dir=DATA)
    sources.append((big.path, big.records))
    wrangled = work / "wrangled"
    wrangled.mkdir()
    for src in sorted(DATA.glob("1000rows*.csv")):
        out = wrangle("tenant2", src, wrangled)
        sources.append((out.path, out.records))
    for i in range(3):
        small = generate("tenant2", int(SMALL_MIB * 1024 * 1024), work / f"small{i}.csv", seed=SEED + 1 + i,
                         samples_dir=DATA)
        sources.append((small.path, small.records))
    for n, (path, records) in enumerate(sources):
        sent.files[f"{tenant.name}-{n:02d}-{path.name}"] = (path, records)
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                sent.add((row["subreddit"], row["id"], row["author"]), (row["body"],))
    return sent


def _messages(tenant: Tenant) -> Sent:
    sent = Sent()
    for record in records_for("tenant1", sorted(DATA.glob("1000rows*.json")), count=MESSAGES):
        message = {**message_for("tenant1", record), "tenant": tenant.name}
        sent.messages.append((key_for(message), encode(message)))
        sent.add((message["subreddit"], message["id"], int(message["ups"])),
                 (message["author"], int(message["score"])))
    return sent


class Sender(threading.Thread):
    """Sends the messages at up to RATE with the idempotent producer, acks=all; counts acks and errors.

    Outcomes are read from the futures after the flush rather than by a callback per message: on a
    busy machine the sender is bound by CPU, and callbacks would slow it down.
    """

    def __init__(self, settings: Settings, tenant: Tenant, messages: list[tuple[bytes, bytes]]) -> None:
        super().__init__(name="chaos-sender", daemon=True)
        self.settings, self.tenant, self.messages = settings, tenant, messages
        self.acked = self.errors = 0
        self.last_error = ""
        self.seconds = 0.0

    def run(self) -> None:
        producer = KafkaProducer(**producer_config(self.settings.kafka_bootstrap_str, self.tenant.name))
        started = time.monotonic()
        bucket = TokenBucket(RATE, started)
        futures = []
        try:
            for key, value in self.messages:
                while (wait := bucket.take(time.monotonic())) > 0:
                    time.sleep(wait)
                futures.append(producer.send(self.tenant.ingest_topic, key=key, value=value))
            producer.flush(timeout=120)
        finally:
            self.seconds = time.monotonic() - started
            producer.close(timeout=10)
        self.acked = sum(1 for f in futures if f.succeeded())
        failed = [f.exception for f in futures if f.failed()]
        self.errors = len(failed)
        self.last_error = f"{type(failed[0]).__name__}: {failed[0]}" if failed else ""


# -- chaos ---------------------------------------------------------------------------------------


def _run_chaos(targets: list[Target], stage_next: Callable[[], bool], rng: random.Random) -> float:
    """Kill a target every few seconds (each kind in turn, in a shuffled order per round) and start
    it again after a pause; drop the next file every STAGE_EVERY_S. Returns when the last kill was."""
    started = time.monotonic()
    next_stage = started
    last_kill = started
    order: list[Target] = []
    while time.monotonic() - started < CHAOS_SECONDS:
        gap_end = time.monotonic() + rng.uniform(*KILL_GAP_S)
        while time.monotonic() < gap_end:
            if time.monotonic() >= next_stage and stage_next():
                next_stage += STAGE_EVERY_S
            time.sleep(0.1)
        if not order:
            order = rng.sample(targets, len(targets))
        target = order.pop()
        target.platform.kill(target.name)
        last_kill = time.monotonic()
        target.kills += 1
        time.sleep(RESTART_PAUSE_S)
        target.platform.restart(target.name)
    while stage_next():  # files not dropped yet (a slow machine): drop them now
        pass
    return last_kill


# -- checks --------------------------------------------------------------------------------------


def _receipts(platform: Platform, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every receipt of the file staged as ``name``: (its folder, its content)."""
    found = []
    for stage in (folders.DONE, folders.FAILED, folders.REJECTED):
        for owner in (platform.tenant.name, folders.UNKNOWN_TENANT_DIR):
            for receipt in folders.find_receipts(platform.home / stage / owner, name):
                found.append((stage, json.loads(receipt.read_text())))
    return found


def _where(platform: Platform, name: str) -> str:
    """Where a file without a receipt is: staging, a claim, processing/ (with its ingest id)."""
    places = [str(p.relative_to(platform.home)) for p in platform.home.rglob(f"*{name}*")
              if not p.name.endswith(folders.RECEIPT_SUFFIX)]
    return ", ".join(places) or "nowhere on disk"


def _file_problems(client: redis.Redis, platform: Platform, sent: Sent) -> list[str]:
    problems = []
    for name, (_, records) in sent.files.items():
        receipts = _receipts(platform, name)
        if not receipts:
            problems.append(f"file {name}: no receipt; it is at {_where(platform, name)}; "
                            f"{_stuck_file(client, platform.tenant, name)}")
        elif len(receipts) > 1:
            problems.append(f"file {name}: {len(receipts)} receipts: "
                            f"{[(s, r['status'], r['ingest_id']) for s, r in receipts]}")
        else:
            stage, r = receipts[0]
            if (stage, r["status"], r["rows_ok"], r["rows_refused"]) != (folders.DONE, "done", records, 0):
                problems.append(f"file {name}: receipt in {stage}/ status={r['status']} reason={r['reason']!r} "
                                f"rows_ok={r['rows_ok']} rows_refused={r['rows_refused']}, want done with "
                                f"rows_ok={records}")
    return problems


def _row_problems(what: str, sent: Sent, landed: dict[tuple[Any, ...], tuple[Any, ...]],
                  where: Callable[[set[tuple[Any, ...]]], str] | None = None) -> list[str]:
    problems = []
    missing = sent.rows.keys() - landed.keys()
    extra = landed.keys() - sent.rows.keys()
    if missing:
        problems.append(f"{what}: {len(missing)} of {len(sent.rows)} keys lost, e.g. {sorted(missing)[:10]}"
                        + (f"; of them {where(set(missing))}" if where else ""))
    if extra:
        problems.append(f"{what}: {len(extra)} keys landed that were never sent, e.g. {sorted(extra)[:10]}")
    wrong = [k for k, v in landed.items() if k in sent.rows and k not in sent.conflicting and sent.rows[k] != v]
    if wrong:
        k = wrong[0]
        problems.append(f"{what}: {len(wrong)} rows hold other values than sent, e.g. {k}: "
                        f"{landed[k]!r} instead of {sent.rows[k]!r}")
    return problems


def _broker_messages(client: redis.Redis, queue: str) -> dict[str, list[dict[str, Any]]]:
    """The Celery messages of ``queue`` the broker holds: "queued" ones and "unacked" ones (delivered
    to a worker, maybe a dead one, and handed out again only after the visibility timeout)."""
    held: dict[str, list[dict[str, Any]]] = {"queued": [], "unacked": []}
    for raw in client.lrange(queue, 0, -1):
        held["queued"].append(json.loads(raw))
    for raw in client.hvals(names.UNACKED):
        message, _, routing_key = json.loads(raw)
        if routing_key == queue:
            held["unacked"].append(message)
    return held


def _task_args(message: dict[str, Any]) -> list[Any]:
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return list(json.loads(body)[0])


def _lost_messages(client: redis.Redis, tenant: Tenant, missing: set[tuple[Any, ...]]) -> str:
    """Where the missing stream keys are: in tasks held unacknowledged, still queued, or nowhere."""
    parts = []
    for where, messages in _broker_messages(client, tenant.stream_queue).items():
        data = [json.loads(m["v"]) for msg in messages for m in wire.messages(_task_args(msg)[1])]
        keys = {(d.get("subreddit"), d.get("id"), d.get("ups")) for d in data}
        state = "queued" if where == "queued" else "unacknowledged (handed out again after the visibility timeout)"
        parts.append(f"{len(keys & missing)} in {len(messages)} stream tasks {state}")
        missing = missing - keys
    return (", ".join(parts) + f", {len(missing)} held nowhere (a task lost by the broker, or never sent: "
            "celery/kombu#305)")


def _stuck_file(client: redis.Redis, tenant: Tenant, name: str) -> str:
    """A file's job as Redis holds it: chunks recorded of planned, and where its tasks are."""
    jobs = [j for j in Jobs(client).stale_jobs(before=time.time() + 1) if j["job"].get("file") == name]
    if not jobs:
        return "no open job"
    held = {where: {m["headers"]["id"] for m in messages}
            for where, messages in _broker_messages(client, tenant.batch_queue).items()}
    out = []
    for job in jobs:
        plan = job["plan"]
        wanted = sorted(sweeper.needed(job))
        out.append(f"job {job['ingest_id']}: {len(job['recorded'])} of {len(plan) if plan is not None else '?'} "
                   f"chunks recorded; tasks still needed {[(t, [w for w in held if t in held[w]]) for t in wanted]}")
    return "; ".join(out)


def _usage(quotas: Quotas, tenant: str, days: set[str]) -> dict[str, int]:
    total = {"files": 0, "bytes": 0, "messages": 0}
    for day in days:
        for k, v in quotas.usage(tenant, day).items():
            total[k] += v
    return total


def _quota_problems(usage: dict[str, int], want: dict[str, int], tenant: str) -> list[str]:
    return [f"quota of {tenant}: {k} counted {usage[k]}, want {v} (each counted once)"
            for k, v in want.items() if usage[k] != v]


def _rows(session: Any, tenant: Tenant, columns: tuple[str, ...]) -> list[Any]:
    """Every row of the tenant's table (these columns), read page by page: a single COUNT(*) over
    a few hundred thousand rows times out on a busy node. A timed-out scan is started again."""
    query = SimpleStatement(f'SELECT {", ".join(columns)} FROM "{tenant.namespace}"."{tenant.table_name}"',
                            fetch_size=2000)
    for attempt in range(5):
        try:
            return list(session.execute(query, timeout=120))
        except (ReadTimeout, OperationTimedOut):
            if attempt == 4:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


# -- the test ------------------------------------------------------------------------------------


@dataclass
class Landed:
    """What the platform holds once it is done: rows per key and today's usage, per tenant."""

    files: dict[tuple[Any, ...], tuple[Any, ...]]
    stream: dict[tuple[Any, ...], tuple[Any, ...]]
    file_usage: dict[str, int]
    stream_usage: dict[str, int]


def _wait_recovered(session: Any, pf: Platform, ps: Platform, files: Sent, stream: Sent,
                    last_kill: float) -> dict[str, float]:
    """Seconds after the last kill until each part had landed: "stream" (as many keys as were sent),
    "files" (every file a receipt, as many keys as were sent), "all". A part missing at the deadline
    is missing from the result."""
    deadline = last_kill + RECOVERY_DEADLINE_S
    checks: dict[str, Callable[[], bool]] = {
        "stream": lambda: len(_rows(session, ps.tenant, ("id",))) >= len(stream.rows),
        "files": lambda: (all(_receipts(pf, name) for name in files.files)
                          and len(_rows(session, pf.tenant, ("id",))) >= len(files.rows)),
    }
    landed: dict[str, float] = {}
    while time.monotonic() < deadline and len(landed) < len(checks):
        for part, check in checks.items():
            if part not in landed and check():
                landed[part] = round(time.monotonic() - last_kill, 1)
        time.sleep(0 if len(landed) == len(checks) else 5)
    if len(landed) == len(checks):
        landed["all"] = max(landed.values())
    return landed


def _landed(session: Any, quotas: Quotas, pf: Platform, ps: Platform, days: set[str]) -> Landed:
    time.sleep(2)  # anything doubled or late would show now
    return Landed(
        files={(r.subreddit, r.id, r.author): (r.body,)
               for r in _rows(session, pf.tenant, ("subreddit", "id", "author", "body"))},
        stream={(r.subreddit, r.id, r.ups): (r.author, r.score)
                for r in _rows(session, ps.tenant, ("subreddit", "id", "ups", "author", "score"))},
        file_usage=_usage(quotas, pf.tenant.name, days), stream_usage=_usage(quotas, ps.tenant.name, days))


def _problems(client: redis.Redis, pf: Platform, ps: Platform, files: Sent, stream: Sent, sender: Sender,
              landed: Landed) -> list[str]:
    problems = [f"{p.tenant.name} {name} is not running after its restart"
                for p in (pf, ps) for name, alive in p.alive().items() if not alive]
    if sender.errors or sender.acked != len(stream.messages):
        problems.append(f"stream producer: {sender.errors} errors ({sender.last_error}), "
                        f"{sender.acked} of {len(stream.messages)} acked")
    problems += _file_problems(client, pf, files)
    problems += _row_problems(f"files of {pf.tenant.name}", files, landed.files)
    problems += _row_problems(f"messages of {ps.tenant.name}", stream, landed.stream,
                              lambda missing: _lost_messages(client, ps.tenant, missing))
    file_bytes = sum(path.stat().st_size for path, _ in files.files.values())
    problems += _quota_problems(landed.file_usage, {"files": len(files.files), "bytes": file_bytes}, pf.tenant.name)
    problems += _quota_problems(landed.stream_usage, {"messages": len(stream.messages)}, ps.tenant.name)
    return problems


@pytest.mark.timeout(1200)
def test_sigkills_for_a_minute_lose_and_double_nothing(make_tenant: Any, settings: Settings, cassandra_session: Any,
                                                       redis_client: Any, tmp_path: Path) -> None:
    filer, streamer = make_tenant(like="tenant2"), make_tenant(like="tenant1")
    topics.ensure(settings, [streamer])
    files, stream = _files(filer, tmp_path), _messages(streamer)
    days = {_today()}
    pf = Platform(settings, filer, tmp_path / "home-files")
    ps = Platform(settings, streamer, tmp_path / "home-stream")
    targets = [Target(f"worker pool of {filer.name} (files)", pf, "worker"),
               Target(f"worker pool of {streamer.name} (stream)", ps, "worker"),
               Target("bridge", ps, "bridge"), Target("watcher", pf, "watcher")]
    to_stage = list(files.files.items())
    sender = Sender(settings, streamer, stream.messages)

    def stage_next() -> bool:
        if not to_stage:
            return False
        name, (path, _) = to_stage.pop(0)
        pf.stage(path, name)
        return True

    try:
        pf.start()
        ps.start_worker()
        ps.start_bridge()
        sender.start()
        chaos_started = time.monotonic()
        last_kill = _run_chaos(targets, stage_next, random.Random(SEED))
        sender.join(timeout=600)
        recovery = _wait_recovered(cassandra_session, pf, ps, files, stream, last_kill)
        days.add(_today())
        landed = _landed(cassandra_session, Quotas(redis_client), pf, ps, days)
        report = {
            "chaos_seconds": round(last_kill - chaos_started, 1),
            "kills": {t.label: t.kills for t in targets}, "kills_total": sum(t.kills for t in targets),
            "recovered": "all" in recovery,
            "recovery_seconds_after_last_kill": recovery,
            "visibility_timeout_s": settings.visibility_timeout, "stall_seconds": settings.stall_seconds,
            "files": len(files.files), "file_bytes": sum(p.stat().st_size for p, _ in files.files.values()),
            "messages_sent": len(stream.messages), "messages_acked": sender.acked,
            "send_seconds": round(sender.seconds, 1),
            "send_rate_msg_s": round(len(stream.messages) / sender.seconds) if sender.seconds else None,
            "keys_sent": {"files": len(files.rows), "stream": len(stream.rows)},
            "rows_checked": {"files": len(landed.files), "stream": len(landed.stream)},
            "usage": {"files": landed.file_usage, "stream": landed.stream_usage},
        }
        (tmp_path / "chaos.json").write_text(json.dumps(report, indent=2))
        print("chaos:", json.dumps(report, indent=2))
        problems = _problems(redis_client, pf, ps, files, stream, sender, landed)
        if "all" not in recovery:
            problems.insert(0, f"not recovered {RECOVERY_DEADLINE_S:.0f} s after the last kill (landed: {recovery}; "
                               f"visibility timeout {settings.visibility_timeout} s)")
        assert not problems, "\n".join(problems) + f"\nreport: {json.dumps(report)}\nlogs:\n{pf.logs()}\n{ps.logs()}"
    finally:
        pf.stop()
        ps.stop()
