"""What the anchors benchmark measured: one run per loader and setting, the ratios, the table, the JSON.

Pure: no service, no clock. rows/s is the verified rows over the timed span of each loader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .anchor_data import Verdict
from .resources import per_row_us
from .results import cpu_cell, text_table

CORES = os.cpu_count() or 1

MIB = 1024 * 1024
SCHEMA_VERSION = 1
TARGET_VS_TOOL = 2.0  # the pipeline's rows/s over the best setting of each tool
TOOLS = ("cqlsh", "dsbulk")
LOADER = "loader"  # the CPU role of the loader's own processes (the worker pool for the pipeline)
CONTENTION_WARN = 0.15
SERVICE_ROLES = ("cassandra", "kafka", "redis")  # the roles a loader's rows cost besides its own processes


@dataclass(frozen=True)
class LoaderRun:
    """One loader, in one setting, loading the whole file into a fresh table of its own."""

    case: str  # "pipeline", "cqlsh defaults", "dsbulk tuned", ...
    tool: str  # "pipeline", "cqlsh" or "dsbulk"
    setting: str  # the options that make the setting, as given to the tool
    rows: int  # rows the loader says it loaded
    seconds: float  # the timed span (see the document's "timing")
    wall_seconds: float  # the loader's whole run, start-up included
    peak_rss_bytes: int  # the largest RSS of any one process of the loader
    peak_sum_rss_bytes: int  # the largest total RSS of the loader's processes at one instant
    cpu_s: dict[str, float]  # CPU seconds per role over the run: LOADER, cassandra, kafka, redis, rest
    verdict: Verdict
    machine_busy_pct: float | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.verdict.found / self.seconds if self.seconds > 0 and self.verdict.ok else 0.0

    @property
    def cpu_us_per_row(self) -> dict[str, float]:
        return per_row_us(self.cpu_s, self.verdict.found)

    @property
    def cpu_bound_rows_per_s(self) -> float:
        """The rate this machine's cores would allow at this run's CPU per row of the loader and the services.

        Unlike rows/s it does not depend on what else ran meanwhile, so it compares loaders on a busy machine.
        """
        per_row = self.cpu_us_per_row
        us = sum(per_row.get(role, 0.0) for role in (LOADER, *SERVICE_ROLES))
        return CORES * 1e6 / us if us > 0 and self.verdict.ok else 0.0

    @property
    def contention(self) -> float | None:
        """Share of the machine's busy CPU time used by neither the loader nor the services."""
        total = sum(self.cpu_s.values())
        return self.cpu_s.get("rest", 0.0) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case, "tool": self.tool, "setting": self.setting, "rows": self.rows,
            "seconds": round(self.seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
            "rows_per_s": round(self.rows_per_s, 1), "cpu_bound_rows_per_s": round(self.cpu_bound_rows_per_s, 1),
            "peak_rss_mb": round(self.peak_rss_bytes / MIB, 1),
            "peak_sum_rss_mb": round(self.peak_sum_rss_bytes / MIB, 1),
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()}, "cpu_us_per_row": self.cpu_us_per_row,
            "machine_busy_pct": self.machine_busy_pct, "verified": self.verdict.ok,
            "verification": self.verdict.to_dict(), "note": self.note, "details": self.details,
        }


def best(runs: Sequence[LoaderRun], tool: str) -> LoaderRun | None:
    """The fastest verified setting of ``tool``."""
    return max((r for r in runs if r.tool == tool and r.verdict.ok), key=lambda r: r.rows_per_s, default=None)


def ratios(runs: Sequence[LoaderRun]) -> dict[str, Any]:
    """The pipeline's rows/s over the best setting of each tool, and which setting that was."""
    pipeline = best(runs, "pipeline")
    out: dict[str, Any] = {}
    for tool in TOOLS:
        other = best(runs, tool)
        value = pipeline.rows_per_s / other.rows_per_s if pipeline and other and other.rows_per_s else None
        out[f"pipeline_vs_best_{tool}"] = None if value is None else round(value, 3)
        out[f"best_{tool}"] = other.case if other else None
        cpu_other = max((x.cpu_bound_rows_per_s for x in runs if x.tool == tool), default=0.0)
        cpu_pipeline = max((x.cpu_bound_rows_per_s for x in runs if x.tool == "pipeline"), default=0.0)
        out[f"pipeline_vs_best_{tool}_cpu_bound"] = (round(cpu_pipeline / cpu_other, 3)
                                                     if cpu_other and cpu_pipeline else None)
    return out


def targets(runs: Sequence[LoaderRun]) -> list[dict[str, Any]]:
    r = ratios(runs)
    out = []
    for tool in TOOLS:
        value = r[f"pipeline_vs_best_{tool}"]
        out.append({"name": f"pipeline / best {tool} (rows/s)", "goal": f">= {TARGET_VS_TOOL:g}x",
                    "measured": value, "met": None if value is None else value >= TARGET_VS_TOOL})
    return out


def report(runs: Sequence[LoaderRun], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "benchmark": "anchors", "schema_version": SCHEMA_VERSION, **meta,
        "runs": [r.to_dict() for r in runs], "ratios": ratios(runs), "targets": targets(runs),
        "verified": bool(runs) and all(r.verdict.ok for r in runs),
    }


COLUMNS = ("loader", "rows", "seconds", "rows/s", "CPU-bound rows/s", "wall s", "peak RSS MB", "sum RSS MB",
           "CPUs busy",
           "CPU us/row: own+cass+kafka+rest", "check")


def table(runs: Sequence[LoaderRun]) -> str:
    lines = [[r.case, f"{r.verdict.found:,}", f"{r.seconds:.2f}", f"{r.rows_per_s:,.0f}",
              f"{r.cpu_bound_rows_per_s:,.0f}", f"{r.wall_seconds:.1f}",
              f"{r.peak_rss_bytes / MIB:.0f}", f"{r.peak_sum_rss_bytes / MIB:.0f}",
              "-" if r.machine_busy_pct is None else f"{r.machine_busy_pct:.0f}%",
              cpu_cell(r.cpu_us_per_row, LOADER), "ok" if r.verdict.ok else "MISMATCH"] for r in runs]
    return text_table(COLUMNS, lines)


def summary(runs: Sequence[LoaderRun]) -> str:
    out = []
    for t in targets(runs):
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        measured = "-" if t["measured"] is None else f"{t['measured']:.2f}x"
        out.append(f"target {t['name']} {t['goal']}: {measured} -> {verdict}")
    found = ratios(runs)
    for tool in TOOLS:
        value = found[f"pipeline_vs_best_{tool}_cpu_bound"]
        if value is not None:
            out.append(f"at CPU per row (loader + services, {CORES} cores, independent of other work): "
                       f"pipeline / best {tool} {value:.2f}x")
    for r in runs:
        if r.setting:
            out.append(f"{r.case}: {r.setting}")
    out += [f"note ({r.case}): {r.note}" for r in runs if r.note]
    out += [f"{r.case}: {r.verdict.line()}" for r in runs if not r.verdict.ok]
    for r in runs:
        share = r.contention
        if share is not None and share > CONTENTION_WARN:
            out.append(f"warning ({r.case}): other work on the machine used {share:.0%} of the CPU time "
                       "meanwhile; its numbers are noisy")
    return "\n".join(out)
