"""`mysimbdp stack up|down|status`: the local Redis, Kafka and Cassandra."""

from __future__ import annotations

import argparse
import json
import sys

from ..core.errors import MysimbdpError
from ..core.settings import Settings
from .common import SERVICES, echo


def stack_up(settings: Settings, args: argparse.Namespace) -> int:
    from .. import stack
    from ..core import progress
    from ..stack import mode as stack_mode
    from ..stack import nodes as stack_nodes

    nodes = getattr(args, "nodes", None)
    if nodes is not None:
        stack_nodes.write_count(settings.home, nodes)
    chosen = _chosen(args.services) if args.services else tuple(stack.node_names(settings))
    chosen += ("prometheus",) if args.with_prometheus else ()
    choice = stack_mode.choose(stack_mode.facts(settings, "secure" if args.secure else "plain" if args.plain else None))
    settings = stack_mode.apply(settings, choice)
    print(f"stack: {'secure' if choice.secure else 'plain'}: {choice.reason}", flush=True)
    with progress.ticking(progress.bar("stack up", total=len(chosen), unit="service")) as bar:
        def say(line: str) -> None:
            # Lines above the bar; a service counts once it answers ("ready", "already running", "using it").
            bar.write(line, file=sys.stdout)
            sys.stdout.flush()
            if any(word in line for word in (": ready ", ": already running", "; using it")):
                bar.update(1)

        stack.up(settings, services=chosen, echo=say)
    return 0


def _chosen(services: list[str]) -> tuple[str, ...]:
    from ..stack import nodes as stack_nodes

    # A cluster's nodes by name too: kafka2, cassandra3 (`stack up --nodes N`).
    unknown = {name for name in services if stack_nodes.parse(name)[0] not in (*SERVICES, "prometheus")}
    if unknown:
        raise MysimbdpError(f"unknown service(s) {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}, "
                            "prometheus, or a node of a cluster such as cassandra2 or kafka3")
    return tuple(services)


def stack_down(settings: Settings, args: argparse.Namespace) -> int:
    from .. import stack

    stack.down(settings, wipe=args.wipe, echo=echo, services=_chosen(args.services) if args.services else None)
    return 0


def stack_status(settings: Settings, args: argparse.Namespace) -> int:
    from .. import stack

    states = stack.status(settings)
    if args.json:
        print(json.dumps([{"service": s.name, "running": s.running, "answering": s.answering, "endpoint": s.endpoint,
                           "pid": s.pid, "detail": s.detail, "secure": settings.secure} for s in states], indent=2))
        return 0 if stack.all_up(states) else 1
    print(f"mode: {settings.mode}")
    for s in states:
        state = "up" if s.running and s.answering else ("running, not answering" if s.running else "down")
        pid = f" pid {s.pid}" if s.pid else ""
        detail = f" ({s.detail})" if s.detail else ""
        print(f"{s.name:<10} {state:<24} {s.endpoint}{pid}{detail}")
    return 0 if stack.all_up(states) else 1
