"""Peak memory of a worker for a whole file: is it flat in the file's size?

    python -m benchmarks.probe_rss [--mb 50,500] [--fmt csv|json|jsonl|parquet] [--writer sink|count]

For each size, generates a file shaped like tenant2 (CSV, Parquet) or tenant1 (JSON array, JSON Lines) and
ingests all of it in a fresh child process, as one pool process would take every chunk of it in
turn: the file is planned with the platform's planner, and each chunk goes through
``ingest_chunk`` with the tenant's encoder and a real ``Sink`` (``--writer sink``, into a fresh
table) or a writer that only counts (``--writer count``: no Cassandra, parsing and encoding only).
Each line gives the rows, the chunks, CPU per row and the child's peak RSS (``ru_maxrss``); the
last line compares the sizes: flat means the largest file's peak is within 10 % of the smallest's,
and the target is a peak of at most 300 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mysimbdp_tasks.core.chunks import iter_chunks
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.formats import Format
from mysimbdp_tasks.core.rows import Writer, converter_for, ingest_chunk
from mysimbdp_tasks.core.settings import Settings
from producers.generate import generate
from producers.packing import ROW_GROUP_ROWS

from . import harness

MIB = 1024 * 1024
TARGET_MB = 300


def _count(rows: Iterable[Any], _refuse: Any = None) -> int:
    return sum(1 for _ in rows)


def ingest_whole(path: Path, fmt: Format, writer: str) -> dict[str, Any]:
    """Every chunk of ``path`` in this process; rows, chunks, CPU and peak RSS."""
    settings = Settings.from_env()
    shape = "tenant2" if fmt in ("csv", "parquet") else "tenant1"
    tenant = harness.fresh_tenant(shape, prefix="rss")
    session = cluster = None
    encoder: RowConverter = converter_for(tenant)
    write: Writer = _count
    if writer == "sink":
        from mysimbdp_tasks.services import cassandra as db
        from mysimbdp_tasks.services.sink import Sink

        cluster, session = db.connect(settings, request_timeout=120)
        harness.provision(session, settings, tenant)
        sink = Sink(session, tenant)
        encoder, write = sink.encoder, sink.write
    rows = refused = chunks = 0
    started, cpu0 = time.perf_counter(), time.process_time()
    try:
        for chunk in iter_chunks(path, fmt, settings.chunk_bytes):
            result = ingest_chunk(path, fmt, chunk, encoder, write, chunk.index)
            rows, refused, chunks = rows + result.rows_ok, refused + result.rows_refused, chunks + 1
    finally:
        if session is not None:
            harness.discard(None, session, tenant)
            assert cluster is not None
            cluster.shutdown()
    return {"rows": rows, "refused": refused, "chunks": chunks, "seconds": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(path: Path, fmt: str, writer: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.probe_rss", "--child", str(path), "--fmt", fmt,
                          "--writer", writer], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def make_file(fmt: str, mb: float, folder: Path) -> Path:
    """A generated file of about ``mb`` MiB in ``fmt``: tenant2-shaped CSV or Parquet, tenant1-shaped JSON."""
    if fmt != "parquet":
        shape = "tenant2" if fmt == "csv" else "tenant1"
        return generate(shape, round(mb * MIB), folder / f"rss.{fmt}", seed=7, fmt=fmt).path
    # Parquet from generated CSV, uncompressed (so the file is about as large as its data) in row
    # groups of ROW_GROUP_ROWS, as the producers write it.
    text = generate("tenant2", round(mb * MIB), folder / "rss-source.csv", seed=7, fmt="csv").path
    out = folder / "rss.parquet"
    options = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(column_types={"created_utc": pa.int64()}, strings_can_be_null=False)
    with pacsv.open_csv(text, parse_options=options, convert_options=convert) as batches, \
            pq.ParquetWriter(out, batches.schema, compression="none") as writer:
        pending: list[pa.RecordBatch] = []
        for batch in batches:
            pending.append(batch)
            if sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=ROW_GROUP_ROWS)
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=ROW_GROUP_ROWS)
    text.unlink()
    return out


def _sizes(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.probe_rss", description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=_sizes, default=[50.0, 500.0], help="file sizes in MB (default 50,500)")
    p.add_argument("--fmt", choices=("csv", "json", "jsonl", "parquet"), default="csv")
    p.add_argument("--writer", choices=("sink", "count"), default="sink")
    p.add_argument("--workdir", type=Path, default=None, help="where the generated files go (removed after)")
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(ingest_whole(args.child, args.fmt, args.writer)))
        return 0
    peaks: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="mysimbdp-rss-", dir=args.workdir) as tmp:
        for mb in args.mb:
            path = make_file(args.fmt, mb, Path(tmp))
            run = _child(path, args.fmt, args.writer)
            path.unlink()
            peaks.append((mb, run["peak_rss_mb"]))
            print(f"{args.fmt} {mb:g} MB ({args.writer}): {run['rows']:,} rows in {run['chunks']} chunks, "
                  f"{run['cpu_s'] / max(run['rows'], 1) * 1e6:.1f} us/row, {run['seconds']:.1f} s; "
                  f"peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)
    smallest, largest = peaks[0][1], peaks[-1][1]
    flat = largest <= smallest * 1.1
    print(f"peak RSS {' / '.join(f'{mb:g} MB: {rss:.0f} MB' for mb, rss in peaks)}; "
          f"{'flat' if flat else 'NOT flat'} in file size; target <= {TARGET_MB} MB: "
          f"{'met' if max(r for _, r in peaks) <= TARGET_MB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
