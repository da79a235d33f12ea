"""The measured parts of the stream benchmark: rate steps through a private platform, and the baseline.

:class:`Rig` owns everything a run starts: two fresh tenants shaped like tenant1 and tenant2 (own
keyspaces, topics and a daily quota far above what a run sends), each with its worker pool and
bridge as real processes, and one producer process per tenant. :meth:`Rig.step` sends for both
tenants at once, half the offered rate each, waits until every acknowledged message is in Cassandra
(or the drain timeout), and measures from each row's WRITETIME and its message's CreateTime.
:func:`baseline` runs the naive consumer on pre-sent messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from cassandra.cluster import Session

from mysimbdp_tasks.core.cql import ident
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import topics
from mysimbdp_tasks.services.provisioning import STREAM_METRICS

from . import harness, stream_cpu
from .errors import PlatformError
from .stream_platform import Backlog, StreamPlatform, count_rows, write_times
from .stream_producer import KINDS, Command, ProducerProcess, StepSent, merge, read_times
from .stream_results import Landed, Naive, Sent, Step, percentile, step_result

SHAPES = ("tenant1", "tenant2")
INPUT_GLOBS = {"tenant1": "*.json", "tenant2": "*.csv"}
QUOTA = 1_000_000_000  # messages per day: never the limit in a benchmark
# One pre-built producer per tenant, as one client per tenant would send; kafka-python's needs two to
# keep up with more than about 5,000 msg/s each.
DEFAULT_PRODUCERS = {"prebuilt": 1, "kafka-python": 2}
START_DELAY_S = 0.5  # every producer starts at one instant this far ahead, once all are prepared
NAIVE_GRACE_S = 120.0  # the naive consumer's connect, first-message wait (60 s at most) and close, past its budget
PREPARE_TIMEOUT_S = 300.0  # building a long step's record batches takes seconds


@dataclass(frozen=True)
class RigOptions:
    concurrency: int = 2
    bridge_args: tuple[str, ...] = ()
    drain_timeout: float = 120.0
    keep: bool = False
    producers: int | None = None  # producer processes per tenant (None: DEFAULT_PRODUCERS of the kind)
    bridges: int = 1  # bridge processes per tenant, in its one consumer group
    partitions: int | None = None  # of each tenant's topic (None: the shipped tenant's)
    kinds: tuple[str, ...] = KINDS[:1]  # producer kinds (stream_producer.KINDS): a set of processes each
    tick_ms: float | None = None  # how often the pre-built producers send what is due (None: the client's linger)

    def producers_for(self, kind: str) -> int:
        return self.producers or DEFAULT_PRODUCERS[kind]


def fresh_stream_tenant(like: str, prefix: str = "bench", partitions: int | None = None) -> Tenant:
    """The harness's fresh tenant, with a daily message quota no benchmark reaches (and ``partitions``)."""
    overrides: dict[str, Any] = {"max_messages_per_day": QUOTA}
    if partitions is not None:
        overrides["partitions"] = partitions
    return harness.fresh_tenant(like, prefix, overrides=overrides)


def inputs_for(like: str, data: Path) -> list[Path]:
    found = sorted(data.glob(INPUT_GLOBS[like]))
    if not found:
        raise PlatformError(f"no {INPUT_GLOBS[like]} samples in {data} for {like} (set MYSIMBDP_SAMPLES)")
    return found


