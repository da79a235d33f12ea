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
from typing import Any

from redis import exceptions as redis_errors

from . import __version__
from .commands import dead, filekeys, files, quality
from .commands.platform import (
    bridge,
    flower,
    manager,
    metrics,
    monitor,
    platform_down,
    platform_up,
    supervise,
    watch,
    worker,
)
from .commands.report import report, when
from .commands.reports import BENCHMARKS, bench, status, summary
from .commands.stack import stack_down, stack_status, stack_up
from .commands.tenants import tenants_apply, tenants_check, tenants_credentials, tenants_list, tenants_remove
from .core import flower as flower_options
from .core.errors import ConfigError, MysimbdpError, SettingsError, Stopping
from .core.settings import (
    DEFAULT_BATCH_IDLE_AFTER_S,
    DEFAULT_BATCH_MESSAGES,
    DEFAULT_BATCH_WAIT_MS,
    DEFAULT_CONCURRENCY,
    DEFAULT_COOLDOWN_S,
    DEFAULT_FLOWER_PORT,
    DEFAULT_IDLE_AFTER_S,
    DEFAULT_STABLE_SECONDS,
    Settings,
    unknown_variables,
)

EXIT_CODES = """exit codes:
  0    done
  1    failed: a service could not be reached, a process did not start, a check found a problem
  2    refused: bad command-line options, a bad MYSIMBDP_* variable or a bad tenant file
  130  interrupted (Ctrl-C)"""


def count(text: str) -> int:
    """An option that counts things: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def positive(text: str) -> float:
    """A duration or a size: a number more than 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number more than 0, got {text!r}")
    return value


def wait_seconds(text: str) -> float:
    """A wait that may be 0 (do not wait)."""
    return 0.0 if text.strip() in ("0", "0.0") else positive(text)


def port(text: str) -> int:
    value = count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


def flower_address(text: str) -> str:
    try:
        return flower_options.address(text, "--address")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--address: ")) from None


def flower_prefix(text: str) -> str:
    try:
        return flower_options.url_prefix(text, "--url-prefix")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--url-prefix: ")) from None


def autoscale(text: str) -> str:
    most, sep, least = text.partition(",")
    try:
        ok = bool(sep) and 1 <= int(least) <= int(most)
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"expected MAX,MIN with 1 <= MIN <= MAX, e.g. 4,1; got {text!r}")
    return text


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mysimbdp", epilog=EXIT_CODES, formatter_class=argparse.RawTextHelpFormatter,
                                     description="Multi-tenant ingestion platform: tenants' files and Kafka "
                                                 "messages into each tenant's own Cassandra keyspace.")
    parser.add_argument("--version", action="version", version=f"mysimbdp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log everything, for debugging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _stack_parsers(sub)
    _tenant_parsers(sub)
    _platform_parsers(sub)
    _process_parsers(sub)
    _report_parsers(sub)
    dead.add_parsers(sub, _json_flag)
    files.add_parsers(sub, _json_flag)
    quality.add_parsers(sub, _json_flag)
    filekeys.add_parsers(sub, _json_flag)
    return parser


def _stack_parsers(sub: Any) -> None:
    stack = sub.add_parser("stack", help="the local Redis, Kafka and Cassandra (for development and tests)"
                           ).add_subparsers(dest="action", required=True, metavar="ACTION")
    p = stack.add_parser("up", help="start the local services; those already running are left as they are")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="redis, kafka or cassandra (default: all)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--secure", action="store_true",
                      help="TLS on every listener, a login per principal and per-tenant authorization; remembered in "
                           "$MYSIMBDP_HOME, so every later command on this home is secure too (the default for a "
                           "new home)")
    mode.add_argument("--plain", action="store_true",
                      help="no TLS and no logins (development only); remembered in $MYSIMBDP_HOME like --secure")
    p.add_argument("--with-prometheus", action="store_true",
                   help="also run Prometheus (Debian's package), scraping the platform's metrics")
    p.add_argument("--nodes", type=int,
                   help="Kafka and Cassandra nodes, one per loopback address (default: as last time, else 1)")
    p.set_defaults(handler=stack_up)
    p = stack.add_parser("down", help="stop the local services")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="redis, kafka or cassandra (default: all)")
    p.add_argument("--wipe", action="store_true", help="also delete their data")
    p.set_defaults(handler=stack_down)
    p = stack.add_parser("status", help="whether each service is up; exits 0 only if all are")
    _json_flag(p)
    p.set_defaults(handler=stack_status)


