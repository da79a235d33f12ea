"""What each platform process is doing, in small JSON files under ``$MYSIMBDP_HOME/run``.

Files rather than Redis on purpose: the state that matters most is "waiting for Redis", and
``mysimbdp status`` must be able to read it while Redis is away. Each file is written whole and
renamed into place, so a reader never sees half of one.

- ``run/supervisor.json``: written by the supervisor on every change: each child's pid, status
  (``running``, ``backoff``, ``stopping``), start time, restarts and last exit;
- ``run/state/<process>.json``: written by the process itself on every change: ``running``, or
  ``waiting`` for one or more services since a time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUPERVISOR_STATE = "supervisor.json"
SUPERVISOR_PID = "supervisor.pid"
STATES = "state"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file of this process, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def state_path(run: Path, name: str) -> Path:
    return run / STATES / f"{name}.json"


class ProcessState:
    """This process's published state; threads of the process report their waits through it.

    ``waiting(service)`` and ``resumed(service)`` pair up per waiting thread, so a process whose
    two bridges both wait for Kafka is ``running`` again only when both are back. The file is
    written only when the state changes, never per retry.
    """

    def __init__(self, run: Path, name: str) -> None:
        self.path = state_path(run, name)
        self.name = name
        self.waits: dict[str, tuple[int, float]] = {}  # service -> (waiting threads, since)
        self.lock = threading.Lock()
        self._write()

    def waiting(self, service: str) -> None:
        with self.lock:
            count, since = self.waits.get(service, (0, time.time()))
            self.waits[service] = (count + 1, since)
            if count == 0:
                self._write()

    def resumed(self, service: str) -> None:
        with self.lock:
            count, since = self.waits.get(service, (1, time.time()))
            if count <= 1:
                self.waits.pop(service, None)
                self._write()
            else:
                self.waits[service] = (count - 1, since)

    def _write(self) -> None:
        waiting = {service: since for service, (_, since) in self.waits.items()}
        data = {"name": self.name, "pid": os.getpid(), "state": "waiting" if waiting else "running",
                "waiting_for": waiting, "updated": time.time()}
        try:
            write_json(self.path, data)
        except OSError as exc:  # the state is for people to read; a full disk must not stop the process
            log.warning("process=%s state not written to %s: %s", self.name, self.path, exc)


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def describe(child: dict[str, Any], published: dict[str, Any] | None, alive: bool, supervised: bool,
             now: float) -> str:
    """The state shown for one child of the supervisor, from its record and its own state file.

    ``published`` counts only if it is the same process (same pid): an old file of a previous
    incarnation says nothing about this one.
    """
    status = child.get("status")
    pid = child.get("pid")
    if status == "backoff" and supervised:
        return f"restarting in {max(0.0, float(child.get('backoff_until') or now) - now):.0f} s"
    if status == "stopping":
        return "stopping"
    if pid is None or not alive:
        return "stopped"
    waits = (published or {}).get("waiting_for") or {}
    if (published or {}).get("pid") == pid and waits:
        service, since = min(waits.items(), key=lambda kv: kv[1])
        return f"waiting for {service} since {_clock(since)} ({now - since:.0f} s)"
    return "running" if supervised else "running (unsupervised)"
