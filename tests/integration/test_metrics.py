"""The platform's Prometheus endpoint after a demo-sized ingest: its per-tenant counters equal what
landed in Cassandra, what the receipts refused and what the dead letters hold, reason by reason."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import socket
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kit import DATA, ROOT, supervised, table_rows
from prometheus_client.parser import text_string_to_metric_families
from streamkit import bridge_lag, dead, send

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.quotas import Quotas
from mysimbdp_tasks.stack.prometheus import PORT
from producers.batch import wrangle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=30) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def by_reason(samples: Samples, name: str, tenant: str) -> dict[str, int]:
    return {dict(k)["reason"]: int(v) for (n, k), v in samples.items()
            if n == name and dict(k).get("tenant") == tenant and v}


def _json_file(src: Path, out: Path, prefix: str) -> tuple[Path, int, Counter[str]]:
    """tenant1's wrangled JSON with unique ids, plus rows refused for known reasons."""
    records = json.loads(wrangle("tenant1", src, out).path.read_text())
    for i, r in enumerate(records):
        r["id"] = f"{prefix}{i}"
    good = dict(records[0])
    records += [{**good, "id": "bad1", "ups": "many"}, {**good, "id": "bad2", "ups": "few"},
                {k: v for k, v in good.items() if k != "subreddit"} | {"id": "bad3"}]
    path = out / f"{prefix}.json"
    path.write_text(json.dumps(records))
    return path, len(records) - 3, Counter({"bad_value": 2, "missing_key_column": 1})


def _csv_file(src: Path, out: Path, prefix: str) -> tuple[Path, int, Counter[str]]:
    """tenant2's wrangled CSV with unique ids, plus two rows whose timestamp is not one."""
    with wrangle("tenant2", src, out).path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for i, r in enumerate(rows):
        r["id"] = f"{prefix}{i}"
    good = len(rows)
    rows += [{**rows[0], "id": "bad1", "created_utc": "yesterday"}, {**rows[0], "id": "bad2", "created_utc": "soon"}]
    path = out / f"{prefix}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, good, Counter({"bad_value": 2})


