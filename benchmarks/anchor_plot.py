"""The anchors benchmark's plot, from its JSON document: rows/s, CPU per row by role, and peak RSS per loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import plotting
from .anchor_results import TARGET_VS_TOOL

COLORS = {"pipeline": "#2b6cb0", "cqlsh": "#c05621", "dsbulk": "#2f855a"}
ROLES = (("loader", "#4a5568"), ("cassandra", "#d69e2e"), ("kafka", "#805ad5"), ("redis", "#e53e3e"),
         ("rest", "#cbd5e0"))


def render(doc: dict[str, Any], out: Path) -> Path:
    plt = plotting.pyplot()
    runs = doc["runs"]
    labels = [r["case"] for r in runs]
    colors = [COLORS.get(r["tool"], "#718096") for r in runs]
    fig, (ax_rate, ax_cpu, ax_rss) = plt.subplots(1, 3, figsize=(16, 5.5), gridspec_kw={"width_ratios": [3, 3, 2]})
    y = plotting.rows_axis(ax_rate, labels, "rows per second (verified)", "throughput")
    plotting.rows_axis(ax_cpu, [""] * len(runs), "CPU microseconds per row", "where the CPU went")
    plotting.rows_axis(ax_rss, [""] * len(runs), "peak RSS (MB)", "memory")

    rates = [r["rows_per_s"] for r in runs]
    bars = ax_rate.barh(y, rates, color=colors)
    best_tool = max((r["rows_per_s"] for r in runs if r["tool"] != "pipeline"), default=0)
    top = max([*rates, TARGET_VS_TOOL * best_tool], default=1) or 1
    if best_tool:
        ax_rate.axvline(TARGET_VS_TOOL * best_tool, color="#4a5568", linestyle="--", linewidth=1,
                        label=f"target: {TARGET_VS_TOOL:g}x the best tool")
        ax_rate.legend(loc="lower right", fontsize=8)
    for bar, rate in zip(bars, rates, strict=True):
        ax_rate.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, f"{rate:,.0f}",
                     va="center", fontsize=9)
    ax_rate.set_xlim(0, top * 1.25)

    left = [0.0] * len(runs)
    for role, color in ROLES:
        widths = [r["cpu_us_per_row"].get(role, 0.0) for r in runs]
        ax_cpu.barh(y, widths, left=left, color=color, label=role if role != "loader" else "loader's own processes")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax_cpu.legend(loc="lower right", fontsize=8)

    ax_rss.barh(y, [r["peak_sum_rss_mb"] for r in runs], color=colors, alpha=0.3, label="all processes (sum)")
    ax_rss.barh(y, [r["peak_rss_mb"] for r in runs], color=colors, label="largest single process")
    ax_rss.legend(loc="lower right", fontsize=8)
    return plotting.save(fig, _title(doc), out)


_FORMATS = {"csv": "CSV", "json": "tenant2 rows as JSON Lines"}


def _title(doc: dict[str, Any]) -> str:
    r = doc.get("ratios", {})

    def x(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}x"

    return (f"mysimbdp anchors, {doc.get('started_at', '')}, {doc.get('host', {}).get('cpus', '?')} CPUs, "
            f"{doc.get('input', {}).get('mb', '?')} MB {_FORMATS.get(doc.get('format', 'csv'), 'CSV')}: pipeline is "
            + ", ".join(f"{x(r.get(f'pipeline_vs_best_{tool}'))} the best {tool}"
                        for tool in ("cqlsh", "dsbulk") if r.get(f"pipeline_vs_best_{tool}") is not None))
