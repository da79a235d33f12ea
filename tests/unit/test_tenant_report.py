"""The per-tenant report's pure part: period, histograms, time buckets, aggregation and the HTML page."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from mysimbdp_tasks.core import histogram
from mysimbdp_tasks.core.reports import Report, Window
from mysimbdp_tasks.reporting import aggregate, page, series
from mysimbdp_tasks.reporting.period import Period, parse_time
from mysimbdp_tasks.reporting.records import DeadLetterRecord, FileRun, Inputs, QuotaLine, StreamWindow

pytestmark = pytest.mark.unit

NOW = 1_765_000_000.0  # 2025-12-06T05:46:40Z
HOSTILE = '<script>alert("x")</script>&'


# -- period ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "back"), [("30m", 1800), ("2h", 7200), ("1d", 86400), ("90s", 90), (" 2h ", 7200)])
def test_durations_count_back_from_now(text: str, back: float) -> None:
    assert parse_time(text, NOW) == NOW - back


def test_iso_times_without_a_zone_are_utc_and_zones_are_honoured() -> None:
    assert parse_time("2026-12-06T14:00", NOW) == parse_time("2026-12-06T14:00:00Z", NOW) == 1796565600.0
    assert parse_time("2026-12-06T15:00+01:00", NOW) == 1796565600.0
    assert parse_time("2026-12-06", NOW) == 1796515200.0


@pytest.mark.parametrize("text", ["2x", "yesterday", "-2h", "", "2026-13-01", "h", "1.5h"])
def test_a_bad_time_is_refused_with_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a duration such as 30m, 2h or 1d, or an ISO time"):
        parse_time(text, NOW)


def test_since_must_be_before_until_and_days_cover_the_period() -> None:
    with pytest.raises(ValueError, match="must be before --until"):
        Period.of("2026-12-06", "2026-12-05", NOW)
    p = Period.of("2026-12-05T23:00", "2026-12-07T01:00", NOW)
    assert [d.isoformat() for d in p.days() or ()] == ["2026-12-05", "2026-12-06", "2026-12-07"]
    assert Period.of(None, None, NOW).days() is None
    assert Period.of(None, None, NOW).to_json() == {"since": None, "until": "2025-12-06T05:46:40Z"}


# -- histogram -------------------------------------------------------------------------------

def test_histogram_percentiles_are_within_four_percent_above_the_exact_ones() -> None:
    values = [float(v) for v in range(1, 5001)]
    counts = histogram.add({}, values)
    for q in (50, 95, 99):
        exact = series.percentile(values, q)
        assert exact is not None
        got = histogram.percentile(counts, q)
        assert got is not None and exact <= got <= exact * 1.04


def test_a_latency_lands_in_the_first_bucket_whose_upper_bound_holds_it() -> None:
    for b in (1, 2, 57, 300, histogram.MAX_BUCKET):
        bound = histogram.upper_bound(b)
        assert histogram.bucket_of(bound) == b
        assert histogram.bucket_of(bound * (1 + 1e-12)) == min(b + 1, histogram.MAX_BUCKET)
        assert histogram.bucket_of(histogram.lower_bound(b) * (1 + 1e-12)) == b
    assert histogram.bucket_of(1.0) == histogram.bucket_of(float("nan")) == 0
    assert histogram.bucket_of(float("inf")) == histogram.bucket_of(1e300) == histogram.MAX_BUCKET
    values = [0.5, 1.0, 1.5, 3.0, 3.0, 250.0, 1e300]
    assert histogram.add({7: 1}, values) == {0: 2, 11: 1, 29: 2, 141: 1, histogram.MAX_BUCKET: 1, 7: 1}


def test_histograms_of_windows_merge_into_the_histogram_of_all_values() -> None:
    a, b = [3.0, 40.0, 41.0], [500.0, 0.2, -7.0]  # clock skew can make a latency negative
    assert histogram.merge([histogram.add({}, a), None, histogram.add({}, b)]) == histogram.add({}, a + b)
    assert histogram.bucket_of(-7.0) == histogram.bucket_of(0.2) == 0
    assert histogram.percentile({}, 50) is None


def test_a_worker_window_keeps_its_latency_histogram_but_never_sends_it() -> None:
    w = Window("worker", "tenantX", 5, start=0.0, host="h", pid=1)
    w.add(3, 30, 2.0, latencies_ms=[10.0, 20.0, 30.0])
    report = w.flush(6.0)
    assert report is not None and report.latency_buckets == histogram.add({}, [10.0, 20.0, 30.0])
    wire = json.loads(report.to_json())
    assert "latency_buckets" not in wire
    assert Report.from_json(json.dumps({**wire, "latency_buckets": {"1": 2}})).latency_buckets is None


# -- series ----------------------------------------------------------------------------------

def test_spread_shares_an_amount_over_minutes_by_overlap_and_loses_nothing() -> None:
    shares = series.spread(1000, 30.0, 150.0, 60)  # 30 s in minute 0, 60 s in minute 1, 30 s in minute 2
    assert shares == {0: 250, 60: 500, 120: 250}
    odd = series.spread(7, 10.0, 200.0, 60)
    assert sum(odd.values()) == 7
    assert series.spread(5, 100.0, 100.0, 60) == {60: 5}
    assert series.spread(0, 0.0, 100.0, 60) == {}


def test_buckets_are_minutes_up_to_a_day_then_wider() -> None:
    assert series.bucket_seconds(0, 3600) == 60
    assert series.bucket_seconds(0, 86399) == 60
    assert series.bucket_seconds(0, 3 * 86400) == 300
    assert series.bucket_seconds(0, 400 * 86400) == 86400


# -- aggregation -----------------------------------------------------------------------------

def _inputs(name: str = "tenantX", file_name: str = "a.csv", reason: str = "bad_value",
            max_latency: float = 90.0) -> Inputs:
    t0 = NOW - 600
    files = [
        FileRun("i1", file_name, 1000, t0, t0 + 90, rows_ok=900, rows_refused=3, status="done", reason="",
                duration_ms=90_000),
        FileRun("i2", "b.csv", 500, t0 + 100, t0 + 101, rows_ok=0, rows_refused=2, status="failed",
                reason="all_rows_refused", duration_ms=1000),
        FileRun("old", "old.csv", 5, NOW - 90_000, NOW - 89_999, 7, 0, "done", "", 1000),  # before --since
    ]
    windows = [
        StreamWindow("w1", t0, t0 + 5, messages=40, bytes=4000, errors=0, avg_ingest_ms=3.0, max_latency_ms=max_latency,
                     latency_buckets=histogram.add({}, [10.0] * 30 + [80.0] * 10)),
        StreamWindow("w2", t0 + 58, t0 + 63, messages=10, bytes=1000, errors=1, avg_ingest_ms=2.0, max_latency_ms=50.0,
                     latency_buckets=histogram.add({}, [50.0] * 10)),
    ]
    events = [
        {"ts": t0 - 1, "event": "file_admitted", "ingest_id": "i1", "file": file_name},
        {"ts": t0 + 99, "event": "file_admitted", "ingest_id": "i2", "file": "b.csv"},
        {"ts": t0 + 2, "event": "file_rejected", "file": "c.json", "reason": "wrong_file_type", "limit": ".csv",
         "usage": ".json"},
        {"ts": t0 + 90, "event": "row_refused", "file": file_name, "line": 7, "reason": reason, "detail": HOSTILE},
        {"ts": t0 + 90, "event": "row_refused", "file": file_name, "line": 9, "reason": reason, "detail": "x"},
        {"ts": t0 + 101, "event": "row_refused", "file": "b.csv", "line": 2, "reason": "missing_key_column",
         "detail": "id"},
        {"ts": NOW - 90_000, "event": "file_rejected", "file": "old.json", "reason": "file_too_large"},
    ]
    dead = [DeadLetterRecord(t0 + 60, "bad_json", HOSTILE, f"{name}.ingest:0:5"),
            DeadLetterRecord(t0 + 61, "bad_json", "y", f"{name}.ingest:1:9"),
            DeadLetterRecord(t0 + 62, "daily_messages_exceeded", "quota", f"{name}.ingest:2:1")]
    quota = [QuotaLine("files", 3, 500), QuotaLine("MB", 0.002, 2048.0), QuotaLine("messages", 53, 50)]
    return Inputs(name, True, True, files, windows, events, dead, quota, "2025-12-06")


def _report(**kwargs: Any) -> dict[str, Any]:
    return aggregate.build(_inputs(**kwargs), Period(NOW - 3600, NOW), NOW)


def test_batch_and_stream_counts_in_the_period() -> None:
    r = _report()
    assert r["batch"] == {"enabled": True, "files_in": 3, "files_admitted": 2, "files_rejected": 1, "files_done": 1,
                          "files_failed": 1, "files_unfinished": 0, "bytes_processed": 1500, "rows_in": 905,
                          "rows_landed": 900, "rows_refused": 5}
    assert r["stream"] == {"messages_in": 53, "messages_landed": 50, "messages_refused": 3, "bytes_landed": 5000,
                           "windows": 2}


def test_refusals_by_kind_and_reason_with_rows_beyond_the_listed_ones_not_itemized() -> None:
    got = {(x["path"], x["kind"], x["reason"]): x["count"] for x in _report()["refusals"]}
    assert got == {("batch", "file rejected", "wrong_file_type"): 1, ("batch", "file failed", "all_rows_refused"): 1,
                   ("batch", "row", "bad_value"): 2, ("batch", "row", "missing_key_column"): 1,
                   ("batch", "row", "not_itemized"): 2, ("stream", "message", "bad_json"): 2,
                   ("stream", "message", "daily_messages_exceeded"): 1}


def test_latency_percentiles_of_files_and_of_stream_messages() -> None:
    lat = _report()["latency"]
    assert lat["file_processing_ms"]["count"] == 2
    assert (lat["file_processing_ms"]["p50"], lat["file_processing_ms"]["max"]) == (1000.0, 90000.0)
    assert lat["file_admitted_to_done_ms"]["max"] == 91000.0
    stream = lat["stream_end_to_end_ms"]
    assert stream["count"] == 50 and stream["max"] == 90.0
    assert 10.0 <= stream["p50"] <= 10.4 and 80.0 <= stream["p95"] <= 83.2 and 80.0 <= stream["p99"] <= 83.2
    clamped = aggregate.build(_inputs(max_latency=80.0), Period(NOW - 3600, NOW), NOW)["latency"]
    assert clamped["stream_end_to_end_ms"]["p99"] == 80.0  # never above the largest latency seen
    assert sum(h[2] for h in stream["histogram"]) == 50


def test_throughput_buckets_add_up_to_what_landed_and_was_refused() -> None:
    t = _report()["throughput"]
    assert t["bucket_seconds"] == 60
    assert sum(b["batch_rows"] for b in t["buckets"]) == 900
    assert sum(b["stream_messages"] for b in t["buckets"]) == 50
    assert sum(b["stream_refused"] for b in t["buckets"]) == 3
    assert sum(b["batch_files"] for b in t["buckets"]) == 2
    assert max(b["batch_rows"] for b in t["buckets"]) < 900  # a 90 s file spreads over two minutes


def test_without_since_every_record_counts() -> None:
    r = aggregate.build(_inputs(), Period(None, NOW), NOW)
    assert r["batch"]["rows_landed"] == 907 and r["batch"]["files_rejected"] == 2


def test_quota_in_percent_and_comparison_lines() -> None:
    r = _report()
    assert [(q["what"], q["percent"]) for q in r["quota"]["lines"]] == [("files", 0.6), ("MB", 0.0),
                                                                         ("messages", 106.0)]
    line = aggregate.compare([r])[0]
    assert line["rows_landed"] == 900 and line["messages_refused"] == 3 and line["quota_percent"]["messages"] == 106.0


def test_an_empty_tenant_reports_zeros_and_no_data() -> None:
    r = aggregate.build(Inputs("empty", True, False), Period(None, NOW), NOW)
    assert r["batch"]["files_in"] == 0 and r["stream"]["messages_in"] == 0
    assert r["throughput"]["buckets"] == [] and r["latency"]["stream_end_to_end_ms"]["p95"] is None
    html = page.tenant_page(r)
    assert "no data in this period" in html


# -- the page ----------------------------------------------------------------------------------

def _images(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_the_page_embeds_four_png_plots_and_fetches_nothing() -> None:
    html = page.tenant_page(_report())
    images = _images(html)
    assert len(images) == 4 and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html)
    assert "<link" not in html and "<script" not in html.lower()


def test_every_tenant_string_in_the_page_is_escaped() -> None:
    r = _report(name=HOSTILE, file_name=f"{HOSTILE}.csv", reason=f"{HOSTILE} $x^2$")
    for html in (page.tenant_page(r), page.comparison_page(aggregate.compare([r]), [r])):
        assert "<script" not in html.lower()
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
        assert len(_images(html)) >= 4  # a reason with $ and < still plots (no mathtext)


def test_the_comparison_page_has_a_table_row_and_a_plot_per_tenant() -> None:
    reports = [_report(name="alpha"), _report(name="beta")]
    html = page.comparison_page(aggregate.compare(reports), reports)
    assert html.count("<h1>Tenant ") == 2
    assert len(_images(html)) == 1 + 4 * 2
    assert re.search(r"<td>alpha</td>.*<td>beta</td>", html, re.DOTALL)


def test_amounts_are_written_without_exponents() -> None:
    assert [series.amount(v) for v in (5_000_000, 2048.0, 0.341, 2.4506, 0)] == ["5,000,000", "2,048", "0.341",
                                                                                   "2.451", "0"]
