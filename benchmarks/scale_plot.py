"""The scaling benchmark's table and plot: throughput per case, and where its CPU went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plotting import pyplot, save

ROLES = ("workers", "watcher", "bridge", "producers", "cassandra", "kafka", "redis", "other")


def _label(case: dict[str, Any]) -> str:
    if case["series"] == "batch":
        return f"batch, {case['workers']} proc"
    return f"stream, {case['bridges']} part+bridge"


def _rate(case: dict[str, Any]) -> float:
    return float(case.get("rows_per_s") or case.get("msgs_per_s") or 0.0)


def table(cases: list[dict[str, Any]]) -> str:
    head = f"{'case':<24} {'units/s':>9} {'busy cores':>10}  CPU us per unit by role"
    lines = [head]
    for c in cases:
        cpu = c["cpu_us_per_unit"]
        parts = " ".join(f"{role}={cpu[role]:.0f}" for role in ROLES if cpu.get(role))
        lines.append(f"{_label(c):<24} {_rate(c):>9,.0f} {c['busy_cores']:>10.2f}  {parts}")
    return "\n".join(lines)


def render(doc: dict[str, Any], out: Path) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series_of = (("batch", "workers", "rows/s vs worker processes"), ("stream", "bridges", "msgs/s vs partitions"))
    for series, key, what in series_of:
        cases = [c for c in doc["cases"] if c["series"] == series]
        if cases:
            left.plot([c[key] for c in cases], [_rate(c) for c in cases], marker="o", label=f"{series}: {what}")
    left.set_xlabel("worker processes (batch) / partitions and bridges (stream)")
    left.set_ylabel("rows or messages per second")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    labels = [_label(c) for c in doc["cases"]]
    y = list(range(len(labels)))
    offset = [0.0] * len(labels)
    for role in ROLES:
        values = [float(c["cpu_us_per_unit"].get(role, 0.0)) for c in doc["cases"]]
        if any(values):
            right.barh(y, values, left=offset, label=role)
            offset = [a + b for a, b in zip(offset, values, strict=True)]
    right.set_yticks(y, labels)
    right.invert_yaxis()
    right.set_xlabel("CPU microseconds per row / message")
    right.grid(axis="x", alpha=0.3)
    right.legend(fontsize=7, loc="lower right")
    cores = doc.get("host", {}).get("cpus")
    return save(fig, f"scaling on {cores} cores (busy, shared machine: read the CPU per unit)", out)
