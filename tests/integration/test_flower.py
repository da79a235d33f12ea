"""Flower, opened in a real (headless) browser as an operator opens it, behind basic auth and a URL
prefix: its Workers page lists each tenant's pool, its Broker page each tenant's queues, also the
queues of a tenant whose worker is stopped, with their backlog, and its Tasks page tells whose a
task is. The screenshots are kept in MYSIMBDP_HOME/artifacts (the test prints where)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from browser import chromium, wait_for_page
from kit import Platform

from mysimbdp_tasks.core import procs
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

USER = "operator"
PREFIX = "ops/flower"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Flower:
    """``mysimbdp flower`` on its own home, whose flower-auth file (mode 0600) holds its one user."""

    def __init__(self, home: Path, password: str) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        auth = home / "flower-auth"
        auth.write_text(f"# who may open Flower\n{USER}:{password}\n")
        auth.chmod(0o600)
        self.log = home / "flower.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}/{PREFIX}/"
        env = {**os.environ, "MYSIMBDP_HOME": str(self.home)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "mysimbdp_tasks.cli", "flower", "--port", str(port),
                                          "--url-prefix", PREFIX], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 120
        while self.status(self.base + "workers") is None:
            assert self.proc.poll() is None, f"flower exited:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"flower did not answer within 120 s:\n{self.log.read_text()}"
            time.sleep(1)

    def status(self, url: str) -> int | None:
        """The HTTP status of a request without credentials; None while nothing answers."""
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_child(self.proc, 30)
            self.proc = None


def _row_cells(driver: Any, row_id: str) -> list[str]:
    return [cell.text for cell in driver.find_element("id", row_id).find_elements("tag name", "td")]


def test_flower_in_a_browser_shows_each_tenants_pool_and_queues(
        make_tenant: Any, settings: Settings, redis_client: redis.Redis, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    first = make_tenant(like="tenant1", provision=False)
    second = make_tenant(like="tenant2", provision=False)
    artifacts = settings.home / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with capsys.disabled():
        print(f"\nFlower screenshots: {artifacts}/flower-*.png", flush=True)
    password = "pw-" + uuid.uuid4().hex
    pools = {t.name: Platform(settings, t, tmp_path / t.name, concurrency=1) for t in (first, second)}
    flower = Flower(tmp_path / "ops", password)
    try:
        for pool in pools.values():
            pool.start_worker()
        flower.start()
        # Basic auth is on, and the password is neither on Flower's command line nor in its log.
        assert flower.status(flower.base + "broker") == 401
        assert flower.proc is not None
        assert password not in " ".join(psutil.Process(flower.proc.pid).cmdline())

        with chromium(tmp_path / "profile", USER, password) as driver:
            # Both pools online: each tenant's worker on the Workers page, its queues on the Broker page.
            text = wait_for_page(driver, flower.base + "workers",
                                 lambda t: f"{first.name}@" in t and f"{second.name}@" in t,
                                 "both tenants' worker pools listed")
            driver.save_screenshot(str(artifacts / "flower-workers.png"))
            queues = [first.batch_queue, first.stream_queue, second.batch_queue, second.stream_queue]
            wait_for_page(driver, flower.base + "broker", lambda t: all(q in t for q in queues),
                          "every tenant's queues listed")
            driver.save_screenshot(str(artifacts / "flower-broker.png"))

            # The first tenant's pool stops, and Flower starts afresh (as after a restart): it has
            # never heard from that worker, yet lists its queues, with the file waiting in one.
            pools[first.name].stop()
            flower.stop()
            flower.start()
            Dispatch(make_app(settings)).send_file({"tenant": first.name, "ingest_id": "flower-" + uuid.uuid4().hex,
                                                    "file": f"{first.name}-waiting.csv"})
            wait_for_page(driver, flower.base + "broker",
                          lambda t: all(q in t for q in queues) and _row_cells(driver, first.batch_queue)[1] == "1",
                          f"{first.batch_queue} listed with 1 message while its worker is stopped")
            assert _row_cells(driver, second.batch_queue)[1] == "0"
            driver.save_screenshot(str(artifacts / "flower-broker-worker-stopped.png"))
            text = wait_for_page(driver, flower.base + "workers", lambda t: f"{second.name}@" in t,
                                 "the running tenant's pool listed")
            assert f"{first.name}@" not in text  # a Flower started afresh has not seen the stopped one

            # The waiting task says whose it is: its arguments start with the tenant, its routing
            # key is the tenant's queue.
            wait_for_page(driver, flower.base + "tasks",
                          lambda t: f"tenant='{first.name}' file='{first.name}-waiting.csv'" in t
                          and first.batch_queue in t, "the waiting task with its tenant and routing key")
            driver.save_screenshot(str(artifacts / "flower-tasks.png"))
        assert password not in flower.log.read_text()
    finally:
        flower.stop()
        for pool in pools.values():
            pool.stop()
        redis_client.delete(first.batch_queue)  # the test's waiting task: no worker will ever take it
    for name in ("workers", "broker", "broker-worker-stopped", "tasks"):
        assert (artifacts / f"flower-{name}.png").stat().st_size > 10_000
