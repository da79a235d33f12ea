"""The Cassandra tuning benchmark: Cassandra's CPU per row for each configuration of the local stack.

    mysimbdp bench cassandra [--variants defaults,commitlog-lz4,...] [--mb 20] [--rounds 1] [...]
    python -m benchmarks.cassandra_tuning [same options]

For each variant (benchmarks/cassandra_variants.py; ``a+b`` combines two), the stack's Cassandra is
restarted with that configuration, a first file is loaded through the pipeline to warm the JVM up
(a cold JVM spends about 3x the CPU per row), and the same generated CSV file is loaded again: that
second load is measured. Cassandra's CPU time is read from /proc for its pid over the load (from the
rename into staging to the receipt), and over ``--after-s`` seconds afterwards (flushes and
compactions the load caused). At the end Cassandra is restarted with the stack's defaults.
Only the local stack's own Cassandra (``mysimbdp stack up`` from this MYSIMBDP_HOME) can be tuned.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from cassandra import DriverException as CassandraDriverError
from cassandra.cluster import NoHostAvailable, Session
from cassandra.query import SimpleStatement

from mysimbdp_tasks.core.cql import ident
from mysimbdp_tasks.core.errors import MysimbdpError, StackError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.registry import Registry
from mysimbdp_tasks.stack import lifecycle
from mysimbdp_tasks.stack.cassandra import Cassandra
from mysimbdp_tasks.stack.tuning import DEFAULTS, Tuning
from producers.generate import generate

from . import cases, harness
from .cassandra_variants import BY_NAME, choose
from .errors import BenchmarkError
from .harness import ROOT, publish, run_cli, run_meta
from .options import print_line
from .results import Measurement

MIB = 1024 * 1024
RESULTS = ROOT / "benchmarks" / "results"
EMPTY_CSV = b"created_utc,subreddit,id,author,body\r\n"


@dataclass(frozen=True)
class Options:
    variants: tuple[str, ...] = tuple(BY_NAME)
    mb: float = 20
    rounds: int = 1
    concurrency: int = 2
    after_s: float = 15
    idle_s: float = 10
    json_out: Path = RESULTS / "cassandra.json"
    plot_out: Path | None = RESULTS / "cassandra.png"
    workdir: Path | None = None


def parse_options(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="mysimbdp bench cassandra", description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(Options.variants),
                   help=f"comma-separated, a+b combines two (default all: {', '.join(BY_NAME)})")
    p.add_argument("--mb", type=float, default=Options.mb, help="size of the CSV file loaded (default 20)")
    p.add_argument("--rounds", type=int, default=Options.rounds,
                   help="times every variant is measured, round after round (default 1)")
    p.add_argument("--concurrency", type=int, default=Options.concurrency, help="worker pool processes (default 2)")
    p.add_argument("--after-s", type=float, default=Options.after_s,
                   help="seconds after the load in which Cassandra's CPU is still charged to it (default 15)")
    p.add_argument("--idle-s", type=float, default=Options.idle_s,
                   help="seconds between the warm-up and the measured load in which Cassandra's idle CPU is "
                        "measured (default 10); the net CPU per row subtracts it")
    p.add_argument("--json-out", "--json", dest="json_out", type=Path, default=Options.json_out)
    p.add_argument("--plot", dest="plot_out", type=Path, default=Options.plot_out)
    p.add_argument("--no-plot", dest="plot_out", action="store_const", const=None)
    p.add_argument("--workdir", type=Path, help="where the run makes its folder (default: the temporary folder)")
    a = p.parse_args(argv)
    names = tuple(n.strip() for n in a.variants.split(",") if n.strip())
    try:
        choose(list(names))
    except ValueError as exc:
        p.error(f"--variants: {exc}")
    if a.mb <= 0 or a.rounds < 1:
        p.error("--mb must be more than 0 and --rounds at least 1")
    return Options(names, a.mb, a.rounds, a.concurrency, max(0.0, a.after_s), max(0.0, a.idle_s), a.json_out,
                   a.plot_out, a.workdir)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (from /proc)."""
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


