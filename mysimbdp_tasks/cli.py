"""The ``mysimbdp`` command: one entry point, one sub-command per part of the platform."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from redis import exceptions as redis_errors

from .errors import ConfigError, MysimbdpError
from .settings import Settings

SERVICES = ("redis", "kafka", "cassandra")
Handler = Callable[[Settings, argparse.Namespace], int]


def _echo(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# stack
# --------------------------------------------------------------------------------------------


def stack_up(settings: Settings, args: argparse.Namespace) -> int:
    from . import stack

    stack.up(settings, services=_chosen(args.services), echo=_echo)
    return 0


def _chosen(services: list[str]) -> tuple[str, ...]:
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise MysimbdpError(f"unknown service(s) {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}")
    return tuple(services) or SERVICES


def stack_down(settings: Settings, args: argparse.Namespace) -> int:
    from . import stack

    stack.down(settings, wipe=args.wipe, echo=_echo, services=_chosen(args.services))
    return 0


def stack_status(settings: Settings, args: argparse.Namespace) -> int:
    from . import stack

    states = stack.status(settings)
    for s in states:
        state = "up" if s.running and s.answering else ("running, not answering" if s.running else "down")
        pid = f" pid {s.pid}" if s.pid else ""
        detail = f" ({s.detail})" if s.detail else ""
        print(f"{s.name:<10} {state:<24} {s.endpoint}{pid}{detail}")
    return 0 if stack.all_up(states) else 1


# --------------------------------------------------------------------------------------------
# tenants
# --------------------------------------------------------------------------------------------


def tenants_check(settings: Settings, args: argparse.Namespace) -> int:
    from . import tenants

    found = tenants.load(args.file)
    for t in found.values():
        paths = [p for p, on in (("batch", t.batch), ("stream", t.stream)) if on]
        print(f"{t.name}: ok (keyspace {t.namespace}, table {t.table_name}, key {t.key}, paths: {', '.join(paths)})")
    return 0


def tenants_apply(settings: Settings, args: argparse.Namespace) -> int:
    from . import db, provisioning, tenants, topics
    from .registry import Registry

    found = tenants.load(args.file)
    cluster, session = db.connect(settings)
    try:
        provisioning.apply(session, found.values(), settings.replication, echo=_echo)
    finally:
        cluster.shutdown()
    created = topics.ensure(settings, found.values())
    registry = Registry(_redis(settings))
    for t in found.values():
        registry.save(t)
        print(f"{t.name}: keyspace {t.namespace}, table {t.table_name} key {t.key}: provisioned, active")
    if created:
        print(f"topics created: {', '.join(sorted(created))}")
    stale = sorted(set(registry.active_names()) - set(found))
    for name in stale:
        if args.prune:
            registry.deactivate(name)
            print(f"{name}: not in {args.file}: deactivated (data kept)")
        else:
            print(f"{name}: active but not in {args.file} (use --prune to deactivate it)")
    return 0


def tenants_list(settings: Settings, args: argparse.Namespace) -> int:
    from . import db, provisioning
    from .registry import Registry

    registry = Registry(_redis(settings))
    known = registry.all()
    active = registry.active_names()
    cluster, session = db.connect(settings)
    try:
        rows = [
            {
                "tenant": t.name,
                "active": t.name in active,
                "provisioned": provisioning.provisioned(session, t),
                "keyspace": t.namespace,
                "table": t.table_name,
                "key": str(t.key),
            }
            for t in sorted(known.values(), key=lambda t: t.name)
        ]
    finally:
        cluster.shutdown()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no tenants applied yet (mysimbdp tenants apply FILE)")
    for r in rows:
        print(f"{r['tenant']:<12} {'active' if r['active'] else 'inactive':<9} "
              f"{'provisioned' if r['provisioned'] else 'NOT provisioned':<16} {r['keyspace']}.{r['table']} {r['key']}")
    return 0


def tenants_remove(settings: Settings, args: argparse.Namespace) -> int:
    from . import db, provisioning, topics
    from .registry import Registry

    registry = Registry(_redis(settings))
    known = registry.all()
    if args.name not in known:
        raise MysimbdpError(f"tenant {args.name!r} is not known; known: {', '.join(sorted(known)) or 'none'}")
    registry.deactivate(args.name)
    print(f"{args.name}: deactivated: no new files or messages are admitted")
    if args.drop_data:
        cluster, session = db.connect(settings)
        try:
            provisioning.drop_data(session, known[args.name])
        finally:
            cluster.shutdown()
        topics.delete_tenant_topics(settings, known[args.name])
        registry.forget(args.name)
        print(f"{args.name}: keyspace {known[args.name].namespace} and its topics dropped")
    else:
        print(f"{args.name}: data kept in keyspace {known[args.name].namespace} (use --drop-data to delete it)")
    return 0


# --------------------------------------------------------------------------------------------
# platform processes
# --------------------------------------------------------------------------------------------


def platform_up(settings: Settings, args: argparse.Namespace) -> int:
    from . import processes as platform
    from .registry import Registry

    if args.config:
        tenants_apply(settings, argparse.Namespace(file=args.config, prune=False))
    active = Registry(_redis(settings)).active()
    if not active:
        raise MysimbdpError("no active tenant: run `mysimbdp tenants apply FILE` (or `mysimbdp up --config FILE`)")
    platform.up(settings, active.values(), echo=_echo, concurrency=args.concurrency, flower=args.flower)
    return 0


def platform_down(settings: Settings, args: argparse.Namespace) -> int:
    from . import processes as platform

    platform.down(settings, echo=_echo)
    return 0


def worker(settings: Settings, args: argparse.Namespace) -> int:
    import os

    from .registry import Registry

    tenant = Registry(_redis(settings)).all().get(args.tenant)
    if tenant is None:
        raise MysimbdpError(f"tenant {args.tenant!r} has not been applied (mysimbdp tenants apply FILE)")
    # The pool serves this tenant only: its queues, and its tasks refuse any other tenant's work.
    os.environ["MYSIMBDP_WORKER_TENANT"] = tenant.name
    from .celery_app import app

    argv = ["worker", "-Q", f"{tenant.batch_queue},{tenant.stream_queue}", "-n", f"{tenant.name}@%h",
            "--loglevel", "INFO", "-E", "--without-gossip", "--without-mingle"]
    argv += ["--autoscale", f"{args.autoscale}"] if args.autoscale else ["--concurrency", str(args.concurrency)]
    app.worker_main(argv)
    return 0


def watch(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from .watcher import Watcher, celery_sender

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Watcher(settings, _redis(settings), celery_sender(), stable_seconds=args.stable_seconds).run(stop)
    return 0


def bridge(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from .bridge import Bridge, celery_task_sender
    from .quotas import Quotas
    from .registry import Registry

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    client = _redis(settings)
    active = Registry(client).active()
    chosen = [active[args.tenant]] if args.tenant in active else ([] if args.tenant else list(active.values()))
    chosen = [t for t in chosen if t.stream is not None]
    if not chosen:
        raise MysimbdpError(f"no active stream tenant{' named ' + repr(args.tenant) if args.tenant else ''}; "
                            "apply a tenant with max_messages_per_day")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sender = celery_task_sender()
    bridges = [Bridge(settings, t, Quotas(client), sender, max_messages=args.max_messages,
                      max_wait_s=args.max_wait_ms / 1000) for t in chosen]
    threads = [threading.Thread(target=b.run, args=(stop,), name=f"bridge-{b.tenant.name}") for b in bridges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def monitor(settings: Settings, args: argparse.Namespace) -> int:
    from . import monitor as monitor_mod

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    monitor_mod.run(settings, set(args.tenant) if args.tenant else None, args.idle_after, _stop_event())
    return 0


def manager(settings: Settings, args: argparse.Namespace) -> int:
    from .manager import Manager

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    Manager(settings, set(args.tenant) if args.tenant else None, args.cooldown, not args.no_reconcile).run(
        _stop_event())
    return 0


def flower(settings: Settings, args: argparse.Namespace) -> int:
    from .celery_app import app

    app.start(["flower", f"--port={args.port}", "--address=127.0.0.1"])
    return 0


def _stop_event() -> Any:
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------


def status(settings: Settings, args: argparse.Namespace) -> int:
    from . import report
    from .quotas import Quotas
    from .registry import Registry

    client = _redis(settings)
    registry = Registry(client)
    known = registry.all()
    if args.tenant not in known:
        raise MysimbdpError(f"tenant {args.tenant!r} is not known; known: {', '.join(sorted(known)) or 'none'}")
    tenant = known[args.tenant]
    data: dict[str, Any] = {
        "tenant": tenant.name,
        "active": registry.is_active(tenant.name),
        "usage_today": report.usage(Quotas(client), tenant),
        "files": report.file_outcomes(settings, tenant.name),
        "latest": report.latest_files(settings, tenant.name, args.latest),
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{tenant.name} ({'active' if data['active'] else 'inactive'}), usage today (UTC):")
    for what, u in data["usage_today"].items():
        if isinstance(u, dict):
            print(f"  {what:<9} {u['used']:>12} / {u['limit']}")
    f = data["files"]
    print(f"files: {f['done']} done, {f['failed']} failed, {f['rejected']} rejected, {f['in_progress']} in progress")
    print("latest files:")
    for e in data["latest"]:
        rows = f" rows ok {e['rows_ok']}, refused {e['rows_refused']}" if e["rows_ok"] is not None else ""
        print(f"  {e['time']}  {e['status']:<8} {e['file']}{rows} {e['reason']}")
    return 0


def summary(settings: Settings, args: argparse.Namespace) -> int:
    from . import db, report
    from .quotas import Quotas
    from .registry import Registry

    client = _redis(settings)
    known = Registry(client).all()
    streaming = [t for t in known.values() if t.stream is not None]
    if args.wait and not report.wait_idle(settings, args.wait):
        print(f"warning: files still pending after {args.wait} s", file=sys.stderr)
    if args.wait and streaming and not report.wait_stream_idle(settings, streaming, args.wait):
        print(f"warning: messages still pending after {args.wait} s", file=sys.stderr)
    cluster, session = db.connect(settings)
    try:
        rows = []
        for t in sorted(known.values(), key=lambda t: t.name):
            row = {"tenant": t.name, **report.file_outcomes(settings, t.name),
                   "rows_in_cassandra": report.rows_in_table(session, t), "table": f"{t.namespace}.{t.table_name}"}
            if t.stream is not None:
                row["messages_accepted_today"] = Quotas(client).usage(t.name)["messages"]
                row["dead_letters"] = dict(report.dead_letters(settings, t))
            rows.append(row)
    finally:
        cluster.shutdown()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r["refusal_reasons"].items())) or "none"
        print(f"{r['tenant']} ({r['table']}): {r['rows_in_cassandra']} rows in Cassandra")
        print(f"  batch:  files accepted {r['done']}, failed {r['failed']}, rejected {r['rejected']} "
              f"(reasons: {reasons}); rows landed {r['rows_ok']}, rows refused {r['rows_refused']}")
        if "dead_letters" in r:
            dead = ", ".join(f"{k}: {v}" for k, v in sorted(r["dead_letters"].items())) or "none"
            print(f"  stream: messages accepted today {r['messages_accepted_today']}, "
                  f"dead-lettered {sum(r['dead_letters'].values())} (reasons: {dead})")
    return 0


# --------------------------------------------------------------------------------------------
# benchmarks
# --------------------------------------------------------------------------------------------

# kind -> module of benchmarks/ with main(settings, argv) -> int; each benchmark parses its own options.
BENCHMARKS = {"batch": "benchmarks.batch", "stream": "benchmarks.stream"}


def bench(settings: Settings, args: argparse.Namespace) -> int:
    import importlib

    return int(importlib.import_module(BENCHMARKS[args.kind]).main(settings, args.options))


def _redis(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.redis_url)


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------


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

    p = sub.add_parser("up", help="start the watcher and a worker pool per active tenant in the background")
    p.add_argument("--config", type=Path, help="apply this tenant file first")
    p.add_argument("--concurrency", type=int, default=2, help="processes per tenant pool (default 2)")
    p.add_argument("--flower", action="store_true", help="also run Flower (queues, workers, tasks) on :5555")
    p.set_defaults(handler=platform_up)
    sub.add_parser("down", help="stop the platform processes").set_defaults(handler=platform_down)
    p = sub.add_parser("worker", help="run a worker pool dedicated to one tenant (foreground)")
    p.add_argument("--tenant", required=True)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--autoscale", help="MAX,MIN processes instead of a fixed concurrency")
    p.set_defaults(handler=worker)
    p = sub.add_parser("watch", help="watch the staging folder and admit files (foreground)")
    p.add_argument("--stable-seconds", type=float, default=2.0,
                   help="a file whose size stays the same this long counts as complete (default 2)")
    p.set_defaults(handler=watch)
    p = sub.add_parser("bridge", help="bridge tenants' Kafka topics to their stream queues (foreground)")
    p.add_argument("--tenant", help="one tenant (default: every active stream tenant, one consumer each)")
    p.add_argument("--max-messages", type=int, default=500, help="largest micro-batch (default 500)")
    p.add_argument("--max-wait-ms", type=float, default=100, help="longest wait to fill a micro-batch (default 100)")
    p.set_defaults(handler=bridge)
    p = sub.add_parser("monitor", help="streamingestmonitor: reports in, scaling decisions out (foreground)")
    p.add_argument("--tenant", action="append", help="only these tenants (repeatable; default all)")
    p.add_argument("--idle-after", type=float, default=60.0, help="seconds without messages that count as idle")
    p.set_defaults(handler=monitor)
    p = sub.add_parser("manager", help="streamingestmanager: scale pools, start/stop tenants' ingestion")
    p.add_argument("--tenant", action="append", help="only these tenants (repeatable; default all)")
    p.add_argument("--cooldown", type=float, default=30.0, help="seconds between two changes of a pool")
    p.add_argument("--no-reconcile", action="store_true", help="only scale; start and stop no process")
    p.set_defaults(handler=manager)
    p = sub.add_parser("flower", help="Flower: queues, workers and tasks in a browser (foreground)")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(handler=flower)
    p = sub.add_parser("status", help="a tenant's usage today against its limits, and its latest files")
    p.add_argument("--tenant", required=True)
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
