"""The platform's process table: what runs, under which name, with which pid file; `up` and `down`.

``mysimbdp up`` starts one process in the background, the supervisor (``mysimbdp supervise``,
:mod:`control.supervisor`), and it starts and keeps the others: the watcher, the monitor, the
manager, Flower if asked, and each active tenant's worker pool and bridge. Each is a ``mysimbdp``
sub-command, so any of them can equally be run in the foreground. Pid files are in
``$MYSIMBDP_HOME/run`` (``supervisor.pid``, ``platform-<name>.pid``), logs in ``$MYSIMBDP_HOME/logs``.

``mysimbdp down`` stops the supervisor first, so it restarts nothing, then the processes: intake
first (watcher, bridges) so nothing new is enqueued, workers last, each finishing its current task.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ..core import procs, runstate
from ..core.errors import MysimbdpError
from ..core.settings import DEFAULT_CONCURRENCY, Settings
from ..core.tenants import Tenant
from ..services import telemetry

MARK = "mysimbdp_tasks.cli"
SUPERVISOR = "supervisor"
# How `down` orders the stops: intake, then control, then the pools (which finish their tasks).
STOP_ORDER = {"watcher": 0, "bridge": 1, "manager": 2, "monitor": 3, "flower": 4, "worker": 5}


@dataclass(frozen=True)
class Proc:
    name: str
    argv: tuple[str, ...]

    @property
    def kind(self) -> str:
        """"watcher", "bridge", "worker", ...: the name without its tenant."""
        return self.name.partition("-")[0]

    @property
    def tenant(self) -> str:
        """The tenant a bridge or worker pool serves ("" for the shared processes)."""
        return self.name.partition("-")[2].partition(".")[0]


def command(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", MARK, *args)


def bridge_name(tenant: str | None, member: int = 1) -> str:
    """The name a bridge runs under: ``bridge-<tenant>`` (``bridge-<tenant>.<member>`` for the
    tenant's second bridge on), or ``bridge`` when it serves every tenant."""
    if not tenant:
        return "bridge"
    return f"bridge-{tenant}" if member == 1 else f"bridge-{tenant}.{member}"


def worker_name(tenant: str) -> str:
    return f"worker-{tenant}"


def tenant_processes(tenant: Tenant, concurrency: int = DEFAULT_CONCURRENCY, bridges: int = 1) -> list[Proc]:
    """The tenant's worker pool, and its bridges if it ingests streams: ``bridges`` processes in the
    tenant's one consumer group, no more than its topic has partitions (another would hold none)."""
    size = min(max(concurrency, tenant.min_workers), tenant.max_workers)
    found = [Proc(worker_name(tenant.name), command("worker", "--tenant", tenant.name, "--concurrency", str(size)))]
    if tenant.stream is not None:
        found.extend(Proc(bridge_name(tenant.name, member), command("bridge", "--tenant", tenant.name))
                     for member in range(1, max(1, min(bridges, tenant.partitions)) + 1))
    return found


def shared_processes(flower: bool = False, scope: Iterable[str] | None = None, control: bool = True) -> list[Proc]:
    """The watcher, monitor and manager (and Flower); ``scope``: the only tenants the last two serve.
    ``control`` False (MYSIMBDP_CONTROL=0): no monitor or manager, which run on one host of several."""
    only = [arg for name in sorted(scope or ()) for arg in ("--tenant", name)]
    found = [Proc("watcher", command("watch"))]
    if control:
        found += [Proc("monitor", command("monitor", *only)), Proc("manager", command("manager", *only))]
    if flower:
        found.append(Proc("flower", command("flower")))
    return found


def wanted(tenants: Iterable[Tenant], concurrency: int = DEFAULT_CONCURRENCY, flower: bool = False,
           scope: Iterable[str] | None = None, bridges: int = 1, control: bool = True) -> list[Proc]:
    """Everything the supervisor keeps running: shared processes, then each tenant's own (of ``scope``)."""
    only = None if scope is None else set(scope)
    found = shared_processes(flower, only, control)
    for t in sorted(tenants, key=lambda t: t.name):
        if only is not None and t.name not in only:
            continue
        found.extend(tenant_processes(t, concurrency, bridges))
    return found


# Pid files ------------------------------------------------------------------------------------


def pidfile(settings: Settings, name: str) -> Path:
    return settings.run / (runstate.SUPERVISOR_PID if name == SUPERVISOR else f"platform-{name}.pid")


def _ours(proc: psutil.Process) -> bool:
    return MARK in procs.cmdline(proc)


def live(settings: Settings, name: str) -> int | None:
    """The pid of the platform process ``name`` if it runs (pid files can outlive their process)."""
    return procs.live_pid(pidfile(settings, name), _ours)


def running(settings: Settings) -> dict[str, int]:
    """name -> pid of each platform process that is alive (the supervisor not included)."""
    found = {}
    if settings.run.exists():
        for path in settings.run.glob("platform-*.pid"):
            name = path.name[len("platform-"):-len(".pid")]
            pid = live(settings, name)
            if pid is not None:
                found[name] = pid
    return found


def start(settings: Settings, proc: Proc) -> int:
    settings.logs.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs / f"{proc.name}.log"
    procs.open_log_section(log_path, f"start {proc.name}")
    # Each process writes its Prometheus metrics to a folder of its own (services/telemetry.py);
    # Flower keeps its own metrics on its own /metrics, out of the platform's.
    if proc.kind == "flower":
        os.environ.pop(telemetry.ENV, None)
    else:
        os.environ[telemetry.ENV] = str(telemetry.process_folder(settings.run, proc.name))
    return procs.spawn(proc.argv, log_path, pidfile(settings, proc.name))


def stop_one(settings: Settings, name: str, timeout: float = 60) -> str:
    pid = live(settings, name)
    if pid is None:
        return "not running"
    outcome = procs.stop(pid, timeout)
    pidfile(settings, name).unlink(missing_ok=True)
    return outcome


# up and down ----------------------------------------------------------------------------------


def up(settings: Settings, tenants: Iterable[Tenant], echo: Callable[[str], None] = print,
       concurrency: int = DEFAULT_CONCURRENCY, flower: bool = False, scope: Iterable[str] | None = None,
       timeout: float = 60) -> dict[str, Any]:
    """Start the supervisor (or find it running) and report what it runs once it has started it all."""
    os.environ["MYSIMBDP_HOME"] = str(settings.home)  # children must share this home
    pid = live(settings, SUPERVISOR)
    if pid is not None:
        echo(f"supervisor: already running (pid {pid}); `mysimbdp down` first to change its options")
    else:
        argv = ["supervise", "--concurrency", str(concurrency), *(["--flower"] if flower else []),
                *[arg for name in sorted(scope or ()) for arg in ("--tenant", name)]]
        pid = start(settings, Proc(SUPERVISOR, command(*argv)))
        echo(f"supervisor: started (pid {pid}), log {settings.logs / 'supervisor.log'}")
    names = {p.name for p in wanted(tenants, concurrency, flower, scope, settings.stream_bridges, settings.control)}
    state = _wait_started(settings, pid, names, timeout)
    for name, child in sorted(state.get("children", {}).items()):
        if child.get("status") == "running":
            page = f", open {settings.flower_url}" if name == "flower" else ""
            echo(f"{name}: running (pid {child['pid']}), log {settings.logs / (name + '.log')}{page}")
        else:
            tail = procs.log_tail(settings.logs / f"{name}.log", lines=10)
            echo(f"{name}: {child.get('status')} (it exited; the supervisor restarts it); last lines of its log:"
                 f"\n{tail}")
    echo(metrics_line(state.get("metrics")))
    return state


def metrics_line(metrics: dict[str, Any] | None) -> str:
    """Where the platform's Prometheus metrics are (from the supervisor's state), or why they are not."""
    if not metrics:
        return "metrics: not served (the supervisor has not started serving them)"
    if metrics.get("url"):
        return f"metrics: {metrics['url']} (Prometheus; every platform process, one endpoint)"
    return f"metrics: not served: {metrics.get('error')}"


def _wait_started(settings: Settings, pid: int, names: set[str], timeout: float) -> dict[str, Any]:
    """The supervisor's state once it has started every process in ``names`` (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline and procs.is_alive(pid):
        state = runstate.read_json(settings.run / runstate.SUPERVISOR_STATE) or {}
        children = state.get("children", {}) if state.get("pid") == pid else {}
        if names <= set(children) and all(c.get("pid") or c.get("last_exit") for c in children.values()):
            time.sleep(1.0)  # a process that dies at start shows as such in its first second
            return runstate.read_json(settings.run / runstate.SUPERVISOR_STATE) or state
        time.sleep(0.2)
    if not procs.is_alive(pid):
        tail = procs.log_tail(settings.logs / "supervisor.log", lines=20)
        raise MysimbdpError(f"the supervisor (pid {pid}) exited at start; last lines of its log:\n{tail}")
    return state


def down(settings: Settings, echo: Callable[[str], None] = print, timeout: float = 60) -> None:
    supervisor = live(settings, SUPERVISOR)
    if supervisor is not None:
        echo(f"{SUPERVISOR}: {procs.stop(supervisor, 30)}")
    pidfile(settings, SUPERVISOR).unlink(missing_ok=True)
    found = running(settings)
    if supervisor is None and not found:
        echo("no platform process is running")
    for name in sorted(found, key=lambda n: (STOP_ORDER.get(n.partition("-")[0], 9), n)):
        echo(f"{name}: {stop_one(settings, name, timeout)}")