# Cassandra's thread names (Linux keeps their first 15 characters) -> the work they do.
THREAD_ROLES = (("PerDiskMemtable", "flush"), ("MemtableFlushWr", "flush"), ("MemtablePostFlu", "flush"),
                ("CompactionExecu", "compaction"))


def thread_role(name: str) -> str | None:
    """The role of a Cassandra thread by its name: "flush", "compaction", or None (requests, GC, JIT...)."""
    return next((role for prefix, role in THREAD_ROLES if name.startswith(prefix)), None)


def role_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds so far of ``pid``'s flush and compaction threads (from /proc/<pid>/task/*/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {"flush": 0.0, "compaction": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            role = thread_role((task / "comm").read_text().strip())
            stat = (task / "stat").read_text() if role else ""
        except OSError:  # the thread ended meanwhile
            continue
        if role:
            fields = stat[stat.rindex(")") + 2:].split()
            totals[role] += (int(fields[11]) + int(fields[12])) / ticks
    return totals


def peak_rss_mb(pid: int) -> float:
    """The highest RSS ``pid`` had since it started (VmHWM in /proc/<pid>/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def applied_settings(settings: Settings, tuning: Tuning) -> dict[str, str]:
    """The variant's cassandra.yaml keys as the running node reports them (system_views.settings)."""
    cluster, session = db.connect(settings, request_timeout=60)
    try:
        rows = session.execute("SELECT name, value FROM system_views.settings")
        wanted = set(tuning.yaml_settings()) | set(tuning.yaml) | {"memtable_allocation_type"}
        return {r.name: r.value for r in rows if any(r.name == k or r.name.startswith(k + ".") for k in wanted)}
    finally:
        cluster.shutdown()


def count_rows(session: Session) -> Callable[[Tenant], tuple[int, dict[str, Any]]]:
    """A paged read of the keys of a case's table: on a busy node a COUNT(*) of it can time out."""

    def verify(tenant: Tenant) -> tuple[int, dict[str, Any]]:
        keys = ", ".join(ident(c) for c in (*tenant.key.partition, *tenant.key.clustering))
        query = SimpleStatement(f"SELECT {keys} FROM {ident(tenant.namespace)}.{ident(tenant.table_name)}",
                                fetch_size=5000)
        rows = sum(1 for _ in session.execute(query, timeout=120))
        return rows, {"method": "paged read of the primary keys"}

    return verify


