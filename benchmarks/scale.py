"""The scaling benchmark: rows/s as a tenant's worker processes go 1 -> 2 -> 4, and messages/s as its
partitions and bridges go 1 -> 3, with the CPU each component spent per row or message.

    mysimbdp bench scale [--workers 1,2,4] [--bridges 1,3] [--mb 4] [--messages 20000] [--quick]
    python -m benchmarks.scale [same options]

Batch series: for each pool size, a fresh tenant shaped like tenant2 and a private platform (watcher
and pool, real processes) ingest one CSV file of ``--mb`` MB, cut into chunks so every process has
work; the span runs from the rename into staging to the receipt's ``finished_at``. Stream series:
for each count N, a fresh tenant shaped like tenant1 whose topic has N partitions, N bridges in its
consumer group and a pool of ``--stream-workers``; ``--messages`` messages are produced, and the
span runs from the first send to the group's lag reaching 0 (every message written or refused).

CPU: user + system seconds of each role (pool with its children, watcher, bridges, this process
as the producer, and the Cassandra, Kafka and Redis listening on the configured addresses), per row
or message, and the machine's busy cores. Throughput stops growing where the busy cores reach the
machine's count: the CPU per row then says what a larger machine needs (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from kafka import KafkaProducer

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.security import tls
from mysimbdp_tasks.services import topics
from producers.generate import generate
from producers.stream import encode, key_for

from . import cases, harness, stream_cpu
from .errors import BenchmarkError
from .resources import service_pids
from .scale_plot import render, table
from .stream_platform import Backlog, StreamPlatform, count_rows

RESULTS = harness.ROOT / "benchmarks" / "results"
CHUNKS_PER_FILE = 8  # enough chunks that 4 processes all have work


@dataclass(frozen=True)
class Options:
    workers: tuple[int, ...] = (1, 2, 4)
    bridges: tuple[int, ...] = (1, 3)
    mb: float = 4.0
    messages: int = 20_000
    stream_workers: int = 2
    json_out: Path = RESULTS / "scale.json"
    plot_out: Path | None = RESULTS / "scale.png"
    note: str = ""
    workdir: Path | None = None


def parse_options(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="mysimbdp bench scale", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=harness.positive_ints, default=Options.workers, help="pool sizes (batch)")
    p.add_argument("--bridges", type=harness.positive_ints, default=Options.bridges,
                   help="partitions = bridges (stream)")
    p.add_argument("--mb", type=float, default=None, help="size of the batch file in MB (4)")
    p.add_argument("--messages", type=int, default=None, help="messages per stream case (20000)")
    p.add_argument("--stream-workers", type=int, default=Options.stream_workers, help="pool size of the stream cases")
    p.add_argument("--quick", action="store_true", help="1 MB and 4,000 messages: a smoke run")
    p.add_argument("--note", default="", help="a remark kept in the JSON (e.g. the machine was shared)")
    p.add_argument("--json-out", "--json", dest="json_out", type=Path, default=Options.json_out)
    p.add_argument("--plot", dest="plot_out", type=Path, default=Options.plot_out)
    p.add_argument("--no-plot", dest="plot_out", action="store_const", const=None)
    p.add_argument("--workdir", type=Path, default=None, help="where the run makes its folder (removed after)")
    a = p.parse_args(argv)
    mb = a.mb if a.mb is not None else (1.0 if a.quick else Options.mb)
    messages = a.messages if a.messages is not None else (4_000 if a.quick else Options.messages)
    if mb <= 0 or messages < 1 or a.stream_workers < 1:
        p.error("--mb, --messages and --stream-workers must be positive")
    return Options(a.workers, a.bridges, mb, messages, a.stream_workers, a.json_out, a.plot_out, a.note, a.workdir)


def _roles(settings: Settings, own: dict[str, int]) -> dict[str, stream_cpu.Role]:
    roles = {name: stream_cpu.Role(pid, family=name.startswith("workers")) for name, pid in own.items()}
    roles.update({name: stream_cpu.Role(pid, False) for name, pid in service_pids(settings).items() if pid})
    return roles


def _cpu(before: stream_cpu.Snapshot, after: stream_cpu.Snapshot, units: int) -> dict[str, Any]:
    wall = after.at - before.at
    return {"cpu_us_per_unit": stream_cpu.per_message(before, after, units),
            "busy_cores": round((after.busy - before.busy) / wall, 2) if wall > 0 else 0.0}


def batch_case(settings: Settings, client: Any, session: Session, workdir: Path, workers: int,
               options: Options) -> dict[str, Any]:
    tenant = harness.fresh_tenant("tenant2", "bscale", overrides={"max_workers": max(4, workers)})
    harness.provision(session, settings, tenant)
    harness.register(client, tenant)
    chunk_mb = max(0.05, options.mb / CHUNKS_PER_FILE)
    src = generate("tenant2", int(options.mb * 1024 * 1024), workdir / "data" / f"scale-{options.mb}.csv", seed=7)
    empty = workdir / "data" / "empty.csv"  # a header and no rows: lands nothing (see cases.warm_up)
    empty.write_bytes(src.path.read_bytes().split(b"\n", 1)[0] + b"\n")
    try:
        with harness.Platform(settings, tenant, workdir / f"batch-{workers}", concurrency=workers,
                              env={"MYSIMBDP_CHUNK_MB": str(chunk_mb)}) as p:
            cases.warm_up(p, empty, ".csv")  # each pool process opens its Cassandra session first
            time.sleep(1.0)  # the watcher's claim holds back its next events briefly (cases.warm_up)
            roles = _roles(settings, {"workers": p.worker_pid, "watcher": p.procs["watcher"].pid})
            before = stream_cpu.snapshot(roles)
            renamed_at = p.stage(src.path, f"{tenant.name}-timed.csv")
            receipt = p.wait_receipt(f"{tenant.name}-timed.csv", timeout=1800)
            after = stream_cpu.snapshot(roles)
        if receipt.status != "done":
            raise BenchmarkError(f"batch case {workers}: the file ended {receipt.status}: {receipt.data}")
        rows = int(receipt.data["rows_ok"])
        seconds = float(receipt.data["finished_at"]) - renamed_at
        landed = count_rows(session, tenant)  # the warm-up files have no rows
        if landed != src.distinct_keys:
            raise BenchmarkError(f"batch case {workers}: {landed} rows in the table, {src.distinct_keys} distinct keys")
        return {"series": "batch", "workers": workers, "rows": rows, "rows_in_cassandra": landed,
                "mb": options.mb, "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds, 1), "chunks": receipt.data.get("chunks"),
                **_cpu(before, after, rows)}
    finally:
        harness.discard(client, session, tenant)


def _produce(settings: Settings, tenant: Tenant, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=20,
                             batch_size=256 * 1024, **tls.kafka_options(settings, "platform:admin"))
    base = {"tenant": tenant.name, "created_utc": 1430458939, "author": "a", "score": 1}
    try:
        for i in range(n):
            msg = {**base, "subreddit": f"s{i % 97}", "id": f"m{i}", "ups": i}
            producer.send(tenant.ingest_topic, key=key_for(msg), value=encode(msg))
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)


def stream_case(settings: Settings, client: Any, session: Session, workdir: Path, bridges: int,
                options: Options) -> dict[str, Any]:
    tenant = harness.fresh_tenant("tenant1", "bscale", overrides={"partitions": bridges})
    harness.provision(session, settings, tenant)
    harness.register(client, tenant)
    topics.ensure(settings, [tenant])
    backlog = Backlog(settings, [tenant])
    try:
        with StreamPlatform(settings, tenant, workdir / f"stream-{bridges}", options.stream_workers, bridges) as p:
            own = {("workers" if name == "worker" else name): pid for name, pid in p.pids().items()}
            roles = _roles(settings, {**own, "producer": os.getpid()})
            before = stream_cpu.snapshot(roles)
            _produce(settings, tenant, options.messages)
            deadline = time.monotonic() + 1800
            while backlog.lag(tenant) > 0:
                p.check_alive()
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"stream case {bridges}: lag {backlog.lag(tenant)} after 1800 s")
                time.sleep(0.2)
            after = stream_cpu.snapshot(roles)
        landed = count_rows(session, tenant)
        if landed != options.messages:
            raise BenchmarkError(f"stream case {bridges}: {landed} rows of {options.messages} messages")
        seconds = after.at - before.at
        return {"series": "stream", "bridges": bridges, "partitions": bridges, "workers": options.stream_workers,
                "messages": options.messages, "rows_in_cassandra": landed, "seconds": round(seconds, 2),
                "msgs_per_s": round(options.messages / seconds, 1), **_cpu(before, after, options.messages)}
    finally:
        backlog.close()
        harness.discard(client, session, tenant)


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    client, cluster, session = harness.connect(settings)
    workdir = harness.work_folder(options.workdir, "bench-scale-")
    cases = []
    try:
        for n in options.workers:
            cases.append(batch_case(settings, client, session, workdir, n, options))
            print(f"batch, {n} worker process(es): {cases[-1]['rows_per_s']:,.0f} rows/s", flush=True)
        for n in options.bridges:
            cases.append(stream_case(settings, client, session, workdir, n, options))
            print(f"stream, {n} partition(s) and bridge(s): {cases[-1]['msgs_per_s']:,.0f} msgs/s", flush=True)
    finally:
        cluster.shutdown()
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
    doc = {**harness.run_meta(options, started, load_before), "note": options.note, "cases": cases,
           "units": "cpu_us_per_unit: CPU microseconds per row (batch) or message (stream), by role; "
                    "busy_cores: the machine's non-idle CPU seconds per second over the span (anyone's)"}
    best = max(cases, key=lambda c: c.get("rows_per_s", 0.0))
    summary = (f"{os.cpu_count()} cores; batch peaks at {best.get('rows_per_s', 0):,.0f} rows/s with "
               f"{best.get('workers')} process(es), {best.get('busy_cores')} cores busy")
    harness.publish(doc, table(cases), summary, options.json_out, options.plot_out, render)
    return 0


if __name__ == "__main__":
    harness.run_cli(main)
