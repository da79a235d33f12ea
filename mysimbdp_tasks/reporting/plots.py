"""The report's plots: matplotlib figures rendered to PNG, returned base64-encoded for a data: URI.

Pure (no service, no pyplot and its global state: each plot is its own ``Figure``, which draws to
PNG with the Agg renderer and needs no display). Labels hold tenant-controlled strings (reasons,
tenant names): :func:`_label` escapes their ``$`` so that matplotlib never reads them as mathtext.
A plot without data is None; the page says so instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from typing import Any

from matplotlib import dates, rc_context, ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .series import amount

BATCH, STREAM, REFUSED, LIMIT = "#1f77b4", "#2ca02c", "#d62728", "#7f7f7f"
_RC: Any = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
MAX_LABEL = 60
LABELLED_BUCKETS = 15


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(text: str) -> str:
    """A tenant's string as plain text in a plot: shortened, and its ``$`` escaped (no mathtext)."""
    short = text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"
    return short.replace("$", r"\$")


def throughput(report: dict[str, Any]) -> str | None:
    """Batch rows, stream messages and refused messages per time bucket, as bars side by side."""
    data = report["throughput"]
    if not data["buckets"]:
        return None
    size = data["bucket_seconds"]
    starts = dates.date2num([dt.datetime.fromisoformat(b["start"]) for b in data["buckets"]])
    unit = "minute" if size == 60 else f"{size // 60} minutes"
    shown = [(key, label, color) for key, label, color in (
        ("batch_rows", "batch rows landed", BATCH), ("stream_messages", "stream messages landed", STREAM),
        ("stream_refused", "stream messages refused", REFUSED)) if any(b[key] for b in data["buckets"])]
    width = size / 86400 / max(1, len(shown))  # matplotlib dates are in days
    with rc_context(_RC):
        fig = Figure(figsize=(9, 3.6))
        ax = fig.subplots()
        for i, (key, label, color) in enumerate(shown):
            values = [b[key] for b in data["buckets"]]
            bars = ax.bar(starts + i * width, values, width=width, align="edge", label=label, color=color)
            if len(values) <= LABELLED_BUCKETS:  # few bars: their numbers, so a small one is still seen
                ax.bar_label(bars, labels=[amount(v) if v else "" for v in values], padding=2, fontsize=7)
        ax.xaxis_date(tz="UTC")
        # A tick at the start of every bucket (or every few), so each group of bars sits after its tick.
        step = math.ceil(len(starts) / 12)
        ax.xaxis.set_major_locator(ticker.MultipleLocator(step * size / 86400))
        span_days = len(starts) * size / 86400
        ax.xaxis.set_major_formatter(dates.DateFormatter("%H:%M" if span_days <= 1 else "%m-%d %H:%M", tz=dt.UTC))
        ax.set_xlim(starts[0], starts[-1] + size / 86400)
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_ylabel(f"per {unit}")
        ax.set_xlabel(f"time (UTC): the {unit} starting at each tick")
        ax.set_title(f"{_label(report['tenant'])}: throughput per {unit}")
        if shown:
            ax.legend(loc="best")
        ax.grid(axis="y", alpha=0.3)
        fig.autofmt_xdate()
        return _png(fig)


def refusals(report: dict[str, Any]) -> str | None:
    """Refusals by kind and reason, as horizontal bars (batch blue, stream green)."""
    lines = report["refusals"]
    if not lines:
        return None
    lines = list(reversed(lines[:20]))  # most frequent at the top
    with rc_context(_RC):
        fig = Figure(figsize=(9, 0.9 + 0.32 * len(lines)))
        ax = fig.subplots()
        labels = [_label(f"{r['path']} {r['kind']}: {r['reason']}") for r in lines]
        bars = ax.barh(range(len(lines)), [r["count"] for r in lines],
                       color=[BATCH if r["path"] == "batch" else STREAM for r in lines])
        ax.set_yticks(range(len(lines)), labels)
        ax.bar_label(bars, padding=3)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("refused")
        ax.set_title(f"{_label(report['tenant'])}: refusals by reason")
        return _png(fig)


