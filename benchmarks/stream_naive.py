"""The naive stream consumer of the original design, to compare the pipeline with.

    python -m benchmarks.stream_naive --tenant-json JSON [--tenant-json JSON] --group G
                                      [--max-messages N] [--max-seconds S]

One ``KafkaConsumer`` on the tenants' ``<tenant>.ingest`` topics with auto-commit, and for each
message: decode the JSON, convert it to the table's types (the platform's own converter) and one
synchronous prepared ``session.execute(insert, row)``. It stops after ``N`` messages or ``S``
seconds from the first message, whichever comes first, and prints one JSON line: messages, seconds
(first message received to last insert acknowledged), service time per message (p50, p99, ms) and
what stopped it, and its own CPU per message (decode, convert, insert, and the consumer). The session
is connected and the statements prepared before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from cassandra import ConsistencyLevel
from kafka import KafkaConsumer

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import tls
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.sink import insert_cql

from .stream_results import percentile

POLL_MS = 500
IDLE_STOP_S = 10.0  # nothing more to read after the first message: the pre-sent messages ran out
FIRST_MESSAGE_S = 60.0  # no message at all: no partition assigned, or nothing was pre-sent
CLOSE_MS = 10_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_naive", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant-json", action="append", required=True, help="a tenant as Tenant.to_json() gives it")
    parser.add_argument("--group", required=True, help="consumer group id")
    parser.add_argument("--max-messages", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--first-message-seconds", type=float, default=FIRST_MESSAGE_S,
                        help="give up (exit code 2) if no message came within this long of subscribing")
    args = parser.parse_args(argv)
    found = [next(iter(tenants.parse(json.loads(j), source="--tenant-json").values())) for j in args.tenant_json]
    settings = Settings.from_env()
    cluster, session = db.connect(settings)
    routes = {}
    for t in found:
        insert = session.prepare(insert_cql(t))
        insert.consistency_level = ConsistencyLevel.LOCAL_QUORUM
        routes[t.ingest_topic] = (RowConverter(t.column_types, t.key.columns), insert)
    consumer = KafkaConsumer(*routes, bootstrap_servers=settings.kafka_bootstrap_str, group_id=args.group,
                             enable_auto_commit=True, auto_offset_reset="earliest",
                             **tls.kafka_options(settings, "platform:bridge"))
    service: list[float] = []
    started = last = cpu_started = cpu = 0.0
    stopped_by = "count"
    subscribed = time.perf_counter()
    try:
        while len(service) < args.max_messages:
            polled = consumer.poll(timeout_ms=POLL_MS)
            if not polled:
                if service and time.perf_counter() - last > IDLE_STOP_S:
                    stopped_by = "no more messages"
                    break
                if not service and time.perf_counter() - subscribed > args.first_message_seconds:
                    print(f"the naive consumer (group {args.group}) got no message from {', '.join(routes)} within "
                          f"{args.first_message_seconds:g} s (partitions assigned: "
                          f"{sorted(str(tp) for tp in consumer.assignment()) or 'none'})", file=sys.stderr)
                    return 2
                continue
            for record in (r for batch in polled.values() for r in batch):
                t0 = time.perf_counter()
                if not started:
                    started, cpu_started = t0, time.process_time()
                converter, insert = routes[record.topic]
                session.execute(insert, converter.convert(json.loads(record.value)))
                last = time.perf_counter()
                service.append((last - t0) * 1000)
                if len(service) >= args.max_messages:
                    break
                if last - started >= args.max_seconds:
                    stopped_by = "time"
                    break
            if stopped_by == "time":
                break
        cpu = time.process_time() - cpu_started if service else 0.0
    finally:
        consumer.close(timeout_ms=CLOSE_MS)  # commits what was consumed (auto-commit)
        cluster.shutdown()
    service.sort()
    print(json.dumps({"messages": len(service), "seconds": last - started if service else 0.0,
                      "service_p50_ms": percentile(service, 50), "service_p99_ms": percentile(service, 99),
                      "stopped_by": stopped_by,
                      "cpu_us_per_message": round(cpu / len(service) * 1e6, 1) if service else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
