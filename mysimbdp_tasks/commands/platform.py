"""The platform's processes: `up`, `down`, `supervise`, `worker`, `watch`, `bridge`, `monitor`, `manager`,
`flower`."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..control import processes
from ..core.errors import MysimbdpError
from ..core.settings import Settings
from ..services import telemetry
from .common import echo, redis_client, stop_event

if TYPE_CHECKING:
    from ..services.outages import Waiter

log = logging.getLogger(__name__)


def platform_up(settings: Settings, args: argparse.Namespace) -> int:
    """Start the supervisor; exit 1 if a process it runs has not started (or died at start)."""
    from ..services.registry import Registry

    if args.config:
        from .tenants import tenants_apply

        tenants_apply(settings, argparse.Namespace(file=args.config, prune=False, dry_run=False, replace=False,
                                                   json=False))
    active = Registry(redis_client(settings)).active()
    if args.tenant:
        active = {n: t for n, t in active.items() if n in args.tenant}
    if not active:
        raise MysimbdpError("no active tenant: run `mysimbdp tenants apply FILE` (or `mysimbdp up --config FILE`)"
                            + (f"; --tenant chose {', '.join(args.tenant)}" if args.tenant else ""))
    state = processes.up(settings, active.values(), echo=_quiet if args.json else echo,
                         concurrency=args.concurrency, flower=args.flower, scope=args.tenant)
    wanted = {p.name for p in processes.wanted(active.values(), args.concurrency, args.flower, args.tenant)}
    children = state.get("children", {})
    failed = not_running(wanted, children)
    if args.json:
        print(json.dumps({"supervisor": state.get("pid"), "processes": children, "failed": failed,
                          "metrics": (state.get("metrics") or {}).get("url")}, indent=2))
    elif failed:
        print(f"error: not running after start: {', '.join(failed)} (see their logs in {settings.logs})",
              file=sys.stderr)
    return 1 if failed else 0


def not_running(wanted: set[str], children: dict[str, Any]) -> list[str]:
    """The processes of ``wanted`` the supervisor's state does not show running (never started, or died)."""
    return sorted(n for n in wanted if children.get(n, {}).get("status") != "running")


def _quiet(_: str) -> None:
    pass


def platform_down(settings: Settings, args: argparse.Namespace) -> int:
    lines: list[str] = []
    processes.down(settings, echo=lines.append if args.json else echo)
    if args.json:
        print(json.dumps(dict(line.split(": ", 1) for line in lines if ": " in line), indent=2))
    return 0


def supervise(settings: Settings, args: argparse.Namespace) -> int:
    from ..control.supervisor import Supervisor

    Supervisor(settings, concurrency=args.concurrency, flower=args.flower,
               scope=set(args.tenant) if args.tenant else None).run(stop_event())
    return 0


def waiter(settings: Settings, name: str, stop: threading.Event) -> Waiter:
    """The process's one way of waiting out a service, publishing its waits as process ``name``."""
    from ..core.runstate import ProcessState
    from ..services.outages import Waiter

    return Waiter(name, stop, ProcessState(settings.run, name))


def worker(settings: Settings, args: argparse.Namespace) -> int:
    from ..security.identities import as_tenant
    from ..services import context
    from ..services.registry import Registry
    from ..worker.celery_app import make_app

    if settings.secure:  # the pool logs in to Redis and Cassandra as its tenant, not as the platform
        settings = as_tenant(settings, args.tenant)
    telemetry.configure(settings.run, processes.worker_name(args.tenant))  # before the pool forks
    wait = waiter(settings, processes.worker_name(args.tenant), stop_event())
    tenant = wait.call(lambda: Registry(redis_client(settings)).all().get(args.tenant))
    if tenant is None:
        raise MysimbdpError(f"tenant {args.tenant!r} has not been applied (mysimbdp tenants apply FILE)")
    # The pool serves this tenant only: its queues, and its tasks refuse any other tenant's work.
    # Set before the pool forks: every prefork child inherits this process's context.
    context.configure(settings, own_tenant=tenant.name)
    app = make_app(settings)
    telemetry.pool_size(tenant.name, args.concurrency)

    argv = ["worker", "-Q", f"{tenant.batch_queue},{tenant.stream_queue}", "-n", f"{tenant.name}@{settings.node}",
            "--loglevel", "INFO", "-E", "--without-gossip", "--without-mingle"]
    argv += ["--autoscale", f"{args.autoscale}"] if args.autoscale else ["--concurrency", str(args.concurrency)]
    app.worker_main(argv)
    return 0


def watch(settings: Settings, args: argparse.Namespace) -> int:
    from ..batch import folders
    from ..batch.sweeper import Sweeper
    from ..batch.watcher import Watcher
    from ..services.dispatch import Dispatch
    from ..worker.celery_app import make_app

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    telemetry.configure(settings.run, "watcher")
    stop = stop_event()
    # The sweeper runs beside intake, in its own thread with its own Redis client and Celery app,
    # so however long a sweep of a large backlog takes, staged files are admitted meanwhile.
    processing = folders.Layout(settings.data).folder(folders.PROCESSING).resolve()
    sweeper = Sweeper(redis_client(settings), processing, Dispatch(make_app(settings)), settings.stall_seconds,
                      settings.max_resends)
    sweeping = threading.Thread(target=sweeper.run, args=(stop,), name="sweeper", daemon=True)
    sweeping.start()
    try:
        Watcher(settings, redis_client(settings), Dispatch(make_app(settings)),
                stable_seconds=args.stable_seconds).run(stop, waiter=waiter(settings, "watcher", stop))
    finally:
        stop.set()
        sweeping.join(timeout=10)
    return 0