def measure(settings: Settings, options: Options, tuning: Tuning, item: cases.Input, workdir: Path,
            echo: Callable[[str], None]) -> dict[str, Any]:
    """Restart Cassandra with ``tuning``, warm it up with one load, measure the second."""
    svc = Cassandra(settings, tuning)
    started = time.monotonic()
    try:
        lifecycle.restart(svc, echo=lambda line: echo("  " + line))
    except StackError as exc:
        echo(f"  {tuning.name}: Cassandra did not start with this configuration")
        return {"variant": tuning.to_dict(), "error": "did not start: " + str(exc)[-2000:]}
    restart_s = time.monotonic() - started
    pid = svc.live_pid()
    if pid is None:
        raise BenchmarkError("Cassandra answered but its pid is unknown: tune only the stack's own Cassandra")
    client, cluster, session = harness.connect(settings)
    ctx = cases.Context(settings, client, session, workdir, echo, others={"cassandra": pid})
    setup = cases.PipelineSetup(options.concurrency)
    empty = workdir / "data" / "empty.csv"
    try:
        warm = cases.pipeline(ctx, setup, item, empty, count_rows(session))
        # What Cassandra spends doing nothing asked of it (JIT compilation after the warm-up, GC,
        # timers), as a rate: on a busy machine a load takes longer and this rate costs more per row.
        idle_from = cpu_s(pid)
        time.sleep(options.idle_s)
        idle_rate = (cpu_s(pid) - idle_from) / options.idle_s if options.idle_s else 0.0
        # The measured table is kept through the after-window: a dropped table is never flushed.
        roles_from = role_cpu_s(pid)
        load = cases.pipeline(dataclasses.replace(ctx, keep=True), setup, item, empty, count_rows(session))
        before = cpu_s(pid)
        time.sleep(options.after_s)
        after = cpu_s(pid) - before
        # Flush and compaction threads over the load and the after-window (their CPU is part of both totals).
        roles = {role: s - roles_from[role] for role, s in role_cpu_s(pid).items()}
        Registry(client).forget(load.details["tenant"])
        session.execute(f"DROP KEYSPACE IF EXISTS {ident(load.details['keyspace'])}", timeout=60)
    finally:
        cluster.shutdown()
        client.close()
    return {"variant": tuning.to_dict(), "applied": applied_settings(settings, tuning),
            "restart_s": round(restart_s, 1), "warmup": _summary(warm), "measured": _summary(load),
            "cassandra_us_per_row": load.cpu_us_per_row.get("cassandra"),
            "cassandra_idle_cpu_pct": round(idle_rate * 100, 1),
            # The idle rate over the load's span, per row: an upper bound of what is not the load's own cost
            # (right after the warm-up Cassandra still compiles and cleans up, so it can exceed the load's CPU).
            "cassandra_idle_us_per_row": round(idle_rate * load.seconds / load.rows * 1e6, 1) if load.rows else None,
            "cassandra_after_us_per_row": round(after / load.rows * 1e6, 1) if load.rows else None,
            "cassandra_flush_us_per_row": round(roles["flush"] / load.rows * 1e6, 1) if load.rows else None,
            "cassandra_compaction_us_per_row": round(roles["compaction"] / load.rows * 1e6, 1) if load.rows else None,
            "rows_per_s": round(load.rows_per_s), "cassandra_peak_rss_mb": peak_rss_mb(pid),
            "verified": warm.verified and load.verified}


def _summary(m: Measurement) -> dict[str, Any]:
    return {"rows": m.rows, "seconds": round(m.seconds, 2), "rows_per_s": round(m.rows_per_s),
            "cpu_us_per_row": m.cpu_us_per_row, "machine_busy_pct": m.machine_busy_pct, "verified": m.verified}


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['variant']['name']:<28} failed: {r['error'][:80]}"
    return (f"{r['variant']['name']:<28} {r['cassandra_us_per_row']:>9.1f} "
            f"{r['cassandra_idle_cpu_pct']:>7.1f} {r['cassandra_after_us_per_row']:>9.1f} "
            f"{r.get('cassandra_flush_us_per_row') or 0:>7.1f} {r.get('cassandra_compaction_us_per_row') or 0:>7.1f} "
            f"{r['measured']['cpu_us_per_row'].get('workers', 0):>9.1f} {r['rows_per_s']:>9,} "
            f"{r['cassandra_peak_rss_mb']:>9.0f} {r['warmup']['cpu_us_per_row'].get('cassandra', 0):>9.1f}"
            f" {'ok' if r['verified'] else 'MISMATCH'}")


HEADER = (f"{'variant':<28} {'C* us/row':>9} {'idle %':>7} {'+after':>9} {'flush':>7} {'compact':>7}"
          f" {'workers':>9} {'rows/s':>9}"
          f" {'C* RSS MB':>9} {'cold us':>9} check")