def _messages(tenant: str) -> tuple[list[tuple[bytes | None, bytes]], int, Counter[str]]:
    good = {"tenant": tenant, "created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
    payloads: list[tuple[bytes | None, bytes]] = [(b"k%d" % i, json.dumps({**good, "id": f"m{i}"}).encode())
                                                  for i in range(300)]
    payloads += [(b"k", b'{"id": "x", "ups": [1, 2'), (b"k", b"[1, 2]"),
                 (b"k", json.dumps({**good, "id": "b", "ups": "many"}).encode())]
    return payloads, 300, Counter({"bad_json": 1, "not_an_object": 1, "bad_value": 1})


def _wait(what: str, check: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise TimeoutError(f"not within {timeout} s: {what}")


def test_metrics_count_what_landed_and_what_was_refused(stream_tenant: Any, settings: Settings,
                                                        cassandra_session: Any, redis_client: Any,
                                                        tmp_path: Path) -> None:
    t1 = stream_tenant("tenant1")  # batch JSON and stream
    t2 = stream_tenant("tenant2")  # batch CSV (and stream, unused)
    out = tmp_path / "files"
    out.mkdir()
    f1, ok1, refused1 = _json_file(DATA / "1000rows.json", out, "j")
    f2, ok2, refused2 = _csv_file(DATA / "1000rows.csv", out, "c")
    payloads, ok_msgs, refused_msgs = _messages(t1.name)
    addr = f"{settings.redis_host}:{_free_port(settings.redis_host)}"

    with supervised(settings, [t1, t2], tmp_path / "home", extra_env={"MYSIMBDP_METRICS_ADDR": addr}) as platform:
        shown = platform.cli("status")
        url = f"http://{addr}/metrics"
        assert f"metrics: {url}" in shown.stdout, shown.stdout
        files = platform.files
        staged = [files.stage(f1, f"{t1.name}-data.json"), files.stage(f2, f"{t2.name}-data.csv"),
                  files.stage(f2, f"{t1.name}-wrong.csv"),  # wrong_file_type
                  files.stage(f1, f"{t2.name}-wrong.json"),  # wrong_file_type
                  files.stage(f1, "nosuchtenant-x.json")]  # unknown_tenant
        send(settings, t1, payloads)
        receipts = {}
        for name in staged:
            owner = t2 if name.startswith(t2.name) else t1
            files.tenant = owner
            receipts[name] = files.final(name, timeout=240)[1]
        letters = dead(settings, t1, sum(refused_msgs.values()))
        rows1 = _wait("tenant1's rows", lambda: len(table_rows(cassandra_session, t1)) >= ok1 + ok_msgs
                      and table_rows(cassandra_session, t1))
        rows2 = table_rows(cassandra_session, t2)

        def settled() -> Samples | None:
            s = scrape(url)
            written = (value(s, "mysimbdp_rows_ingested_total", tenant=t1.name, path="batch")
                       + value(s, "mysimbdp_rows_ingested_total", tenant=t1.name, path="stream"))
            lag = sum(v for (n, k), v in s.items() if n == "mysimbdp_bridge_lag_messages"
                      and dict(k)["tenant"] == t1.name)
            done = value(s, "mysimbdp_files_finished_total", tenant=t2.name, status="done")
            return s if written >= len(rows1) and done and lag == 0 else None

        samples = _wait("the counters to take up the ingest", settled)
        processes = {dict(k)["process"]: v for (n, k), v in samples.items() if n == "mysimbdp_process_up"}

    # Rows: the counters equal the rows in Cassandra, per tenant and path.
    assert len(rows1) == ok1 + ok_msgs and len(rows2) == ok2
    assert value(samples, "mysimbdp_rows_ingested_total", tenant=t1.name, path="batch") == ok1
    assert value(samples, "mysimbdp_rows_ingested_total", tenant=t1.name, path="stream") == ok_msgs
    assert value(samples, "mysimbdp_rows_ingested_total", tenant=t2.name, path="batch") == len(rows2)
    # Refused rows: per reason, as the receipts list them.
    for tenant, name in ((t1, f"{t1.name}-data.json"), (t2, f"{t2.name}-data.csv")):
        listed = Counter(r["reason"] for r in receipts[name]["refusals"])
        assert by_reason(samples, "mysimbdp_discarded_rows_total", tenant.name) == listed
    assert by_reason(samples, "mysimbdp_discarded_rows_total", t1.name) == refused1
    assert by_reason(samples, "mysimbdp_discarded_rows_total", t2.name) == refused2
    # Files: accepted, and refused per reason as the rejected receipts say; an unknown tenant's
    # file is counted under _unknown, never under the name it claims.
    rejected = [r for r in receipts.values() if r["status"] == "rejected"]
    assert sorted(r["reason"] for r in rejected) == ["unknown_tenant", "wrong_file_type", "wrong_file_type"]
    for tenant in (t1, t2):
        assert value(samples, "mysimbdp_files_accepted_total", tenant=tenant.name) == 1
        assert by_reason(samples, "mysimbdp_discarded_files_total", tenant.name) == {"wrong_file_type": 1}
    assert by_reason(samples, "mysimbdp_discarded_files_total", "_unknown") == {"unknown_tenant": 1}
    assert not any(dict(k).get("tenant") == "nosuchtenant" for _, k in samples)
    # Messages: accepted, and refused per reason as the dead letters' headers say.
    assert value(samples, "mysimbdp_messages_accepted_total", tenant=t1.name) == ok_msgs
    assert by_reason(samples, "mysimbdp_discarded_messages_total", t1.name) == Counter(
        dict(d.headers)["reason"].decode() for d in letters) == refused_msgs
    # Quotas as Redis counts them, against the tenant's limits; latency and writes observed.
    usage = Quotas(redis_client).usage(t1.name)
    assert value(samples, "mysimbdp_quota_used", tenant=t1.name, resource="messages") == usage["messages"] == ok_msgs
    assert value(samples, "mysimbdp_quota_used", tenant=t1.name, resource="files") == usage["files"] == 1
    assert t1.batch is not None and t2.stream is not None
    assert value(samples, "mysimbdp_quota_limit", tenant=t1.name, resource="files") == t1.batch.max_files_per_day
    assert value(samples, "mysimbdp_quota_limit", tenant=t2.name, resource="messages") == t2.stream.max_messages_per_day
    assert value(samples, "mysimbdp_end_to_end_latency_seconds_count", tenant=t1.name, path="stream") == ok_msgs
    assert value(samples, "mysimbdp_end_to_end_latency_seconds_count", tenant=t2.name, path="batch") == 1
    assert value(samples, "mysimbdp_sink_write_seconds_count", tenant=t2.name) >= 1
    assert value(samples, "mysimbdp_queue_depth", tenant=t2.name, queue="batch") == 0
    assert value(samples, "mysimbdp_pool_processes", tenant=t1.name) >= 1
    assert processes[f"worker-{t1.name}"] == 1 and processes["watcher"] == 1


def test_local_prometheus_scrapes_the_platform(stream_tenant: Any, settings: Settings, tmp_path: Path) -> None:
    """``stack up --with-prometheus``: Debian's Prometheus finds the platform's endpoint up and reads it."""
    if shutil.which("prometheus") is None and not os.environ.get("CI"):
        pytest.skip("Debian's prometheus is not installed (make install installs it)")
    tenant = stream_tenant("tenant1")
    addr = f"{settings.redis_host}:{_free_port(settings.redis_host)}"
    home = tmp_path / "home"
    private = dataclasses.replace(Settings.from_env({**os.environ, "MYSIMBDP_METRICS_ADDR": addr}), home=home)
    local_stack.up(private, services=["prometheus"], echo=lambda _: None)
    api = f"http://{private.redis_host}:{PORT}/api/v1"
    try:
        with supervised(settings, [tenant], home, extra_env={"MYSIMBDP_METRICS_ADDR": addr}):
            def scraped() -> list[Any] | None:
                with urllib.request.urlopen(f"{api}/targets", timeout=10) as reply:
                    targets = json.loads(reply.read())["data"]["activeTargets"]
                up = [t for t in targets if t["health"] == "up" and t["scrapeUrl"] == f"http://{addr}/metrics"]
                if not up:
                    return None
                query = urllib.parse.quote(f'mysimbdp_process_up{{process="worker-{tenant.name}"}}')
                with urllib.request.urlopen(f"{api}/query?query={query}", timeout=10) as reply:
                    return json.loads(reply.read())["data"]["result"] or None

            result = _wait("Prometheus to scrape the platform", scraped, timeout=120)
            # Every query of the Grafana dashboard is valid PromQL to this Prometheus.
            dashboard = json.loads((ROOT / "compose" / "grafana" / "dashboards" / "mysimbdp.json").read_text())
            for expr in (t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])):
                query = urllib.parse.quote(expr.replace("$tenant", tenant.name))
                with urllib.request.urlopen(f"{api}/query?query={query}", timeout=10) as reply:
                    assert json.loads(reply.read())["status"] == "success", expr
    finally:
        local_stack.down(private, services=["prometheus"], echo=lambda _: None)
    assert result[0]["metric"]["tenant"] == tenant.name and result[0]["value"][1] == "1"


