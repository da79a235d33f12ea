"""Flower, opened in a real (headless) browser as an operator opens it, behind basic auth and a URL
prefix: its Workers page lists each tenant's pool, its Broker page each tenant's queues, also the
queues of a tenant whose worker is stopped, with their backlog, and its Tasks page tells whose a
task is. The screenshots are kept in MYSIMBDP_HOME/artifacts (the test prints where)."""

from __future__ import annotations

import base64
import json
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
from browser import chromium, page_text, require_chromium, table_rows, wait_for_page, wait_until
from kit import Platform

from mysimbdp_tasks.core import names, procs
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
            argv = [sys.executable, "-m", "mysimbdp_tasks.cli", "flower", "--address", "127.0.0.1", "--port",
                    str(port), "--url-prefix", PREFIX]
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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

    def inspected_queues(self, password: str) -> set[str]:
        """The queues of the workers Flower's inspector knows now (it asks them first)."""
        request = urllib.request.Request(self.base + "api/workers?refresh=1")
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                workers = json.loads(resp.read())
        except (OSError, ValueError):
            return set()
        return {q["name"] for info in workers.values() for q in info.get("active_queues", [])}

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_child(self.proc, 30)
            self.proc = None


def _row_cells(driver: Any, queue: str) -> list[str]:
    """The cells of the queue's row on the Broker page (its id is the queue's name); empty if none."""
    return next((list(row["cells"]) for row in table_rows(driver) if row["id"] == queue), [])


def _pool_listed(driver: Any, tenant: str) -> bool:
    """The tenant's pool (``<tenant>@<host>``) has a row on the Workers page, and it is online."""
    return any(row["worker"].startswith(f"{tenant}@") and row["cells"][1:2] == ["Online"]
               for row in table_rows(driver))


def _search_tasks(driver: Any, query: str) -> None:
    """Type ``query`` in the Tasks page's search box (once its table has drawn: typed earlier, it is lost)."""
    wait_until(driver, lambda d: d.execute_script("return $.fn.dataTable.isDataTable('#tasks-table')"),
               "the tasks table drawn")
    for _ in range(3):  # the page redraws its table as tasks change; a search typed meanwhile may be dropped
        box = driver.find_element("css selector", "#tasks-table_filter input")
        box.clear()
        box.send_keys(query)
        time.sleep(2)
        if driver.execute_script("return $('#tasks-table').DataTable().search()") == query:
            return
    raise AssertionError(f"the Tasks page did not take the search {query}")


def test_flower_in_a_browser_shows_each_tenants_pool_and_queues(
        make_tenant: Any, settings: Settings, redis_client: redis.Redis, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    require_chromium()  # before anything starts: missing, it fails the test in CI and skips it elsewhere
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
            wait_for_page(driver, flower.base + "workers",
                          lambda d: _pool_listed(d, first.name) and _pool_listed(d, second.name),
                          "both tenants' worker pools listed online")
            driver.save_screenshot(str(artifacts / "flower-workers.png"))
            queues = [first.batch_queue, first.stream_queue, second.batch_queue, second.stream_queue]
            wait_for_page(driver, flower.base + "broker", lambda d: all(_row_cells(d, q) for q in queues),
                          "every tenant's queues listed")
            driver.save_screenshot(str(artifacts / "flower-broker.png"))

            # The first tenant's pool stops, and Flower starts afresh (as after a restart): it has
            # never heard from that worker, yet lists its queues, with the file waiting in one.
            pools[first.name].stop()
            flower.stop()
            flower.start()
            # It knows the running pool: its events arrive (Workers page) and its inspector has its
            # queues, so a plain Flower would list only those on the Broker page.
            wait_for_page(driver, flower.base + "workers", lambda d: _pool_listed(d, second.name),
                          "the running tenant's pool listed")
            assert not _pool_listed(driver, first.name)  # this Flower has never seen the stopped pool
            deadline = time.monotonic() + 120
            while flower.inspected_queues(password) != {second.batch_queue, second.stream_queue}:
                assert time.monotonic() < deadline, "Flower's inspector did not find the running pool's queues"
                time.sleep(2)
            ingest_id = "flower-" + uuid.uuid4().hex
            Dispatch(make_app(settings)).send_file({"tenant": first.name, "ingest_id": ingest_id,
                                                    "file": f"{first.name}-waiting.csv"})
            task_id = names.file_task_id(ingest_id)
            wait_for_page(driver, flower.base + "broker",
                          lambda d: all(_row_cells(d, q) for q in queues)
                          and _row_cells(d, first.batch_queue)[1] == "1",
                          f"{first.batch_queue} listed with 1 message while its worker is stopped")
            assert _row_cells(driver, second.batch_queue)[1] == "0"
            driver.save_screenshot(str(artifacts / "flower-broker-worker-stopped.png"))

            # The waiting task says whose it is: its arguments start with the tenant, its routing
            # key is the tenant's queue; the search box picks one tenant's tasks.
            wait_for_page(driver, flower.base + "tasks",
                          lambda d: f"tenant='{first.name}' file='{first.name}-waiting.csv'" in page_text(d)
                          and first.batch_queue in page_text(d), "the waiting task with its tenant and routing key")
            _search_tasks(driver, f"args:\"tenant='{second.name}'\"")
            wait_until(driver, lambda d: "No tasks match your search" in page_text(d), "no task of the other tenant")
            _search_tasks(driver, f"args:\"tenant='{first.name}'\"")
            wait_until(driver, lambda d: task_id in page_text(d) and "Showing 1 to 1 of 1" in page_text(d),
                       "the one task of the first tenant, found by its tenant")
            driver.save_screenshot(str(artifacts / "flower-tasks.png"))
        assert password not in flower.log.read_text()
    finally:
        flower.stop()
        for pool in pools.values():
            pool.stop()
        redis_client.delete(first.batch_queue)  # the test's waiting task: no worker will ever take it
    for name in ("workers", "broker", "broker-worker-stopped", "tasks"):
        assert (artifacts / f"flower-{name}.png").stat().st_size > 10_000
