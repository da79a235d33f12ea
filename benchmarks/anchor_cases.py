"""The anchors benchmark's runs: the pipeline and each tool setting, each into a fresh table, each verified.

- :func:`pipeline`: the batch benchmark's private-platform case (watcher and the tenant's warmed-up
  worker pool as real processes), its table checked row by row before it is dropped.
- :func:`tool`: a loader's command line on a fresh table shaped like tenant2's, timed by the tool's
  own report (start-up excluded) and by the wall clock. The tool's CPU time is the rusage of the
  process and every descendant it waited for (cqlsh's worker processes, dsbulk's JVM threads), so
  nothing is lost between samples; peak RSS and the services' CPU come from the sampler.
"""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from cassandra.query import SimpleStatement

from mysimbdp_tasks.core.cql import ident
from mysimbdp_tasks.core.tenants import Tenant

from . import cases, harness
from .anchor_data import KEY, VALUES, Key, Values, Verdict, compare
from .anchor_results import LOADER, LoaderRun
from .anchor_tools import Setting, ToolReport
from .errors import BenchmarkError
from .resources import UsageReport

TOOL_TIMEOUT_S = 1800.0
FETCH_ROWS = 2000  # a page well within the node's read timeout on a busy machine


def table_rows(session: Session, tenant: Tenant) -> Iterator[tuple[Key, Values]]:
    """Every row of the tenant's table as (key, values), paged."""
    cql = (f"SELECT {', '.join(KEY + VALUES)} FROM {ident(tenant.namespace)}.{ident(tenant.table_name)}")
    for row in session.execute(SimpleStatement(cql, fetch_size=FETCH_ROWS), timeout=120):
        yield (row[0], row[1], row[2]), (row[3], row[4])


def verify(session: Session, tenant: Tenant, expected: Mapping[Key, Values]) -> Verdict:
    return compare(expected, table_rows(session, tenant))


def _cpu(usage: UsageReport | dict[str, Any], own_cpu_s: float | None = None) -> dict[str, float]:
    if isinstance(usage, UsageReport):
        return usage.cpu_by_role(LOADER, own_cpu_s)
    return {LOADER: usage["cpu_s"], **usage.get("others_cpu_s", {}), "rest": usage.get("elsewhere_cpu_s", 0.0)}


def pipeline(ctx: cases.Context, setup: cases.PipelineSetup, item: cases.Input, empty: Path,
             expected: Mapping[Key, Values]) -> LoaderRun:
    verdicts: list[Verdict] = []

    def check(tenant: Tenant) -> tuple[int, dict[str, Any]]:
        verdicts.append(verify(ctx.session, tenant, expected))
        return verdicts[-1].found, verdicts[-1].to_dict()

    m = cases.pipeline(ctx, setup, item, empty, verify=check)
    usage = m.details["usage"]
    details = {k: v for k, v in m.details.items() if k not in ("usage", "verification")}
    return LoaderRun(
        case="pipeline", tool="pipeline", setting=f"worker pool of {setup.concurrency} processes, warmed up",
        rows=m.rows, seconds=m.seconds, wall_seconds=m.seconds, peak_rss_bytes=m.peak_rss_bytes,
        peak_sum_rss_bytes=m.peak_sum_rss_bytes, cpu_s=_cpu(usage), verdict=verdicts[0],
        machine_busy_pct=m.machine_busy_pct, details={**details, "usage": usage},
    )


def _measured(ctx: cases.Context, argv: list[str], cwd: Path,
              timeout: float) -> tuple[str, int, UsageReport, float, float]:
    """Run ``argv``; its output, exit status, sampled usage, CPU seconds (rusage) and wall seconds.

    The rusage of this process's reaped children before and after: the benchmark starts no other
    child meanwhile, so the difference is the tool and the descendants it waited for.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    status, out, _, usage = cases.run_sampled(ctx, argv, timeout, stderr=subprocess.STDOUT, cwd=cwd)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out.decode(errors="replace"), status, usage, cpu, wall


def tool(ctx: cases.Context, setting: Setting, argv_for: Callable[[Tenant], list[str]],
         parse: Callable[[str], ToolReport], expected: Mapping[Key, Values], note: str = "") -> LoaderRun:
    """Load with ``argv_for(fresh tenant)``, then verify that tenant's table row by row."""
    tenant = harness.fresh_tenant("tenant2", prefix="anchor")
    harness.provision(ctx.session, ctx.settings, tenant)
    try:
        logs = ctx.workdir / f"{setting.tool}-{setting.name}"
        logs.mkdir(parents=True, exist_ok=True)
        output, status, usage, cpu, wall = _measured(ctx, argv_for(tenant), logs, TOOL_TIMEOUT_S)
        (logs / "output.log").write_text(output, encoding="utf-8")
        if status != 0:
            raise BenchmarkError(f"{setting.case} exited with {status}; its output ends:\n{output[-3000:]}")
        said = parse(output)
        verdict = verify(ctx.session, tenant, expected)
    finally:
        if not ctx.keep:
            harness.discard(None, ctx.session, tenant)
    return LoaderRun(
        case=setting.case, tool=setting.tool, setting=setting.options, rows=said.rows,
        seconds=said.seconds or wall, wall_seconds=wall, peak_rss_bytes=usage.peak_bytes,
        peak_sum_rss_bytes=usage.peak_sum_bytes, cpu_s=_cpu(usage, cpu), verdict=verdict,
        machine_busy_pct=round(usage.machine_busy * 100, 1), note=note,
        details={"keyspace": tenant.namespace, "rows_failed": said.failed, "usage": usage.to_dict(),
                 "output_tail": output[-1500:]},
    )
