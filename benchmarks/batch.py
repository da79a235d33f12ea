"""The batch benchmark: end to end, from the drop in staging to the rows in Cassandra.

    mysimbdp bench batch [--json-out FILE] [--plot FILE] [--sizes 1,10,50] [--quick] [...]
    python -m benchmarks.batch [same options]

In one run, each case on a fresh tenant and keyspace of its own:

1. the pipeline: a private platform (watcher + the tenant's worker pool) ingests CSV files of
   ``--sizes`` MB (tenant2's shape) and one JSON array of ``--json-mb`` MB (tenant1's shape);
2. the naive baseline: one synchronous insert per row, on a prefix of the largest CSV file;
3. the raw-driver reference: ``execute_concurrent_with_args`` over the whole largest CSV file.

Prints a table and the ratios, writes JSON and a PNG plot; exits 1 if any table does not hold
exactly the rows it should. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mysimbdp_tasks.core.settings import Settings
from producers.generate import generate

from . import cases, harness, resources, results
from .errors import BenchmarkError
from .harness import ROOT, publish, run_cli, run_meta
from .options import chooser, positive_numbers, print_line
from .results import Measurement

MIB = 1024 * 1024
RESULTS = ROOT / "benchmarks" / "results"
EMPTY = {"csv": b"created_utc,subreddit,id,author,body\r\n", "json": b"[]\n"}  # files with no rows



@dataclass(frozen=True)
class Options:
    sizes: tuple[float, ...] = (1, 10, 50)
    json_mb: float = 10
    concurrency: int = 2
    chunk_mb: float | None = None
    warmup: bool = True
    baseline_rows: int = 20_000
    baseline_seconds: float = 30
    raw_concurrency: int = 100
    raw_slice_rows: int = 10_000
    json_out: Path = RESULTS / "batch.json"
    plot_out: Path | None = RESULTS / "batch.png"
    workdir: Path | None = None
    keep: bool = False
    quick: bool = False
    references: bool = True  # run the naive baseline and the raw-driver reference


QUICK = {"sizes": (1.0,), "json_mb": 1.0, "baseline_rows": 2_000, "baseline_seconds": 5.0}


def _sizes(text: str) -> tuple[float, ...]:
    return positive_numbers(text, "sizes in MB", "1,10,50")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mysimbdp bench batch", description=__doc__.split("\n")[0])
    p.add_argument("--json-out", "--json", dest="json_out", type=Path, default=Options.json_out,
                   help="write the results here")
    p.add_argument("--plot", dest="plot_out", type=Path, default=Options.plot_out, help="write the PNG plot here")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--sizes", type=_sizes, help="CSV file sizes in MB (default 1,10,50)")
    p.add_argument("--json-mb", type=float, help="size of the JSON file in MB; 0 skips it (default 10)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1 MB files and a short baseline (explicit options still win)")
    p.add_argument("--concurrency", type=int, default=Options.concurrency, help="worker pool processes (default 2)")
    p.add_argument("--chunk-mb", type=float, help="MYSIMBDP_CHUNK_MB of the private platform (default: its own, 8)")
    p.add_argument("--cold", action="store_true", help="no warm-up: the pool opens its sessions on the measured file")
    p.add_argument("--baseline-rows", type=int, help="naive baseline: row budget (default 20000)")
    p.add_argument("--baseline-seconds", type=float, help="naive baseline: time budget (default 30)")
    p.add_argument("--raw-concurrency", type=int, default=Options.raw_concurrency,
                   help="raw driver: requests in flight")
    p.add_argument("--raw-slice-rows", type=int, default=Options.raw_slice_rows,
                   help="raw driver: rows handed to the driver at a time")
    p.add_argument("--workdir", type=Path,
                   help="folder in which the run makes its own folder for inputs and private platforms "
                        "(default: the system's temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the work folder and the benchmark tenants' keyspaces")
    p.add_argument("--pipeline-only", action="store_true",
                   help="skip the baseline and the raw-driver reference (to try pipeline knobs quickly)")
    return p


def parse_options(argv: Sequence[str] | None = None) -> Options:
    args = build_parser().parse_args(argv)
    pick = chooser(args, QUICK if args.quick else {}, Options())
    return Options(
        sizes=pick("sizes"), json_mb=pick("json_mb"), concurrency=args.concurrency, chunk_mb=args.chunk_mb,
        warmup=not args.cold, baseline_rows=pick("baseline_rows"), baseline_seconds=pick("baseline_seconds"),
        raw_concurrency=args.raw_concurrency, raw_slice_rows=args.raw_slice_rows, json_out=args.json_out,
        plot_out=None if args.no_plot else args.plot_out, workdir=args.workdir, keep=args.keep, quick=args.quick,
        references=not args.pipeline_only,
    )


def make_inputs(options: Options, data: Path, echo: Callable[[str], None]) -> list[cases.Input]:
    wanted = [("tenant2", "csv", mb) for mb in options.sizes]
    if options.json_mb > 0:
        wanted.append(("tenant1", "json", options.json_mb))
    inputs = []
    for shape, fmt, mb in wanted:
        started = time.monotonic()
        # The seed depends only on the file's format and size: "csv 50 MB" is the same file in every run.
        seed = round(mb * 1000) * 2 + (fmt == "json")
        made = generate(shape, round(mb * MIB), data / f"{fmt}{mb:g}mb.{fmt}", seed=seed, fmt=fmt)
        echo(f"generated {made.path.name}: {made.records:,} rows, {made.bytes / MIB:.1f} MB "
             f"in {time.monotonic() - started:.1f} s")
        inputs.append(cases.Input(shape, fmt, mb, made, seed))
    for fmt, content in EMPTY.items():
        (data / f"empty.{fmt}").write_bytes(content)
    return inputs


def run(settings: Settings, options: Options,
        echo: Callable[[str], None] = print_line) -> tuple[list[Measurement], list[cases.Input]]:
    """Every case of the benchmark, in order, and its inputs; BenchmarkError if a service is unreachable."""
    client, cluster, session = harness.connect(settings)
    workdir = harness.work_folder(options.workdir, "mysimbdp-bench-")
    ctx = cases.Context(settings, client, session, workdir, echo, keep=options.keep,
                        others=dict(resources.service_pids(settings)))
    setup = cases.PipelineSetup(options.concurrency, options.chunk_mb, options.warmup)
    measured: list[Measurement] = []
    inputs: list[cases.Input] = []
    try:
        inputs = make_inputs(options, workdir / "data", echo)
        for item in inputs:
            echo(f"pipeline {item.label}: {item.file.records:,} rows ...")
            measured.append(cases.pipeline(ctx, setup, item, workdir / "data" / f"empty.{item.fmt}"))
            echo("  " + _line(measured[-1]))
        largest = max((i for i in inputs if i.fmt == "csv"), key=lambda i: i.size_mb, default=None)
        if largest is not None and options.references:
            echo(f"naive baseline on a prefix of {largest.label} ...")
            measured.append(cases.reference(ctx, largest, "naive", {
                "max_rows": options.baseline_rows, "max_seconds": options.baseline_seconds}))
            echo("  " + _line(measured[-1]))
            echo(f"raw driver on {largest.label} ...")
            measured.append(cases.reference(ctx, largest, "raw", {
                "concurrency": options.raw_concurrency, "slice_rows": options.raw_slice_rows}))
            echo("  " + _line(measured[-1]))
    finally:
        cluster.shutdown()
        client.close()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return measured, inputs


def _line(m: Measurement) -> str:
    check = "rows verified" if m.verified else (
        f"ROW COUNT MISMATCH: {m.rows:,} landed, {m.rows_in_cassandra:,} in the table, {m.expected_rows:,} expected")
    usage = m.details.get("usage", {})
    cpu = (f"; CPU seconds: {m.kind} {usage['cpu_s']:.1f}"
           + "".join(f", {name} {s:.1f}" for name, s in usage.get("others_cpu_s", {}).items())
           + f", rest of the machine {usage['elsewhere_cpu_s']:.1f} ({m.machine_busy_pct:.0f}% of all CPUs busy)"
           ) if usage else ""
    return (f"{m.rows:,} rows, {m.bytes / MIB:.1f} MB in {m.seconds:.2f} s: {m.rows_per_s:,.0f} rows/s, "
            f"{m.mb_per_s:.2f} MB/s, peak RSS {m.peak_rss_bytes / MIB:.0f} MB{cpu}; {check}")


def meta(options: Options, inputs: Sequence[cases.Input], started: float,
         load_before: tuple[float, ...]) -> dict[str, Any]:
    return {
        **run_meta(options, started, load_before),
        "inputs": [i.to_dict() for i in inputs],
        "timing": "pipeline: from the atomic rename into staging to the receipt's finished_at (after every row "
                  "was acknowledged); references: from the first row read to the last write acknowledged, "
                  "session connected and statement prepared before",
    }


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    measured, inputs = run(settings, options)
    doc = results.report(measured, meta(options, inputs, started, load_before))
    from . import plot

    publish(doc, results.table(measured), results.summary(measured), options.json_out, options.plot_out,
                    plot.render)
    if not doc["verified"]:
        bad = ", ".join(m.case for m in measured if not m.verified)
        raise BenchmarkError(f"row counts do not match for: {bad} (see the table above and {options.json_out})")
    return 0


if __name__ == "__main__":
    run_cli(main)
