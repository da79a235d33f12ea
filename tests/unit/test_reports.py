"""The performance report format and the reporting window: pure, with an injected clock."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from mysimbdp_tasks.core.reports import Report, Reservoir, Window

pytestmark = pytest.mark.unit


def _report(**overrides: Any) -> Report:
    values: dict[str, Any] = {
        "source": "worker", "tenant": "tenant2", "window_start": 100.0, "window_end": 105.0, "messages": 1200,
        "bytes": 345_678, "avg_ms": 12.5, "max_ms": 80.25, "errors": 3, "lag": None, "avg_latency_ms": 40.0,
        "p95_latency_ms": 95.5, "max_latency_ms": 120.0, "host": "node-1", "pid": 4242,
    }
    values.update(overrides)
    return Report(**values)


def _wire(**changes: Any) -> bytes:
    obj = json.loads(_report().to_json())
    for name, value in changes.items():
        if value is _DROP:
            del obj[name]
        else:
            obj[name] = value
    return json.dumps(obj).encode()


_DROP = object()


# --- the wire format ---------------------------------------------------------------------------


@pytest.mark.parametrize("report", [
    _report(),
    _report(source="client", avg_latency_ms=None, p95_latency_ms=None, max_latency_ms=None),
    _report(source="bridge", messages=0, bytes=0, avg_ms=0.0, max_ms=0.0, lag=25_000),
    _report(tenant="tenant-é", host="hôte"),
])
def test_a_report_round_trips_through_json(report: Report) -> None:
    wire = report.to_json()
    assert isinstance(wire, bytes)
    assert Report.from_json(wire) == report
    assert Report.from_json(wire.decode()) == report


def test_whole_numbers_are_accepted_for_float_fields_and_come_back_as_floats() -> None:
    report = Report.from_json(_wire(window_start=100, avg_ms=12, p95_latency_ms=7))
    assert report.window_start == 100.0 and isinstance(report.window_start, float)
    assert isinstance(report.avg_ms, float) and isinstance(report.p95_latency_ms, float)


def test_optional_fields_may_be_absent_and_unknown_fields_are_ignored() -> None:
    wire = _wire(lag=_DROP, avg_latency_ms=_DROP, p95_latency_ms=_DROP, max_latency_ms=_DROP,
                 host=_DROP, pid=_DROP, sent_by_a_newer_version=1)
    report = Report.from_json(wire)
    assert (report.lag, report.avg_latency_ms, report.p95_latency_ms, report.max_latency_ms) == (None,) * 4
    assert (report.host, report.pid) == ("", 0)
    assert report.messages == 1200


@pytest.mark.parametrize(("wire", "message"), [
    (_wire(messages=_DROP), r"report\.messages: missing \(expected an integer\)"),
    (_wire(tenant=_DROP), r"report\.tenant: missing"),
    (_wire(source=_DROP), r"report\.source: missing"),
    (_wire(messages="1200"), r"report\.messages: expected an integer, got '1200'"),
    (_wire(messages=12.5), r"report\.messages: expected an integer"),
    (_wire(errors=True), r"report\.errors: expected an integer, got True"),
    (_wire(avg_ms="fast"), r"report\.avg_ms: expected a number, got 'fast'"),
    (_wire(lag=1.5), r"report\.lag: expected an integer"),
    (_wire(tenant=7), r"report\.tenant: expected a string"),
    (_wire(source="robot"), r"report\.source: unknown source 'robot'; expected one of client, bridge, worker"),
    (_wire(tenant=""), r"report\.tenant: must not be empty"),
    (_wire(bytes=-1), r"report\.bytes: must not be negative"),
    (_wire(window_end=99.0), r"report\.window_end: 99\.0 is before window_start 100\.0"),
    (b"[1, 2]", r"report: expected a JSON object, got list"),
    (b"{not json", r"report: not valid JSON"),
    (b"\xff\xfe", r"report: not valid JSON"),
])
def test_a_malformed_report_is_refused_with_a_message_naming_the_field(wire: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Report.from_json(wire)


def test_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match=r"report\.max_ms: expected a number, got nan"):
        Report.from_json(_wire(max_ms=float("nan")))


# --- the window --------------------------------------------------------------------------------


def _window(**kwargs: Any) -> Window:
    kwargs.setdefault("start", 1000.0)
    return Window("worker", "tenant1", 5.0, host="h", pid=1, rng=random.Random(7), **kwargs)


def test_window_averages_per_unit_and_keeps_the_maximum() -> None:
    window = _window()
    window.add(100, 10_000, 40.0)
    window.add(50, 5_000, 10.0)
    window.add(10, 1_000, 25.0)
    report = window.flush(1005.0)
    assert report is not None
    assert (report.messages, report.bytes, report.errors) == (160, 16_000, 0)
    assert report.avg_ms == pytest.approx(25.0)
    assert report.max_ms == 40.0
    assert (report.source, report.tenant, report.host, report.pid) == ("worker", "tenant1", "h", 1)
    assert (report.window_start, report.window_end) == (1000.0, 1005.0)
    assert report.avg_latency_ms is None and report.p95_latency_ms is None and report.max_latency_ms is None


def test_failed_units_count_as_errors_and_stay_out_of_the_averages() -> None:
    window = _window()
    window.add(1, 100, 10.0)
    window.add(1, 0, 0.0, error=True)
    window.add(20, 0, 5000.0, error=True)
    window.add(0, 0, 0.0, error=True)  # a failure with no message count is still one error
    report = window.flush(1001.0)
    assert report is not None
    assert (report.messages, report.bytes, report.errors) == (1, 100, 22)
    assert (report.avg_ms, report.max_ms) == (10.0, 10.0)


def test_latency_average_p95_and_maximum_on_known_data() -> None:
    window = _window()
    window.add(50, 0, 1.0, latencies_ms=[float(v) for v in range(1, 51)])
    window.add(50, 0, 3.0, latencies_ms=[float(v) for v in range(100, 50, -1)])
    report = window.flush(1002.0)
    assert report is not None
    assert report.avg_latency_ms == pytest.approx(50.5)
    assert report.p95_latency_ms == 95.0  # nearest rank: the 95th of 1..100
    assert report.max_latency_ms == 100.0
    assert report.avg_ms == 2.0


def test_the_latency_sample_is_bounded_but_the_average_and_maximum_are_exact() -> None:
    window = _window(reservoir_size=10_000)
    values = [float(v) for v in range(100_000)]
    random.Random(3).shuffle(values)
    for i in range(0, len(values), 1000):
        window.add(1000, 0, 1.0, latencies_ms=values[i:i + 1000])
    assert len(window.latencies.values) == 10_000
    report = window.flush(1003.0)
    assert report is not None
    assert report.avg_latency_ms == pytest.approx(49_999.5)
    assert report.max_latency_ms == 99_999.0
    assert report.p95_latency_ms == pytest.approx(95_000, rel=0.01)


def test_a_reservoir_fed_many_values_at_once_keeps_the_sample_one_by_one_would() -> None:
    values = [float(v) for v in range(2_500)]
    one, many = Reservoir(size=1000, rng=random.Random(5)), Reservoir(size=1000, rng=random.Random(5))
    for v in values:
        one.add(v)
    for i in range(0, len(values), 700):  # across the point where the sample is full
        many.extend(values[i:i + 700])
    many.extend([])
    assert (many.values, many.seen) == (one.values, one.seen)


def test_a_window_is_due_every_interval_and_flushing_starts_the_next() -> None:
    window = _window()
    assert not window.due(1000.0)
    assert not window.due(1004.999)
    assert window.due(1005.0)
    window.add(1, 10, 1.0)
    first = window.flush(1005.2)
    assert first is not None and (first.window_start, first.window_end) == (1000.0, 1005.2)
    assert not window.due(1010.1)
    assert window.due(1010.2)
    window.add(2, 20, 3.0)
    second = window.flush(1010.2)
    assert second is not None
    assert (second.window_start, second.window_end, second.messages, second.avg_ms) == (1005.2, 1010.2, 2, 3.0)


def test_an_empty_window_reports_nothing_unless_asked() -> None:
    quiet = _window()
    assert quiet.flush(1005.0) is None
    assert quiet.start == 1005.0  # the next window still starts at the flush

    bridge = Window("bridge", "tenant1", 5.0, start=1000.0, emit_empty=True)
    report = bridge.flush(1005.0, lag=0)
    assert report is not None
    got = (report.messages, report.bytes, report.avg_ms, report.max_ms, report.errors, report.lag)
    assert got == (0, 0, 0.0, 0.0, 0, 0)

    with_lag = _window().flush(1005.0, lag=17)
    assert with_lag is not None and with_lag.lag == 17


def test_window_refuses_an_unknown_source_or_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="unknown report source 'robot'"):
        Window("robot", "tenant1", 5.0, start=0.0)
    with pytest.raises(ValueError, match="report interval must be positive"):
        Window("client", "tenant1", 0, start=0.0)


def test_a_reservoir_percentile_uses_the_nearest_rank() -> None:
    r = Reservoir(size=100)
    assert r.percentile(95) is None
    for v in (5.0, 1.0, 3.0, 2.0, 4.0):
        r.add(v)
    assert (r.percentile(50), r.percentile(99), r.percentile(100), r.percentile(1)) == (3.0, 5.0, 5.0, 1.0)


def test_a_reservoir_keeps_early_and_late_values_alike() -> None:
    # Each of 200 values should be in a sample of 20 about 10 % of the time, wherever it came.
    rng = random.Random(11)
    counts = [0] * 200
    trials = 3000
    for _ in range(trials):
        r = Reservoir(size=20, rng=rng)
        r.extend([float(v) for v in range(150)])
        for n in range(150, 200):
            r.add(float(n))
        assert r.seen == 200 and len(r.values) == 20
        for kept in r.values:
            counts[int(kept)] += 1
    shares = [c / trials for c in counts]
    assert all(0.08 < s < 0.12 for s in shares), (min(shares), max(shares))
    early, late = sum(shares[:50]) / 50, sum(shares[150:]) / 50
    assert abs(early - late) < 0.01
