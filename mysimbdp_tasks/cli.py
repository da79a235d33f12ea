"""The ``mysimbdp`` command: one entry point, one sub-command per part of the platform.

The handlers live in :mod:`mysimbdp_tasks.commands`; this module builds the parser and maps errors
to exit codes and messages.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from redis import exceptions as redis_errors

from .commands.platform import (
    bridge,
    flower,
    manager,
    monitor,
    platform_down,
    platform_up,
    supervise,
    watch,
    worker,
)
from .commands.reports import BENCHMARKS, bench, status, summary
from .commands.stack import stack_down, stack_status, stack_up
from .commands.tenants import tenants_apply, tenants_check, tenants_list, tenants_remove
from .core.errors import ConfigError, MysimbdpError, Stopping
from .core.settings import (
    DEFAULT_BATCH_MESSAGES,
    DEFAULT_BATCH_WAIT_MS,
    DEFAULT_CONCURRENCY,
    DEFAULT_COOLDOWN_S,
    DEFAULT_FLOWER_PORT,
    DEFAULT_IDLE_AFTER_S,
    DEFAULT_STABLE_SECONDS,
    Settings,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mysimbdp", description="Multi-tenant ingestion platform.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the local Redis, Kafka and Cassandra").add_subparsers(
        dest="action", required=True)
    p = stack.add_parser("up", help="start the local services (idempotent)")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="redis, kafka or cassandra (default: all)")
    p.set_defaults(handler=stack_up)
    p = stack.add_parser("down", help="stop the local services")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="redis, kafka or cassandra (default: all)")
    p.add_argument("--wipe", action="store_true", help="also delete their data")
    p.set_defaults(handler=stack_down)
    stack.add_parser("status", help="state of each service; exit 0 only if all are up").set_defaults(
        handler=stack_status)

    ten = sub.add_parser("tenants", help="tenant configuration and provisioning").add_subparsers(
        dest="action", required=True)
    p = ten.add_parser("check", help="validate a tenant file without touching any service")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=tenants_check)
    p = ten.add_parser("apply", help="create keyspaces, tables and topics; activate the tenants")
    p.add_argument("file", type=Path)
    p.add_argument("--prune", action="store_true", help="deactivate active tenants missing from FILE")
    p.set_defaults(handler=tenants_apply)
    p = ten.add_parser("list", help="applied tenants, active or not, and whether provisioned")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=tenants_list)
    p = ten.add_parser("remove", help="stop a tenant's ingestion (data kept unless --drop-data)")
    p.add_argument("name")
    p.add_argument("--drop-data", action="store_true", help="also drop its keyspace and topics")
    p.set_defaults(handler=tenants_remove)

    p = sub.add_parser("up", help="start the supervisor in the background; it runs and restarts the platform's "
                                  "processes")
    p.add_argument("--config", type=Path, help="apply this tenant file first")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help=f"processes per tenant pool (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--flower", action="store_true", help="also run Flower (queues, workers, tasks) on :5555")
    p.add_argument("--tenant", action="append", help="only these tenants' processes (repeatable; default all)")
    p.set_defaults(handler=platform_up)
    sub.add_parser("down", help="stop the supervisor, then the platform processes").set_defaults(
        handler=platform_down)
    p = sub.add_parser("supervise", help="run and restart the platform's processes (foreground; `up` starts it)")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help=f"processes per tenant pool (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--flower", action="store_true", help="also run Flower")
    p.add_argument("--tenant", action="append", help="only these tenants' processes (repeatable; default all)")
    p.set_defaults(handler=supervise)
    p = sub.add_parser("worker", help="run a worker pool dedicated to one tenant (foreground)")
    p.add_argument("--tenant", required=True)
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    p.add_argument("--autoscale", help="MAX,MIN processes instead of a fixed concurrency")
    p.set_defaults(handler=worker)
    p = sub.add_parser("watch", help="watch the staging folder and admit files (foreground)")
    p.add_argument("--stable-seconds", type=float, default=DEFAULT_STABLE_SECONDS,
                   help="a file whose size stays the same this long counts as complete "
                        f"(default {DEFAULT_STABLE_SECONDS:g})")
    p.set_defaults(handler=watch)
    p = sub.add_parser("bridge", help="bridge tenants' Kafka topics to their stream queues (foreground)")
    p.add_argument("--tenant", help="one tenant (default: every active stream tenant, one consumer each)")
    p.add_argument("--max-messages", type=int, default=DEFAULT_BATCH_MESSAGES,
                   help=f"largest micro-batch (default {DEFAULT_BATCH_MESSAGES})")
    p.add_argument("--max-wait-ms", type=float, default=DEFAULT_BATCH_WAIT_MS,
                   help=f"longest wait to fill a micro-batch (default {DEFAULT_BATCH_WAIT_MS:g})")
    p.set_defaults(handler=bridge)
    p = sub.add_parser("monitor", help="streamingestmonitor: reports in, scaling decisions out (foreground)")
    p.add_argument("--tenant", action="append", help="only these tenants (repeatable; default all)")
    p.add_argument("--idle-after", type=float, default=DEFAULT_IDLE_AFTER_S,
                   help=f"seconds without messages that count as idle (default {DEFAULT_IDLE_AFTER_S:g})")
    p.set_defaults(handler=monitor)
    p = sub.add_parser("manager", help="streamingestmanager: grow and shrink tenants' pools (foreground)")
    p.add_argument("--tenant", action="append", help="only these tenants (repeatable; default all)")
    p.add_argument("--cooldown", type=float, default=DEFAULT_COOLDOWN_S,
                   help=f"seconds between two changes of a pool (default {DEFAULT_COOLDOWN_S:g})")
    p.set_defaults(handler=manager)
    p = sub.add_parser("flower", help="Flower: queues, workers and tasks in a browser (foreground)")
    p.add_argument("--port", type=int, default=DEFAULT_FLOWER_PORT)
    p.set_defaults(handler=flower)
    p = sub.add_parser("status", help="the platform's processes; with --tenant, its usage today and latest files")
    p.add_argument("--tenant", help="a tenant's usage against its limits and its latest files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--latest", type=int, default=10, help="how many latest files to show")
    p.set_defaults(handler=status)
    p = sub.add_parser("summary", help="per tenant: files accepted and refused, rows landed in Cassandra")
    p.add_argument("--json", action="store_true")
    p.add_argument("--wait", type=float, default=0, help="first wait up to this many seconds for pending files")
    p.set_defaults(handler=summary)
    p = sub.add_parser("bench", help="benchmarks against the real services (see benchmarks/README.md)")
    p.add_argument("kind", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="the benchmark's own options, e.g. --json FILE --plot FILE --sizes 1,10,50 --quick "
                        "(mysimbdp bench KIND --help lists them)")
    p.set_defaults(handler=bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.verbose:
        # The driver logs every failed connection attempt with a traceback; our errors say it once.
        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
        logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        settings = Settings.from_env()
    except MysimbdpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(settings, args))
    except Stopping:  # asked to stop while waiting for a service: a clean end
        return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MysimbdpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except redis_errors.ConnectionError as exc:
        print(f"error: cannot reach Redis at {settings.redis_url} ({exc}); start the local stack with "
              "`mysimbdp stack up` or set MYSIMBDP_REDIS_URL", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
