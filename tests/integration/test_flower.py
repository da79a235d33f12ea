"""Flower, started by the platform, shows a tenant's worker and its queues."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kit import Platform

from mysimbdp_tasks.core.settings import Settings

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_flower_lists_the_tenants_worker_and_its_queues(make_tenant: Any, settings: Settings, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant1", provision=False)
    platform = Platform(settings, tenant, tmp_path / "h", concurrency=1)
    port = _free_port()
    env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = subprocess.Popen([sys.executable, "-m", "mysimbdp_tasks.cli", "flower", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        platform.start_worker()
        deadline = time.monotonic() + 60
        workers: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                workers = _get(f"http://127.0.0.1:{port}/api/workers?refresh=1")
            except OSError:
                workers = {}
            node = next((n for n in workers if n.startswith(f"{tenant.name}@")), None)
            if node and workers[node].get("active_queues"):
                break
            time.sleep(1)
        node = next(n for n in workers if n.startswith(f"{tenant.name}@"))
        queues = {q["name"] for q in workers[node]["active_queues"]}
        assert queues == {tenant.batch_queue, tenant.stream_queue}
    finally:
        platform.stop()
        flower.terminate()
        flower.wait(20)