def run(settings: Settings, options: Options, echo: Callable[[str], None] = print_line) -> tuple[list[dict[str, Any]],
                                                                                             dict[str, Any]]:
    workdir = harness.work_folder(options.workdir, "mysimbdp-bench-cassandra-")
    results: list[dict[str, Any]] = []
    try:
        seed = round(options.mb * 1000) * 2
        made = generate("tenant2", round(options.mb * MIB), workdir / "data" / f"csv{options.mb:g}mb.csv", seed=seed,
                        fmt="csv")
        (workdir / "data" / "empty.csv").write_bytes(EMPTY_CSV)
        item = cases.Input("tenant2", "csv", options.mb, made, seed)
        echo(f"generated {made.path.name}: {made.records:,} rows, {made.bytes / MIB:.1f} MB")
        for round_no in range(1, options.rounds + 1):
            for tuning in choose(list(options.variants)):
                echo(f"round {round_no}, {tuning.name}: restarting Cassandra ...")
                try:
                    result = measure(settings, options, tuning, item, workdir, echo)
                except (MysimbdpError, CassandraDriverError, NoHostAvailable) as exc:
                    # One failed variant does not end the run; its error is in the results.
                    echo(f"  {tuning.name}: failed: {type(exc).__name__}: {exc}")
                    result = {"variant": tuning.to_dict(), "error": f"{type(exc).__name__}: {exc}"[-2000:]}
                results.append({"round": round_no, **result})
                _checkpoint(options, results)
                echo("  " + _line(results[-1]))
    finally:
        echo("restoring the stack's Cassandra defaults ...")
        lifecycle.restart(Cassandra(settings, DEFAULTS), echo=lambda line: echo("  " + line))
        shutil.rmtree(workdir, ignore_errors=True)
    return results, item.to_dict()


def _checkpoint(options: Options, results: list[dict[str, Any]]) -> None:
    """The results so far, so a run stopped midway (it takes minutes per variant) leaves them behind."""
    options.json_out.parent.mkdir(parents=True, exist_ok=True)
    partial = options.json_out.with_suffix(".partial.json")
    partial.write_text(json.dumps({"partial": True, "results": results}, indent=2) + "\n", encoding="utf-8")


def render(doc: dict[str, Any], out: Path) -> Path:
    from .plotting import pyplot, rows_axis, save

    plt = pyplot()
    ok = [r for r in doc["results"] if "error" not in r]
    labels = [f"{r['variant']['name']} (r{r['round']})" for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(labels) + 2), sharey=True)
    y = rows_axis(axes[0], labels, "Cassandra CPU us per row (lower is better)", "Cassandra CPU per row")
    axes[0].barh(y, [r["cassandra_us_per_row"] for r in ok], label="during the load")
    axes[0].barh(y, [r["cassandra_after_us_per_row"] for r in ok], left=[r["cassandra_us_per_row"] for r in ok],
                 label=f"in the {doc['options']['after_s']:g} s after it", alpha=0.4)
    axes[0].legend(loc="lower right")
    rows_axis(axes[1], labels, "rows/s (noisy on a shared machine)", "pipeline rows/s")
    axes[1].barh(y, [r["rows_per_s"] for r in ok])
    return save(fig, f"Cassandra variants, {doc['input']['label']} loaded after a warm-up", out)


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    results, item = run(settings, options)
    doc = {**run_meta(options, started, load_before), "input": item, "results": results,
           "timing": "Cassandra CPU from /proc of its pid over the second load (rename into staging to receipt), "
                     "per row landed; '+after' over the following after_s seconds"}
    table = "\n".join([HEADER, *(_line(r) for r in results)])
    ok = [r for r in results if "error" not in r]
    best = min(ok, key=lambda r: r["cassandra_us_per_row"], default=None)
    summary = "no variant ran" if best is None else (
        f"lowest Cassandra CPU per row: {best['variant']['name']}, {best['cassandra_us_per_row']:.1f} us "
        "(compare variants of one run; on a busy machine the numbers move from run to run)")
    publish(doc, table, summary, options.json_out, options.plot_out, render)
    if not all(r.get("verified", True) for r in results):
        raise BenchmarkError(f"row counts do not match for some variant (see {options.json_out})")
    return 0


if __name__ == "__main__":
    run_cli(main)
