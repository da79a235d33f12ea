"""Where a worker's time goes: one chunk ingested in this process, as a pool process does it.

    python -m benchmarks.probe [--mb 8] [--fmt csv|json] [--batch-rows 50,200] [--batch-kb 48]
                               [--sink-concurrency 4,12,32] [--profile] [--repeat 1]

Generates a file shaped like tenant2 (CSV) or tenant1 (JSON), provisions a fresh table, then calls
``mysimbdp_tasks.core.rows.ingest_chunk`` with a real ``Sink`` for every combination of the sink knobs
given (each on a table of its own), plus once with a writer that only counts rows (the cost of
parsing and converting alone). Each line gives rows/s and the CPU time per row spent in this
process and, when it runs on this machine, in Cassandra: on a machine whose CPUs are all busy,
CPU per row, not rows/s, is what a change must lower. ``--profile`` runs each under cProfile and
prints the top functions (cProfile slows Python code several times: read its shares, not its
times). Knobs the pipeline does not expose yet are tried here without editing it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from mysimbdp_tasks.commands import queries as report
from mysimbdp_tasks.core.formats import detect_format
from mysimbdp_tasks.core.rows import converter_for, ingest_chunk
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.sink import Sink, SinkOptions
from producers.generate import generate

from . import harness
from .resources import CASSANDRA_MARK, find_pid

MIB = 1024 * 1024


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def count_only(rows: Iterable[Sequence[Any]], _refuse: Any = None) -> int:
    """A writer that only counts: what parsing and converting cost without the sink."""
    return sum(1 for _ in rows)


@dataclass(frozen=True)
class Probe:
    rows: int
    seconds: float
    cpu_s: float  # this process, every thread (the driver's event loop included)
    cassandra_cpu_s: float | None
    profile: str

    def line(self) -> str:
        per_row = f"{self.cpu_s / self.rows * 1e6:.1f} us/row here" if self.rows else "-"
        if self.rows and self.cassandra_cpu_s is not None:
            per_row += f" + {self.cassandra_cpu_s / self.rows * 1e6:.1f} us/row in Cassandra"
        return f"{self.rows / self.seconds:,.0f} rows/s ({self.seconds:.2f} s); CPU {per_row}"


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    t = proc.cpu_times()
    return t.user + t.system


def measure(path: Path, tenant: Any, write: Any, profile: bool, top: int,
            cassandra: psutil.Process | None = None) -> Probe:
    """Ingest ``path`` with ``write`` in this process; rows, time, CPU and (``profile``) the top functions."""
    fmt = detect_format(path)
    profiler = cProfile.Profile() if profile else None
    me = psutil.Process()
    cpu0, cass0 = _cpu(me), _cpu(cassandra)
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = ingest_chunk(path, fmt, None, converter_for(tenant), write)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu, cass = _cpu(me) - cpu0, _cpu(cassandra) - cass0
    text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
        text = out.getvalue()
    return Probe(result.rows_ok, seconds, cpu, None if cassandra is None else cass, text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.probe", description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=float, default=8, help="file size in MB (default 8: one default chunk)")
    p.add_argument("--fmt", choices=("csv", "json", "jsonl"), default="csv")
    p.add_argument("--batch-rows", type=_numbers, default=[SinkOptions.batch_max_rows])
    p.add_argument("--batch-kb", type=_numbers, default=[SinkOptions.batch_max_bytes // 1024])
    p.add_argument("--sink-concurrency", type=_numbers, default=[SinkOptions.concurrency])
    p.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--repeat", type=int, default=1, help="runs per combination (the best one is shown)")
    args = p.parse_args(argv)

    settings = Settings.from_env()
    shape = "tenant2" if args.fmt == "csv" else "tenant1"
    cluster, session = db.connect(settings, request_timeout=120)
    with tempfile.TemporaryDirectory(prefix="mysimbdp-probe-") as tmp:
        made = generate(shape, round(args.mb * MIB), Path(tmp) / f"probe.{args.fmt}", seed=7, fmt=args.fmt)
        print(f"{made.path.name}: {made.records:,} rows, {made.bytes / MIB:.1f} MB", flush=True)
        tenant = harness.fresh_tenant(shape, prefix="probe")
        pid = find_pid(CASSANDRA_MARK)
        cassandra = psutil.Process(pid) if pid else None
        best = min((measure(made.path, tenant, count_only, args.profile, args.top)
                    for _ in range(args.repeat)), key=lambda r: r.seconds)
        print(f"parse+convert only: {best.line()}", flush=True)
        print(best.profile, end="")
        for rows_cap, kb, conc in itertools.product(args.batch_rows, args.batch_kb, args.sink_concurrency):
            options = SinkOptions(batch_max_rows=rows_cap, batch_max_bytes=kb * 1024, concurrency=conc)
            runs = []
            for _ in range(args.repeat):
                tenant = harness.fresh_tenant(shape, prefix="probe")
                harness.provision(session, settings, tenant)
                try:
                    sink = Sink(session, tenant, options)
                    runs.append(measure(made.path, tenant, sink.write, args.profile, args.top, cassandra))
                    counted = report.rows_in_table(session, tenant)
                finally:
                    harness.discard(None, session, tenant)
                if counted != runs[-1].rows:
                    print(f"error: {counted:,} rows in the table, {runs[-1].rows:,} written", file=sys.stderr)
                    return 1
            best = min(runs, key=lambda r: r.seconds)
            print(f"sink batch_max_rows={rows_cap} batch_max_bytes={kb} KiB concurrency={conc}: {best.line()}",
                  flush=True)
            print(best.profile, end="")
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
