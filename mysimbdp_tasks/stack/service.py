"""What every local service has: its folders under MYSIMBDP_HOME, ports, a start and a probe."""

from __future__ import annotations

import abc
import ipaddress
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import psutil

from ..core import procs
from ..core.errors import StackError
from ..core.settings import Settings

Echo = Callable[[str], None]
# Servers always listen on loopback only: the stack is for development, demos and CI. Every address
# of 127.0.0.0/8 is on Linux's loopback interface, so stacks (or the nodes of a cluster) can run side
# by side, each on its own address with the same ports, as Cassandra's ccm does.
DEFAULT_BIND_HOST = "127.0.0.1"


def loopback_host(host: str) -> str:
    """The address a local server binds for the endpoint ``host``: a 127.x.y.z, never anything else."""
    if host == "localhost":
        return DEFAULT_BIND_HOST
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise StackError(
            f"the local stack listens on loopback only (127.0.0.0/8); {host!r} is not such an address. "
            "Point the endpoint variables at 127.x.y.z, or at an existing cluster without `stack up`"
        )
    return host


@dataclass(frozen=True)
class ServicePaths:
    """Where a service keeps its files under MYSIMBDP_HOME.

    ``<service>/{conf,data,tmp}``, ``jars/<service>``, ``logs/<service>.log``, ``run/<service>.pid``.
    """

    home: Path
    name: str
    kind: str = ""  # the service the jars are of (a cluster's nodes share them); "" = name

    @property
    def root(self) -> Path:
        return self.home / self.name

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def jars(self) -> Path:
        return self.home / "jars" / (self.kind or self.name)

    @property
    def log(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def pidfile(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    def make(self) -> None:
        for folder in (self.conf, self.data, self.tmp, self.log.parent, self.pidfile.parent):
            folder.mkdir(parents=True, exist_ok=True)


class Service(abc.ABC):
    """One server of the stack. Subclasses know how to configure, launch and probe it."""

    name: str  # the node's name: the service's, or e.g. "cassandra2" for node 2 of a cluster
    kind: ClassVar[str] = ""  # the service of a cluster's node ("" = name)
    ready_timeout: ClassVar[float]  # seconds from launch until it must answer
    stop_timeout: ClassVar[float] = 45.0  # SIGTERM grace before SIGKILL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = ServicePaths(settings.home, self.name, self.kind)

    @property
    @abc.abstractmethod
    def host(self) -> str:
        """Where clients reach the service (from Settings)."""

    @property
    @abc.abstractmethod
    def port(self) -> int:
        """The client port, the one probes use."""

    @property
    def bind_host(self) -> str:
        """The loopback address the server listens on: the endpoint's own."""
        return loopback_host(self.host)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def ports(self) -> dict[str, int]:
        """Every port the server listens on, by role; all must be free before a start."""
        return {"client": self.port}

    def port_advice(self, role: str) -> str:
        """How to move the service off a taken port, for the error message."""
        return ""

    @abc.abstractmethod
    def owns(self, proc: psutil.Process) -> bool:
        """True if ``proc`` is this service started from this MYSIMBDP_HOME (pids get reused)."""

    @abc.abstractmethod
    def prepare(self, echo: Echo) -> None:
        """Everything before the launch: jars, configuration files, storage formatting."""

    @abc.abstractmethod
    def launch(self) -> int:
        """Start the server detached, write its pid file, return its pid."""

    @abc.abstractmethod
    def probe(self, timeout: float) -> str:
        """Make one real request; return a short description, raise any exception if not answering."""

    def after_ready(self, echo: Echo) -> None:
        """Anything once the server answers, on every `up` (e.g. the users of secure mode); idempotent."""
        return None

    def live_pid(self) -> int | None:
        return procs.live_pid(self.paths.pidfile, self.owns)

    def wipe(self) -> None:
        shutil.rmtree(self.paths.data, ignore_errors=True)
        shutil.rmtree(self.paths.tmp, ignore_errors=True)


def java_command(java: str, jvm_options: Sequence[str], jars: Path, main: str, args: Sequence[str] = ()) -> list[str]:
    # The JVM expands the "dir/*" classpath wildcard itself; no shell is involved.
    return [java, *jvm_options, "-cp", str(jars / "*"), main, *args]