def _tenant_parsers(sub: Any) -> None:
    ten = sub.add_parser("tenants", help="tenant configuration: check, apply, list, remove, credentials"
                         ).add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ten.add_parser("check", help="validate a tenant file without touching any service")
    p.add_argument("file", type=Path, help="the tenant file (JSON: tenant name -> settings)")
    _json_flag(p)
    p.set_defaults(handler=tenants_check)
    p = ten.add_parser("apply", help="create keyspaces, tables and topics, and turn the tenants' ingestion on")
    p.add_argument("file", type=Path, help="the tenant file (JSON: tenant name -> settings)")
    p.add_argument("--prune", action="store_true", help="turn off tenants that are on but missing from FILE")
    p.add_argument("--dry-run", action="store_true", help="print what would change, and change nothing")
    p.add_argument("--replace", action="store_true",
                   help="take each tenant exactly as FILE gives it; by default batch or stream settings\n"
                        "the file leaves out are kept from what was applied before")
    _json_flag(p)
    p.set_defaults(handler=tenants_apply)
    p = ten.add_parser("credentials", help="what a tenant's clients need to log in (secure mode)")
    p.add_argument("name", help="the tenant's name")
    p.add_argument("--rotate", action="store_true",
                   help="first replace its password, in the secrets store, Redis, Cassandra and Kafka "
                        "(its running pool logs in with the new one: no restart)")
    _json_flag(p)
    p.set_defaults(handler=tenants_credentials)
    p = ten.add_parser("list", help="tenants applied so far, on or off, and whether their tables exist")
    _json_flag(p)
    p.set_defaults(handler=tenants_list)
    p = ten.add_parser("remove", help="stop a tenant's ingestion (its data is kept unless --drop-data)")
    p.add_argument("name", help="the tenant's name")
    p.add_argument("--drop-data", action="store_true", help="also delete its keyspace and topics")
    _json_flag(p)
    p.set_defaults(handler=tenants_remove)


def _platform_parsers(sub: Any) -> None:
    p = sub.add_parser("up", help="start the platform in the background: a supervisor that runs and restarts "
                                  "every process")
    p.add_argument("--config", type=Path, help="apply this tenant file first")
    _pool_options(p)
    _json_flag(p)
    p.set_defaults(handler=platform_up)
    p = sub.add_parser("down", help="stop the supervisor, then the platform's processes")
    _json_flag(p)
    p.set_defaults(handler=platform_down)
    p = sub.add_parser("supervise", help="run and restart the platform's processes in the foreground (`up` runs "
                                         "this in the background)")
    _pool_options(p)
    p.set_defaults(handler=supervise)


def _pool_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrency", type=count, default=DEFAULT_CONCURRENCY,
                   help=f"processes in each tenant's worker pool (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--flower", action="store_true",
                   help="also run Flower, a web page of every tenant's queues, pools and tasks (where it\n"
                        f"listens and who may open it: MYSIMBDP_FLOWER_*; default port {DEFAULT_FLOWER_PORT})")
    p.add_argument("--tenant", action="append", help="only this tenant's processes (repeat for more; default all)")


