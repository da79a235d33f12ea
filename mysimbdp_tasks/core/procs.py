"""Process plumbing: pid files, detached starts, stops, ports and log tails (stack, control, tests)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from .errors import StackError

log = logging.getLogger(__name__)

TAIL_LINES = 40
# A log this big is rotated once at the next start, so tails and `less` stay quick.
LOG_ROTATE_BYTES = 64 * 1024 * 1024


# Pid files ------------------------------------------------------------------------------------


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(pidfile: Path, pid: int) -> None:
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pidfile)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` from its first byte on, through a rename: a reader
    never sees half a file, and a secret is never readable by others even for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # os.open's mode is filtered by the umask
    os.replace(tmp, path)


def write_private(path: Path, text: str) -> None:
    """A configuration file that may hold a secret (a keystore password): mode 0600."""
    write_atomic(path, text.encode("utf-8"), 0o600)


def is_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def live_pid(pidfile: Path, owns: Callable[[psutil.Process], bool]) -> int | None:
    """The pid in ``pidfile`` if that process is alive *and* is the service (pids get reused)."""
    pid = read_pid(pidfile)
    if pid is None or not is_alive(pid):
        return None
    try:
        return pid if owns(psutil.Process(pid)) else None
    except psutil.Error:
        return None


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


# Starting and stopping ------------------------------------------------------------------------


def spawn(cmd: Sequence[str], log_path: Path, pidfile: Path) -> int:
    """Start ``cmd`` (absolute program path) in a session of its own, output appended to ``log_path``.

    The new session keeps the server alive after the calling shell or test run exits and keeps a
    Ctrl-C in the terminal from reaching it. posix_spawn rather than Popen: a Popen object of a
    server meant to outlive us warns ("still running") when it is collected. Python opens its own
    files non-inheritable, so only stdin/stdout/stderr reach the server.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        pid = os.posix_spawn(cmd[0], list(cmd), os.environ, file_actions=actions, setsid=True)
    except OSError as exc:
        raise StackError(f"cannot run {cmd[0]}: {exc.strerror}") from exc
    write_pid(pidfile, pid)
    return pid


def run_logged(cmd: Sequence[str], log_path: Path, cwd: Path, timeout: float) -> int:
    """Run a short helper command to completion, output appended to ``log_path``; its exit code."""
    with open(log_path, "ab") as out:
        try:
            return subprocess.run(
                list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1


def exit_code(pid: int) -> int | None:
    """The exit code of a dead child of ours (reaping it), or None if it is not ours to know."""
    try:
        code = psutil.Process(pid).wait(0)
    except (psutil.Error, ChildProcessError):
        return None
    return code if isinstance(code, int) else None


def stop(pid: int, timeout: float, group: bool = False) -> str:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns "stopped", "killed" or "gone".

    ``group``: SIGTERM the whole process group ``pid`` leads, as a Ctrl-C in its terminal would,
    so a pool's children shut down with it rather than being orphaned.
    """
    try:
        proc = psutil.Process(pid)
        if group:
            os.killpg(pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return "gone"
    if _wait_gone(pid, timeout):
        return "stopped"
    log.warning("pid %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout)
    try:
        if os.getpgid(pid) == pid:
            # The server leads the session spawn() gave it: take any helper it forked along.
            os.killpg(pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, psutil.NoSuchProcess):
        return "stopped"
    _wait_gone(pid, 10.0)
    return "killed"


def stop_child(child: subprocess.Popen[bytes], timeout: float) -> str:
    """``stop`` for a child started with ``start_new_session=True``: the leader, then its session.

    SIGTERM goes to the leader alone, as ``mysimbdp down`` sends it: a Celery worker's warm shutdown
    lets its pool processes finish the task they are running, which a SIGTERM to the whole group
    would cut short (a file finalized with its receipt but without its metrics row and events).
    Whatever of the session outlives its leader is an orphan and is killed.
    """
    try:
        family = psutil.Process(child.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    outcome = stop(child.pid, timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    psutil.wait_procs(family, timeout=10)
    child.poll()  # the exit status was reaped above; this records it so Popen does not warn
    return outcome


def _wait_gone(pid: int, timeout: float) -> bool:
    # Polled here rather than with psutil's wait(), whose back-off adds up to a second per stop.
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    exit_code(pid)  # reap it if it is our child, so no zombie is left behind
    return True


# Ports ----------------------------------------------------------------------------------------


def port_free(host: str, port: int) -> bool:
    """True if a server could listen on host:port now.

    SO_REUSEADDR as the servers themselves set it, so sockets of a previous run lingering in
    TIME_WAIT do not count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_holder(host: str, port: int) -> str:
    """Describe the process listening on ``host:port`` (for error messages), as far as we may see it.

    Several nodes of one service listen on the same port on addresses of their own (127.0.0.1-3):
    only a listener on ``host`` itself, or on every address, holds it. A JVM listens on an IPv6
    socket, which shows an IPv4 address as ``::ffff:127.0.0.1``.
    """
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return "another process"
    for conn in conns:
        if (conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
                and conn.laddr.ip.removeprefix("::ffff:") in (host, "0.0.0.0", "::")):
            if conn.pid is None:
                return "another process"
            try:
                args = [a for a in psutil.Process(conn.pid).cmdline() if a] or [psutil.Process(conn.pid).name()]
            except psutil.Error:
                args = ["?"]
            # A JVM's command line is mostly options; its program and last arguments say what it is.
            shown = args if len(args) <= 4 else [args[0], "...", *args[-2:]]
            return f"pid {conn.pid} ({' '.join(' '.join(shown).split())[:160]})"
    return "another process"


def can_connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Logs -----------------------------------------------------------------------------------------


def open_log_section(log_path: Path, title: str) -> int:
    """Rotate an oversized log, write a separator line, and return the offset where this run starts."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists() and log_path.stat().st_size > LOG_ROTATE_BYTES:
        log_path.replace(log_path.with_name(log_path.name + ".1"))
    with open(log_path, "ab") as out:
        offset = out.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"===== {stamp} mysimbdp stack: {title} =====\n".encode())
    return offset


def log_tail(log_path: Path, offset: int = 0, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``log_path`` written after ``offset`` ("" if there are none)."""
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            # Enough bytes for 40 long lines (Java stack traces) without reading a huge log.
            start = max(offset if offset <= size else 0, size - 256 * 1024)
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    text = [line for line in data.decode("utf-8", errors="replace").splitlines() if not line.startswith("===== ")]
    return "\n".join(text[-lines:])


# Probes -----------------------------------------------------------------------------------------


class _ThreadFilter(logging.Filter):
    """Drops records logged by the threads in ``threads``."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_probe_filter = _ThreadFilter()
_filter_lock = threading.Lock()


@contextmanager
def quiet_client_logs(prefix: str) -> Iterator[None]:
    """Mute the client library's loggers (``prefix``, ``prefix.*``) for this thread only.

    A probe of a server that is still starting fails by design; the driver would log each failed
    connection as an error with a traceback, burying the progress lines. Other threads (e.g. an
    application using the same driver) keep their logging.
    """
    with _filter_lock:
        for name in [prefix, *logging.root.manager.loggerDict]:
            if name == prefix or name.startswith(prefix + "."):
                logger = logging.getLogger(name)
                if _probe_filter not in logger.filters:
                    logger.addFilter(_probe_filter)
    ident = threading.get_ident()
    _probe_filter.threads.add(ident)
    try:
        yield
    finally:
        _probe_filter.threads.discard(ident)
