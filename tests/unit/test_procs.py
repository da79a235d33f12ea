"""Stopping a child process and its whole session: SIGTERM first, SIGKILL for what ignores it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest

from mysimbdp_tasks.core import procs

pytestmark = pytest.mark.unit

# A parent that forks a grandchild and then waits, like a worker pool's main process.
FAMILY = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(600)"
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(600)")


def _start(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)


def _family(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _wait_children(pid: int, n: int) -> list[psutil.Process]:
    for _ in range(600):
        family = _family(pid)
        if len(family) > n:
            return family
        psutil.wait_procs([], timeout=0.05)
    raise AssertionError(f"pid {pid} did not start its children")


def test_stop_child_ends_the_whole_session_and_records_the_exit() -> None:
    proc = _start(FAMILY.format(child="import time; time.sleep(600)"))
    family = _wait_children(proc.pid, 1)
    assert procs.stop_child(proc, 30) == "stopped"
    assert proc.returncode is not None  # reaped and recorded: Popen will not warn
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)


def test_stop_child_kills_a_child_that_ignores_sigterm() -> None:
    proc = _start(STUBBORN)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert procs.stop_child(proc, 0.5) == "killed"
    assert proc.returncode is not None
    assert not procs.is_alive(proc.pid)


def test_stop_child_of_an_exited_child_says_gone_or_stopped() -> None:
    proc = _start("pass")
    proc.wait(30)
    assert procs.stop_child(proc, 1) in ("gone", "stopped")



@pytest.mark.parametrize(("family", "bound", "host", "other"), [
    (socket.AF_INET, "127.0.0.71", "127.0.0.71", "127.0.0.72"),
    # A JVM (Kafka's) listens on an IPv6 socket: 127.0.0.73 shows as ::ffff:127.0.0.73.
    (socket.AF_INET6, "::ffff:127.0.0.73", "127.0.0.73", "127.0.0.74"),
])
def test_the_holder_of_a_port_is_the_listener_on_that_address_not_another_node_on_the_same_port(
        family: socket.AddressFamily, bound: str, host: str, other: str) -> None:
    # Nodes of one service share a port on addresses of their own: the one on one address does not
    # hold another's, and `stack down` must not name it as the process it leaves alone there.
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((bound, 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert procs.port_holder(host, port).startswith(f"pid {os.getpid()} ")
        assert procs.port_holder(other, port) == "another process"
        assert procs.port_free(other, port)
