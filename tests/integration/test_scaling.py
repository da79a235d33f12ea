"""Monitor and manager on the real Kafka and Celery: slow reports grow a tenant's pool, idleness shrinks it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kit import Platform

from mysimbdp_tasks.control.manager import pool_processes
from mysimbdp_tasks.core.reports import Report, send_report
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import telemetry
from mysimbdp_tasks.services.events import read_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _slow_report(tenant: str) -> Report:
    now = time.time()
    return Report(source="worker", tenant=tenant, window_start=now - 5, window_end=now, messages=500,
                  bytes=100_000, avg_ms=900.0, max_ms=1500.0, errors=0, lag=None, avg_latency_ms=1200.0,
                  p95_latency_ms=2000.0, max_latency_ms=2500.0, host=socket.gethostname(), pid=os.getpid())


def _until(check: Callable[[], bool], timeout: float, every: Callable[[], object] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every:
            every()
        if check():
            return True
        time.sleep(1)
    return False


def test_slow_reports_grow_only_that_tenants_pool_and_idleness_shrinks_it(make_tenant: Any, settings: Settings,
                                                                          tmp_path: Path) -> None:
    limits = {"max_avg_ingestion_ms": 50, "min_workers": 1, "max_workers": 3}
    a, b = make_tenant(like="tenant1", **limits), make_tenant(like="tenant1", **limits)
    pa = Platform(settings, a, tmp_path / "a", concurrency=1)
    pb = Platform(settings, b, tmp_path / "b", concurrency=1)
    try:
        pa.start_worker()
        pb.start_worker()
        scope = ["--tenant", a.name, "--tenant", b.name]
        pa.start_process("monitor", "monitor", *scope, "--idle-after", "8")
        pa.start_process("manager", "manager", *scope, "--cooldown", "4")

        def size_a() -> int:
            return pool_processes(pa.procs["worker"].pid)

        def size_b() -> int:
            return pool_processes(pb.procs["worker"].pid)

        assert _until(lambda: size_a() == 1 and size_b() == 1, 60), pa.logs()

        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str)

        def feed() -> None:
            send_report(producer, _slow_report(a.name))
            producer.flush()

        assert _until(lambda: size_a() >= 2, 90, every=feed), pa.logs()
        grown = size_a()
        assert size_b() == 1  # the other tenant is not affected
        producer.close()

        # No more reports: after the idle period and the cooldown the pool shrinks back.
        assert _until(lambda: size_a() == 1, 90), pa.logs()
        assert size_b() == 1
        events = [e for e in read_events(pa.home / "logs", a.name) if e["event"] == "scaling" and e["delta"]]
        assert any(e["delta"] == 1 and "slow" in e["reason"] for e in events), events
        assert any(e["delta"] == -1 and "idle" in e["reason"] for e in events), events
        assert grown <= a.max_workers
        assert not read_events(pa.home / "logs", b.name)
        # The same decisions in the metrics the manager wrote, and the pool's size after the last one.
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in
                   telemetry.FolderCollector(telemetry.folder(pa.home / "run")).collect() for s in f.samples}
        decisions = "mysimbdp_scaling_decisions_total"
        for action in ("grow", "shrink"):
            key = (decisions, (("action", action), ("outcome", "applied"), ("tenant", a.name)))
            assert samples.get(key, 0) >= 1, samples
        assert samples[("mysimbdp_pool_processes", (("tenant", a.name),))] == 1
        assert not any(dict(labels).get("tenant") == b.name for name, labels in samples if name == decisions)
    finally:
        pa.stop()
        pb.stop()