def _process_parsers(sub: Any) -> None:
    p = sub.add_parser("worker", help="run one tenant's worker pool in the foreground")
    p.add_argument("--tenant", required=True, help="the tenant whose files and messages the pool writes")
    p.add_argument("--concurrency", type=count, default=DEFAULT_CONCURRENCY,
                   help=f"processes in the pool (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--autoscale", type=autoscale, metavar="MAX,MIN",
                   help="let the pool grow and shrink between MIN and MAX processes instead")
    p.set_defaults(handler=worker)
    p = sub.add_parser("watch", help="watch the staging folder and admit tenants' files, in the foreground")
    p.add_argument("--stable-seconds", type=positive, default=DEFAULT_STABLE_SECONDS,
                   help="a file whose size stays the same this long counts as complete "
                        f"(default {DEFAULT_STABLE_SECONDS:g})")
    p.set_defaults(handler=watch)
    p = sub.add_parser("bridge", help="move tenants' Kafka messages to their worker pools, in the foreground")
    p.add_argument("--tenant", help="one tenant (default: every tenant with stream settings, one consumer each)")
    p.add_argument("--max-messages", type=count, default=DEFAULT_BATCH_MESSAGES,
                   help=f"most messages handed to a worker at once (default {DEFAULT_BATCH_MESSAGES})")
    p.add_argument("--max-wait-ms", type=positive, default=DEFAULT_BATCH_WAIT_MS,
                   help=f"longest wait, in milliseconds, to gather them (default {DEFAULT_BATCH_WAIT_MS:g})")
    p.set_defaults(handler=bridge)
    p = sub.add_parser("monitor", help="read the stream workers' reports and decide when a pool should grow or "
                                       "shrink, in the foreground")
    p.add_argument("--tenant", action="append", help="only this tenant (repeat for more; default all)")
    p.add_argument("--idle-after", type=positive, default=DEFAULT_IDLE_AFTER_S,
                   help="seconds without messages after which a tenant counts as idle "
                        f"(default {DEFAULT_IDLE_AFTER_S:g})")
    p.add_argument("--batch-idle-after", type=positive, default=DEFAULT_BATCH_IDLE_AFTER_S,
                   help="seconds a tenant's batch queue stays empty after a backlog before its pool shrinks "
                        f"(default {DEFAULT_BATCH_IDLE_AFTER_S:g})")
    p.set_defaults(handler=monitor)
    p = sub.add_parser("manager", help="grow and shrink tenants' worker pools as the monitor decides, in the "
                                       "foreground")
    p.add_argument("--tenant", action="append", help="only this tenant (repeat for more; default all)")
    p.add_argument("--cooldown", type=positive, default=DEFAULT_COOLDOWN_S,
                   help=f"seconds to leave a pool alone after changing it (default {DEFAULT_COOLDOWN_S:g})")
    p.set_defaults(handler=manager)
    p = sub.add_parser("flower", help="Flower, a web page of queues, workers and tasks, in the foreground")
    p.add_argument("--address", type=flower_address,
                   help="the address it listens on (default MYSIMBDP_FLOWER_ADDRESS, or 127.0.0.1); another\n"
                        "than this machine's own needs users (--auth-file or MYSIMBDP_FLOWER_AUTH)")
    p.add_argument("--port", type=port,
                   help=f"the port it listens on (default MYSIMBDP_FLOWER_PORT, or {DEFAULT_FLOWER_PORT})")
    p.add_argument("--url-prefix", type=flower_prefix, metavar="PATH",
                   help="serve it under http://HOST:PORT/PATH/, e.g. behind a reverse proxy\n"
                        "(default MYSIMBDP_FLOWER_URL_PREFIX, or none)")
    p.add_argument("--auth-file", type=Path, metavar="FILE",
                   help="users who may open it: one user:password a line, in a file of mode 0600\n"
                        "(default MYSIMBDP_FLOWER_AUTH, MYSIMBDP_FLOWER_AUTH_FILE, or MYSIMBDP_HOME/flower-auth\n"
                        "if it exists; none: no password)")
    p.set_defaults(handler=flower)
    p = sub.add_parser("metrics", help="serve the platform's Prometheus metrics at MYSIMBDP_METRICS_ADDR, in the "
                                       "foreground (the supervisor serves them itself: this is for processes run "
                                       "without it, e.g. in containers)")
    p.set_defaults(handler=metrics)


