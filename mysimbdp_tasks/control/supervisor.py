"""The supervisor: the one owner of the platform's processes (``mysimbdp supervise``).

It keeps running what should run: the watcher, the monitor, the manager, Flower if asked, and a
worker pool and a bridge (stream tenants) per active tenant, read from the registry every few
seconds. So ``tenants apply`` and ``tenants remove`` start and stop a tenant's processes, and the
manager only resizes pools. A process that dies is restarted after a backoff that grows with each
death in a row and starts over once a process has run well for a minute (:class:`RestartPolicy`).

Each child's pid, status, start time, restarts and last exit are in ``run/supervisor.json``,
written whole on every change; the supervisor needs no service to supervise. While Redis is away
it keeps the last tenants it read. If the supervisor itself dies, its children keep running; the
next one adopts them from their pid files instead of starting them twice.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
import redis

from ..core import procs, runstate
from ..core.backoff import RESTART_POLICY, RestartPolicy
from ..core.errors import MysimbdpError, Stopping
from ..core.settings import DEFAULT_CONCURRENCY, Settings
from ..core.tenants import Tenant
from ..security import logins
from ..services import telemetry
from ..services.outages import Waiter
from ..services.quotas import today
from ..services.registry import Registry
from . import exporter, processes
from .processes import Proc

log = logging.getLogger(__name__)

TICK_S = 0.5
REGISTRY_EVERY_S = 5.0


@dataclass
class Child:
    proc: Proc
    pid: int | None = None
    own: bool = False  # started by this supervisor (its exit code can be read), not adopted
    status: str = "starting"  # "running", "backoff" (waiting to restart), "stopping"
    started_at: float | None = None
    restarts: int = 0
    failures: int = 0  # deaths in a row, for the backoff
    backoff_until: float = 0.0
    last_exit: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        return {"name": self.proc.name, "pid": self.pid, "status": self.status, "started_at": self.started_at,
                "restarts": self.restarts, "failures": self.failures, "backoff_until": self.backoff_until or None,
                "last_exit": self.last_exit, "adopted": not self.own and self.pid is not None}


def exit_of(status: int) -> dict[str, Any]:
    """{"code", "signal"} from a ``waitpid`` status."""
    code = os.waitstatus_to_exitcode(status)
    return {"code": code, "signal": signal.Signals(-code).name if code < 0 else None}


class Tenants:
    """The active tenants, re-read from the registry in a thread of their own.

    The supervision loop never waits for Redis: while Redis is away this thread waits (logged once,
    published in the supervisor's state file) and the loop goes on with the last tenants read.
    """

    def __init__(self, settings: Settings, stop: threading.Event, state: runstate.ProcessState) -> None:
        self.registry = Registry(logins.redis_client(settings, socket_connect_timeout=5,
                                                      socket_timeout=10))
        self.waiter = Waiter("supervisor", stop, state)
        self.stop = stop
        self.now = threading.Event()
        self.active: dict[str, Tenant] | None = None  # None until the first read

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.active = self.waiter.call(self.registry.active)
                self.now.wait(REGISTRY_EVERY_S)
                self.now.clear()
        except Stopping:
            return

    def refresh(self) -> None:
        """Read again now (a tenant's process exited: maybe because the tenant was removed)."""
        self.now.set()


@dataclass
class Supervisor:
    settings: Settings
    concurrency: int = DEFAULT_CONCURRENCY
    flower: bool = False
    scope: set[str] | None = None  # only these tenants' processes (default: every active tenant)
    policy: RestartPolicy = RESTART_POLICY
    children: dict[str, Child] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)  # retired children whose stop has finished
    lock: threading.Lock = field(default_factory=threading.Lock)
    started_at: float = field(default_factory=time.time)
    metrics: dict[str, Any] = field(default_factory=dict)  # where /metrics is served, or why not
    _saved: str = ""

    def run(self, stop: threading.Event) -> None:
        pidfile = processes.pidfile(self.settings, processes.SUPERVISOR)
        other = processes.live(self.settings, processes.SUPERVISOR)
        if other is not None and other != os.getpid():
            raise MysimbdpError(f"a supervisor already runs for {self.settings.home} (pid {other})")
        procs.write_pid(pidfile, os.getpid())
        os.environ["MYSIMBDP_HOME"] = str(self.settings.home)  # the children share this home
        tenants = Tenants(self.settings, stop, runstate.ProcessState(self.settings.run, processes.SUPERVISOR))
        threading.Thread(target=tenants.run, name="registry", daemon=True).start()
        self.adopt()
        if not self.children:
            telemetry.wipe(self.settings.run)  # a new run of the platform: its counters start at 0
        self.metrics = exporter.serve(self.settings, lambda: self.scraped(tenants))
        log.warning("supervisor: pid %d supervising the platform of %s", os.getpid(), self.settings.home)
        try:
            while not stop.is_set():
                self.tick(tenants)
                stop.wait(TICK_S)
        finally:
            # The children keep running: `mysimbdp down` stops them next, in order; a new
            # supervisor adopts them.
            self.save(force=True, running=False)
            if procs.read_pid(pidfile) == os.getpid():
                pidfile.unlink(missing_ok=True)
            log.warning("supervisor: stopped; %d processes left running", sum(1 for c in self.children.values()
                                                                              if c.pid))

    # -- adopting what a previous supervisor started -------------------------------------------
    def adopt(self) -> None:
        previous = runstate.read_json(self.settings.run / runstate.SUPERVISOR_STATE) or {}
        before = previous.get("children", {})
        for name, pid in processes.running(self.settings).items():
            proc = psutil.Process(pid)
            child = Child(Proc(name, tuple(proc.cmdline())), pid=pid, status="running",
                          started_at=proc.create_time(), restarts=int(before.get(name, {}).get("restarts", 0)))
            self.children[name] = child
            log.warning("supervisor: process=%s pid=%d adopted (still running)", name, pid)

    # -- one pass ------------------------------------------------------------------------------
    def tick(self, tenants: Tenants) -> None:
        now = time.time()
        for child in list(self.children.values()):
            if child.status == "running" and child.pid is not None:
                self.reap(child, now, tenants)
        wanted = self.wanted(tenants.active)
        self.retire([c for name, c in self.children.items() if name not in wanted and tenants.active is not None])
        with self.lock:
            for name in self.stopped:
                self.children.pop(name, None)
            self.stopped.clear()
        for proc in wanted.values():
            child = self.children.setdefault(proc.name, Child(proc))
            if child.status == "stopping":
                continue
            child.proc = proc  # a restart uses the current arguments
            if child.pid is None and now >= child.backoff_until:
                self.start(child, now)
        self.save()

    def wanted(self, active: dict[str, Tenant] | None) -> dict[str, Proc]:
        shared = processes.shared_processes(self.flower, self.scope, self.settings.control)
        if active is None:
            # The registry not read yet (Redis away at start): keep the tenants' adopted processes.
            return {p.name: p for p in shared} | {n: c.proc for n, c in self.children.items() if c.proc.tenant}
        return {p.name: p for p in processes.wanted(active.values(), self.concurrency, self.flower, self.scope,
                                                       self.settings.stream_bridges, self.settings.control)}

    def reap(self, child: Child, now: float, tenants: Tenants) -> None:
        assert child.pid is not None
        pid = child.pid
        if child.own:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, -1
            if done == 0:
                return
            how = exit_of(status) if status >= 0 else {"code": None, "signal": None}
        elif procs.is_alive(pid):
            return
        else:
            how = {"code": None, "signal": None}  # adopted: its exit status went to its old parent
        self._kill_leftovers(child)
        ran = now - (child.started_at or now)
        child.failures, delay = self.policy.after_exit(child.failures, ran)
        child.last_exit = {**how, "at": now, "ran_s": round(ran, 1)}
        child.pid, child.status, child.backoff_until = None, "backoff", now + delay
        processes.pidfile(self.settings, child.proc.name).unlink(missing_ok=True)
        telemetry.process_exited(self.settings.run, child.proc.name, pid)
        log.warning("supervisor: process=%s pid=%d exited (code %s, signal %s) after %.0f s; restart in %.0f s "
                    "(deaths in a row: %d)", child.proc.name, pid, how["code"], how["signal"], ran, delay,
                    child.failures)
        if child.proc.tenant:
            tenants.refresh()  # removed tenants' bridges stop on their own: do not restart them

    def _kill_leftovers(self, child: Child) -> None:
        # A child leads a session of its own; processes it forked (a pool's prefork children) are
        # left orphaned in that group when it dies. They would hold tasks and connections of a pool
        # that no longer exists, beside the restarted one: end them.
        assert child.pid is not None
        try:
            os.killpg(child.pid, signal.SIGKILL)
            log.warning("supervisor: process=%s killed the processes its dead pid %d left behind",
                        child.proc.name, child.pid)
        except (ProcessLookupError, PermissionError):
            pass

    def start(self, child: Child, now: float) -> None:
        try:
            pid = processes.start(self.settings, child.proc)
        except MysimbdpError as exc:
            child.failures, delay = self.policy.after_exit(child.failures, 0.0)
            child.status, child.backoff_until = "backoff", now + delay
            log.error("supervisor: process=%s cannot start: %s; again in %.0f s", child.proc.name, exc, delay)
            return
        if child.last_exit is not None:
            child.restarts += 1
        child.pid, child.own, child.status, child.started_at = pid, True, "running", now
        log.warning("supervisor: process=%s started (pid %d)%s", child.proc.name, pid,
                    f", restart {child.restarts}" if child.restarts else "")

    def retire(self, children: list[Child]) -> None:
        """Stop the processes of tenants no longer active (a pool finishes its current task first)."""
        for child in children:
            if child.status == "stopping":
                continue
            if child.pid is None:
                self.children.pop(child.proc.name, None)
                continue
            child.status = "stopping"
            log.warning("supervisor: tenant=%s %s stopping: tenant no longer active", child.proc.tenant or "-",
                        child.proc.name)
            threading.Thread(target=self._stop, args=(child.proc.name,), daemon=True).start()

    def _stop(self, name: str) -> None:
        outcome = processes.stop_one(self.settings, name)
        log.warning("supervisor: process=%s %s", name, outcome)
        with self.lock:
            self.stopped.add(name)

    def scraped(self, tenants: Tenants) -> dict[str, Any]:
        """Scrape-time values (:mod:`.exporter`): the processes, then quotas and queues from Redis."""
        data: dict[str, Any] = {"processes": [(c.proc.name, c.proc.tenant, c.status == "running" and c.pid is not None,
                                               c.restarts) for c in list(self.children.values())]}
        if tenants.active is not None:
            try:
                data.update(exporter.read_redis(tenants.registry.redis, tenants.active, today()))
            except redis.RedisError as exc:  # the scrape answers without them
                log.info("supervisor: quotas and queues not read for metrics: %s", exc)
        return data

    # -- the state file ------------------------------------------------------------------------
    def save(self, force: bool = False, running: bool = True) -> None:
        children = {name: c.record() for name, c in sorted(self.children.items())}
        data = {"pid": os.getpid(), "started_at": self.started_at, "running": running,
                "concurrency": self.concurrency, "flower": self.flower, "children": children,
                "metrics": self.metrics}
        text = repr(data)
        if text == self._saved and not force:
            return
        try:
            runstate.write_json(self.settings.run / runstate.SUPERVISOR_STATE, {**data, "updated": time.time()})
            self._saved = text
        except OSError as exc:  # supervising goes on without its record
            log.error("supervisor: state not written: %s", exc)


def snapshot(settings: Settings, now: float | None = None) -> dict[str, Any]:
    """What ``mysimbdp status`` shows: the supervisor and each process, from the files under run/."""
    now = time.time() if now is None else now
    state = runstate.read_json(settings.run / runstate.SUPERVISOR_STATE) or {}
    pid = processes.live(settings, processes.SUPERVISOR)
    supervised = pid is not None and state.get("pid") == pid
    own = runstate.read_json(runstate.state_path(settings.run, processes.SUPERVISOR))
    rows = []
    for name, child in sorted(state.get("children", {}).items()):
        child_pid = child.get("pid")
        alive = child_pid is not None and processes.live(settings, name) == child_pid
        published = runstate.read_json(runstate.state_path(settings.run, name))
        started = child.get("started_at")
        rows.append({
            "name": name, "pid": child_pid if alive else None,
            "state": runstate.describe(child, published, alive, supervised, now),
            "uptime_s": round(now - started, 1) if alive and started else None,
            "restarts": child.get("restarts", 0), "last_exit": child.get("last_exit"),
            "pool": pool_size(child_pid) if alive and name.startswith("worker-") else None,
        })
    waiting = (own or {}).get("waiting_for") if supervised and (own or {}).get("pid") == pid else None
    return {"supervisor": {"pid": pid if supervised else None, "running": supervised,
                           "uptime_s": round(now - state["started_at"], 1) if supervised else None,
                           "waiting_for": waiting or {}, "metrics": state.get("metrics") if supervised else None},
            "processes": rows}


def pool_size(worker_pid: int) -> int | None:
    """Processes in a worker's prefork pool (its children), as the OS sees them: what scaling changed."""
    try:
        return len(psutil.Process(worker_pid).children())
    except psutil.Error:
        return None
