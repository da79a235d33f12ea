"""The platform's own processes in the background: the watcher and one worker pool per active tenant.

``mysimbdp up`` starts what is not running yet (pid files in ``$MYSIMBDP_HOME/run``, logs in
``$MYSIMBDP_HOME/logs``); ``mysimbdp down`` stops them. Each process is a ``mysimbdp`` sub-command,
so it can equally be run in the foreground or under any process supervisor.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..core import procs
from ..core.settings import DEFAULT_CONCURRENCY, Settings
from ..core.tenants import Tenant

MARK = "mysimbdp_tasks.cli"


@dataclass(frozen=True)
class Proc:
    name: str
    argv: tuple[str, ...]


def command(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", MARK, *args)


def tenant_processes(tenant: Tenant, concurrency: int = DEFAULT_CONCURRENCY) -> list[Proc]:
    """The tenant's worker pool, and its bridge if it ingests streams."""
    size = min(max(concurrency, tenant.min_workers), tenant.max_workers)
    found = [Proc(f"worker-{tenant.name}", command("worker", "--tenant", tenant.name, "--concurrency", str(size)))]
    if tenant.stream is not None:
        found.append(Proc(f"bridge-{tenant.name}", command("bridge", "--tenant", tenant.name)))
    return found


def wanted(tenants: Iterable[Tenant], concurrency: int = DEFAULT_CONCURRENCY, flower: bool = False) -> list[Proc]:
    """Everything `mysimbdp up` runs: shared processes, then each tenant's own."""
    found = [Proc("watcher", command("watch")), Proc("monitor", command("monitor")),
             Proc("manager", command("manager"))]
    if flower:
        found.append(Proc("flower", command("flower")))
    for t in sorted(tenants, key=lambda t: t.name):
        found.extend(tenant_processes(t, concurrency))
    return found


def _pidfile(settings: Settings, name: str) -> Path:
    return settings.run / f"platform-{name}.pid"


def _ours(proc: psutil.Process) -> bool:
    return MARK in procs.cmdline(proc)


def running(settings: Settings) -> dict[str, int]:
    """name -> pid of each platform process that is alive."""
    found = {}
    if settings.run.exists():
        for pidfile in settings.run.glob("platform-*.pid"):
            pid = procs.live_pid(pidfile, _ours)
            if pid is not None:
                found[pidfile.name[len("platform-"):-len(".pid")]] = pid
    return found


def start(settings: Settings, proc: Proc) -> int:
    settings.logs.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs / f"{proc.name}.log"
    procs.open_log_section(log_path, f"start {proc.name}")
    return procs.spawn(proc.argv, log_path, _pidfile(settings, proc.name))


def up(settings: Settings, tenants: Iterable[Tenant], echo: Callable[[str], None] = print,
       concurrency: int = DEFAULT_CONCURRENCY, flower: bool = False) -> dict[str, int]:
    os.environ["MYSIMBDP_HOME"] = str(settings.home)  # children must share this home
    live = running(settings)
    for proc in wanted(tenants, concurrency, flower):
        if proc.name in live:
            echo(f"{proc.name}: already running (pid {live[proc.name]})")
            continue
        live[proc.name] = start(settings, proc)
        echo(f"{proc.name}: started (pid {live[proc.name]}), log {settings.logs / (proc.name + '.log')}")
    time.sleep(1.0)
    for name, pid in list(live.items()):
        if not procs.is_alive(pid):
            tail = procs.log_tail(settings.logs / f"{name}.log")
            echo(f"{name}: exited at start; last lines of its log:\n{tail}")
    return live


def stop_one(settings: Settings, name: str, timeout: float = 60) -> str:
    pid = procs.live_pid(_pidfile(settings, name), _ours)
    if pid is None:
        return "not running"
    outcome = procs.stop(pid, timeout)
    _pidfile(settings, name).unlink(missing_ok=True)
    return outcome


def down(settings: Settings, echo: Callable[[str], None] = print) -> None:
    live = running(settings)
    if not live:
        echo("no platform process is running")
    # Intake first (watcher, bridges), then the manager (so it restarts nothing), then the rest:
    # nothing new is enqueued while workers finish their current tasks.
    order = {"watcher": 0, "bridge": 1, "manager": 2, "monitor": 3}
    for name in sorted(live, key=lambda n: (order.get(n.partition("-")[0], 4), n)):
        echo(f"{name}: {stop_one(settings, name)}")