def _report_parsers(sub: Any) -> None:
    p = sub.add_parser("status", help="the platform's processes; with --tenant, its use of today's quota and its "
                                      "latest files")
    p.add_argument("--tenant", help="show this tenant's use of today's quota and its latest files")
    _json_flag(p)
    p.add_argument("--latest", type=count, default=10, help="how many of the latest files to show (default 10)")
    p.set_defaults(handler=status)
    p = sub.add_parser("summary", help="per tenant: files accepted and refused, rows landed in Cassandra")
    _json_flag(p)
    p.add_argument("--wait", type=wait_seconds, default=0, metavar="SECONDS",
                   help="first wait up to this long for files and messages still being ingested (default 0)")
    p.set_defaults(handler=summary)
    _tenant_report_parser(sub)
    p = sub.add_parser("bench", help="benchmarks against the real services (see benchmarks/README.md)")
    p.add_argument("kind", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="the benchmark's own options, e.g. --json-out FILE --plot FILE --quick\n"
                        "(mysimbdp bench KIND --help lists them)")
    p.set_defaults(handler=bench)


def _tenant_report_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="a tenant's batch and stream ingestion in one report: files and messages in,\n"
                                      "rows landed, refusals by reason, quota use, latency, throughput over time")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", help="the tenant to report on")
    which.add_argument("--all", action="store_true", help="every applied tenant, side by side")
    p.add_argument("--since", type=when, metavar="WHEN",
                   help="only what happened from then on: a duration back from now (30m, 2h, 1d)\n"
                        "or an ISO time in UTC (2026-12-06T14:00); default: everything recorded")
    p.add_argument("--until", type=when, metavar="WHEN", help="only what happened until then (same forms; default now)")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write the report as one self-contained HTML page "
                                                             "with plots")
    _json_flag(p)
    p.set_defaults(handler=report)


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
    for warning in unknown_variables():
        print(f"warning: {warning}", file=sys.stderr)
    try:
        return int(args.handler(settings, args))
    except Stopping:  # asked to stop while waiting for a service: a clean end
        return 0
    except (ConfigError, SettingsError) as exc:  # a bad tenant file or setting, found once started
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
    except Exception as exc:  # a service away: say which and where, not a traceback
        service = unreachable(exc, settings)
        if service is None:
            raise
        print(f"error: {service} ({type(exc).__name__}: {str(exc)[:300]}); start the local stack with "
              "`mysimbdp stack up` or fix the setting", file=sys.stderr)
        return 1


def unreachable(exc: BaseException, settings: Settings) -> str | None:
    """What a command that met ``exc`` could not reach, naming the setting; None if ``exc`` is not that."""
    from cassandra.cluster import NoHostAvailable
    from kafka import errors as kafka_errors

    # NoBrokersAvailable is gone from newer kafka-python, which raises KafkaTimeoutError instead.
    away = tuple(getattr(kafka_errors, name) for name in ("NoBrokersAvailable", "KafkaConnectionError",
                                                          "KafkaTimeoutError") if hasattr(kafka_errors, name))
    if isinstance(exc, away):
        return f"cannot reach Kafka at {settings.kafka_bootstrap_str} (MYSIMBDP_KAFKA_BOOTSTRAP)"
    if isinstance(exc, NoHostAvailable):
        hosts = ",".join(f"{h}:{p}" for h, p in settings.cassandra_hosts)
        return f"cannot reach Cassandra at {hosts} (MYSIMBDP_CASSANDRA_HOSTS)"
    return None


if __name__ == "__main__":
    sys.exit(main())
