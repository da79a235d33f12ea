"""Data-quality rules end to end: a file and a stream mixing good rows and rows breaking each rule.

Rows failing a ``refuse`` rule are refused (batch: in the receipt with their line; stream: dead
letters) with ``quality:<rule>``; rows failing a ``tag`` rule land; every rule's count is in the
receipt, in ``<namespace>.quality_metrics`` and in ``mysimbdp quality``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kit import running_platform, table_rows
from streamkit import dead as _dead
from streamkit import send as _send
from streamkit import wait_rows as _wait_rows
from streamkit import wait_written

from mysimbdp_tasks.cli import main
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import quality_metrics

pytestmark = pytest.mark.integration

RULES = {
    "popular": {"column": "ups", "min": 50, "max": 100000, "action": "refuse"},
    "has_author": {"column": "author", "not_null": True, "action": "refuse"},
    "id_shape": {"column": "id", "regex": "[a-z0-9]+", "action": "refuse"},
    "not_future": {"column": "created_utc", "not_in_future": 60, "action": "refuse"},
    "short_author": {"column": "author", "max_length": 20, "action": "tag"},
    "known_sub": {"column": "subreddit", "one_of": ["a", "b"], "action": "tag"},
    "sane_score": {"check": "score <= ups", "action": "tag"},
}
GOOD = {"created_utc": 1430458939, "ups": 60, "subreddit": "a", "author": "alice", "score": 60}
RECORDS: list[dict[str, Any]] = [
    {**GOOD, "id": "g1"},  # lands
    {**GOOD, "id": "r2", "ups": 10, "score": 10},  # refused: popular
    {**GOOD, "id": "r3", "author": None},  # refused: has_author
    {**GOOD, "id": "BAD-4"},  # refused: id_shape
    {**GOOD, "id": "r5", "created_utc": 4102444800},  # refused: not_future (2100)
    {**GOOD, "id": "t6", "author": "x" * 30},  # tagged: short_author, lands
    {**GOOD, "id": "t7", "subreddit": "zzz"},  # tagged: known_sub, lands
    {**GOOD, "id": "t8", "score": 90},  # tagged: sane_score, lands
    {**GOOD, "id": "b9", "ups": "many"},  # not convertible: bad_value, never checked
    {**GOOD, "id": "g2", "subreddit": "b"},  # lands
]
LANDED = {"g1", "t6", "t7", "t8", "g2"}
REFUSED = {2: "quality:popular", 3: "quality:has_author", 4: "quality:id_shape", 5: "quality:not_future",
           9: "bad_value"}
FAILED = dict.fromkeys(RULES, 1)
CHECKED = 9  # every row that converted


def _recorded(session: Any, tenant: Any, source: str, timeout: float = 60) -> dict[str, dict[str, int]]:
    """Per rule: rows checked and failed in quality_metrics rows of ``source``, once every row is counted."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, int]] = {}
    while time.monotonic() < deadline:
        found = {}
        for r in quality_metrics.read(session, tenant, None, time.time() + 60):
            if r["source"] == source:
                entry = found.setdefault(r["rule"], {"checked": 0, "failed": 0})
                entry["checked"] += r["checked"]
                entry["failed"] += r["failed"]
        if set(found) == set(RULES) and all(v["checked"] >= CHECKED for v in found.values()):
            break
        time.sleep(0.5)
    return found


def _command(tenant: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["quality", "--tenant", tenant.name, "--since", "1h", "--json"]) == 0
    return {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}


def test_a_file_lands_exactly_the_rows_its_rules_keep(make_tenant: Any, settings: Settings, cassandra_session: Any,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = make_tenant(like="tenant1", quality=RULES)
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    with running_platform(settings, tenant, tmp_path / "h") as p:
        _, receipt = p.final(p.stage(src, f"{tenant.name}-mixed.jsonl"))

    assert receipt["status"] == "done"
    assert (receipt["rows_ok"], receipt["rows_refused"]) == (len(LANDED), len(REFUSED))
    assert {r["line"]: r["reason"] for r in receipt["refusals"]} == REFUSED
    assert receipt["quality"]["checked"] == CHECKED
    assert {name: r["failed"] for name, r in receipt["quality"]["rules"].items()} == FAILED
    assert receipt["quality"]["rules"]["sane_score"]["action"] == "tag"
    assert {r.id for r in table_rows(cassandra_session, tenant)} == LANDED

    recorded = _recorded(cassandra_session, tenant, "file")
    assert recorded == {rule: {"checked": CHECKED, "failed": 1} for rule in RULES}
    shown = _command(tenant, capsys)
    files = {rule: (r["files"]["checked"], r["files"]["failed"], r["files"]["count"]) for rule, r in shown.items()}
    assert files == dict.fromkeys(RULES, (CHECKED, 1, 1))


def test_messages_breaking_refuse_rules_become_dead_letters_and_tagged_ones_land(
        stream_tenant: Any, stream_platform: Any, settings: Settings, cassandra_session: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    tenant = stream_tenant("tenant1", quality=RULES)
    platform = stream_platform(tenant, extra_env={"MYSIMBDP_REPORT_EVERY": "1"})
    _send(settings, tenant, [(r["id"].encode(), json.dumps(r).encode()) for r in RECORDS])

    rows = _wait_rows(cassandra_session, tenant, len(LANDED), platform)
    assert {r.id for r in rows} == LANDED
    wait_written(settings, tenant, platform)
    letters = _dead(settings, tenant, len(REFUSED))
    by_id = {json.loads(d.value)["id"]: dict(d.headers)["reason"].decode() for d in letters}
    assert by_id == {RECORDS[line - 1]["id"]: reason for line, reason in REFUSED.items()}
    assert all(d.value == json.dumps(RECORDS[[r["id"] for r in RECORDS].index(json.loads(d.value)["id"])]).encode()
               for d in letters)  # the original payload, unchanged

    recorded = _recorded(cassandra_session, tenant, "stream")
    assert recorded == {rule: {"checked": CHECKED, "failed": 1} for rule in RULES}
    shown = _command(tenant, capsys)
    windows = {rule: (r["stream"]["checked"], r["stream"]["failed"]) for rule, r in shown.items()}
    assert windows == dict.fromkeys(RULES, (CHECKED, 1))
