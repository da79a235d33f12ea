"""Batch ingestion end to end: staging -> watcher -> tenant queue -> worker pool -> Cassandra."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kit import DATA, running_platform, table_rows

from producers.batch import wrangle

pytestmark = pytest.mark.integration


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_reddit_samples_land_whole_for_both_tenants(make_tenant: Any, settings: Any, cassandra_session: Any,
                                                    tmp_path: Path) -> None:
    t1 = make_tenant(like="tenant1")
    t2 = make_tenant(like="tenant2")
    out = tmp_path / "wrangled"
    out.mkdir()
    json_files = [wrangle("tenant1", p, out).path for p in sorted(DATA.glob("1000rows*.json"))]
    csv_files = [wrangle("tenant2", p, out).path for p in sorted(DATA.glob("1000rows*.csv"))]

    with running_platform(settings, t1, tmp_path / "h1") as p1, running_platform(settings, t2, tmp_path / "h2") as p2:
        names1 = [p1.stage(f, f"{t1.name}-{f.name}") for f in json_files]
        names2 = [p2.stage(f, f"{t2.name}-{f.name}") for f in csv_files]
        receipts = [p1.final(n)[1] for n in names1] + [p2.final(n)[1] for n in names2]
    assert all(r["status"] == "done" and r["rows_refused"] == 0 for r in receipts), receipts

    # tenant1: every distinct (subreddit, id, ups) of the input is one row, with its values.
    records = [r for f in json_files for r in json.loads(f.read_text())]
    want1 = {(r["subreddit"], r["id"], int(r["ups"])): (r["author"], int(r["score"])) for r in records}
    got1 = {(r.subreddit, r.id, r.ups): (r.author, r.score) for r in table_rows(cassandra_session, t1)}
    assert got1 == want1

    # tenant2: every distinct (subreddit, id, author), body byte for byte.
    rows = [r for f in csv_files for r in _csv_rows(f)]
    want2 = {(r["subreddit"], r["id"], r["author"]): r["body"] for r in rows}
    got2 = {(r.subreddit, r.id, r.author): r.body for r in table_rows(cassandra_session, t2)}
    assert len(got2) == len(want2)
    assert got2 == want2
    tricky = [b for b in want2.values() if any(c in b for c in "\n\"'()[]{}") or not b.isascii()]
    assert len(tricky) > 100  # the samples do exercise awkward bodies


AWKWARD = [
    "plain",
    'quotes "double" and \'single\'',
    "comma, separated, words",
    "line one\nline two\r\nline three",
    "brackets [x] {y} (z) <w>",
    "unicode: café, naïve, 日本語, עברית, emoji 👩‍👩‍👧 🚀",
    "'); DROP KEYSPACE tenant2; --",
    "back\\slash and \ttab",
    "",
    "x" * 20000,
]


def test_bodies_read_back_byte_for_byte(make_tenant: Any, settings: Any, cassandra_session: Any,
                                        tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    src = tmp_path / "awkward.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["created_utc", "subreddit", "id", "author", "body"])
        for i, body in enumerate(AWKWARD):
            w.writerow([1430458939 + i, "s", f"id{i}", "a", body])
    with running_platform(settings, tenant, tmp_path / "h") as p:
        _, receipt = p.final(p.stage(src, f"{tenant.name}-awkward.csv"))
    assert receipt["status"] == "done" and receipt["rows_ok"] == len(AWKWARD)
    got = {r.id: r.body for r in table_rows(cassandra_session, tenant)}
    assert got == {f"id{i}": body for i, body in enumerate(AWKWARD)}


def test_good_rows_land_and_bad_rows_are_listed_with_line_numbers(make_tenant: Any, settings: Any,
                                                                  cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant1")
    lines = [
        {"created_utc": 1430458939, "ups": 3, "subreddit": "a", "id": "g1", "author": "x", "score": 3},
        {"created_utc": 1430458939, "ups": "lots", "subreddit": "a", "id": "b1", "author": "x", "score": 1},
        {"created_utc": 1430458939, "ups": 4, "subreddit": "a", "author": "x", "score": 1},
        {"created_utc": "2015-05-01 05:42:19", "ups": 5, "subreddit": "a", "id": "g2", "author": "y", "score": 2,
         "extra": "ignored"},
        {"created_utc": "yesterday", "ups": 6, "subreddit": "a", "id": "b3", "author": "x", "score": 1},
    ]
    src = tmp_path / "mixed.jsonl"
    text = "\n".join(json.dumps(line) for line in lines) + "\n{not json\n"
    src.write_text(text)
    with running_platform(settings, tenant, tmp_path / "h") as p:
        path, receipt = p.final(p.stage(src, f"{tenant.name}-mixed.jsonl"))
    assert path.parent.parent.name == "done"
    assert receipt["rows_ok"] == 2 and receipt["rows_refused"] == 4
    refused = {(f["line"], f["reason"]) for f in receipt["refusals"]}
    assert refused == {(2, "bad_value"), (3, "missing_key_column"), (5, "bad_value"), (6, "unparseable")}
    assert {r.id for r in table_rows(cassandra_session, tenant)} == {"g1", "g2"}

    # The tenant's status: today's usage against its limits, and the file with its outcome.
    env = {**os.environ, "MYSIMBDP_HOME": str(tmp_path / "h")}
    out = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "status", "--tenant", tenant.name, "--json"],
                         capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    status = json.loads(out)
    assert status["usage_today"]["files"] == {"used": 1, "limit": tenant.batch.max_files_per_day}
    assert status["usage_today"]["bytes"] == {"used": len(text.encode()), "limit": tenant.batch.max_bytes_per_day}
    assert [(f["file"], f["status"], f["rows_ok"], f["rows_refused"]) for f in status["latest"]] == [
        (f"{tenant.name}-mixed.jsonl", "done", 2, 4)]