class Rig:
    def __init__(self, settings: Settings, client: redis.Redis, session: Session, workdir: Path, data: Path,
                 options: RigOptions, echo: Callable[[str], None]) -> None:
        self.settings, self.redis, self.session = settings, client, session
        self.workdir, self.data, self.options, self.echo = workdir, data, options, echo
        self.tenants: list[Tenant] = []
        self.platforms: list[StreamPlatform] = []
        self.producers: dict[str, list[ProducerProcess]] = {}
        self.backlog: Backlog | None = None

    # -- set-up and tear-down ----------------------------------------------------------------
    def start(self) -> Rig:
        for like in SHAPES:
            tenant = fresh_stream_tenant(like, partitions=self.options.partitions)
            self.tenants.append(tenant)
            harness.provision(self.session, self.settings, tenant)
            harness.register(self.redis, tenant)
        topics.ensure(self.settings, self.tenants)
        for tenant in self.tenants:
            platform = StreamPlatform(self.settings, tenant, self.workdir / f"home-{tenant.name}",
                                      self.options.concurrency, self.options.bridges)
            self.platforms.append(platform)
            platform.launch(self.options.bridge_args)
        for platform in self.platforms:
            platform.wait_started()
        for kind in self.options.kinds:
            self.producers[kind] = [self._producer(like, t, i, kind)
                                    for like, t in zip(SHAPES, self.tenants, strict=True)
                                    for i in range(self.options.producers_for(kind))]
        self.backlog = Backlog(self.settings, self.tenants)
        shown = ", ".join(f"{t.name} (like {like})" for like, t in zip(SHAPES, self.tenants, strict=True))
        kinds = ", ".join(f"{self.options.producers_for(k)} {k}" for k in self.options.kinds)
        self.echo(f"tenants {shown}: worker pools of {self.options.concurrency}, {self.options.bridges} bridge(s) "
                  f"and producer process(es) {kinds} each")
        return self

    def _producer(self, like: str, tenant: Tenant, index: int, kind: str) -> ProducerProcess:
        out = self.workdir / "times"
        out.mkdir(parents=True, exist_ok=True)
        return ProducerProcess(like, tenant.name, self.settings.kafka_bootstrap_str, out,
                               inputs_for(like, self.data),
                               self.workdir / f"producer-{tenant.name}-{index}-{kind}.log", harness.ROOT,
                               index=index, of=self.options.producers_for(kind), kind=kind,
                               tick_ms=self.options.tick_ms)

    def stop(self) -> None:
        for producers in self.producers.values():
            for producer in producers:
                producer.close()
        for platform in self.platforms:
            platform.stop()
        if self.backlog is not None:
            self.backlog.close()
        for tenant in self.tenants:
            if self.options.keep:  # data and topics stay; no platform process may serve the tenant later
                harness.discard(self.redis, None, tenant)
            else:
                forget(self.settings, self.redis, self.session, tenant)

    def roles(self) -> dict[str, stream_cpu.Role]:
        roles = {name: stream_cpu.Role(pid, False) for name, pid in stream_cpu.service_pids(self.settings).items()}
        for platform in self.platforms:
            for name, pid in platform.pids().items():
                kind = "workers" if name == "worker" else name  # "bridge", "bridge.2", ...
                roles[f"{kind} {platform.tenant.name}"] = stream_cpu.Role(pid, kind == "workers")
        for kind, producers in self.producers.items():
            for i, producer in enumerate(producers):
                roles[f"producer {producer.tenant}.{i % self.options.producers_for(kind) + 1} {kind}"] = \
                    stream_cpu.Role(producer.pid, False)
        roles["benchmark"] = stream_cpu.Role(os.getpid(), False)
        return roles

    # -- one step ----------------------------------------------------------------------------
    def step(self, number: int, offered: float, seconds: float, kind: str | None = None) -> Step:
        """One step at ``offered`` msg/s, sent by the producers of ``kind`` (default: the first)."""
        assert self.backlog is not None
        kind = kind or self.options.kinds[0]
        dead_before = {t.name: self.backlog.dead(t) for t in self.tenants}
        roles = self.roles()
        results, cpu, before = self._send(number, offered, seconds, roles, self.producers[kind])
        times = {r.tenant: read_times(Path(r.times)) for r in results}
        expected = {name: sum(1 for c in created if c >= 0) for name, (created, _) in times.items()}
        found, drain_wait, landed_at = self._drain(number, expected, roles)
        per_message = stream_cpu.per_message(before, landed_at, sum(expected.values()))
        sent, landed, clock = [], [], []
        for r in results:
            created, sent_at = times[r.tenant]
            sent.append(Sent(r.tenant, r.sent, r.acked, r.errors, tuple(float(c) for c in created if c >= 0)))
            pairs = [(float(created[seq]), us / 1000) for seq, us in found[r.tenant].items()
                     if seq < len(created) and created[seq] >= 0]
            dead = self.backlog.dead(self._tenant(r.tenant)) - dead_before[r.tenant]
            landed.append(Landed(r.tenant, dead, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)))
            clock += [c - t * 1000 for c, t in zip(created, sent_at, strict=True) if c >= 0]
        details: dict[str, Any] = {"producer": kind, "cpu_pct_of_one_core": cpu, "cpu_us_per_message": per_message,
                                   "drain_wait_s": round(drain_wait, 2),
                                   "createtime_minus_send_ms": _spread(clock),
                                   "worker_windows": self._worker_windows(results)}
        if any(len(found[n]) < expected[n] for n in expected):
            details["stalled"] = self.waiting()
        return step_result(number, offered, seconds, sent, landed, details)

    def waiting(self) -> dict[str, dict[str, int]]:
        """Per tenant, where undelivered messages wait: in Kafka (not committed by the bridge) or queued."""
        assert self.backlog is not None
        return {t.name: {"not_bridged": self.backlog.lag(t), "queued_tasks": self.backlog.queued(t)}
                for t in self.tenants}

    def tails(self, lines: int = 15) -> str:
        return "\n".join(p.tails(lines) for p in self.platforms)

    def _tenant(self, name: str) -> Tenant:
        return next(t for t in self.tenants if t.name == name)

    def _send(self, number: int, offered: float, seconds: float, roles: dict[str, stream_cpu.Role],
              producers: Sequence[ProducerProcess]) -> tuple[list[StepSent], dict[str, float], stream_cpu.Snapshot]:
        """Every producer prepares the step, then all send from one instant, the offered rate split
        evenly; CPU per role meanwhile. Returns one result per tenant (its producers' merged), the CPU
        shares, and the first snapshot."""
        for producer in producers:
            producer.send(Command(number, offered / len(producers), seconds, None))
        for producer in producers:
            producer.prepared(PREPARE_TIMEOUT_S)
        start_at = time.time() + START_DELAY_S
        for producer in producers:
            producer.go(start_at)
        time.sleep(max(0.0, start_at - time.time()))
        before = stream_cpu.snapshot(roles)
        sent = [p.result(timeout=seconds + 180) for p in producers]
        cpu = stream_cpu.usage(before, stream_cpu.snapshot(roles))
        results = [merge([r for r in sent if r.tenant == t.name], self.workdir / "times" / f"{t.name}-s{number}.times")
                   for t in self.tenants]
        return results, cpu, before

    def _drain(self, step: int, expected: dict[str, int], roles: dict[str, stream_cpu.Role],
               ) -> tuple[dict[str, dict[int, int]], float, stream_cpu.Snapshot]:
        """Each tenant's rows of ``step`` (seq -> WRITETIME µs) once all are in, or at the drain timeout,
        and the CPU snapshot taken just before they were read: the read is a full scan of the table
        (about 6.5 µs of Cassandra's CPU per row, ``stream_worker_probe``), the benchmark's work and not
        the pipeline's."""
        assert self.backlog is not None
        started = time.monotonic()
        deadline = started + self.options.drain_timeout
        found: dict[str, dict[int, int]] = {t.name: {} for t in self.tenants}
        while True:
            for platform in self.platforms:
                platform.check_alive()
            last_chance = time.monotonic() > deadline
            if last_chance or self.backlog.idle():
                landed_at = stream_cpu.snapshot(roles)
                found = {t.name: write_times(self.session, t, step) for t in self.tenants}
                if last_chance or all(len(found[n]) >= expected[n] for n in expected):
                    return found, time.monotonic() - started, landed_at
            time.sleep(0.5)

    def _worker_windows(self, results: Sequence[StepSent]) -> dict[str, Any]:
        """The workers' own latency windows that ended during or shortly after the step (a cross-check:
        they time each message to the end of its task's write, where WRITETIME is its start)."""
        first = min(r.first_send for r in results)
        windows = []
        for tenant in self.tenants:
            rows = self.session.execute(
                "SELECT window_end, messages, avg_ingest_ms, avg_latency_ms, p95_latency_ms "
                f"FROM {ident(tenant.namespace)}.{ident(STREAM_METRICS)}", timeout=60)
            windows += [r for r in rows if r.window_end.timestamp() > first + 1 and r.messages]
        n = sum(r.messages for r in windows)
        if not n:
            return {"windows": 0}
        return {"windows": len(windows), "messages": n,
                "avg_ingest_ms_per_task": round(sum(r.avg_ingest_ms * r.messages for r in windows) / n, 1),
                "avg_latency_ms": round(sum(r.avg_latency_ms * r.messages for r in windows) / n, 1),
                "max_window_p95_latency_ms": round(max(r.p95_latency_ms or 0 for r in windows), 1)}