def test_counters_hold_when_the_supervisor_restarts_a_process(stream_tenant: Any, settings: Settings,
                                                              cassandra_session: Any, tmp_path: Path) -> None:
    tenant = stream_tenant("tenant1")
    payloads, _, _ = _messages(tenant.name)
    good = [p for p in payloads if p[0] != b"k"]
    addr = f"{settings.redis_host}:{_free_port(settings.redis_host)}"
    url = f"http://{addr}/metrics"
    accepted = ("mysimbdp_messages_accepted_total", (("tenant", tenant.name),))
    bridge = f"bridge-{tenant.name}"
    with supervised(settings, [tenant], tmp_path / "home", extra_env={"MYSIMBDP_METRICS_ADDR": addr}) as platform:
        send(settings, tenant, good[:200])
        _wait("200 messages counted", lambda: scrape(url).get(accepted) == 200)
        # Written and committed: the restarted bridge replays nothing (a replay would count again).
        _wait("200 messages committed", lambda: bridge_lag(settings, tenant) == 0)
        pid = platform.processes()[bridge]["pid"]
        os.kill(pid, signal.SIGKILL)
        restarted = _wait("the bridge restarted", lambda: (lambda s: s if value(
            s, "mysimbdp_process_restarts_total", process=bridge, tenant=tenant.name) == 1 and value(
            s, "mysimbdp_process_up", process=bridge, tenant=tenant.name) == 1 else None)(scrape(url)))
        assert restarted.get(accepted) == 200  # the dead bridge's count stays in the sum
        send(settings, tenant, good[200:])
        after = _wait("300 messages counted", lambda: (lambda s: s if s.get(accepted, 0) >= 300 else None)(
            scrape(url)))
        rows = _wait("300 rows", lambda: len(table_rows(cassandra_session, tenant)) >= 300
                     and table_rows(cassandra_session, tenant))
    assert after[accepted] == 300 == len(rows)
