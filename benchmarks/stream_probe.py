"""Where a bridge's time goes: one tenant's bridge loop run in this process under cProfile.

    python -m benchmarks.stream_probe [--like tenant2] [--rate 2500] [--seconds 15]
                                      [--max-messages 2000] [--max-wait-ms 60] [--top 30]

A fresh tenant (registered, with its topics, but no worker and no keyspace) gets ``--rate`` messages per second for
``--seconds`` from a producer process, while this process runs the real ``Bridge`` with the real
Celery sender until it has bridged them all. It prints the CPU time per message and the top of the
profile, then removes the tenant's registry entry, topics, queue and counters (the enqueued tasks are never run).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from kafka.record import util as kafka_record_util

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_WAIT_MS, Settings
from mysimbdp_tasks.security import identities
from mysimbdp_tasks.services import topics
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.services.quotas import Quotas
from mysimbdp_tasks.stream.bridge import Bridge
from mysimbdp_tasks.worker.celery_app import make_app

from . import harness
from .harness import ROOT
from .stream import DATA
from .stream_producer import Command, ProducerProcess, StepSent
from .stream_steps import fresh_stream_tenant, inputs_for

STEADY = "steady state: the messages were waiting"
IDLE = "includes the idle polls before the first and after the last message"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_probe", description=__doc__.split("\n")[0])
    p.add_argument("--like", choices=("tenant1", "tenant2"), default="tenant2")
    p.add_argument("--rate", type=float, default=2500, help="messages per second sent (default 2500)")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--presend", type=int, default=0, metavar="N",
                   help="send N messages as fast as possible before the bridge starts, then time the bridge "
                        "alone until it has bridged them (steady state: no idle polls); --rate and --seconds "
                        "are then ignored")
    p.add_argument("--max-messages", type=int, default=DEFAULT_BATCH_MESSAGES,
                   help=f"the bridge's micro-batch size (default {DEFAULT_BATCH_MESSAGES})")
    p.add_argument("--max-wait-ms", type=float, default=DEFAULT_BATCH_WAIT_MS,
                   help=f"the bridge's micro-batch wait (default {DEFAULT_BATCH_WAIT_MS:g})")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--no-profile", action="store_true", help="only the CPU time per message (no profiler overhead)")
    p.add_argument("--save-profile", type=Path, metavar="FILE", help="also write the raw profile (pstats format)")
    args = p.parse_args(argv)

    settings = Settings.from_env()
    client = redis.Redis.from_url(identities.redis_url(settings))
    tenant = fresh_stream_tenant(args.like, prefix="probe")
    harness.register(client, tenant)  # a bridge stops when its tenant is not active
    topics.ensure(settings, [tenant])
    print(f"tenant {tenant.name} (like {args.like}); kafka-python CRC32C in C: "
          f"{kafka_record_util.crc32c_c is not None}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="mysimbdp-stream-probe-") as tmp:
            producer = ProducerProcess(args.like, tenant.name, settings.kafka_bootstrap_str, Path(tmp),
                                       inputs_for(args.like, DATA), Path(tmp) / "producer.log", ROOT)
            try:
                if args.presend:
                    producer.send(Command(1, 0, None, args.presend, time.time()))
                    sent = producer.result(timeout=600)
                    print(f"pre-sent {sent.acked:,} messages", flush=True)
                else:
                    producer.send(Command(1, args.rate, args.seconds, None, time.time() + 1))
                    sent = None
                # No worker writes these tasks: nothing completes, so the bridge may hold every
                # batch in flight and never looks for lost ones.
                unbounded = dataclasses.replace(settings, stream_max_pending=1_000_000, stream_stall_seconds=1e9)
                bridge = Bridge(unbounded, tenant, Quotas(client), Dispatch(make_app(settings, sent_events=False)),
                                max_messages=args.max_messages, max_wait_s=args.max_wait_ms / 1000)
                expected: list[int] = []
                stop = threading.Event()
                threading.Thread(target=_stop_when_done, args=(producer, args.seconds, bridge, expected, stop, sent),
                                 daemon=True).start()
                # Timed by process CPU, not the wall clock: on a busy machine the shares are then the bridge's own.
                profiler = None if args.no_profile else cProfile.Profile(time.process_time)
                wall, cpu = time.perf_counter(), time.process_time()
                if profiler is None:
                    bridge.run(stop)
                else:
                    profiler.runcall(bridge.run, stop)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            finally:
                producer.close()
    finally:
        harness.discard(client, None, tenant)
        topics.delete_tenant_topics(settings, tenant)
        client.delete(tenant.stream_queue, *client.keys(f"{names.PREFIX}*{tenant.name}*"))
        client.close()
    n = bridge.counts["admitted"]
    print(f"bridged {n:,} of {expected[0] if expected else '?'} messages in {bridge.counts['tasks']} tasks; "
          f"wall {wall:.1f} s, process CPU {cpu:.2f} s = {cpu / max(n, 1) * 1e6:.0f} us per message "
          f"({STEADY if args.presend else IDLE})")
    if profiler is None:
        return 0
    if args.save_profile is not None:
        profiler.dump_stats(args.save_profile)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    return 0


def _stop_when_done(producer: ProducerProcess, seconds: float, bridge: Bridge, expected: list[int],
                    stop: threading.Event, sent: StepSent | None) -> None:
    sent = sent or producer.result(timeout=seconds + 120)
    expected.append(sent.acked)
    deadline = time.monotonic() + 120
    while bridge.counts["admitted"] + bridge.counts["dead"] < sent.acked and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()


if __name__ == "__main__":
    sys.exit(main())
