"""The batch benchmark's plot: rows/s per case, and peak memory per case, from the JSON document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import plotting
from .results import TARGET_RSS_MB, TARGET_VS_BASELINE

COLORS = {"pipeline": "#2b6cb0", "baseline": "#c05621", "raw": "#2f855a"}


def render(doc: dict[str, Any], out: Path) -> Path:
    plt = plotting.pyplot()

    ms = doc["measurements"]
    labels = [m["case"].replace(" (prefix)", "\n(prefix)") for m in ms]
    colors = [COLORS.get(m["kind"], "#718096") for m in ms]
    fig, (ax_rate, ax_rss) = plt.subplots(1, 2, figsize=(14, 6.2), gridspec_kw={"width_ratios": [3, 2]})

    y = range(len(ms))
    bars = ax_rate.barh(y, [m["rows_per_s"] for m in ms], color=colors)
    ax_rate.set_yticks(list(y), labels)
    ax_rate.invert_yaxis()
    ax_rate.set_xlabel("rows per second (end to end)")
    ax_rate.set_title("throughput")
    baseline = next((m["rows_per_s"] for m in ms if m["kind"] == "baseline"), None)
    goal = TARGET_VS_BASELINE * baseline if baseline else None
    top = max([m["rows_per_s"] for m in ms] + ([goal] if goal else []), default=1)
    if goal:
        ax_rate.axvline(goal, color="#4a5568", linestyle="--", linewidth=1,
                        label=f"target: {TARGET_VS_BASELINE:g}x the naive baseline")
        ax_rate.legend(loc="lower right", fontsize=8)
    for bar, m in zip(bars, ms, strict=True):
        ax_rate.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2,
                     f"{m['rows_per_s']:,.0f}  ({m['mb_per_s']:.2f} MB/s)", va="center", fontsize=9)
    ax_rate.set_xlim(0, top * 1.35)
    ax_rate.grid(axis="x", alpha=0.3)

    ax_rss.barh(y, [m["peak_sum_rss_mb"] for m in ms], color=colors, alpha=0.3, label="all processes (sum)")
    ax_rss.barh(y, [m["peak_rss_mb"] for m in ms], color=colors, label="largest single process")
    ax_rss.set_yticks(list(y), [""] * len(ms))
    ax_rss.invert_yaxis()
    ax_rss.set_xlabel("peak RSS (MB)")
    ax_rss.set_title("memory")
    for i, m in enumerate(ms):
        ax_rss.text(m["peak_sum_rss_mb"] * 1.02 + 2, i, f"{m['peak_rss_mb']:.0f} / {m['peak_sum_rss_mb']:.0f}",
                    va="center", fontsize=9)
    ax_rss.axvline(TARGET_RSS_MB, color="#4a5568", linestyle="--", linewidth=1,
                   label=f"target: any worker process <= {TARGET_RSS_MB:g} MB")
    ax_rss.set_xlim(0, max([m["peak_sum_rss_mb"] for m in ms] + [TARGET_RSS_MB]) * 1.6)
    ax_rss.legend(loc="lower right", fontsize=8)
    ax_rss.grid(axis="x", alpha=0.3)

    return plotting.save(fig, _title(doc), out)


def _title(doc: dict[str, Any]) -> str:
    r = doc.get("ratios", {})
    host = doc.get("host", {})

    def x(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}x"

    return (f"mysimbdp batch benchmark, {doc.get('started_at', '')}, {host.get('cpus', '?')} CPUs: "
            f"{r.get('largest_case') or 'largest CSV'} is {x(r.get('pipeline_vs_baseline'))} the naive baseline, "
            f"{x(r.get('pipeline_vs_raw'))} the raw driver")
