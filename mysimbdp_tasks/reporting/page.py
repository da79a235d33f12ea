"""The report as one self-contained HTML page: tables, and the plots as PNGs in data: URIs.

Pure. Every value goes through :func:`_e` (``html.escape``), since file names, reasons, details
and tenant names are the tenants' own strings. No external URL: styles are inline, images embedded.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import plots

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } .muted { color: #777; } img { max-width: 100%; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{_num(c)}</td>' if isinstance(c, (int, float)) or c is None else f"<td>{_e(c)}</td>"
        for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or _empty(len(headers))}</table>"


def _empty(columns: int) -> str:
    return f'<tr><td colspan="{columns}" class="muted">none</td></tr>'


def _img(b64: str | None, alt: str) -> str:
    if b64 is None:
        return f'<p class="muted">{_e(alt)}: no data in this period.</p>'
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{b64}"></p>'


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _period(report: dict[str, Any]) -> str:
    p = report["period"]
    return (f'<p class="muted">Period: {_e(p["since"] or "all records")} to {_e(p["until"])} (UTC); '
            f"generated {_e(report['generated_at'])}.</p>")


def tenant_page(report: dict[str, Any], plot: Callable[[str, dict[str, Any]], str | None] | None = None) -> str:
    """The page of one tenant's report. ``plot(name, report)`` draws a plot (default: :mod:`.plots`)."""
    draw = plot or (lambda name, r: getattr(plots, name)(r))
    return _document(f"mysimbdp report: {report['tenant']}",
                     f"<h1>Ingestion report: tenant {_e(report['tenant'])}</h1>\n{_period(report)}\n"
                     + tenant_sections(report, draw))


def tenant_sections(report: dict[str, Any], draw: Callable[[str, dict[str, Any]], str | None]) -> str:
    b, s, lat = report["batch"], report["stream"], report["latency"]
    out = ["<h2>In and landed</h2>", _table(("", "in", "landed", "refused", "other"), [
        ("batch files", b["files_in"], b["files_done"], b["files_rejected"] + b["files_failed"],
         (f"{b['files_rejected']} rejected at admission, {b['files_failed']} failed, "
          f"{b['files_unfinished']} not finished")),
        ("batch rows", b["rows_in"], b["rows_landed"], b["rows_refused"], f"{b['bytes_processed']:,} bytes read"),
        ("stream messages", s["messages_in"], s["messages_landed"], s["messages_refused"],
         f"{s['bytes_landed']:,} bytes landed in {s['windows']} worker windows"),
    ])]
    out += ["<h2>Throughput over time</h2>", _img(draw("throughput", report), "throughput over time")]
    out += ["<h2>Refusals by reason</h2>", _img(draw("refusals", report), "refusals by reason"),
            _table(("path", "kind", "reason", "count"),
                   [(r["path"], r["kind"], r["reason"], r["count"]) for r in report["refusals"]])]
    out += ["<h2>Latency</h2>", _img(draw("latency", report), "latency distribution"),
            _table(("what", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"), [
                (name, d["count"], d["p50"], d["p95"], d["p99"], d["max"]) for name, d in (
                    ("file processing (start to done)", lat["file_processing_ms"]),
                    ("file admitted to done", lat["file_admitted_to_done_ms"]),
                    ("stream end to end (Kafka timestamp to written)", lat["stream_end_to_end_ms"]))]),
            '<p class="muted">Stream percentiles are read from merged histograms (at most 4 % high).</p>']
    q = report["quota"]
    out += [f"<h2>Quota use on {_e(q['day'])} (UTC)</h2>", _img(draw("quota", report), "quota use"),
            _table(("limit", "used", "limit", "% used"),
                   [(line["what"], line["used"], line["limit"], line["percent"]) for line in q["lines"]])]
    out += ["<h2>Slowest files</h2>", _table(("file", "status", "rows landed", "rows refused", "ms", "finished"), [
        (f["file"], f["status"], f["rows_ok"], f["rows_refused"], f["duration_ms"], f["finished_at"])
        for f in report["slowest_files"]])]
    out += ["<h2>Latest refusals</h2>", _table(("time", "path", "item", "reason", "detail"), [
        (r["ts"], r["path"], r["item"], r["reason"], r["detail"]) for r in report["recent_refusals"]])]
    t = report["throughput"]
    out += [f"<details><summary>Throughput table ({len(t['buckets'])} buckets of {t['bucket_seconds']} s)</summary>",
            _table(("start", "batch rows", "files done", "stream messages", "stream refused"), [
                (x["start"], x["batch_rows"], x["batch_files"], x["stream_messages"], x["stream_refused"])
                for x in t["buckets"]]), "</details>"]
    return "\n".join(out)


def comparison_page(lines: list[dict[str, Any]], reports: list[dict[str, Any]],
                    plot: Callable[[str, dict[str, Any]], str | None] | None = None,
                    compare_plot: Callable[[list[dict[str, Any]]], str | None] | None = None) -> str:
    """``report --all``: the tenants side by side, then each tenant's own sections."""
    draw = plot or (lambda name, r: getattr(plots, name)(r))
    image = (compare_plot or plots.comparison)(lines)
    body = ["<h1>Ingestion report: all tenants</h1>", _period(reports[0]) if reports else "",
            "<h2>Tenants side by side</h2>", _img(image, "tenants side by side"),
            _table(("tenant", "files in", "files rejected", "files failed", "rows landed", "rows refused",
                    "messages landed", "messages refused", "file p95 ms", "stream p95 ms", "quota used today"), [
                (x["tenant"], x["files_in"], x["files_rejected"], x["files_failed"], x["rows_landed"],
                 x["rows_refused"], x["messages_landed"], x["messages_refused"], x["file_p95_ms"],
                 x["stream_p95_ms"], ", ".join(f"{k} {v:g} %" for k, v in x["quota_percent"].items() if v is not None))
                for x in lines])]
    for report in reports:
        body += [f"<h1>Tenant {_e(report['tenant'])}</h1>", tenant_sections(report, draw)]
    return _document("mysimbdp report: all tenants", "\n".join(body))