def bridge(settings: Settings, args: argparse.Namespace) -> int:
    from ..services.dispatch import Dispatch
    from ..services.quotas import Quotas
    from ..services.registry import Registry
    from ..stream.bridge import Bridge
    from ..worker.celery_app import make_app

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    stop = stop_event()
    telemetry.configure(settings.run, processes.bridge_name(args.tenant))
    wait = waiter(settings, processes.bridge_name(args.tenant), stop)
    client = redis_client(settings)
    active = wait.call(Registry(client).active)
    chosen = [active[args.tenant]] if args.tenant in active else ([] if args.tenant else list(active.values()))
    chosen = [t for t in chosen if t.stream is not None]
    if not chosen:
        raise MysimbdpError(f"no active stream tenant{' named ' + repr(args.tenant) if args.tenant else ''}; "
                            "apply a tenant with max_messages_per_day")
    # No task-sent event per micro-batch: about 1.4 us of the bridge's CPU per message, for a task
    # Flower would show as sent and never started (stream tasks send no worker events).
    dispatch = Dispatch(make_app(settings, sent_events=False))
    quotas = Quotas(client)  # one per process: its scripts are registered once
    # Kafka away at start: each bridge waits for it here (logged once), then runs.
    bridges = [wait.call(functools.partial(Bridge, settings, t, quotas, dispatch, max_messages=args.max_messages,
                                           max_wait_s=args.max_wait_ms / 1000)) for t in chosen]
    return 1 if run_bridges(bridges, stop, wait) else 0


def run_bridges(bridges: list[Any], stop: threading.Event, wait: Waiter) -> list[str]:
    """Run each bridge in a thread of its own until all end; the tenants whose bridge failed.

    A bridge that fails must not leave its tenant unserved in a process that goes on for the
    others: every bridge of the process is stopped (each commits what it has written) and the caller
    exits non-zero, for its supervisor to start it again; what was not committed is read again.
    """
    failed: list[str] = []

    def bridging(b: Any) -> None:
        try:
            b.run(stop, wait)
        except Exception:
            log.exception("tenant=%s bridge failed; stopping this process's bridges, to be started again",
                          b.tenant.name)
            failed.append(b.tenant.name)
            stop.set()

    threads = [threading.Thread(target=bridging, args=(b,), name=f"bridge-{b.tenant.name}") for b in bridges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failed


def monitor(settings: Settings, args: argparse.Namespace) -> int:
    from ..control import monitor as monitor_mod

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    stop = stop_event()
    telemetry.configure(settings.run, "monitor")
    monitor_mod.run(settings, set(args.tenant) if args.tenant else None, args.idle_after, stop,
                    waiter(settings, "monitor", stop), batch_empty_for_s=args.batch_idle_after)
    return 0


def manager(settings: Settings, args: argparse.Namespace) -> int:
    from ..control.manager import Manager

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    stop = stop_event()
    telemetry.configure(settings.run, "manager")
    Manager(settings, set(args.tenant) if args.tenant else None, args.cooldown).run(stop, waiter(settings, "manager",
                                                                                                  stop))
    return 0


def metrics(settings: Settings, args: argparse.Namespace) -> int:
    from ..control import exporter

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    exporter.run(settings, stop_event())
    return 0


def flower(settings: Settings, args: argparse.Namespace) -> int:
    from ..control import flower as ui
    from ..core import flower as options
    from ..security import identities
    from ..services.registry import Registry
    from ..worker.celery_app import make_app

    auth = options.credentials_file(args.auth_file, "--auth-file") if args.auth_file else settings.flower_users()
    plan = ui.FlowerPlan(address=args.address or settings.flower_address, port=args.port or settings.flower_port,
                         url_prefix=settings.flower_url_prefix if args.url_prefix is None else args.url_prefix,
                         auth=auth)
    options.check_exposure(plan.address, plan.auth, "--address" if args.address else "MYSIMBDP_FLOWER_ADDRESS")
    registry = Registry(redis_client(settings))
    stop = stop_event()
    tenants = waiter(settings, "flower", stop).call(registry.names)
    # Every tenant's queues declared in the app: Flower lists them while their workers are offline.
    app = make_app(settings, tenants)
    # Flower's Broker page opens a Redis client of its own from the broker URL with its password
    # (flower/utils/broker.py): only here does the URL carry it (the admin's; Flower logs it masked).
    app.conf.broker_url = identities.redis_url(settings)
    echo(f"flower: {plan.url} ({'basic auth' if plan.auth else 'no password'}; "
         f"{len(tenants)} tenant(s), {2 * len(tenants)} queues)")
    ui.run(app, plan, ui.registry_queues(registry.names, tenants))
    return 0
