"""Poison files: hostile input ends in a receipt naming the reason, and never stops the tenant.

One tenant takes CSV, JSON and JSON Lines into a schema with bigint, varint and decimal columns.
Each hostile file sits beside valid rows where its format allows; after all of them a good file
must still land, the worker pool must still run, and today's usage must count exactly the files
that landed rows (a failed file is refunded, a partly read one is not).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from kit import running_platform, table_rows

from mysimbdp_tasks.services.quotas import Quotas

pytestmark = pytest.mark.integration

SCHEMA = {
    "created_utc": "timestamp", "subreddit": "text", "id": "text", "author": "text", "body": "text",
    "n": "bigint", "big": "varint", "amount": "decimal", "key": "((subreddit, id), author)",
}
COLUMNS = ["created_utc", "subreddit", "id", "author", "body", "n", "big", "amount"]


def row(ident: str, **values: Any) -> dict[str, Any]:
    return {"created_utc": 1430458939, "subreddit": "s", "id": ident, "author": "a", "body": "b", **values}


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def good(ident: str) -> str:
    return json.dumps(row(ident))


def csv_bytes(rows: list[dict[str, Any]], header: list[str] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "7" * 5000

# name -> (content, final status, reason of the receipt or of a refusal it must list, ids that land)
CORPUS: dict[str, tuple[bytes, str, str, set[str]]] = {
    "deep.jsonl": (jsonl(good("deep1"), '{"subreddit": "s", "id": "x", "body": ' + DEEP + "}", good("deep2")),
                   "done", "bad_json", {"deep1", "deep2"}),
    "deep.json": (f'[{good("deeparr1")}, {DEEP}, {good("deeparr2")}]'.encode(), "done", "bad_json",
                  {"deeparr1", "deeparr2"}),
    "bigint.jsonl": (jsonl(good("int1"), f'{{"subreddit": "s", "id": "x1", "n": {HUGE_INT}}}',
                           f'{{"subreddit": "s", "id": "x2", "big": {HUGE_INT}}}'), "done", "bad_json", {"int1"}),
    "bigint.csv": (csv_bytes([row("csvint1"), row("x1", n=HUGE_INT), row("x2", big=HUGE_INT)]), "done",
                   "bad_value", {"csvint1"}),
    "decimal.jsonl": (jsonl(good("dec1"), json.dumps(row("x", amount="1e-9999999999")),
                            json.dumps(row("dec2", amount="12.50"))), "done", "bad_value", {"dec1", "dec2"}),
    "longkey.jsonl": (jsonl(good("key1"), json.dumps(row("k" * 70_000)), good("key2")), "done",
                      "rejected_by_cassandra|unbindable", {"key1", "key2"}),
    # A clustering key Cassandra refuses, in a batch with valid rows: only that row is refused.
    "longauthor.jsonl": (jsonl(*(good(f"auth{i}") for i in range(3)), json.dumps(row("x", author="w" * 70_000)),
                               *(good(f"auth{i}") for i in range(3, 6))), "done", "rejected_by_cassandra",
                         {f"auth{i}" for i in range(6)}),
    "bigbody.csv": (csv_bytes([row("body1", body="é" * (1 << 20) + "z" * 300_000)]), "done", "", {"body1"}),
    "stray.json": (f'[{good("stray1")}, {good("stray2")}]x'.encode(), "done", "partial: unparseable",
                   {"stray1", "stray2"}),
    "garbage.json": (bytes(range(256)) * 64, "failed", "unparseable", set()),
    "utf16.csv": (csv_bytes([row("utf16")]).decode().encode("utf-16"), "failed", "unparseable", set()),
    "nul.csv": (csv_bytes([row("nul1", body="a\x00b")]) + b"s,nul2\x00,\x00\n", "done", "", {"nul1"}),
    "header-only.csv": (",".join(COLUMNS).encode() + b"\n", "failed", "no_rows", set()),
    "empty.jsonl": (b"", "failed|rejected", "", set()),
    "nan.jsonl": (jsonl(good("nan1"), '{"subreddit": "s", "id": "x", "amount": NaN}',
                        '{"subreddit": "s", "id": "y", "n": Infinity}'), "done", "bad_value", {"nan1"}),
}


def _reasons(receipt: dict[str, Any]) -> set[str]:
    return ({receipt["reason"], receipt.get("reason", "").split(": ")[-1]}
            | {f["reason"] for f in receipt["refusals"]} | {e["reason"] for e in receipt["errors"]}
            | {f["detail"].split(":")[0] for f in receipt["refusals"] if f["reason"] == "unparseable"})


def test_poison_files_end_with_a_receipt_and_never_stop_the_tenant(make_tenant: Any, settings: Any,
                                                                    cassandra_session: Any, redis_client: Any,
                                                                    tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant1", schema=SCHEMA, file_type=[".csv", ".json", ".jsonl"])
    src = tmp_path / "src"
    src.mkdir()
    with running_platform(settings, tenant, tmp_path / "h") as p:
        names = {}
        for name, (content, *_) in CORPUS.items():
            (src / name).write_bytes(content)
            names[name] = p.stage(src / name, f"{tenant.name}-{name}")
        receipts = {name: p.final(names[name], timeout=300) for name in CORPUS}
        (src / "after.jsonl").write_bytes(jsonl(good("after1"), good("after2")))
        _, after = p.final(p.stage(src / "after.jsonl", f"{tenant.name}-after.jsonl"), timeout=300)
        assert p.procs["worker"].poll() is None and p.procs["watcher"].poll() is None

    for name, (path, receipt) in receipts.items():
        _, status, reason, _ = CORPUS[name]
        stage = path.parent.parent.name
        assert stage in status.split("|") and receipt["status"] in status.split("|"), (name, receipt)
        if reason:
            assert _reasons(receipt) & set(reason.split("|")), (name, receipt)
    assert after["status"] == "done" and after["rows_ok"] == 2

    # Valid rows beside bad ones landed, and nothing else did.
    want = set().union(*(ids for *_, ids in CORPUS.values())) | {"after1", "after2"}
    got = {r.id: r for r in table_rows(cassandra_session, tenant)}
    assert set(got) == want
    assert got["body1"].body == "é" * (1 << 20) + "z" * 300_000
    assert got["nul1"].body == "a\x00b"

    # A partly read file keeps its rows counted: done, not refunded.
    stray = receipts["stray.json"][1]
    assert stray["rows_ok"] == 2 and not stray["quota_refunded"]

    # Usage counts the files that landed rows and only those: every failed file was refunded.
    landed = [r for _, r in receipts.values() if r["status"] == "done"] + [after]
    failed = [r for _, r in receipts.values() if r["status"] == "failed"]
    assert all(r["quota_refunded"] for r in failed), failed
    usage = Quotas(redis_client).usage(tenant.name)
    assert usage["files"] == len(landed)
    assert usage["bytes"] == sum(r["bytes"] for r in landed)
    assert sum(r["rows_ok"] for r in landed) == len(want)
