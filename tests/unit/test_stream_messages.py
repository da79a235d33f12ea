"""The bridge: its fast decoder gives every payload the verdict ``json`` gives, quota ranges expand per
offset, and a tenant may have several bridges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mysimbdp_tasks.control import processes
from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.rows import converter_for
from mysimbdp_tasks.services.quotas import expand, offset_ranges
from mysimbdp_tasks.stream.messages import check_json, validate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _tenant1() -> tenants.Tenant:
    return tenants.parse({"tenant1": json.loads((ROOT / "tenants" / "tenants.json").read_text())["tenant1"]})[
        "tenant1"]


GOOD = {"created_utc": 1430458939, "ups": 3, "subreddit": "a", "id": "b", "author": "c", "score": 3}

# Payloads where orjson and json part ways (orjson refuses, or parses to another value) and plain ones.
PAYLOADS: list[bytes] = [
    json.dumps(GOOD).encode(),
    json.dumps({**GOOD, "ups": 18446744073709551616}).encode(),  # beyond 64 bits: orjson gives a float
    json.dumps({**GOOD, "ups": -9223372036854775809}).encode(),
    json.dumps({**GOOD, "ups": 9223372036854775807}).encode(),
    json.dumps({**GOOD, "ups": 1.5}).encode(),
    json.dumps({**GOOD, "ups": "12"}).encode(),
    json.dumps({**GOOD, "author": "\ud800"}).encode(),  # a lone surrogate, escaped: json takes it
    json.dumps({**GOOD, "author": "é ☃ 𝄞 \u2028"}, ensure_ascii=False).encode(),
    json.dumps({**GOOD, "tenant": "tenant1"}).encode(),
    json.dumps({**GOOD, "tenant": "tenant2"}).encode(),
    json.dumps({k: v for k, v in GOOD.items() if k != "id"}).encode(),
    b'{"created_utc": 1430458939, "ups": NaN, "subreddit": "a", "id": "b"}',
    b'{"created_utc": 1e400, "ups": 1, "subreddit": "a", "id": "b"}',
    b'{"created_utc": Infinity, "ups": 1, "subreddit": "a", "id": "b"}',
    b"NaN", b"-Infinity", b"[1, 2]", b'"text"', b"null", b"1", b"",
    b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),  # a BOM
    b'{"a": "\x01"}', b"{'a': 1}", b'{"a": 1,}', b'{"a": 1} x', b" \n" + json.dumps(GOOD).encode() + b"\n",
    b'{"id": "a", "id": "b", "subreddit": "s", "ups": 1, "created_utc": 1}',  # a key twice: the last wins
    b"\xff\xfe{}", json.dumps(GOOD).encode("utf-16"),
    b'{"a":' * 300 + b"1" + b"}" * 300,
    b"18446744073709551616", b"-9223372036854775809", b"1e19", b"1.5",
    json.dumps({**GOOD, "tenant": 18446744073709551616}).encode(),  # the detail names the type
    json.dumps({**GOOD, "author": [18446744073709551616]}).encode(),
    json.dumps({**GOOD, "author": {"n": -9223372036854775809}}).encode(),
    # Key and typed columns as the quick check of orjson's payloads sees them.
    json.dumps({**GOOD, "id": ""}).encode(), json.dumps({**GOOD, "id": None}).encode(),
    json.dumps({**GOOD, "id": 7, "subreddit": True, "author": 1.5}).encode(),
    json.dumps({**GOOD, "created_utc": " "}).encode(), json.dumps({**GOOD, "created_utc": None}).encode(),
    json.dumps({**GOOD, "created_utc": "2015-05-01 05:42:19"}).encode(),
    json.dumps({**GOOD, "created_utc": "yesterday"}).encode(), json.dumps({**GOOD, "ups": "  "}).encode(),
    json.dumps({**GOOD, "ups": True}).encode(), json.dumps({**GOOD, "ups": 2**40}).encode(),
    json.dumps({**GOOD, "author": "x" * 70000, "extra": [1]}).encode(),
    json.dumps({**GOOD, "sink": "nowhere"}).encode(),  # the quick schema check still leaves sinks checked
]


@pytest.mark.parametrize("value", PAYLOADS)
def test_the_fast_decoder_gives_the_verdict_and_detail_json_gives(value: bytes) -> None:
    tenant = _tenant1()
    converter = converter_for(tenant)
    assert validate(tenant, converter, value) == check_json(tenant, converter, value)


def test_offsets_group_into_ranges_of_consecutive_offsets_per_partition_in_order() -> None:
    positions = [(0, 5), (0, 6), (0, 7), (0, 9), (1, 10), (1, 11), (0, 10)]
    assert offset_ranges(positions) == [(0, 5, 7), (0, 9, 9), (1, 10, 11), (0, 10, 10)]
    assert offset_ranges([]) == []


def test_runs_expand_to_one_decision_per_offset_of_the_range() -> None:
    assert expand([(5, True), (8, False), (10, True)], 5, 11) == [True, True, True, False, False, True, True]
    assert expand([(3, False)], 3, 3) == [False]


def test_a_stream_tenant_gets_the_bridges_asked_for_in_one_group_but_no_more_than_its_partitions() -> None:
    tenant = tenants.parse({"tenant1": {**json.loads((ROOT / "tenants" / "tenants.json").read_text())["tenant1"],
                                        "partitions": 3}})["tenant1"]
    bridges = [p for p in processes.tenant_processes(tenant, bridges=5) if p.kind == "bridge"]
    assert [p.name for p in bridges] == ["bridge-tenant1", "bridge-tenant1.2", "bridge-tenant1.3"]
    assert {p.tenant for p in bridges} == {"tenant1"}
    assert all(p.argv[-2:] == ("--tenant", "tenant1") for p in bridges)
    assert [p.name for p in processes.tenant_processes(tenant) if p.kind == "bridge"] == ["bridge-tenant1"]
