"""The platform's processes: `up`, `down`, `worker`, `watch`, `bridge`, `monitor`, `manager`, `flower`."""

from __future__ import annotations

import argparse
import logging

from ..core.errors import MysimbdpError
from ..core.settings import Settings
from .common import echo, redis_client, stop_event


def platform_up(settings: Settings, args: argparse.Namespace) -> int:
    from ..control import processes as platform
    from ..services.registry import Registry

    if args.config:
        from .tenants import tenants_apply

        tenants_apply(settings, argparse.Namespace(file=args.config, prune=False))
    active = Registry(redis_client(settings)).active()
    if not active:
        raise MysimbdpError("no active tenant: run `mysimbdp tenants apply FILE` (or `mysimbdp up --config FILE`)")
    platform.up(settings, active.values(), echo=echo, concurrency=args.concurrency, flower=args.flower)
    return 0


def platform_down(settings: Settings, args: argparse.Namespace) -> int:
    from ..control import processes as platform

    platform.down(settings, echo=echo)
    return 0


def worker(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import context
    from ..services.registry import Registry
    from ..worker.celery_app import make_app

    tenant = Registry(redis_client(settings)).all().get(args.tenant)
    if tenant is None:
        raise MysimbdpError(f"tenant {args.tenant!r} has not been applied (mysimbdp tenants apply FILE)")
    # The pool serves this tenant only: its queues, and its tasks refuse any other tenant's work.
    # Set before the pool forks: every prefork child inherits this process's context.
    context.configure(settings, own_tenant=tenant.name)
    app = make_app(settings)

    argv = ["worker", "-Q", f"{tenant.batch_queue},{tenant.stream_queue}", "-n", f"{tenant.name}@%h",
            "--loglevel", "INFO", "-E", "--without-gossip", "--without-mingle"]
    argv += ["--autoscale", f"{args.autoscale}"] if args.autoscale else ["--concurrency", str(args.concurrency)]
    app.worker_main(argv)
    return 0


def watch(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..batch import folders
    from ..batch.sweeper import Sweeper
    from ..batch.watcher import Watcher
    from ..services.dispatch import Dispatch
    from ..worker.celery_app import make_app

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The sweeper runs beside intake, in its own thread with its own Redis client and Celery app,
    # so however long a sweep of a large backlog takes, staged files are admitted meanwhile.
    processing = folders.Layout(settings.home).folder(folders.PROCESSING).resolve()
    sweeper = Sweeper(redis_client(settings), processing, Dispatch(make_app(settings)), settings.stall_seconds,
                      settings.max_resends)
    sweeping = threading.Thread(target=sweeper.run, args=(stop,), name="sweeper", daemon=True)
    sweeping.start()
    try:
        Watcher(settings, redis_client(settings), Dispatch(make_app(settings)),
                stable_seconds=args.stable_seconds).run(stop)
    finally:
        stop.set()
        sweeping.join(timeout=10)
    return 0


def bridge(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..services.dispatch import Dispatch
    from ..services.quotas import Quotas
    from ..services.registry import Registry
    from ..stream.bridge import Bridge
    from ..worker.celery_app import make_app

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    client = redis_client(settings)
    active = Registry(client).active()
    chosen = [active[args.tenant]] if args.tenant in active else ([] if args.tenant else list(active.values()))
    chosen = [t for t in chosen if t.stream is not None]
    if not chosen:
        raise MysimbdpError(f"no active stream tenant{' named ' + repr(args.tenant) if args.tenant else ''}; "
                            "apply a tenant with max_messages_per_day")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    dispatch = Dispatch(make_app(settings))
    quotas = Quotas(client)  # one per process: its scripts are registered once
    bridges = [Bridge(settings, t, quotas, dispatch, max_messages=args.max_messages,
                      max_wait_s=args.max_wait_ms / 1000) for t in chosen]
    threads = [threading.Thread(target=b.run, args=(stop,), name=f"bridge-{b.tenant.name}") for b in bridges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def monitor(settings: Settings, args: argparse.Namespace) -> int:
    from ..control import monitor as monitor_mod

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    monitor_mod.run(settings, set(args.tenant) if args.tenant else None, args.idle_after, stop_event())
    return 0


def manager(settings: Settings, args: argparse.Namespace) -> int:
    from ..control.manager import Manager

    logging.getLogger("mysimbdp_tasks").setLevel(logging.INFO)
    Manager(settings, set(args.tenant) if args.tenant else None, args.cooldown, not args.no_reconcile).run(
        stop_event())
    return 0


def flower(settings: Settings, args: argparse.Namespace) -> int:
    from ..worker.celery_app import make_app

    make_app(settings).start(["flower", f"--port={args.port}", "--address=127.0.0.1"])
    return 0
