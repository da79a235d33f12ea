"""The measured cases of the batch benchmark, each on a fresh tenant and keyspace of its own.

- :func:`pipeline`: a private platform (watcher + one worker pool of the tenant) ingests one file,
  timed from the atomic rename into staging to the receipt in ``done/``, with the pool's memory
  sampled meanwhile.
- :func:`reference`: the naive or raw-driver writer of :mod:`benchmarks.reference` in a process of
  its own, memory sampled the same way.

Every case counts the rows in its table afterwards; the caller compares them with the distinct keys
of what was ingested.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from cassandra.cluster import Session

from mysimbdp_tasks.commands import queries as report
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from producers.generate import GeneratedFile

from . import harness
from .errors import PlatformError
from .resources import ResourceSampler, UsageReport
from .results import BASELINE, PIPELINE, RAW, Measurement

MIB = 1024 * 1024


@dataclass(frozen=True)
class Context:
    settings: Settings
    redis: redis.Redis
    session: Session
    workdir: Path
    echo: Callable[[str], None]
    keep: bool = False  # keep each case's keyspace (and registry entry) after the run
    interval: float = 0.2  # seconds between memory samples
    others: dict[str, int | None] = field(default_factory=dict)  # outside processes whose CPU time to report

    def sampler(self, pid: int) -> ResourceSampler:
        return ResourceSampler(pid, self.interval, self.others)


@dataclass(frozen=True)
class PipelineSetup:
    concurrency: int = 2
    chunk_mb: float | None = None  # MYSIMBDP_CHUNK_MB of the private platform; None: the platform's default
    warmup: bool = True
    settle_s: float = 1.0  # pause between the warm-up and the measured file, see warm_up()
    timeout: float = 600.0


@dataclass(frozen=True)
class Input:
    """A generated input file and what it holds."""

    shape: str  # the shipped tenant it is shaped like: "tenant1" (JSON) or "tenant2" (CSV)
    fmt: str
    size_mb: float
    file: GeneratedFile
    seed: int

    @property
    def label(self) -> str:
        return f"{self.fmt} {self.size_mb:g} MB"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "shape": self.shape, "format": self.fmt, "size_mb": self.size_mb,
                "seed": self.seed, "records": self.file.records, "distinct_keys": self.file.distinct_keys,
                "bytes": self.file.bytes, "digest": self.file.digest}


def _fresh(ctx: Context, shape: str, registered: bool, file_bytes: int = 0, ext: str = "") -> Tenant:
    tenant = harness.fresh_tenant(shape)
    # The benchmark measures ingestion, not admission: a larger file than the shipped limit, or a
    # format the shipped tenant does not take (tenant2's rows as JSON Lines), is let in.
    overrides: dict[str, Any] = {}
    if tenant.batch is not None and tenant.batch.max_file_size_bytes < file_bytes:
        overrides["max_file_size"] = math.ceil(file_bytes / MIB)
    if ext and tenant.batch is not None and ext not in tenant.batch.file_types:
        overrides["file_type"] = [*tenant.batch.file_types, ext]
    if overrides:
        tenant = harness.fresh_tenant(shape, overrides=overrides)
    harness.provision(ctx.session, ctx.settings, tenant)
    if registered:
        harness.register(ctx.redis, tenant)
    return tenant


def _discard(ctx: Context, tenant: Tenant) -> None:
    if not ctx.keep:
        harness.discard(ctx.redis, ctx.session, tenant)


def warm_up(platform: harness.Platform, empty: Path, ext: str) -> float:
    """Have each pool process open its Cassandra session and prepare its statement; return seconds.

    One file with no rows per pool process, staged together (a busy process leaves the next file
    to an idle one). A file without rows lands nothing and ends in failed/ with its quota refunded,
    so the measured file is alone in the table. The caller then pauses: the watcher's claim of a
    file (a rename out of staging) holds back its next file-system events for up to 0.5 s, which
    would otherwise be charged to the measured file.
    """
    started = time.monotonic()
    names = [f"{platform.tenant.name}-warmup{i}{ext}" for i in range(platform.concurrency)]
    for name in names:
        platform.stage(empty, name)
    for name in names:
        platform.wait_receipt(name, timeout=120)
    return time.monotonic() - started


def pipeline(ctx: Context, setup: PipelineSetup, item: Input, empty: Path,
             verify: Callable[[Tenant], tuple[int, dict[str, Any]]] | None = None) -> Measurement:
    """``verify``, if given, checks the case's table before it is dropped instead of counting its rows
    (a paged read of every row; ``COUNT(*)`` of a large table can fail on a busy node): it returns the
    rows it found and what goes to the details as ``verification``."""
    ext = item.file.path.suffix
    tenant = _fresh(ctx, item.shape, registered=True, file_bytes=item.file.bytes, ext=ext)
    checked: dict[str, Any] = {}
    env = {"MYSIMBDP_CHUNK_MB": f"{setup.chunk_mb:g}"} if setup.chunk_mb else {}
    home = ctx.workdir / f"home-{tenant.name}"
    try:
        with harness.Platform(ctx.settings, tenant, home, setup.concurrency, env) as platform:
            warm = warm_up(platform, empty, ext) if setup.warmup else None
            time.sleep(setup.settle_s if setup.warmup else 0)
            name = f"{tenant.name}-{item.fmt}{item.size_mb:g}mb{ext}"
            with ctx.sampler(platform.worker_pid) as sampler:
                renamed_at = platform.stage(item.file.path, name)
                receipt = platform.wait_receipt(name, setup.timeout)
        if verify is None:
            counted = report.rows_in_table(ctx.session, tenant)
        else:
            counted, checked["verification"] = verify(tenant)
    finally:
        _discard(ctx, tenant)
    data = receipt.data
    usage = sampler.report()
    if receipt.status == "rejected":
        raise PlatformError(f"{item.label}: the watcher rejected the file ({data.get('reason')}, limit "
                                    f"{data.get('limit')}, usage {data.get('usage')})")
    if receipt.status != "done":
        ctx.echo(f"  {item.label}: the file ended {receipt.status} ({data.get('reason')}); receipt {receipt.path}")
    return Measurement(
        case=f"pipeline {item.label}", kind=PIPELINE, fmt=item.fmt, size_mb=item.size_mb,
        rows=int(data.get("rows_ok") or 0), bytes=item.file.bytes, seconds=float(data["finished_at"]) - renamed_at,
        peak_rss_bytes=usage.peak_bytes, peak_sum_rss_bytes=usage.peak_sum_bytes, expected_rows=item.file.distinct_keys,
        rows_in_cassandra=counted, machine_busy_pct=round(usage.machine_busy * 100, 1),
        details={
            "input": item.label, "tenant": tenant.name, "keyspace": tenant.namespace, "status": receipt.status,
            "rows_refused": data.get("rows_refused"), "chunks": data.get("chunks"),
            "worker_concurrency": setup.concurrency, "chunk_mb": setup.chunk_mb,
            "admission_s": round(float(data["admitted_at"]) - renamed_at, 3),
            "receipt_seen_s": round(receipt.seen_at - renamed_at, 3),
            "receipt_timings": data.get("timings"),
            "warmup_s": None if warm is None else round(warm, 3),
            "usage": usage.to_dict(),
            **checked,
        },
    )


def reference(ctx: Context, item: Input, writer: str, options: dict[str, Any], timeout: float = 1800) -> Measurement:
    """Run ``python -m benchmarks.reference <writer>`` on ``item`` and sample its memory."""
    tenant = _fresh(ctx, item.shape, registered=False)
    argv = [sys.executable, "-m", "benchmarks.reference", writer, "--tenant-json", tenant.to_json(),
            "--file", str(item.file.path)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    try:
        status, out, err, usage = run_sampled(ctx, argv, timeout, stderr=subprocess.PIPE, cwd=harness.ROOT,
                                              env={**os.environ, "PYTHONPATH": _pythonpath()})
        if status != 0:
            raise PlatformError(f"the {writer} reference writer failed ({status}):\n"
                                        f"{err.decode(errors='replace')[-3000:]}")
        result = json.loads(out.decode().strip().splitlines()[-1])
        counted = report.rows_in_table(ctx.session, tenant)
    finally:
        _discard(ctx, tenant)
    rows = int(result["rows"])
    prefix = bool(result["stopped_early"])
    # A prefix run read only part of the file: its bytes are estimated at the file's mean row size.
    size = round(item.file.bytes * rows / item.file.records) if prefix else item.file.bytes
    kind = BASELINE if writer == "naive" else RAW
    label = "naive baseline" if writer == "naive" else "raw driver"
    note = ""
    if prefix:
        note = (f"rate on a PREFIX: the first {rows:,} of {item.file.records:,} rows of the {item.label} file "
                f"(budget {options.get('max_rows')} rows / {options.get('max_seconds')} s, whichever first); "
                "MB estimated at the file's mean row size")
    return Measurement(
        case=f"{label} {item.label}" + (" (prefix)" if prefix else ""), kind=kind, fmt=item.fmt,
        size_mb=item.size_mb, rows=rows, bytes=size, seconds=float(result["seconds"]),
        peak_rss_bytes=usage.peak_bytes, peak_sum_rss_bytes=usage.peak_sum_bytes,
        expected_rows=rows if prefix else item.file.distinct_keys, rows_in_cassandra=counted, note=note,
        machine_busy_pct=round(usage.machine_busy * 100, 1),
        details={"input": item.label, "tenant": tenant.name, "keyspace": tenant.namespace, "writer": writer,
                 "options": options,
                 "rows_refused": result["rows_refused"], "prefix": prefix, "usage": usage.to_dict()},
    )


def run_sampled(ctx: Context, argv: list[str], timeout: float,
                **popen: Any) -> tuple[int, bytes, bytes, UsageReport]:
    """Run ``argv`` to its end with its process family sampled: exit status, stdout, stderr, usage.

    ``popen`` goes to Popen (stderr=subprocess.STDOUT merges the two; stderr is then empty).
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, **popen)
    try:
        with ctx.sampler(proc.pid) as sampler:
            out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:  # timed out or interrupted: leave no process behind
            proc.kill()
            proc.wait(10)
    return proc.returncode, out, err or b"", sampler.report()


def _pythonpath() -> str:
    # The reference writer runs as ``-m benchmarks.reference`` from the repository root.
    parts = [str(harness.ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return os.pathsep.join(parts)
