"""The stream worker's pure part: its decoder parses every payload as ``json`` does, and a micro-batch
is read column-wise with each refused message dead-lettered by its index, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.rows import converter_for
from mysimbdp_tasks.stream import wire
from mysimbdp_tasks.stream.messages import loads
from mysimbdp_tasks.stream.writer import _rows

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"created_utc": 1430458939, "ups": 3, "subreddit": "a", "id": "b", "author": "c", "score": 3}
# Texts where orjson and json part ways (orjson refuses, or parses to another value) and plain ones.
PAYLOADS: list[str] = [
    json.dumps(GOOD), json.dumps({**GOOD, "ups": 18446744073709551616}), json.dumps({**GOOD, "ups": -2**63 - 1}),
    json.dumps({**GOOD, "ups": 2**63 - 1}), json.dumps({**GOOD, "ups": 1.5}), json.dumps({**GOOD, "author": "\ud800"}),
    json.dumps({**GOOD, "author": "é ☃ 𝄞 \u2028"}, ensure_ascii=False), '{"ups": NaN}', '{"ups": 1e400}',
    '{"ups": Infinity}', "NaN", "-Infinity", "[1, 2]", '"text"', "null", "1", "", "\ufeff" + json.dumps(GOOD),
    '{"a": "\x01"}', "{'a': 1}", '{"a": 1,}', '{"a": 1} x', " \n" + json.dumps(GOOD) + "\n",
    '{"id": "a", "id": "b"}', '{"a":' * 300 + "1" + "}" * 300, "18446744073709551616", "1e19", "1.5", "-0",
    json.dumps({**GOOD, "author": [18446744073709551616]}), json.dumps({**GOOD, "author": {"n": -2**63 - 1}}),
]


def _tenant1() -> tenants.Tenant:
    return tenants.parse({"tenant1": json.loads((ROOT / "tenants" / "tenants.json").read_text())["tenant1"]})[
        "tenant1"]


def _outcome(parse: Any, text: str) -> str:
    try:
        return repr(parse(text))  # repr: 1 and 1.0, nan and nan, tell apart and compare
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return type(exc).__name__


@pytest.mark.parametrize("text", PAYLOADS)
def test_the_workers_decoder_gives_what_json_gives(text: str) -> None:
    assert _outcome(loads, text) == _outcome(json.loads, text)


def _batch(values: list[str]) -> dict[str, Any]:
    return {"bridged_at": 1.0, "v": values, "k": [f"k\xff{i}" for i in range(len(values))],
            "p": [i % 2 for i in range(len(values))], "o": [100 + i for i in range(len(values))],
            "ts": [1000 + i for i in range(len(values))], "n": sum(len(v.encode()) for v in values)}


def test_a_micro_batch_converts_column_wise_and_refuses_each_bad_message_by_its_index() -> None:
    values = [json.dumps(GOOD), "{not json", json.dumps({**GOOD, "ups": "many"}), json.dumps({**GOOD, "id": "é"}),
              json.dumps({k: v for k, v in GOOD.items() if k != "id"})]
    columns = wire.columns(_batch(values))
    rows, kept, records, refused = _rows(converter_for(_tenant1()), columns["v"])
    assert kept == [0, 3]
    assert [r["id"] for r in records] == ["b", "é"]
    assert len(rows) == 2
    assert [(index, reason) for index, reason, _ in refused] == [
        (1, "unusable_message"), (2, "bad_value"), (4, "missing_key_column")]
    letter = wire.letter_at(columns, 2, *refused[1][1:])
    assert (letter.partition, letter.offset, letter.key, letter.value) == (0, 102, b"k\xff2", values[2].encode())
    assert "ups" in letter.detail


def test_records_are_kept_only_when_asked() -> None:
    _, kept, records, _ = _rows(converter_for(_tenant1()), [json.dumps(GOOD)], keep_records=False)
    assert kept == [0] and records == []


def test_an_argument_of_the_older_form_reads_as_the_column_wise_one() -> None:
    entries = [wire.entry(json.dumps(GOOD).encode(), b"k\xff", 1, 7, 1234), wire.entry(b"{}", None, 0, 9, None)]
    columns = wire.columns({"messages": entries})
    assert columns["v"] == [json.dumps(GOOD), "{}"]
    assert columns["k"] == ["k\xff", None] and columns["p"] == [1, 0] and columns["o"] == [7, 9]
    assert columns["ts"] == [1234, None]
    assert columns["n"] == len(json.dumps(GOOD)) + 2
    new = _batch([json.dumps(GOOD)])
    assert wire.columns(new) is new
    assert wire.columns({k: v for k, v in new.items() if k != "n"})["n"] == new["n"]


def test_a_message_stamped_in_the_future_waited_zero_and_the_report_is_taken() -> None:
    from mysimbdp_tasks.core.reports import Report
    from mysimbdp_tasks.stream.writer import waits_ms

    now_ms = 1_800_000_000_000.0
    waits = waits_ms([int(now_ms) - 250, int(now_ms) + 3_600_000, 2**63 - 1, 0], now_ms)
    assert waits == [250.0, 0.0, 0.0]
    report = Report(source="worker", tenant="t1", window_start=now_ms / 1000 - 5, window_end=now_ms / 1000,
                    messages=3, bytes=300, avg_ms=10.0, max_ms=12.0, errors=0,
                    avg_latency_ms=sum(waits) / len(waits), max_latency_ms=max(waits))
    assert Report.from_json(report.to_json()).avg_latency_ms == report.avg_latency_ms