def latency(report: dict[str, Any]) -> str | None:
    """The distribution of file processing times and of stream end-to-end latency, with p50/p95/p99."""
    files = report["latency"]["file_processing_ms"]
    stream = report["latency"]["stream_end_to_end_ms"]
    panels = [name for name, stats in (("files", files), ("stream", stream)) if stats["count"]]
    if not panels:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(9, 3.4))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            if panel == "files":
                ax.hist(files["values"], bins=min(30, max(5, len(files["values"]))), color=BATCH)
                _marks(ax, files)
                ax.set_title(f"file processing time ({files['count']} files)")
                ax.set_ylabel("files")
            else:
                lows = [max(h[0], 0.5) for h in stream["histogram"]]
                widths = [h[1] - low for h, low in zip(stream["histogram"], lows, strict=True)]
                ax.bar(lows, [h[2] for h in stream["histogram"]], width=widths, align="edge", color=STREAM)
                if max(h[1] for h in stream["histogram"]) > 20 * min(lows):
                    ax.set_xscale("log")  # buckets are logarithmic: equal widths on a log axis
                _marks(ax, stream)
                ax.set_title(f"stream end-to-end latency ({stream['count']} messages)")
                ax.set_ylabel("messages")
            ax.set_xlabel("milliseconds")
            if ax.get_xscale() == "linear":
                ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: amount(round(x, 1))))
            ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            ax.legend(loc="best", fontsize=8)
        fig.suptitle(f"{_label(report['tenant'])}: latency distribution")
        return _png(fig)


def _marks(ax: Axes, stats: dict[str, Any]) -> None:
    for q, style in (("p50", ":"), ("p95", "--"), ("p99", "-.")):
        if stats.get(q) is not None:
            ax.axvline(stats[q], color="black", linestyle=style, linewidth=1, label=f"{q} {amount(stats[q])} ms")


def quota(report: dict[str, Any]) -> str | None:
    """Today's use of each daily limit, in percent, labelled with used / limit."""
    lines = [q for q in report["quota"]["lines"] if q["limit"]]
    if not lines:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(9, 0.9 + 0.45 * len(lines)))
        ax = fig.subplots()
        percents = [q["percent"] for q in lines]
        bars = ax.barh(range(len(lines)), percents, color=[REFUSED if p >= 100 else BATCH for p in percents])
        ax.set_yticks(range(len(lines)), [q["what"] for q in lines])
        ax.bar_label(bars, labels=[f"{amount(q['used'])} / {amount(q['limit'])} ({amount(q['percent'])} %)"
                                   for q in lines], padding=3)
        ax.axvline(100, color=LIMIT, linestyle="--", linewidth=1)
        ax.set_xlim(0, max(110.0, max(percents) * 1.35))
        ax.set_xlabel("% of the daily limit used")
        ax.set_title(f"{_label(report['tenant'])}: quota use on {report['quota']['day']} (UTC)")
        return _png(fig)


def comparison(lines: list[dict[str, Any]]) -> str | None:
    """``report --all``: what landed (left) and what was refused (right), per tenant, side by side."""
    if not lines:
        return None
    names = [_label(line["tenant"]) for line in lines]
    panels = (
        ("landed", (("rows_landed", "batch rows", BATCH), ("messages_landed", "stream messages", STREAM))),
        ("refused", (("files_refused", "batch files", "#9467bd"), ("rows_refused", "batch rows", BATCH),
                     ("messages_refused", "stream messages", STREAM))),
    )
    with rc_context(_RC):
        fig = Figure(figsize=(max(8.0, 2.4 * len(lines) + 4), 3.8))
        for ax, (title, series) in zip(fig.subplots(1, 2), panels, strict=True):
            width = 0.8 / len(series)
            for i, (key, label, color) in enumerate(series):
                xs = [n + (i - (len(series) - 1) / 2) * width for n in range(len(lines))]
                values = [line["files_rejected"] + line["files_failed"] if key == "files_refused" else line[key]
                          for line in lines]
                bars = ax.bar(xs, values, width=width, label=label, color=color)
                ax.bar_label(bars, labels=[amount(v) for v in values], padding=2, fontsize=7)
            ax.set_xticks(range(len(lines)), names)
            ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            ax.margins(y=0.15)
            ax.set_title(title)
            ax.legend(loc="best", fontsize=8)
        fig.suptitle("tenants side by side")
        return _png(fig)
