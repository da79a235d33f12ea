"""The stream benchmark's pure parts: percentiles, backlog, step verdicts, ids, and the JSON document."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import pytest

from benchmarks import stream_results as results
from benchmarks.stream import parse_options
from benchmarks.stream_producer import StepSent, Template, merge, message_id, parse_id, read_times
from benchmarks.stream_results import Landed, Naive, Sent
from benchmarks.stream_steps import RigOptions
from producers.stream import encode, key_for

pytestmark = pytest.mark.unit


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert results.percentile(values, 50) == 50
    assert results.percentile(values, 99) == 99
    assert results.percentile(values, 100) == 100
    assert results.percentile([7.0], 99) == 7
    assert results.percentile([1.0, 2.0, 3.0], 50) == 2
    assert results.percentile([], 50) is None


@pytest.mark.parametrize("q", [0, -1, 101])
def test_percentile_refuses_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="percentile must be in"):
        results.percentile([1.0], q)


def test_rate_in_a_window() -> None:
    times = [float(t) for t in range(0, 10_000, 10)]  # 100 per second for 10 s
    assert results.steady_window(0, 10_000) == (2500, 10_000)
    assert results.rate_in(times, 2500, 10_000) == pytest.approx(100, rel=0.01)
    assert results.rate_in(times, 5, 5) == 0


def test_backlog_counts_sent_but_not_written() -> None:
    sends = [0.0, 10.0, 20.0, 30.0]
    writes = [5.0, 25.0, 26.0, 40.0]
    assert results.backlog(sends, writes, [0.0, 5.0, 22.0, 35.0, 40.0]) == [1, 0, 2, 1, 0]


def _uniform(rate: float, seconds: float, latency_ms: float, slowdown: float = 0.0) -> tuple[list[float], list[float]]:
    """Sends at ``rate``; each written ``latency_ms`` later, plus ``slowdown`` ms per message sent before it."""
    n = int(rate * seconds)
    sends = [i * 1000 / rate for i in range(n)]
    writes = [s + latency_ms + i * slowdown for i, s in enumerate(sends)]
    return sends, writes


def test_backlog_steady_when_keeping_up_and_growing_when_not() -> None:
    growth, peak = results.backlog_growth(*_uniform(1000, 10, 50))
    assert abs(growth) < 5 and 45 <= peak <= 55
    # The pipeline writes at half the rate: the backlog grows by about 500 msg/s.
    sends, _ = _uniform(1000, 10, 0)
    writes = [i * 2.0 for i in range(len(sends))]
    growth, peak = results.backlog_growth(sends, writes)
    assert 450 < growth < 550
    assert peak >= 4500


def _step(sends: list[float], writes: list[float], all_sends: list[float] | None = None, dead: int = 0,
          offered: float = 1000) -> results.Step:
    """A step of one tenant: ``sends``/``writes`` of the rows found; ``all_sends`` if more were acknowledged."""
    t0 = 1_700_000_000.0
    sends = [t0 * 1000 + s for s in sends]
    writes = [t0 * 1000 + w for w in writes]
    acked = sends if all_sends is None else [t0 * 1000 + s for s in all_sends]
    sent = [Sent("a", len(acked), len(acked), 0, tuple(acked))]
    landed = [Landed("a", dead, tuple(sends), tuple(writes))]
    return results.step_result(1, offered, 10, sent, landed)


def test_a_step_that_keeps_up() -> None:
    step = _step(*_uniform(1000, 10, 50))
    assert step.kept_up and step.verdict == "kept up"
    assert step.p50_ms == pytest.approx(50) and step.p99_ms == pytest.approx(50)
    assert step.landed == step.acked == 10_000
    assert step.sent_per_s == pytest.approx(1000, rel=0.01)
    assert step.landed_per_s == pytest.approx(1000, rel=0.01)
    assert step.landed_overall_per_s == pytest.approx(10_000 / 10.049, rel=0.001)
    assert step.drain_s == pytest.approx(0.05, abs=1e-3)
    assert step.sustained


def test_a_step_whose_backlog_grows_did_not_keep_up() -> None:
    step = _step(*_uniform(1000, 10, 50, slowdown=0.5))
    assert not step.kept_up
    assert step.verdict.startswith("did not keep up: backlog grew")
    assert step.landed_per_s == pytest.approx(667, rel=0.02)  # what it managed under that load
    assert step.sent_per_s == pytest.approx(1000, rel=0.01)
    assert not step.sustained


def test_a_step_with_missing_rows_did_not_keep_up() -> None:
    sends, writes = _uniform(1000, 10, 50)
    step = _step(sends[:9000], writes[:9000], all_sends=sends)
    assert not step.kept_up
    assert "9,000 of 10,000 landed" in step.verdict


def test_dead_letters_fail_a_step() -> None:
    step = _step(*_uniform(1000, 10, 50), dead=3)
    assert not step.kept_up and "dead-lettered" in step.verdict


def test_a_slow_but_steady_step_keeps_up_without_meeting_the_latency_bound() -> None:
    step = _step(*_uniform(1000, 10, 1500))
    assert step.kept_up
    assert not step.meets_latency and not step.sustained


def test_short_producers_are_reported() -> None:
    step = _step(*_uniform(1000, 10, 50), offered=2000)
    assert step.kept_up
    assert "producers sent only 50% of the offered rate" in step.verdict


def test_sustained_is_the_highest_offered_step_that_kept_up_within_1s() -> None:
    ok_low = _step(*_uniform(1000, 10, 50), offered=1000)
    ok_high = _step(*_uniform(2000, 5, 80), offered=2000)
    slow = _step(*_uniform(3000, 4, 1500), offered=3000)
    assert results.sustained([ok_low, ok_high, slow]) is ok_high
    assert results.sustained([slow]) is None


def test_report_has_steps_targets_and_ratio() -> None:
    steps = [_step(*_uniform(1000, 10, 50), offered=1000)]
    naive = Naive(messages=2000, seconds=2.0, rows_in_cassandra=2000, service_p50_ms=0.5, service_p99_ms=1.5,
                  stopped_by="count")
    doc = results.report(steps, naive, {"started_at": "now"})
    doc = json.loads(json.dumps(doc))  # JSON-serializable as it is
    assert doc["benchmark"] == "stream" and doc["schema_version"] == results.SCHEMA_VERSION
    assert doc["started_at"] == "now"
    (step,) = doc["steps"]
    for key in ("offered_per_s", "sent_per_s", "landed_per_s", "landed", "acked", "p50_ms", "p95_ms", "p99_ms",
                "kept_up", "verdict", "sustained", "per_tenant"):
        assert key in step
    assert doc["naive"]["msgs_per_s"] == 1000
    assert doc["sustained"]["step"] == 1
    assert doc["sustained_vs_naive"] == pytest.approx(step["landed_per_s"] / 1000, abs=0.01)
    assert [t["met"] for t in doc["targets"]] == [False, False, None]  # no CPU measured here
    assert doc["verified"] is True
    assert "kept up" in results.table(steps) and "sustained:" in results.summary(doc)


def test_cpu_bound_rate_counts_the_platform_not_the_load_generator() -> None:
    step = _step(*_uniform(1000, 10, 50))
    step.details["cpu_us_per_message"] = {"bridge": 20.0, "workers": 40.0, "cassandra": 30.0, "kafka": 8.0,
                                          "redis": 2.0, "producers": 75.0, "benchmark": 5.0, "other": 300.0}
    assert step.platform_us == 100.0
    assert step.cpu_bound_per_s(cores=2) == pytest.approx(20_000)
    assert _step(*_uniform(1000, 10, 50)).cpu_bound_per_s() is None  # nothing measured
    row = json.loads(json.dumps(step.to_dict()))
    assert row["platform_cpu_us_per_message"] == 100.0 and row["cpu_bound_per_s"] == round(results.CORES * 1e4)


def test_without_a_sustained_step_the_ratio_is_not_met_and_the_kept_up_step_is_named() -> None:
    slow = _step(*_uniform(1000, 10, 900), offered=1000)  # kept up, p99 900 ms
    naive = Naive(messages=100, seconds=1.0, rows_in_cassandra=100, service_p50_ms=0.5, service_p99_ms=1.5,
                  stopped_by="count")
    doc = json.loads(json.dumps(results.report([slow], naive, {})))
    assert doc["sustained"] is None and doc["sustained_vs_naive"] is None
    assert doc["kept_up"]["meets_latency"] is False
    assert doc["kept_up"]["vs_naive"] == pytest.approx(slow.landed_per_s / 100, abs=0.01)
    ratio = doc["targets"][1]
    assert ratio["measured"] is None and ratio["met"] is False
    assert "no step kept up with p99 <= 500 ms" in ratio["note"] and "10.0x naive at p99 900 ms" in ratio["note"]
    text = results.summary(doc)
    assert "not a sustained rate" in text and "-> NOT met (no step kept up" in text


def test_report_is_not_verified_when_rows_are_missing() -> None:
    sends, writes = _uniform(1000, 10, 50)
    doc = results.report([_step(sends[:10], writes[:10], all_sends=sends[:20])], None, {})
    assert doc["verified"] is False and doc["sustained"] is None


def test_message_ids_carry_step_and_sequence() -> None:
    assert parse_id(message_id("cqurbw8", 3, 1234)) == (3, 1234)
    assert parse_id(message_id("abc-r2-s9", 12, 0)) == (12, 0)  # ids of earlier passes or odd ids
    assert parse_id("cqurbw8") is None and parse_id("x-s-1") is None


def test_times_file_round_trip(tmp_path: Path) -> None:
    created, sent = array("q", [1000, -1, 1002]), array("d", [0.9, 1.0, 1.001])
    path = tmp_path / "t.times"
    path.write_bytes(created.tobytes() + sent.tobytes())
    got_created, got_sent = read_times(path)
    assert list(got_created) == [1000, -1, 1002] and list(got_sent) == [0.9, 1.0, 1.001]


@pytest.mark.parametrize("message", [
    {"id": "cqurbw8", "subreddit": "AskReddit", "body": "a \"quoted\" body, é ☃\n", "ups": 3, "tenant": "bx"},
    {"id": "x", "subreddit": None, "body": "a lone surrogate \ud800: ASCII escapes", "tenant": "bx"},
])
def test_a_pre_serialised_message_is_the_bytes_the_tenant_client_sends(message: dict[str, object]) -> None:
    fresh = {**message, "id": message_id(str(message["id"]), 4, 1234)}
    assert Template.of(message).value_and_key(b"-s4-1234") == (encode(fresh), key_for(fresh))


def test_producers_of_one_tenant_merge_into_one_step_by_seq(tmp_path: Path) -> None:
    def sent(index: int, created: list[int]) -> StepSent:
        path = tmp_path / f"p{index}.times"
        path.write_bytes(array("q", created).tobytes() + array("d", [float(c) / 1000 for c in created]).tobytes())
        return StepSent("bx", 1, len(created), sum(c >= 0 for c in created), 0, 1.0 + index, 2.0 + index, str(path),
                        index, 2)

    merged = merge([sent(0, [10, 12, 14]), sent(1, [11, -1])], tmp_path / "all.times")
    created, sent_at = read_times(Path(merged.times))
    assert list(created) == [10, 11, 12, -1, 14] and sent_at[4] == 0.014
    assert (merged.sent, merged.acked, merged.first_send, merged.last_send) == (5, 4, 1.0, 3.0)


def test_options_quick_and_explicit_values() -> None:
    quick = parse_options(["--quick"])
    assert quick.rates == (1000,) and quick.seconds == 5 and quick.naive_messages == 2000
    mine = parse_options(["--quick", "--rates", "2500,1000", "--seconds", "8", "--bridge-max-messages", "1000"])
    assert mine.rates == (1000, 2500) and mine.seconds == 8
    assert mine.bridge_args == ("--max-messages", "1000")
    assert parse_options([]).rates == (1000, 2500, 5000, 7500)
    with pytest.raises(SystemExit):
        parse_options(["--rates", "fast"])
    assert parse_options([]).producer == ("prebuilt",)
    assert parse_options(["--tick-ms", "20"]).tick_ms == 20 and parse_options([]).tick_ms is None
    # One pre-built producer per tenant (one client each), two of kafka-python's; or as asked.
    assert [RigOptions().producers_for(k) for k in ("prebuilt", "kafka-python")] == [1, 2]
    assert RigOptions(producers=3).producers_for("prebuilt") == 3
    assert parse_options(["--producer", "prebuilt,kafka-python"]).producer == ("prebuilt", "kafka-python")
    for wrong in ("java", "prebuilt,prebuilt", ","):
        with pytest.raises(SystemExit):
            parse_options(["--producer", wrong])
