"""`mysimbdp report` against the real services: its numbers are what landed in Cassandra and what was refused."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kit import Platform, table_rows
from streamkit import dead_count, send, wait_written

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.quotas import Quotas

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

ROW = {"created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
HOSTILE_NAME = "<img src=x onerror=alert(1)>.jsonl"  # a file name is the tenant's own string


def _report(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "report", "--tenant", platform.tenant.name,
                           *args], env=platform.env, capture_output=True, text=True, timeout=180, check=False)


def _json_report(platform: Platform, until: Any) -> dict[str, Any]:
    """The report once ``until(report)`` holds (stream windows reach the metrics table a window late)."""
    deadline = time.monotonic() + 120
    while True:
        done = _report(platform, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        if until(report) or time.monotonic() > deadline:
            return report
        time.sleep(1)


def test_report_numbers_equal_what_landed_and_what_was_refused(stream_tenant: Any, settings: Settings,
                                                               cassandra_session: Any, redis_client: Any,
                                                               tmp_path: Path) -> None:
    tenant = stream_tenant("tenant1", max_messages_per_day=25)
    platform = Platform(settings, tenant, tmp_path / "home", extra_env={"MYSIMBDP_REPORT_EVERY": "1"})
    platform.start()
    platform.start_bridge()
    try:
        # Batch: a file with 40 good rows and 3 refused ones (under a hostile name), and a type not allowed.
        lines = [json.dumps({**ROW, "id": f"file-{i}"}) for i in range(40)]
        lines += [json.dumps({**ROW, "id": "no-ups", "ups": "many"}), json.dumps({**ROW, "id": None}), "{not json"]
        src = tmp_path / "rows.jsonl"
        src.write_text("\n".join(lines) + "\n")
        _, receipt = platform.final(platform.stage(src, f"{tenant.name}-{HOSTILE_NAME}"))
        other = tmp_path / "rows.csv"
        other.write_text("id\n1\n")
        _, rejected = platform.final(platform.stage(other, f"{tenant.name}-export.csv"))
        assert (receipt["rows_ok"], receipt["rows_refused"], rejected["reason"]) == (40, 3, "wrong_file_type")

        # Stream: 30 valid messages of which the quota admits 25, 2 that are not JSON, 1 without a key column.
        good = [(b"k", json.dumps({**ROW, "tenant": tenant.name, "id": f"msg-{i}"}).encode()) for i in range(30)]
        bad: list[tuple[bytes | None, bytes]] = [(b"k", b"{<script>"), (b"k", b"[1"),
                                                 (b"k", json.dumps({**ROW, "ups": 2}).encode())]
        send(settings, tenant, good + bad)
        wait_written(settings, tenant, platform)

        rows = table_rows(cassandra_session, tenant)
        from_files = sum(1 for r in rows if r.id.startswith("file-"))
        from_messages = sum(1 for r in rows if r.id.startswith("msg-"))
        assert (from_files, from_messages) == (40, 25)
        report = _json_report(platform, lambda r: r["stream"]["messages_landed"] >= from_messages)
    finally:
        platform.stop()

    assert report["tenant"] == tenant.name
    b, s = report["batch"], report["stream"]
    assert (b["files_in"], b["files_done"], b["files_rejected"], b["files_failed"]) == (2, 1, 1, 0)
    assert (b["rows_landed"], b["rows_refused"], b["rows_in"]) == (from_files, 3, 43)
    assert (s["messages_landed"], s["messages_refused"], s["messages_in"]) == (from_messages, 8, 33)
    assert s["messages_refused"] == dead_count(settings, tenant)
    refusals = {(x["path"], x["kind"], x["reason"]): x["count"] for x in report["refusals"]}
    assert refusals == {("batch", "file rejected", "wrong_file_type"): 1, ("batch", "row", "bad_value"): 1,
                        ("batch", "row", "missing_key_column"): 1, ("batch", "row", "unparseable"): 1,
                        ("stream", "message", "daily_messages_exceeded"): 5, ("stream", "message", "bad_json"): 2,
                        ("stream", "message", "missing_key_column"): 1}
    used = Quotas(redis_client).usage(tenant.name)
    quota = {q["what"]: (q["used"], q["limit"]) for q in report["quota"]["lines"]}
    assert quota["messages"] == (used["messages"], 25) == (25, 25)
    assert quota["files"] == (used["files"], tenant.batch.max_files_per_day) == (1, tenant.batch.max_files_per_day)
    lat = report["latency"]
    assert lat["file_processing_ms"]["count"] == 1 and lat["file_processing_ms"]["p50"] > 0
    assert lat["stream_end_to_end_ms"]["count"] == from_messages and lat["stream_end_to_end_ms"]["p99"] is not None
    buckets = report["throughput"]["buckets"]
    assert sum(x["batch_rows"] for x in buckets) == from_files
    assert sum(x["stream_messages"] for x in buckets) == from_messages
    assert sum(x["stream_refused"] for x in buckets) == 8

    # The same, as a page with its plots; the hostile file name is shown as text, never as markup.
    out = tmp_path / "out" / "report.html"
    done = _report(platform, "--html", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html

    # A period before anything happened holds nothing.
    done = _report(platform, "--json", "--until", "2000-01-01")
    assert done.returncode == 0, done.stderr
    empty = json.loads(done.stdout)
    assert (empty["batch"]["files_in"], empty["stream"]["messages_in"]) == (0, 0)


def test_report_refuses_an_unknown_tenant_and_a_bad_time(settings: Settings, tmp_path: Path) -> None:
    run = [sys.executable, "-m", "mysimbdp_tasks.cli", "report"]
    env = {**os.environ, "MYSIMBDP_HOME": str(tmp_path)}
    unknown = subprocess.run([*run, "--tenant", "no-such-tenant"], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert unknown.returncode == 1 and "tenant 'no-such-tenant' is not known" in unknown.stderr
    bad = subprocess.run([*run, "--all", "--since", "yesterday"], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode == 2 and "--since: 'yesterday': expected a duration such as 30m" in bad.stderr


def test_apply_adds_the_latency_histogram_to_a_metrics_table_made_before_it(make_tenant: Any, settings: Settings,
                                                                           cassandra_session: Any) -> None:
    from mysimbdp_tasks.services import provisioning

    tenant = make_tenant(like="tenant2")
    table = f"{tenant.namespace}.stream_ingestion_metrics"
    cassandra_session.execute(f"ALTER TABLE {table} DROP latency_buckets", timeout=60)
    assert "latency_buckets" not in provisioning.table_columns(cassandra_session, tenant.namespace,
                                                               "stream_ingestion_metrics")
    plans = provisioning.apply(cassandra_session, [tenant], settings.replication, echo=lambda _: None)
    assert f"add column latency_buckets map<int, bigint> to {table}" in plans[0].changes
    assert "latency_buckets" in provisioning.table_columns(cassandra_session, tenant.namespace,
                                                           "stream_ingestion_metrics")
