"""The supervisor's loop with real (trivial) child processes and no service: exits are recorded with
their code or signal, restarts wait the policy's backoff, and the state file tells `status`."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mysimbdp_tasks.control import processes
from mysimbdp_tasks.control.processes import Proc
from mysimbdp_tasks.control.supervisor import Child, Supervisor, snapshot
from mysimbdp_tasks.core.backoff import Backoff, RestartPolicy
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant

pytestmark = pytest.mark.unit


class NoTenants:
    """The registry as the supervisor's reader thread last read it: no tenant."""

    def __init__(self) -> None:
        self.active: dict[str, Tenant] = {}

    def refresh(self) -> None:
        pass


def _supervisor(tmp_path: Path, code: str) -> Supervisor:
    # The marker argument makes the child look like a platform process to the pid-file checks.
    proc = Proc("watcher", (sys.executable, "-c", code, processes.MARK))
    sup = Supervisor(Settings.from_env({"MYSIMBDP_HOME": str(tmp_path)}),
                     policy=RestartPolicy(Backoff(initial=1.0, factor=2, cap=5), reset_after=60))
    # Waits of 1 s and 2 s: long enough for the test to see each backoff on a loaded machine.
    sup.wanted = lambda active: {proc.name: proc}  # type: ignore[method-assign]
    return sup


def _until(sup: Supervisor, check: Callable[[Child], bool], timeout: float = 30) -> Child:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.tick(NoTenants())  # type: ignore[arg-type]
        child = sup.children["watcher"]
        if check(child):
            return child
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {sup.children}")


def test_a_child_that_keeps_dying_is_restarted_with_a_growing_backoff_and_its_exit_code_recorded(
        tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, "import sys; sys.exit(3)")
    first = _until(sup, lambda c: c.last_exit is not None)
    assert (first.status, first.last_exit["code"], first.failures) == ("backoff", 3, 1)  # type: ignore[index]
    wait_1 = first.backoff_until - first.last_exit["at"]  # type: ignore[index]
    second = _until(sup, lambda c: c.restarts == 1 and c.status == "backoff")
    wait_2 = second.backoff_until - second.last_exit["at"]  # type: ignore[index]
    assert (round(wait_1, 1), round(wait_2, 1)) == (1.0, 2.0)
    shown = snapshot(sup.settings)["processes"]
    assert shown[0]["name"] == "watcher" and shown[0]["restarts"] == 1 and shown[0]["last_exit"]["code"] == 3


def test_a_killed_child_is_restarted_and_the_kill_shows_in_the_status(tmp_path: Path) -> None:
    sup = _supervisor(tmp_path, "import time; time.sleep(600)")
    child = _until(sup, lambda c: c.pid is not None)
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    child = _until(sup, lambda c: c.restarts == 1 and c.pid is not None)
    try:
        assert child.pid != first
        assert child.last_exit is not None and child.last_exit["signal"] == "SIGKILL"
        assert processes.live(sup.settings, "watcher") == child.pid  # its pid file names the new one
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        os.waitpid(child.pid, 0)  # type: ignore[arg-type]


def test_the_status_shows_a_worker_pools_process_count(tmp_path: Path) -> None:
    # A stand-in worker with a "pool" of two child processes, as prefork makes them.
    code = ("import subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']) for _ in range(2)]\n"
            "time.sleep(600)")
    proc = Proc("worker-t1", (sys.executable, "-c", code, processes.MARK))
    sup = Supervisor(Settings.from_env({"MYSIMBDP_HOME": str(tmp_path)}))
    sup.wanted = lambda active: {proc.name: proc}  # type: ignore[method-assign]
    sup.tick(NoTenants())  # type: ignore[arg-type]
    child = sup.children["worker-t1"]
    assert child.pid is not None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and snapshot(sup.settings)["processes"][0]["pool"] != 2:
            time.sleep(0.1)
        shown = snapshot(sup.settings)["processes"][0]
        assert shown["name"] == "worker-t1" and shown["pool"] == 2
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
