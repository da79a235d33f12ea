"""What a batch benchmark run measured: measurements, ratios, targets, the table and the JSON.

Pure: no service, no clock. ``rows/s`` is rows landed per wall-clock second of the measured span;
MB means a mebibyte (1,048,576 bytes), as everywhere in the platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
PIPELINE, BASELINE, RAW = "pipeline", "baseline", "raw"
KINDS = (PIPELINE, BASELINE, RAW)
SCHEMA_VERSION = 1
# The product owner's targets for the largest CSV file.
TARGET_VS_BASELINE = 30.0
TARGET_VS_RAW = 1.0
TARGET_RSS_MB = 300.0
CONTENTION_WARN = 0.15  # above this share of CPU time used by other work, a case is flagged as noisy


@dataclass(frozen=True)
class Measurement:
    """One measured case: ``rows`` landed from ``bytes`` of input in ``seconds``."""

    case: str  # short label, e.g. "pipeline csv 50 MB"
    kind: str  # one of KINDS
    fmt: str  # "csv" or "json"
    size_mb: float  # the input file's size (the whole file, also for a prefix run)
    rows: int
    bytes: int  # bytes the measured rows came from (for a prefix run: estimated, see ``note``)
    seconds: float
    peak_rss_bytes: int  # the largest RSS of any one process doing the work
    peak_sum_rss_bytes: int  # the largest total RSS of all those processes at one instant
    expected_rows: int  # distinct keys of what was ingested
    rows_in_cassandra: int  # counted after the run in the case's own table
    note: str = ""
    machine_busy_pct: float | None = None  # how busy all the machine's CPUs were meanwhile
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MIB / self.seconds if self.seconds > 0 else 0.0

    @property
    def verified(self) -> bool:
        return self.rows == self.expected_rows == self.rows_in_cassandra

    @property
    def role(self) -> str:
        """Whose CPU the case's sampled processes are: the worker pool's, or the reference writer's."""
        return "workers" if self.kind == PIPELINE else "client"

    @property
    def cpu_us_per_row(self) -> dict[str, float]:
        """CPU microseconds per row landed, per role: the case's processes (``workers`` or ``client``),
        each service sampled beside it (``cassandra``, ``kafka``, ``redis``) and ``rest`` of the machine."""
        usage = self.details.get("usage") or {}
        if not usage or not self.rows:
            return {}
        others = usage.get("others_cpu_s") or {}
        cpu = {self.role: usage["cpu_s"], **others, "rest": usage.get("elsewhere_cpu_s", 0.0)}
        return {role: round(float(s) / self.rows * 1e6, 1) for role, s in cpu.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case, "kind": self.kind, "format": self.fmt, "size_mb": round(self.size_mb, 3),
            "rows": self.rows, "bytes": self.bytes, "mb": round(self.bytes / MIB, 3),
            "seconds": round(self.seconds, 3), "rows_per_s": round(self.rows_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 3), "peak_rss_mb": round(self.peak_rss_bytes / MIB, 1),
            "peak_sum_rss_mb": round(self.peak_sum_rss_bytes / MIB, 1), "expected_rows": self.expected_rows,
            "rows_in_cassandra": self.rows_in_cassandra, "verified": self.verified, "note": self.note,
            "machine_busy_pct": self.machine_busy_pct, "cpu_us_per_row": self.cpu_us_per_row,
            "details": self.details,
        }


@dataclass(frozen=True)
class Target:
    name: str
    goal: str  # human text, e.g. ">= 30x"
    measured: float | None  # None when the run did not measure it
    met: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "goal": self.goal,
                "measured": None if self.measured is None else round(self.measured, 2), "met": self.met}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def largest_pipeline(measurements: Sequence[Measurement], fmt: str = "csv") -> Measurement | None:
    """The pipeline case on the largest ``fmt`` file: the one the targets speak of."""
    cases = [m for m in measurements if m.kind == PIPELINE and m.fmt == fmt]
    return max(cases, key=lambda m: m.size_mb, default=None)


def one(measurements: Sequence[Measurement], kind: str) -> Measurement | None:
    return next((m for m in measurements if m.kind == kind), None)


def ratios(measurements: Sequence[Measurement]) -> dict[str, Any]:
    """rows/s of each CSV pipeline case over the baseline, and of the largest one over the raw driver.

    Only CSV cases are compared: the baseline and the raw reference ingest the CSV tenant's rows, and
    a JSON row of the other tenant is a different amount of work.
    """
    baseline, raw = one(measurements, BASELINE), one(measurements, RAW)
    largest = largest_pipeline(measurements)
    per_size = {}
    for m in measurements:
        if m.kind == PIPELINE and m.fmt == "csv" and baseline is not None:
            per_size[m.case] = _ratio(m.rows_per_s, baseline.rows_per_s)
    return {
        "largest_case": largest.case if largest else None,
        "pipeline_vs_baseline": _ratio(largest.rows_per_s, baseline.rows_per_s) if largest and baseline else None,
        "pipeline_vs_raw": _ratio(largest.rows_per_s, raw.rows_per_s) if largest and raw else None,
        "per_size_vs_baseline": per_size,
    }


