"""Memory and CPU of a process family while it works, sampled in a background thread.

A sampler watches a root process and every descendant it has at each sample (pool children come
and go) and keeps, per process, the highest RSS seen and the CPU time used between its first and
last sample; for the family, the highest total RSS at one instant. It also measures how busy the
whole machine was over the span, and the CPU time of named outside processes (e.g. a local
Cassandra), which tells whether a run was bound by the machine's CPUs. Sampling is cheap (a few
``/proc`` reads), so an interval of 0.2 s costs nothing measurable next to an ingestion.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

import psutil

from mysimbdp_tasks.core.settings import Settings

MIB = 1024 * 1024
CASSANDRA_MARK = "org.apache.cassandra.service.CassandraDaemon"


@dataclass(frozen=True)
class ProcessUsage:
    pid: int
    role: str  # "main" for the root process, "child" for a descendant
    peak_rss_bytes: int
    cpu_s: float

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "role": self.role, "peak_rss_mb": round(self.peak_rss_bytes / MIB, 1),
                "cpu_s": round(self.cpu_s, 2)}


@dataclass(frozen=True)
class UsageReport:
    processes: tuple[ProcessUsage, ...]
    peak_sum_bytes: int  # the family's largest total at one sample
    samples: int
    seconds: float
    machine_busy: float  # share of all CPUs busy over the span, 0..1
    machine_cpu_s: float  # CPU seconds the whole machine used over the span
    others_cpu_s: Mapping[str, float] = field(default_factory=dict)  # named outside processes

    @property
    def peak_bytes(self) -> int:
        """The largest RSS any single process reached."""
        return max((p.peak_rss_bytes for p in self.processes), default=0)

    @property
    def cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.processes)

    @property
    def elsewhere_cpu_s(self) -> float:
        """CPU seconds used by everything else on the machine: other people's work, the OS, the sampler."""
        return max(0.0, self.machine_cpu_s - self.cpu_s - sum(self.others_cpu_s.values()))

    def cpu_by_role(self, role: str, own_cpu_s: float | None = None) -> dict[str, float]:
        """CPU seconds per role: the sampled family as ``role`` (or ``own_cpu_s`` when measured another
        way, e.g. from the rusage of processes that have exited), each named outside process, and
        ``rest``: the rest of the machine (other users, the OS, the benchmark itself)."""
        own = self.cpu_s if own_cpu_s is None else own_cpu_s
        rest = max(0.0, self.machine_cpu_s - own - sum(self.others_cpu_s.values()))
        return {role: own, **self.others_cpu_s, "rest": rest}

    def to_dict(self) -> dict[str, object]:
        return {"peak_rss_mb": round(self.peak_bytes / MIB, 1), "peak_sum_rss_mb": round(self.peak_sum_bytes / MIB, 1),
                "samples": self.samples, "cpu_s": round(self.cpu_s, 2),
                "machine_busy_pct": round(self.machine_busy * 100, 1), "cpus": os.cpu_count(),
                "seconds": round(self.seconds, 3), "machine_cpu_s": round(self.machine_cpu_s, 2),
                "others_cpu_s": {k: round(v, 2) for k, v in self.others_cpu_s.items()},
                "elsewhere_cpu_s": round(self.elsewhere_cpu_s, 2),
                "processes": [p.to_dict() for p in self.processes]}


def find_pid(mark: str) -> int | None:
    """The pid of a process whose command line holds ``mark`` (e.g. the local Cassandra), if any."""
    for proc in psutil.process_iter(["cmdline"]):
        if mark in " ".join(proc.info.get("cmdline") or ()):
            return proc.pid
    return None


def per_row_us(cpu_s: Mapping[str, float], rows: int) -> dict[str, float]:
    """CPU seconds per role as microseconds per row."""
    return {role: round(s / rows * 1e6, 1) if rows else 0.0 for role, s in cpu_s.items()}


def listener_pid(host: str, port: int) -> int | None:
    """The pid of the process listening on ``host:port`` (this machine), if any and visible."""
    try:
        ip = socket.gethostbyname(host)
        conns = psutil.net_connections("tcp")
    except (OSError, psutil.Error):
        return None
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.pid and c.laddr and c.laddr.port == port \
                and c.laddr.ip in (ip, f"::ffff:{ip}", "0.0.0.0", "::"):  # Java listens on IPv4-mapped IPv6
            return int(c.pid)
    return None


def service_pids(settings: Settings) -> dict[str, int | None]:
    """The Cassandra, Kafka and Redis this benchmark talks to, found by the port each listens on.

    By port, not by command line: on a machine with several local stacks, the first Cassandra in the
    process table may be someone else's.
    """
    return {"cassandra": listener_pid(*settings.cassandra_hosts[0]),
            "kafka": listener_pid(*settings.kafka_bootstrap[0]),
            "redis": listener_pid(settings.redis_host, settings.redis_port)}


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class ResourceSampler:
    """``with ResourceSampler(pid) as s: ...`` then ``s.report()``; samples every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.2, others: Mapping[str, int | None] | None = None) -> None:
        self.pid = pid
        self.interval = interval
        self._peaks: dict[int, int] = {}
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (first, last) CPU seconds
        self._others = {name: psutil.Process(p) for name, p in (others or {}).items() if p and psutil.pid_exists(p)}
        self._others_cpu: dict[str, tuple[float, float]] = {}
        self._machine: list[tuple[float, float]] = []  # (busy, total) CPU seconds of the machine at enter, exit
        self._clock: list[float] = []
        self._peak_sum = 0
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"usage-{pid}", daemon=True)

    def __enter__(self) -> Self:
        self._mark()
        self.sample()  # at least one sample, however short the measured work
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        self._mark()

    def _mark(self) -> None:
        self._clock.append(time.monotonic())
        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        self._machine.append((sum(t) - idle, sum(t)))
        for name, proc in self._others.items():
            try:
                cpu = _cpu(proc)
            except psutil.Error:
                continue
            self._others_cpu[name] = (self._others_cpu.get(name, (cpu, cpu))[0], cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return  # the process has exited: nothing left to measure
        total = 0
        for proc in family:
            try:
                with proc.oneshot():
                    rss, cpu = proc.memory_info().rss, _cpu(proc)
            except psutil.Error:
                continue
            total += rss
            self._peaks[proc.pid] = max(rss, self._peaks.get(proc.pid, 0))
            self._cpu[proc.pid] = (self._cpu.get(proc.pid, (cpu, cpu))[0], cpu)
        self._peak_sum = max(self._peak_sum, total)
        self._samples += 1

    def report(self) -> UsageReport:
        order = sorted(self._peaks, key=lambda pid: (pid != self.pid, pid))
        processes = tuple(ProcessUsage(pid, "main" if pid == self.pid else "child", self._peaks[pid],
                                       self._cpu[pid][1] - self._cpu[pid][0]) for pid in order)
        busy, machine_cpu = 0.0, 0.0
        if len(self._machine) == 2:
            (busy0, total0), (busy1, total1) = self._machine
            busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
            machine_cpu = busy1 - busy0
        seconds = self._clock[-1] - self._clock[0] if len(self._clock) == 2 else 0.0
        others = {name: last - first for name, (first, last) in self._others_cpu.items()}
        return UsageReport(processes, self._peak_sum, self._samples, seconds, busy, machine_cpu, others)