def _spread(values: Sequence[float]) -> dict[str, float | None] | None:
    if not values:
        return None
    ordered = sorted(values)
    p99 = percentile(ordered, 99)
    return {"min": round(ordered[0], 3), "mean": round(sum(ordered) / len(ordered), 3),
            "p99": None if p99 is None else round(p99, 3), "max": round(ordered[-1], 3)}


def describe(made: Sequence[Tenant]) -> list[dict[str, str]]:
    return [{"tenant": t.name, "like": like, "keyspace": t.namespace, "table": t.table_name}
            for like, t in zip(SHAPES, made, strict=True)]


def forget(settings: Settings, client: redis.Redis | None, session: Session, tenant: Tenant) -> None:
    """Registry entry, keyspace and topics of a benchmark tenant: gone."""
    harness.discard(client, session, tenant)
    topics.delete_tenant_topics(settings, tenant)


# -- the naive baseline --------------------------------------------------------------------------


def baseline(settings: Settings, client: redis.Redis, session: Session, workdir: Path, data: Path,
             messages: int, seconds: float, keep: bool, echo: Callable[[str], None]) -> Naive:
    """Pre-send ``messages`` (half per shape) to two fresh tenants' topics, then consume them naively."""
    made = [fresh_stream_tenant(like) for like in SHAPES]
    try:
        for tenant in made:
            harness.provision(session, settings, tenant)
        topics.ensure(settings, made)
        out = workdir / "times-naive"
        out.mkdir(parents=True, exist_ok=True)
        # Untimed: the pre-built producer unpaced (rate 0), as fast as it goes.
        producers = [ProducerProcess(like, t.name, settings.kafka_bootstrap_str, out, inputs_for(like, data),
                                     workdir / f"producer-{t.name}.log", harness.ROOT)
                     for like, t in zip(SHAPES, made, strict=True)]
        try:
            share = [messages // 2, messages - messages // 2]
            for producer, n in zip(producers, share, strict=True):
                producer.send(Command(0, 0.0, None, n, time.time()))
            sent = [p.result(timeout=600) for p in producers]
        finally:
            for producer in producers:
                producer.close()
        acked = sum(s.acked for s in sent)
        if acked < messages:
            raise PlatformError(f"the naive baseline's pre-send: {acked:,} of {messages:,} messages acknowledged "
                                f"({sum(s.errors for s in sent):,} failed); see {out.parent}/producer-*.log")
        echo(f"  pre-sent {acked:,} messages; consuming them naively ...")
        group = f"mysimbdp.bench.naive.{uuid.uuid4().hex[:8]}"
        argv = [sys.executable, "-m", "benchmarks.stream_naive", "--group", group,
                "--max-messages", str(messages), "--max-seconds", str(seconds)]
        for tenant in made:
            argv += ["--tenant-json", tenant.to_json()]
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=harness.ROOT,
                                  timeout=seconds + NAIVE_GRACE_S)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
            raise PlatformError(f"the naive consumer (group {group}) did not end within {seconds + NAIVE_GRACE_S:g} s; "
                                f"its stderr:\n{err[-3000:]}") from None
        if proc.returncode != 0:
            raise PlatformError(f"the naive consumer failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows = sum(count_rows(session, t) for t in made)
    finally:
        if not keep:
            for tenant in made:
                forget(settings, None, session, tenant)
    return Naive(int(result["messages"]), float(result["seconds"]), rows, result["service_p50_ms"],
                 result["service_p99_ms"], str(result["stopped_by"]),
                 {"tenants": describe(made), "pre_sent": acked, "cpu_us_per_message": result.get("cpu_us_per_message")})