def targets(measurements: Sequence[Measurement], min_vs_baseline: float = TARGET_VS_BASELINE,
            min_vs_raw: float = TARGET_VS_RAW, max_worker_rss_mb: float = TARGET_RSS_MB) -> list[Target]:
    """The product owner's targets, on the largest CSV file."""
    r = ratios(measurements)
    largest = largest_pipeline(measurements)
    rss = largest.peak_rss_bytes / MIB if largest else None

    def target(name: str, goal: str, value: float | None, ok: bool) -> Target:
        return Target(name, goal, value, None if value is None else ok)

    vs_base, vs_raw = r["pipeline_vs_baseline"], r["pipeline_vs_raw"]
    return [
        target("pipeline / naive baseline (rows/s)", f">= {min_vs_baseline:g}x", vs_base,
               vs_base is not None and vs_base >= min_vs_baseline),
        target("pipeline / raw driver (rows/s)", f">= {min_vs_raw:g}x", vs_raw,
               vs_raw is not None and vs_raw >= min_vs_raw),
        target("worker peak RSS, any process (MB)", f"<= {max_worker_rss_mb:g}", rss,
               rss is not None and rss <= max_worker_rss_mb),
    ]


def report(measurements: Sequence[Measurement], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a run."""
    return {
        "benchmark": "batch",
        "schema_version": SCHEMA_VERSION,
        **meta,
        "measurements": [m.to_dict() for m in measurements],
        "ratios": _rounded(ratios(measurements)),
        "targets": [t.to_dict() for t in targets(measurements)],
        "verified": all(m.verified for m in measurements),
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


# -- text --------------------------------------------------------------------------------------

COLUMNS = ("case", "rows", "MB", "seconds", "rows/s", "MB/s", "peak RSS MB", "sum RSS MB", "CPUs busy",
           "CPU us/row: own+cass+kafka+rest", "check")
CPU_ROLES = ("cassandra", "kafka", "rest")  # after the case's own role, in the table's CPU column


def cpu_cell(per_row: dict[str, float], own: str) -> str:
    """``24+27+1+3``: CPU microseconds per row of the case's own role, Cassandra, Kafka and the rest."""
    if not per_row:
        return "-"
    return "+".join(f"{per_row.get(role, 0.0):.0f}" for role in (own, *CPU_ROLES))


def text_table(columns: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A fixed-width table: the first column left-aligned, the last free, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(columns, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths[:-1])) + "  {}"
    out = [fmt.format(*columns), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def table(measurements: Sequence[Measurement]) -> str:
    """A fixed-width table, one line per measurement."""
    lines = [[m.case, f"{m.rows:,}", f"{m.bytes / MIB:.1f}", f"{m.seconds:.2f}", f"{m.rows_per_s:,.0f}",
              f"{m.mb_per_s:.2f}", f"{m.peak_rss_bytes / MIB:.0f}", f"{m.peak_sum_rss_bytes / MIB:.0f}",
              "-" if m.machine_busy_pct is None else f"{m.machine_busy_pct:.0f}%", cpu_cell(m.cpu_us_per_row, m.role),
              "ok" if m.verified else f"MISMATCH ({m.rows_in_cassandra:,} in table, {m.expected_rows:,} expected)"]
             for m in measurements]
    return text_table(COLUMNS, lines)


def summary(measurements: Sequence[Measurement]) -> str:
    """Ratios and targets in words, plus the notes of the cases that have one."""
    r = ratios(measurements)
    out = []
    for case, value in r["per_size_vs_baseline"].items():
        out.append(f"{case} / naive baseline: {_x(value)}")
    if r["largest_case"]:
        out.append(f"{r['largest_case']} / raw driver: {_x(r['pipeline_vs_raw'])}")
    for t in targets(measurements):
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t.met]
        measured = "-" if t.measured is None else f"{t.measured:.2f}"
        out.append(f"target {t.name} {t.goal}: {measured} -> {verdict}")
    out += [f"note ({m.case}): {m.note}" for m in measurements if m.note]
    for m in measurements:
        share = contention(m)
        if share is not None and share > CONTENTION_WARN:
            out.append(f"warning ({m.case}): other work on the machine used {share:.0%} of its CPU time "
                       "meanwhile; this case's numbers are noisy")
    return "\n".join(out)


def contention(m: Measurement) -> float | None:
    """Share of the machine's busy CPU time used by processes outside the case (and outside Cassandra)."""
    usage = m.details.get("usage") or {}
    total = usage.get("machine_cpu_s") or 0
    return usage.get("elsewhere_cpu_s", 0) / total if total else None


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"
