"""The anchors benchmark: the pipeline against the bulk loaders a Cassandra user would pick.

    mysimbdp bench anchors [--mb 50] [--format csv|json] [--quick] [--only pipeline,cqlsh,dsbulk] [--json FILE]
                           [--plot FILE]
    python -m benchmarks.anchors [same options]

In one run, one generated tenant2-style CSV file is loaded, each time into a fresh table of
tenant2's schema, by:

1. the pipeline: a private platform (watcher + the tenant's worker pool, warmed up);
2. cqlsh ``COPY FROM`` (cqlsh 6.2.2 from PyPI, in a virtualenv of its own), defaults and tuned;
3. dsbulk 1.10.0 (from Maven Central, run with ``java``), defaults and tuned.

Every table is compared row by row with the generated rows. Prints a table with rows/s, CPU per row
per role and peak RSS, the ratios of the pipeline to the best setting of each tool, writes JSON and
a PNG plot; exits 1 if any table does not hold exactly the rows it should. With ``--format json``
the same rows are loaded from a JSON Lines copy of the file by the pipeline and dsbulk (cqlsh's
COPY reads CSV only). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant

from . import anchor_cases, anchor_data, anchor_results, anchor_tools, batch, cases, harness, resources
from .anchor_results import LoaderRun
from .errors import BenchmarkError
from .harness import ROOT, publish, run_cli, run_meta
from .options import print_line

RESULTS = ROOT / "benchmarks" / "results"
LOADERS = ("pipeline", "cqlsh", "dsbulk")
CQLSH_NOTE = ("cqlsh loaded a converted copy of the same rows: fields quoted with quotes and backslashes "
              "escaped by a backslash (its default ESCAPE), timestamps as 'YYYY-MM-DD HH:MM:SS+0000' (it reads "
              "a bare integer as milliseconds), and each line break in a value written as the two characters "
              "\\n or \\r (its COPY FROM hangs on a field that spans lines); its table is checked against "
              "the rows with that substitution")
DSBULK_NOTE = "dsbulk loaded the generated file itself, with " + " ".join(anchor_tools.DSBULK_FORMAT)
DSBULK_JSON_NOTE = ("dsbulk loaded the JSON Lines copy the pipeline loaded, with "
                    + " ".join(anchor_tools.DSBULK_JSON))
FORMATS = ("csv", "json")
JSON_LOADERS = ("pipeline", "dsbulk")  # cqlsh's COPY FROM reads CSV only


@dataclass(frozen=True)
class Options:
    mb: float = 50
    fmt: str = "csv"  # "json": the same rows as JSON Lines, for the pipeline and dsbulk
    quick: bool = False
    only: tuple[str, ...] = LOADERS
    concurrency: int = 2
    json_out: Path = RESULTS / "anchors.json"
    plot_out: Path | None = RESULTS / "anchors.png"
    workdir: Path | None = None
    cache: Path = anchor_tools.CACHE
    keep: bool = False
    warmup: bool = True


QUICK_MB = 2.0


def _loaders(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [c for c in chosen if c not in LOADERS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(LOADERS)} separated by commas, got {text!r}")
    return tuple(c for c in LOADERS if c in chosen)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mysimbdp bench anchors", description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=float, help="size of the CSV file in MB (default 50)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="csv",
                   help="csv (default), or json: the same rows as JSON Lines, loaded by the pipeline and dsbulk")
    p.add_argument("--quick", action="store_true", help=f"a smoke run on a {QUICK_MB:g} MB file (--mb still wins)")
    p.add_argument("--only", type=_loaders, help="loaders to run (default pipeline,cqlsh,dsbulk; for json "
                                                 "pipeline,dsbulk)")
    p.add_argument("--concurrency", type=int, default=Options.concurrency, help="worker pool processes (default 2)")
    p.add_argument("--json", dest="json_out", type=Path, default=Options.json_out, help="write the results here")
    p.add_argument("--plot", dest="plot_out", type=Path, default=Options.plot_out, help="write the PNG plot here")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--workdir", type=Path, help="folder in which the run makes its own folder (default: the "
                                                "system's temporary folder)")
    p.add_argument("--cache", type=Path, default=Options.cache,
                   help=f"where cqlsh's virtualenv and dsbulk's jars are kept (default {Options.cache})")
    p.add_argument("--keep", action="store_true", help="keep the work folder and every loaded table")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the unmeasured first load that warms Cassandra's JVM up (a cold node spends about "
                        "3x its CPU per row, which would count against whichever loader runs first)")
    return p


def parse_options(argv: Sequence[str] | None = None) -> Options:
    args = build_parser().parse_args(argv)
    mb = args.mb if args.mb is not None else (QUICK_MB if args.quick else Options.mb)
    if mb <= 0:
        raise BenchmarkError(f"--mb: expected a positive size, got {mb:g}")
    only = args.only or (JSON_LOADERS if args.fmt == "json" else LOADERS)
    if args.fmt == "json" and "cqlsh" in only:
        raise BenchmarkError("--format json: cqlsh's COPY FROM reads CSV only; choose --only from pipeline,dsbulk")
    return Options(mb=mb, fmt=args.fmt, quick=args.quick, only=only, concurrency=args.concurrency,
                   json_out=args.json_out, plot_out=None if args.no_plot else args.plot_out, workdir=args.workdir,
                   cache=args.cache, keep=args.keep, warmup=not args.no_warmup)


@dataclass(frozen=True)
class Prepared:
    item: cases.Input
    empty: Path
    cqlsh_copy: Path
    expected: dict[anchor_data.Key, anchor_data.Values]


def prepare(options: Options, data: Path, echo: Callable[[str], None]) -> Prepared:
    """The generated file (the batch benchmark's seed for its size), cqlsh's copy of it, the expected rows."""
    item = batch.make_inputs(batch.Options(sizes=(options.mb,), json_mb=0), data, echo)[0]
    expected = anchor_data.expected_rows(item.file.path)
    if len(expected) != item.file.distinct_keys:
        raise BenchmarkError(f"{item.file.path}: read {len(expected):,} distinct keys back, the generator wrote "
                             f"{item.file.distinct_keys:,}")
    if options.fmt == "json":
        lines = item.file.path.with_suffix(".jsonl")
        written = anchor_data.write_jsonl(item.file.path, lines)
        echo(f"wrote the same {written:,} rows as JSON Lines: {lines.name} ({lines.stat().st_size / 2**20:.1f} MB)")
        item = dataclasses.replace(item, fmt="jsonl",
                                   file=dataclasses.replace(item.file, path=lines, bytes=lines.stat().st_size))
    copy = data / "cqlsh-copy.csv"
    if "cqlsh" in options.only:
        written = anchor_data.write_cqlsh_copy(item.file.path, copy)
        echo(f"wrote cqlsh's copy of the same {written:,} rows: {copy.name} ({copy.stat().st_size / 2**20:.1f} MB)")
    empty = data / "empty.csv"
    if options.fmt == "json":
        empty = data / "empty.jsonl"
        empty.write_bytes(b"")
    return Prepared(item, empty, copy, expected)


def _cqlsh_argv(cqlsh: Path, host: str, port: int, path: Path,
                setting: anchor_tools.Setting) -> Callable[[Tenant], list[str]]:
    return lambda t: anchor_tools.cqlsh_argv(cqlsh, host, port, f"{t.namespace}.{t.table_name}", path, setting)


def _dsbulk_argv(runtime: str, jars: Path, host: str, port: int, path: Path, logs: Path,
                 setting: anchor_tools.Setting, fmt: str) -> Callable[[Tenant], list[str]]:
    return lambda t: anchor_tools.dsbulk_argv(runtime, jars, host, port, t.namespace, t.table_name, path, logs,
                                              setting, fmt)


def _tool_runs(ctx: cases.Context, options: Options, prep: Prepared, echo: Callable[[str], None]) -> list[LoaderRun]:
    host, port = ctx.settings.cassandra_contact_points[0], ctx.settings.cassandra_port
    runs = []
    if "cqlsh" in options.only:
        cqlsh = anchor_tools.ensure_cqlsh(options.cache, echo)
        cqlsh_rows = anchor_data.one_line_rows(prep.expected)
        for setting in anchor_tools.SETTINGS["cqlsh"]:
            echo(f"{setting.case} ...")
            argv = _cqlsh_argv(cqlsh, host, port, prep.cqlsh_copy, setting)
            note = CQLSH_NOTE if setting.name == "defaults" else ""
            runs.append(anchor_cases.tool(ctx, setting, argv, anchor_tools.parse_cqlsh, cqlsh_rows, note))
            echo("  " + _line(runs[-1]))
    if "dsbulk" in options.only:
        runtime, jars = anchor_tools.ensure_dsbulk(options.cache, echo)
        for setting in anchor_tools.SETTINGS["dsbulk"]:
            echo(f"{setting.case} ...")
            logs = ctx.workdir / f"dsbulk-{setting.name}" / "logs"
            argv = _dsbulk_argv(runtime, jars, host, port, prep.item.file.path, logs, setting, options.fmt)
            note = (DSBULK_NOTE if options.fmt == "csv" else DSBULK_JSON_NOTE) if setting.name == "defaults" else ""
            runs.append(anchor_cases.tool(ctx, setting, argv, anchor_tools.parse_dsbulk, prep.expected, note))
            echo("  " + _line(runs[-1]))
    return runs


def run(settings: Settings, options: Options, echo: Callable[[str], None] = print_line) -> tuple[list[LoaderRun],
                                                                                                  dict[str, Any]]:
    client, cluster, session = harness.connect(settings)
    workdir = harness.work_folder(options.workdir, "mysimbdp-anchors-")
    others = resources.service_pids(settings)
    ctx = cases.Context(settings, client, session, workdir, echo, keep=options.keep, others=dict(others))
    runs: list[LoaderRun] = []
    try:
        prep = prepare(options, workdir / "data", echo)
        if options.warmup:
            echo("warm-up: one unmeasured pipeline load, so that no loader pays for Cassandra's cold JVM ...")
            warm = anchor_cases.pipeline(ctx, cases.PipelineSetup(options.concurrency), prep.item, prep.empty,
                                         prep.expected)
            echo("  " + _line(warm))
        if "pipeline" in options.only:
            echo(f"pipeline ({options.concurrency} worker processes) ...")
            runs.append(anchor_cases.pipeline(ctx, cases.PipelineSetup(options.concurrency), prep.item, prep.empty,
                                              prep.expected))
            echo("  " + _line(runs[-1]))
        runs += _tool_runs(ctx, options, prep, echo)
    finally:
        cluster.shutdown()
        client.close()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs, {"input": {**prep.item.to_dict(), "mb": options.mb}, "format": options.fmt, "service_pids": others}


def _line(r: LoaderRun) -> str:
    cpu = ", ".join(f"{role} {us:.1f}" for role, us in r.cpu_us_per_row.items())
    return (f"{r.verdict.found:,} rows in {r.seconds:.2f} s ({r.wall_seconds:.1f} s wall): {r.rows_per_s:,.0f} rows/s, "
            f"peak RSS {r.peak_rss_bytes / 2**20:.0f} MB; CPU us/row: {cpu}; {r.verdict.line()}")


TIMING = ("pipeline: from the atomic rename into staging to the receipt's finished_at (every row acknowledged), "
          "pool warmed up; cqlsh: the seconds it reports for the import; dsbulk: rows / the rows/s it reports "
          "(both leave out the tool's start-up, which wall_seconds includes)")


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    runs, about = run(settings, options)
    meta = {**run_meta(options, started, load_before), **about, "timing": TIMING,
            "tools": {"cqlsh": anchor_tools.CQLSH_VERSION, "dsbulk": "1.10.0"},
            "cpu_roles": {"loader": "the worker pool (main process and children) for the pipeline; the tool's "
                                    "processes and every descendant otherwise", "rest": "the rest of the machine"}}
    doc = anchor_results.report(runs, meta)
    from . import anchor_plot

    publish(doc, anchor_results.table(runs), anchor_results.summary(runs), options.json_out, options.plot_out,
            anchor_plot.render)
    if not doc["verified"]:
        bad = ", ".join(r.case for r in runs if not r.verdict.ok)
        raise BenchmarkError(f"MISMATCH: the tables of {bad} do not hold the generated rows (see {options.json_out})")
    return 0


if __name__ == "__main__":
    run_cli(main)
