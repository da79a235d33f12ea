"""From a tenant's records to its report: batch and stream together, as one JSON-ready dict.

Pure: :func:`build` takes the records (:mod:`.records`) and the period and does no I/O. Batch files
count in the period by when they finished, stream windows by when they ended, refusals by when they
were refused; throughput spreads each file's rows over the time it took and each window's messages
over its window. Row refusals are itemized by reason from the event log, which lists the first 1000
of a file (as its receipt does); the rest count as ``not_itemized``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core import histogram
from . import series
from .period import Period, iso
from .records import Inputs

RECENT = 20  # refusals listed one by one
SLOWEST = 10
NOT_ITEMIZED = "not_itemized"


def build(inputs: Inputs, period: Period, now: float) -> dict[str, Any]:
    files = [f for f in inputs.files if period.holds(f.finished_at)]
    windows = [w for w in inputs.windows if period.holds(w.window_end)]
    events = [e for e in inputs.events if period.holds(_ts(e))]
    dead = [d for d in inputs.dead if period.holds(d.ts)]
    report: dict[str, Any] = {
        "tenant": inputs.tenant, "period": period.to_json(), "generated_at": iso(now),
        "paths": {"batch": inputs.batch, "stream": inputs.stream},
        "batch": _batch(inputs, files, events),
        "stream": _stream(windows, dead),
        "refusals": _refusals(files, events, dead),
        "latency": _latency(files, windows, events),
        "quota": _quota(inputs),
        "throughput": _throughput(files, windows, dead),
        "slowest_files": [
            {"file": f.file, "status": f.status, "rows_ok": f.rows_ok, "rows_refused": f.rows_refused,
             "duration_ms": round(f.duration_ms, 1), "finished_at": iso(f.finished_at)}
            for f in sorted(files, key=lambda f: f.duration_ms, reverse=True)[:SLOWEST]],
        "recent_refusals": _recent(events, dead),
    }
    return report


def _ts(event: dict[str, Any]) -> float | None:
    ts = event.get("ts")
    return float(ts) if isinstance(ts, (int, float)) else None


def _batch(inputs: Inputs, files: list[Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = Counter(e.get("event") for e in events)
    finished = len(files)
    admitted = max(kinds["file_admitted"], finished)  # events live on the watcher's host; the table is shared
    rows_ok = sum(f.rows_ok for f in files)
    rows_refused = sum(f.rows_refused for f in files)
    return {
        "enabled": inputs.batch, "files_in": admitted + kinds["file_rejected"], "files_admitted": admitted,
        "files_rejected": kinds["file_rejected"], "files_done": sum(1 for f in files if f.status == "done"),
        "files_failed": sum(1 for f in files if f.status != "done"), "files_unfinished": admitted - finished,
        "bytes_processed": sum(f.size_bytes for f in files), "rows_in": rows_ok + rows_refused,
        "rows_landed": rows_ok, "rows_refused": rows_refused,
    }


def _stream(windows: list[Any], dead: list[Any]) -> dict[str, Any]:
    landed = sum(w.messages for w in windows)
    return {"messages_in": landed + len(dead), "messages_landed": landed, "messages_refused": len(dead),
            "bytes_landed": sum(w.bytes for w in windows), "windows": len(windows)}


def _refusals(files: list[Any], events: list[dict[str, Any]], dead: list[Any]) -> list[dict[str, Any]]:
    """Refusals by kind and reason, most frequent first: files at admission, failed files, rows, messages."""
    rejected = Counter(str(e.get("reason") or "?") for e in events if e.get("event") == "file_rejected")
    failed = Counter(f.reason or "?" for f in files if f.status != "done")
    rows = Counter(str(e.get("reason") or "?") for e in events if e.get("event") == "row_refused")
    unlisted = sum(f.rows_refused for f in files) - sum(rows.values())
    if unlisted > 0:
        rows[NOT_ITEMIZED] += unlisted
    messages = Counter(d.reason for d in dead)
    out: list[dict[str, Any]] = []
    for path, kind, counts in (("batch", "file rejected", rejected), ("batch", "file failed", failed),
                               ("batch", "row", rows), ("stream", "message", messages)):
        out.extend({"path": path, "kind": kind, "reason": reason, "count": n} for reason, n in counts.items())
    return sorted(out, key=lambda r: (-r["count"], r["path"], r["kind"], r["reason"]))


def _latency(files: list[Any], windows: list[Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    admitted = {e.get("ingest_id"): _ts(e) for e in events if e.get("event") == "file_admitted"}
    waits = [(f.finished_at - admitted[f.ingest_id]) * 1000 for f in files if admitted.get(f.ingest_id) is not None]
    buckets = histogram.merge(w.latency_buckets for w in windows)
    maxima = [w.max_latency_ms for w in windows if w.max_latency_ms is not None]
    most = max(maxima) if maxima else None

    def pct(q: float) -> float | None:  # a bucket's upper bound, but never above the largest value seen
        found = histogram.percentile(buckets, q)
        return _r(found if found is None or most is None else min(found, most))

    stream: dict[str, Any] = {
        "count": histogram.total(buckets), "p50": pct(50), "p95": pct(95), "p99": pct(99), "max": _r(most),
        "histogram": [[_r(histogram.lower_bound(b)), _r(histogram.upper_bound(b)), buckets[b]]
                      for b in sorted(buckets)],
        "windows_without_histogram": sum(1 for w in windows if w.messages and w.latency_buckets is None),
    }
    return {
        "file_processing_ms": {**series.summary(f.duration_ms for f in files),
                               "values": sorted(round(f.duration_ms, 1) for f in files)},
        "file_admitted_to_done_ms": series.summary(waits),
        "stream_end_to_end_ms": stream,
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _quota(inputs: Inputs) -> dict[str, Any]:
    lines = [{"what": q.what, "used": q.used, "limit": q.limit,
              "percent": round(100 * q.used / q.limit, 1) if q.limit else None} for q in inputs.quota]
    return {"day": inputs.quota_day, "lines": lines}


def _throughput(files: list[Any], windows: list[Any], dead: list[Any]) -> dict[str, Any]:
    times = [t for f in files for t in (f.started_at, f.finished_at)]
    times += [t for w in windows for t in (w.window_start, w.window_end)] + [d.ts for d in dead]
    if not times:
        return {"bucket_seconds": 60, "buckets": []}
    size = series.bucket_seconds(min(times), max(times))
    rows: dict[int, int] = {}
    done: Counter[int] = Counter()
    messages: dict[int, int] = {}
    for f in files:
        series.add_into(rows, series.spread(f.rows_ok, f.started_at, f.finished_at, size))
        done[series.floor_to(f.finished_at, size)] += 1
    for w in windows:
        series.add_into(messages, series.spread(w.messages, w.window_start, w.window_end, size))
    refused = Counter(series.floor_to(d.ts, size) for d in dead)
    return {"bucket_seconds": size, "buckets": [
        {"start": iso(b), "batch_rows": rows.get(b, 0), "batch_files": done[b], "stream_messages": messages.get(b, 0),
         "stream_refused": refused[b]}
        for b in series.bucket_starts(min(times), max(times), size)]}


def _recent(events: list[dict[str, Any]], dead: list[Any]) -> list[dict[str, Any]]:
    """The latest refusals one by one: which file or message, and why."""
    items: list[dict[str, Any]] = []
    for e in events:
        if e.get("event") == "file_rejected":
            items.append({"ts": _ts(e), "path": "batch", "item": str(e.get("file", "")),
                          "reason": str(e.get("reason", "")), "detail": f"limit {e.get('limit', '')}, "
                                                                         f"usage {e.get('usage', '')}"})
        elif e.get("event") == "row_refused":
            items.append({"ts": _ts(e), "path": "batch", "item": f"{e.get('file', '')} line {e.get('line', '?')}",
                          "reason": str(e.get("reason", "")), "detail": str(e.get("detail", ""))})
    items += [{"ts": d.ts, "path": "stream", "item": f"message {d.source or '?'}", "reason": d.reason,
               "detail": d.detail} for d in dead]
    latest = sorted(items, key=lambda i: i["ts"] or 0.0)[-RECENT:]
    return [{**i, "ts": iso(i["ts"]) if i["ts"] is not None else None} for i in reversed(latest)]


def compare(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per tenant, for ``report --all``: the headline numbers side by side."""
    lines = []
    for r in reports:
        b, s, lat = r["batch"], r["stream"], r["latency"]
        quota = {q["what"]: q["percent"] for q in r["quota"]["lines"]}
        lines.append({
            "tenant": r["tenant"], "files_in": b["files_in"], "files_rejected": b["files_rejected"],
            "files_failed": b["files_failed"], "rows_landed": b["rows_landed"], "rows_refused": b["rows_refused"],
            "messages_landed": s["messages_landed"], "messages_refused": s["messages_refused"],
            "file_p95_ms": lat["file_processing_ms"]["p95"], "stream_p95_ms": lat["stream_end_to_end_ms"]["p95"],
            "quota_percent": quota,
        })
    return lines
