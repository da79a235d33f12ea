"""clientbatchingestapp: turn a tenant's source files into its format and drop them into staging.

    python -m producers.batch --tenant tenant1|tenant2 [--format json|csv|parquet] [--gzip | --encrypt]
                              [--staging DIR] [--quiet] INPUT...

tenant1 keeps six fields of full Reddit JSON records and writes a JSON array; tenant2 keeps five
columns of a Reddit CSV export and writes CSV. ``--format`` writes another format instead (Parquet
in row groups, see ``packing``), ``--gzip`` compresses a JSON or CSV output (``.csv.gz``; the
tenant's ``file_type`` must allow it). Each output is ``<tenant>-<input stem>.<ext>``
(the platform reads the tenant from that prefix), appears in staging only when complete, and never
replaces a file already there. Progress goes to stderr; one summary line per output to stdout.
With ``--encrypt`` each output is sealed with the tenant's file key (``mysimbdp filekey``) as it is
written, ``<tenant>-<stem>.<ext>.enc``: no plaintext byte reaches the staging folder.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast

from mysimbdp_tasks.core import progress as bars
from mysimbdp_tasks.core import sealed
from mysimbdp_tasks.core.errors import MysimbdpError, TenantError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import filekeys

from . import packing
from .readers import InputError, iter_csv_rows, iter_json_objects
from .staging import AtomicFile

PROGRESS_SECONDS = 1.0
MB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    """What one tenant's client app keeps from the source records and how it writes them."""

    tenant: str
    fields: tuple[str, ...]
    fmt: str  # what it reads and, by default, writes: "json" (array) or "csv" (with header)

    @property
    def ext(self) -> str:
        return "." + self.fmt


PROFILES: dict[str, Profile] = {
    "tenant1": Profile("tenant1", ("created_utc", "ups", "subreddit", "id", "author", "score"), "json"),
    "tenant2": Profile("tenant2", ("created_utc", "subreddit", "id", "author", "body"), "csv"),
}


@dataclass(frozen=True)
class Output:
    path: Path
    records: int
    bytes: int


@dataclass(frozen=True)
class Progress:
    """A snapshot of one file's wrangling, handed to the progress callback."""

    src: Path
    read: int
    written: int
    bytes_in: int
    bytes_out: int
    elapsed: float
    done: bool


ProgressFn = Callable[[Progress], None]


def profile_for(tenant: str) -> Profile:
    try:
        return PROFILES[tenant]
    except KeyError:
        raise TenantError(f"unknown tenant {tenant!r}: choose one of {', '.join(PROFILES)}") from None


def output_name(profile: Profile, src: Path, ext: str | None = None) -> str:
    stem = src.stem
    # Re-wrangling a file that already carries the prefix must not stack it (tenant2-tenant2-x.csv).
    for sep in "-_":
        stem = stem.removeprefix(profile.tenant + sep)
    return f"{profile.tenant}-{stem}{ext or profile.ext}"


OUTPUT_FORMATS = ("json", "csv", "parquet")


def wrangle(tenant: str, src: Path, dest_dir: Path, *, progress: ProgressFn | None = None,
            fmt: str | None = None, gzip: bool = False, key: bytes | None = None) -> Output:
    """Write ``src`` in ``tenant``'s format (or ``fmt``; ``gzip``: compressed; ``key``: sealed with
    it) into ``dest_dir``; raise InputError if ``src`` is unusable."""
    profile = profile_for(tenant)  # what the source holds
    out_fmt = fmt or profile.fmt
    if out_fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if gzip and out_fmt == "parquet":
        raise ValueError("--gzip applies to json and csv outputs: Parquet compresses its own columns")
    if key and (gzip or out_fmt == "parquet"):
        raise ValueError("--encrypt applies to plain json and csv outputs")
    started = time.monotonic()
    staged = AtomicFile(dest_dir, output_name(profile, src, f".{out_fmt}{'.gz' if gzip else ''}")
                        + (sealed.SUFFIX if key else ""))
    with contextlib.ExitStack() as stack:
        try:  # -sig: exports from spreadsheets start with a byte-order mark
            source = stack.enter_context(open(src, encoding="utf-8-sig", newline=""))
        except OSError as e:
            raise InputError(f"{src}: cannot open: {e.strerror or e}") from None
        raw = stack.enter_context(staged)
        rows = _records(profile, source, str(src))
        tick = _Ticker(src, source, raw, started, progress)
        if out_fmt == "parquet":
            try:
                written = packing.write_parquet(profile.fields, rows, raw, tick, str(src))
            except UnicodeDecodeError as e:
                raise InputError(f"{src}: not UTF-8 text: {e.reason}") from None
        else:
            # A sealing writer or a gzip compressor is closed by _write_text; neither closes raw.
            target = cast(BinaryIO, sealed.SealingWriter(raw, tenant, key)) if key else (
                packing.gzipped(raw) if gzip else raw)
            written = _write_text(profile, out_fmt, rows, target, tick, src)
    assert staged.path is not None
    result = Output(staged.path, written, staged.size)
    tick.final(written, result.bytes)
    return result


