"""Where a worker's time goes: one chunk ingested in this process, as a pool process does it.

    python -m benchmarks.probe [--mb 8] [--fmt csv|json|jsonl] [--batch-rows 50,200] [--batch-kb 48]
                               [--sink-concurrency 4,12,32] [--profile] [--repeat 1]

Generates a file shaped like tenant2 (CSV) or tenant1 (JSON array or JSON Lines), provisions a
fresh table, then measures the stages of ``mysimbdp_tasks.core.rows.ingest_chunk`` one after the
other: reading records only (parse), reading and converting to Python values with a writer that
only counts (parse+convert, the stream path's converter), reading and encoding to the sink's
bytes (parse+encode, what a pool process does), and the whole write with a real ``Sink`` for every
combination of the sink knobs given (each on a table of its own). Each line gives rows/s and the
CPU time per row spent in this process and in this stack's Cassandra: on a machine whose CPUs are
all busy, CPU per row, not rows/s, is what a change must lower. The last line gives the process's
peak RSS. ``--profile`` runs each under cProfile and prints the top functions (cProfile slows
Python code several times: read its shares, not its times).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from mysimbdp_tasks.commands import queries as report
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.formats import Format, detect_format
from mysimbdp_tasks.core.parsing import read_records
from mysimbdp_tasks.core.rows import converter_for, ingest_chunk
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.sink import Sink, SinkOptions
from producers.generate import generate

from . import harness
from .resources import CASSANDRA_MARK

MIB = 1024 * 1024


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_only(path: Path, fmt: Format) -> int:
    return sum(1 for _ in read_records(path, fmt))


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


def measure(path: Path, converter: RowConverter | None, write: Any, profile: bool, top: int,
            cassandra: psutil.Process | None = None, columnar: bool = True) -> Probe:
    """Ingest ``path`` with ``converter`` and ``write`` in this process (only read it, without a
    converter); rows, time, CPU and (``profile``) the top functions. ``columnar`` False: a CSV file
    is read row by row even where it could be read by column (core/csvcolumns.py)."""
    fmt = detect_format(path)
    profiler = cProfile.Profile() if profile else None
    me = psutil.Process()
    cpu0, cass0 = _cpu(me), _cpu(cassandra)
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    rows = parse_only(path, fmt) if converter is None else ingest_chunk(
        path, fmt, None, converter, write, columnar=columnar).rows_ok
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu, cass = _cpu(me) - cpu0, _cpu(cassandra) - cass0
    text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
        text = out.getvalue()
    return Probe(rows, seconds, cpu, None if cassandra is None else cass, text)


def my_cassandra(settings: Settings) -> psutil.Process | None:
    """This stack's Cassandra (its data lives under MYSIMBDP_HOME): others may run on the machine."""
    home = str(settings.home)
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or ())
        if CASSANDRA_MARK in cmdline and home in cmdline:
            return proc
    return None


def _best(runs: Iterable[Probe]) -> Probe:
    return min(runs, key=lambda r: r.cpu_s)


def compare_columnar(path: Path, shape: str, settings: Settings, session: Any, rounds: int,
                     cassandra: psutil.Process | None) -> int:
    """CSV read row by row against read by column, alternated in this process for ``rounds`` rounds:
    parse+encode with a counting writer, then the whole write into a fresh table; medians of CPU per row."""
    cpu: dict[str, list[float]] = {}
    for round_ in range(rounds):
        for columnar in (False, True):
            way = "by column" if columnar else "row by row"
            tenant = harness.fresh_tenant(shape, prefix="probe")
            harness.provision(session, settings, tenant)
            try:
                sink = Sink(session, tenant)
                encode = measure(path, sink.encoder, count_only, False, 0, columnar=columnar)
                whole = measure(path, sink.encoder, sink.write, False, 0, cassandra, columnar=columnar)
                counted = report.rows_in_table(session, tenant)
            finally:
                harness.discard(None, session, tenant)
            if counted != whole.rows:
                print(f"error: {counted:,} rows in the table, {whole.rows:,} written", file=sys.stderr)
                return 1
            for stage, probe in (("parse+encode", encode), ("whole write", whole)):
                cpu.setdefault(f"{stage}, {way}", []).append(probe.cpu_s / probe.rows * 1e6)
                print(f"round {round_ + 1} {stage} {way}: {probe.line()}", flush=True)
    for name, values in cpu.items():
        print(f"median of {rounds} rounds, {name}: {statistics.median(values):.2f} us/row here "
              f"(all: {', '.join(f'{v:.2f}' for v in values)})")
    return 0


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
    p.add_argument("--columnar-rounds", type=int, default=0, metavar="N",
                   help="CSV only: instead of the stages, N rounds of row by row against by column, alternated")
    args = p.parse_args(argv)

    settings = Settings.from_env()
    shape = "tenant2" if args.fmt == "csv" else "tenant1"
    cluster, session = db.connect(settings, request_timeout=120)
    with tempfile.TemporaryDirectory(prefix="mysimbdp-probe-") as tmp:
        made = generate(shape, round(args.mb * MIB), Path(tmp) / f"probe.{args.fmt}", seed=7, fmt=args.fmt)
        print(f"{made.path.name}: {made.records:,} rows, {made.bytes / MIB:.1f} MB", flush=True)
        cassandra = my_cassandra(settings)
        path = made.path
        if args.columnar_rounds:
            code = compare_columnar(path, shape, settings, session, args.columnar_rounds, cassandra)
            cluster.shutdown()
            return code
        tenant = harness.fresh_tenant(shape, prefix="probe")
        stages: list[tuple[str, RowConverter | None]] = [
            ("parse only", None), ("parse+convert (Python values)", converter_for(tenant))]
        harness.provision(session, settings, tenant)
        try:
            stages.append(("parse+encode (the sink's bytes)", Sink(session, tenant).encoder))
        finally:
            harness.discard(None, session, tenant)
        for name, converter in stages:
            best = _best(measure(path, converter, count_only, args.profile, args.top) for _ in range(args.repeat))
            print(f"{name}: {best.line()}", flush=True)
            print(best.profile, end="")
        for rows_cap, kb, conc in itertools.product(args.batch_rows, args.batch_kb, args.sink_concurrency):
            options = SinkOptions(batch_max_rows=rows_cap, batch_max_bytes=kb * 1024, concurrency=conc)
            runs = []
            for _ in range(args.repeat):
                tenant = harness.fresh_tenant(shape, prefix="probe")
                harness.provision(session, settings, tenant)
                try:
                    sink = Sink(session, tenant, options)
                    runs.append(measure(path, sink.encoder, sink.write, args.profile, args.top, cassandra))
                    counted = report.rows_in_table(session, tenant)
                finally:
                    harness.discard(None, session, tenant)
                if counted != runs[-1].rows:
                    print(f"error: {counted:,} rows in the table, {runs[-1].rows:,} written", file=sys.stderr)
                    return 1
            best = _best(runs)
            print(f"sink batch_max_rows={rows_cap} batch_max_bytes={kb} KiB concurrency={conc}: {best.line()}",
                  flush=True)
            print(best.profile, end="")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
