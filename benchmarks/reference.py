"""Reference writers to compare the pipeline with, each in one process, on the same parse + convert.

- ``naive``: the original design's loader: one synchronous prepared ``session.execute(insert, row)``
  per row. Slow, so it runs on a prefix of the file (a row budget and a time budget).
- ``raw``: what the bare driver does well without any of the platform: single-row prepared inserts
  through ``cassandra.concurrent.execute_concurrent_with_args``, streamed in slices so memory stays
  flat, over the whole file.

Both read and convert rows with the platform's own ``ingest_chunk`` (same parser, converter and
refusal handling); only the writer differs. The timed span starts after the session is connected
and the statement prepared, and ends when the last write is acknowledged.

Run as ``python -m benchmarks.reference naive|raw --tenant-json JSON --file F [...]``: it prints one
JSON line with what it measured, so a benchmark can sample the process's memory from outside.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.formats import detect_format
from mysimbdp_tasks.core.rows import Refuse, Writer, converter_for, ingest_chunk
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.sink import insert_cql


@dataclass(frozen=True)
class RunResult:
    writer: str
    rows: int  # rows written and acknowledged
    rows_refused: int
    seconds: float
    stopped_early: bool  # True when a budget (rows or seconds) ended the run before the file did


def _collector_on() -> None:
    """A reference writer runs as a plain driver user would, with the cyclic collector on.

    ``ingest_chunk`` pauses the collector for the platform's sink, which frees each batch's rows when
    Cassandra answers; the driver's own futures keep their requests in reference cycles, so a whole
    file written with the collector paused would hold every row to the end (over 1 GB for 50 MB).
    """
    gc.enable()


def naive_writer(session: Session, tenant: Tenant, max_rows: int, max_seconds: float) -> tuple[Writer, list[bool]]:
    """One synchronous execute per row, until ``max_rows`` rows or ``max_seconds`` have gone by."""
    insert = session.prepare(insert_cql(tenant))
    insert.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    stopped = [False]

    def write(rows: Iterable[Sequence[Any]], _refuse: Refuse) -> int:  # reference writers refuse nothing
        _collector_on()
        deadline = time.monotonic() + max_seconds
        n = 0
        for row in rows:
            session.execute(insert, row)
            n += 1
            if n >= max_rows or time.monotonic() >= deadline:
                stopped[0] = True
                break
        return n

    return write, stopped


def raw_writer(session: Session, tenant: Tenant, concurrency: int, slice_rows: int) -> Writer:
    """Single-row prepared inserts, ``concurrency`` in flight, ``slice_rows`` rows handed over at a time."""
    insert = session.prepare(insert_cql(tenant))
    insert.consistency_level = ConsistencyLevel.LOCAL_QUORUM

    def write(rows: Iterable[Sequence[Any]], _refuse: Refuse) -> int:  # reference writers refuse nothing
        _collector_on()
        it = iter(rows)
        n = 0
        while batch := list(itertools.islice(it, slice_rows)):
            for ok, outcome in execute_concurrent_with_args(session, insert, batch, concurrency=concurrency,
                                                            raise_on_first_error=True):
                if not ok:  # raise_on_first_error makes this unreachable; kept as a guard
                    raise outcome
            n += len(batch)
        return n

    return write


def run(session: Session, tenant: Tenant, path: Path, writer: str, *, max_rows: int = 20_000,
        max_seconds: float = 30.0, concurrency: int = 100, slice_rows: int = 10_000) -> RunResult:
    fmt = detect_format(path)
    stopped = [False]
    if writer == "naive":
        write, stopped = naive_writer(session, tenant, max_rows, max_seconds)
    elif writer == "raw":
        write = raw_writer(session, tenant, concurrency, slice_rows)
    else:
        raise ValueError(f"writer {writer!r}: expected naive or raw")
    started = time.perf_counter()
    result = ingest_chunk(path, fmt, None, converter_for(tenant), write)
    seconds = time.perf_counter() - started
    return RunResult(writer, result.rows_ok, result.rows_refused, seconds, stopped[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference", description=__doc__.split("\n")[0])
    parser.add_argument("writer", choices=("naive", "raw"))
    parser.add_argument("--tenant-json", required=True, help="the tenant as Tenant.to_json() gives it")
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--max-rows", type=int, default=20_000, help="naive: stop after this many rows")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="naive: stop after this long")
    parser.add_argument("--concurrency", type=int, default=100, help="raw: requests in flight")
    parser.add_argument("--slice-rows", type=int, default=10_000, help="raw: rows handed to the driver at a time")
    args = parser.parse_args(argv)
    tenant = next(iter(tenants.parse(json.loads(args.tenant_json), source="--tenant-json").values()))
    cluster, session = db.connect(Settings.from_env())
    try:
        result = run(session, tenant, args.file, args.writer, max_rows=args.max_rows, max_seconds=args.max_seconds,
                     concurrency=args.concurrency, slice_rows=args.slice_rows)
    finally:
        cluster.shutdown()
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