def _write_text(profile: Profile, fmt: str, rows: Iterator[Sequence[Any]], raw: BinaryIO, tick: _Ticker,
                src: Path) -> int:
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    try:
        write = _write_json if fmt == "json" else _write_csv
        return write(profile, rows, out, tick)
    except UnicodeDecodeError as e:
        raise InputError(f"{src}: not UTF-8 text: {e.reason}") from None
    finally:
        out.detach()  # flushes; closing (after fsync) or discarding is AtomicFile's job
        if raw is not tick.sink:
            raw.close()  # the gzip trailer (the file under it stays open)


def _records(profile: Profile, source: TextIO, name: str) -> Iterator[Sequence[Any]]:
    if profile.fmt == "csv":
        yield from iter_csv_rows(source, profile.fields, name)
        return
    for record in iter_json_objects(source, name):
        # A missing field is kept as null: refusing that row, with a reason, is the platform's job.
        yield [record.get(f) for f in profile.fields]


def _write_json(profile: Profile, rows: Iterator[Sequence[Any]], out: TextIO, tick: _Ticker) -> int:
    fields = profile.fields
    n = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if n else "\n")
        out.write(json.dumps(dict(zip(fields, row, strict=True)), ensure_ascii=False))
        n += 1
        tick(n)
    out.write("\n]\n")
    return n


def _write_csv(profile: Profile, rows: Iterator[Sequence[Any]], out: TextIO, tick: _Ticker) -> int:
    # The default "\r\n" terminator matters: with "\n" the csv module leaves a field holding a bare
    # "\r" unquoted, and a reader would split the row there.
    writer = csv.writer(out)
    writer.writerow(profile.fields)
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
        tick(n)
    return n


class _Ticker:
    """Calls the progress callback at most every PROGRESS_SECONDS, checking the clock cheaply."""

    def __init__(self, src: Path, source: TextIO, sink: BinaryIO, started: float, fn: ProgressFn | None) -> None:
        self.src, self.source, self.sink, self.started, self.fn = src, source, sink, started, fn
        self.next_at = started + PROGRESS_SECONDS

    def __call__(self, n: int) -> None:
        if self.fn is None or n & 1023:
            return
        now = time.monotonic()
        if now >= self.next_at:
            self.next_at = now + PROGRESS_SECONDS
            # Both positions are off by one buffer (read ahead, not yet written): fine for progress.
            self.fn(Progress(self.src, n, n, _tell(self.source.buffer), _tell(self.sink),
                             now - self.started, False))

    def final(self, n: int, bytes_out: int) -> None:
        if self.fn is not None:
            self.fn(Progress(self.src, n, n, self.src.stat().st_size, bytes_out,
                             time.monotonic() - self.started, True))


def _tell(f: IO[bytes]) -> int:
    try:
        return f.tell()
    except (OSError, ValueError):
        return 0


def print_progress(p: Progress) -> None:
    state = "done" if p.done else "..."
    print(f"{p.src.name}: {p.read} read, {p.written} written, {p.bytes_in / MB:.1f} MB in, "
          f"{p.bytes_out / MB:.1f} MB out, {p.elapsed:.1f} s {state}", file=sys.stderr, flush=True)


def _progress(src: Path) -> ProgressFn:
    """A bar of the file's bytes read on a terminal; otherwise a line every few seconds."""
    if not bars.on_terminal():
        return print_progress
    show = bars.follow(src.name, src.stat().st_size if src.is_file() else None, "B")
    return lambda p: show(p.bytes_in, f"{p.written} records written", p.done)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producers.batch", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant", required=True, choices=sorted(PROFILES))
    parser.add_argument("--staging", type=Path, help="staging folder (default: $MYSIMBDP_HOME/staging)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.add_argument("--format", choices=OUTPUT_FORMATS,
                        help="default: the tenant's own (tenant1 json, tenant2 csv)")
    parser.add_argument("--gzip", action="store_true", help="gzip-compress a json or csv output (.csv.gz, ...)")
    parser.add_argument("--encrypt", action="store_true",
                        help="seal each json or csv output with the tenant's file key (created in $MYSIMBDP_HOME "
                             "if missing): .csv.enc, ...")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    args = parser.parse_args(argv)
    if args.gzip and args.format == "parquet":
        parser.error("--gzip applies to json and csv outputs: Parquet compresses its own columns")
    if args.encrypt and (args.gzip or args.format == "parquet"):
        parser.error("--encrypt applies to plain json and csv outputs")
    try:
        settings = Settings.from_env()
        staging = args.staging or settings.staging
        key = filekeys.key(settings.home, args.tenant) if args.encrypt else None
    except MysimbdpError as e:
        print(f"producers.batch: {e}", file=sys.stderr)
        return 2
    failed = 0
    for src in args.inputs:
        try:
            out = wrangle(args.tenant, src, staging, progress=None if args.quiet else _progress(src),
                          fmt=args.format, gzip=args.gzip, key=key)
        except InputError as e:
            print(f"producers.batch: error: {e}", file=sys.stderr)
            failed += 1
            continue
        except OSError as e:  # the input was fine; staging is not writable (permissions, disk full)
            print(f"producers.batch: error: cannot write {src.name} to {staging}: {e.strerror or e}",
                  file=sys.stderr)
            failed += 1
            continue
        print(f"{out.path}\trecords={out.records}\tbytes={out.bytes}", flush=True)
    if failed:
        print(f"producers.batch: {failed} of {len(args.inputs)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
