"""Prometheus from Debian's ``prometheus`` package, scraping the platform's endpoint (optional).

``mysimbdp stack up --with-prometheus`` (or ``stack up prometheus``) runs it on the stack's loopback
address, port :data:`PORT`, with a configuration written under ``prometheus/conf`` whose one job
scrapes ``MYSIMBDP_METRICS_ADDR`` (the supervisor's ``/metrics``) every 5 s. Not a default service:
the platform runs without it, and Grafana (``compose/``) is not in Debian.
"""

from __future__ import annotations

import shutil
import urllib.request
from typing import ClassVar

import psutil

from ..core import procs
from ..core.errors import StackError
from .service import Echo, Service

# Not the usual 9090: a Prometheus that Debian's package starts as a system service on a host with
# systemd listens there on every address, and would hold our loopback port too.
PORT = 9490
SCRAPE_EVERY = "5s"


def config(metrics_host: str, metrics_port: int) -> str:
    """The scrape configuration: the platform's one endpoint (see ``compose/prometheus.yml``)."""
    return (f"global:\n  scrape_interval: {SCRAPE_EVERY}\n  evaluation_interval: {SCRAPE_EVERY}\n"
            "scrape_configs:\n  - job_name: mysimbdp\n    static_configs:\n"
            f"      - targets: ['{metrics_host}:{metrics_port}']\n")


class Prometheus(Service):
    name = "prometheus"
    ready_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 30.0

    @property
    def host(self) -> str:
        return self.settings.redis_host

    @property
    def port(self) -> int:
        return PORT

    @property
    def config_file(self) -> str:
        return str(self.paths.conf / "prometheus.yml")

    def owns(self, proc: psutil.Process) -> bool:
        text = procs.cmdline(proc)
        return "prometheus" in text and self.config_file in text

    def _binary(self) -> str:
        binary = shutil.which("prometheus")
        if binary is None:
            raise StackError("prometheus: not on PATH; install it with `apt-get install --no-install-recommends "
                             "prometheus` (make install does)")
        return binary

    def prepare(self, echo: Echo) -> None:
        self._binary()
        self.paths.make()
        host, port = self.settings.metrics_addr
        (self.paths.conf / "prometheus.yml").write_text(config(host, port), encoding="utf-8")

    def launch(self) -> int:
        cmd = [self._binary(), f"--config.file={self.config_file}", f"--storage.tsdb.path={self.paths.data}",
               f"--web.listen-address={self.bind_host}:{self.port}", "--storage.tsdb.retention.time=2d"]
        return procs.spawn(cmd, self.paths.log, self.paths.pidfile)

    def probe(self, timeout: float) -> str:
        if not procs.can_connect(self.host, self.port, timeout):
            raise ConnectionRefusedError(f"nothing listens on {self.endpoint} yet")
        with urllib.request.urlopen(f"http://{self.endpoint}/-/ready", timeout=timeout) as reply:
            if reply.status != 200:
                raise StackError(f"prometheus: /-/ready answered {reply.status}")
        host, port = self.settings.metrics_addr
        return f"Prometheus, scraping {host}:{port}"
