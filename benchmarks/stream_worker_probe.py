"""Where a stream worker's time goes: micro-batches written in this process, as a pool process does it.

    python -m benchmarks.stream_worker_probe [--like tenant2] [--messages 40000] [--batch 500]
                                             [--repeat 3] [--profile] [--top 30]

A fresh tenant (provisioned and registered, like the benchmark's) gets ``--messages`` sample
messages, shaped as its client sends them and cut into micro-batches of ``--batch`` as the bridge
hands them to a task (the column-wise argument of ``stream/wire.py``, JSON-encoded beforehand as
Celery sends it). This process then does, per micro-batch, what a pool process does for the task
``ingest_messages``: it decodes the argument and calls the task's core
(``stream.writer.ingest_messages``) against this stack's Redis, Kafka and Cassandra, with the
metrics in Prometheus' multiprocess mode as in a pool. Celery's own work per task (the broker
round trips, events, the pool's hand-over) is not in it: ``mysimbdp bench stream`` measures the
whole pool.

Per run it prints the CPU time per message in this process (every thread: the driver's event loop
too) and in this stack's Cassandra, checks that every message has its row, and gives Cassandra's CPU
for reading the rows back as ``mysimbdp bench stream`` does after each step. Between runs the
table is emptied, so each run writes the same rows anew. On a busy machine compare CPU per
message, not messages per second. ``--profile`` runs under cProfile timed by process CPU and prints
the top functions (cProfile slows Python code: read its shares, not its times).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
import redis
from kombu.utils.json import dumps, loads

from mysimbdp_tasks.commands import queries as report
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.cql import ident
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.security import identities
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import context, telemetry, topics
from mysimbdp_tasks.stream import writer
from producers.stream import encode, key_for, message_for, records_for

from . import harness
from .probe import my_cassandra
from .stream import DATA
from .stream_platform import write_times
from .stream_steps import fresh_stream_tenant, inputs_for


def task_arguments(tenant: Tenant, like: str, count: int, batch: int, partitions: int = 3) -> list[tuple[str, str]]:
    """(task id, JSON argument) of each micro-batch of ``count`` fresh messages: the bridge's shape,
    the messages spread over ``partitions`` in turn, each micro-batch one run of offsets per partition."""
    samples = [{**message_for(like, r), "tenant": tenant.name} for r in records_for(like, inputs_for(like, DATA))]
    cycle = itertools.cycle(samples)
    out: list[tuple[str, str]] = []
    offsets = [0] * partitions
    for start in range(0, count, batch):
        n = min(batch, count - start)
        values, keys, parts, offs = [], [], [], []
        for seq in range(start, start + n):
            message = next(cycle)
            message = {**message, "id": f"{message['id']}-w{seq}"}
            values.append(encode(message).decode("utf-8"))
            keys.append(key_for(message).decode("latin-1"))
            p = seq % partitions
            parts.append(p)
            offs.append(offsets[p])
            offsets[p] += 1
        first = {p: min(o for q, o in zip(parts, offs, strict=True) if q == p) for p in set(parts)}
        last = {p: max(o for q, o in zip(parts, offs, strict=True) if q == p) for p in set(parts)}
        payload = {"bridged_at": time.time(), "v": values, "k": keys, "p": parts, "o": offs,
                   "ts": [int(time.time() * 1000)] * n, "n": sum(len(v.encode("utf-8")) for v in values)}
        task_id = names.stream_task_id(tenant.name, {p: (first[p], last[p]) for p in first})
        out.append((task_id, dumps(payload)))
    return out


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    t = proc.cpu_times()
    return t.user + t.system


def run_once(tenant: Tenant, tasks: list[tuple[str, str]], profiler: cProfile.Profile | None,
             cassandra: psutil.Process | None) -> tuple[int, float, float, float]:
    """Messages written, wall seconds, CPU seconds here and in Cassandra for one pass over ``tasks``."""
    me = psutil.Process()
    written = 0
    cpu0, cass0, t0 = _cpu(me), _cpu(cassandra), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for task_id, body in tasks:
        written += writer.ingest_messages(tenant.name, loads(body), task_id)
    if profiler is not None:
        profiler.disable()
    return written, time.perf_counter() - t0, _cpu(me) - cpu0, _cpu(cassandra) - cass0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_worker_probe", description=__doc__.split("\n")[0])
    p.add_argument("--like", choices=("tenant1", "tenant2"), default="tenant2")
    p.add_argument("--messages", type=int, default=40_000)
    p.add_argument("--batch", type=int, default=500, help="messages per micro-batch (the bridge's default: 500)")
    p.add_argument("--repeat", type=int, default=3, help="passes over the same messages (default 3)")
    p.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)

    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="mysimbdp-worker-probe-") as tmp:
        telemetry.configure(Path(tmp), "stream-worker-probe")  # metrics as a pool writes them
        context.configure(settings)
        client = redis.Redis.from_url(identities.redis_url(settings))
        cluster, session = db.connect(settings, request_timeout=120)
        tenant = fresh_stream_tenant(args.like, prefix="probe")
        harness.provision(session, settings, tenant)
        harness.register(client, tenant)
        topics.ensure_platform(settings)  # the reports topic the workers' windows go to
        topics.ensure(settings, [tenant])  # and its dead-letter topic
        try:
            tasks = task_arguments(tenant, args.like, args.messages, args.batch)
            print(f"tenant {tenant.name} (like {args.like}): {args.messages:,} messages in {len(tasks)} "
                  f"micro-batches of {args.batch}", flush=True)
            cassandra = my_cassandra(settings)
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            for run in range(1, args.repeat + 1):
                session.execute(f"TRUNCATE {ident(tenant.namespace)}.{ident(tenant.table_name)}", timeout=120)
                written, wall, cpu, cass = run_once(tenant, tasks, profiler, cassandra)
                counted = report.rows_in_table(session, tenant)
                cass0 = _cpu(cassandra)
                write_times(session, tenant, 0)  # the scan ``bench stream`` makes to read a step's rows back
                read_back = _cpu(cassandra) - cass0
                print(f"run {run}: {written:,} written in {wall:.2f} s ({written / wall:,.0f} msg/s); CPU "
                      f"{cpu / written * 1e6:.1f} us/msg here + {cass / written * 1e6:.1f} us/msg in Cassandra; "
                      f"reading the rows back: {read_back / written * 1e6:.1f} us/row in Cassandra", flush=True)
                if written != args.messages or counted != args.messages:
                    print(f"error: {written:,} written and {counted:,} rows in the table, {args.messages:,} sent",
                          file=sys.stderr)
                    return 1
            if profiler is not None:
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(args.top)
                stats.sort_stats("cumulative").print_stats(args.top)
                print(out.getvalue())
        finally:
            writer.flush_all()  # the open metrics window, while the tenant is still registered
            harness.discard(client, session, tenant)
            client.delete(*client.keys(f"{names.PREFIX}*{tenant.name}*") or [b"-"])
            topics.delete_tenant_topics(settings, tenant)
            context.close()
            cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
