"""Synthetic tenant files of any size, for benchmarks and soak tests.

    python -m producers.generate --tenant tenant1|tenant2 --mb N --out FILE
                                 [--seed S] [--format csv|json|jsonl] [--samples DIR]

Records have fresh ids (so their keys collide neither with the real samples nor across seeds); the
other values of a record come together from one real sample, its body from another real one (so
sizes and distributions match), except for AWKWARD_SHARE of bodies built by ``producers.awkward``.
Rows are assembled from pre-encoded pieces and written in ~1 MiB chunks: fast, and memory stays flat
however large the file.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import string
import sys
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mysimbdp_tasks.core.errors import MysimbdpError

from . import awkward, samples
from .batch import MB, PROFILES, Profile, profile_for
from .staging import AtomicFile

FORMATS = ("csv", "json", "jsonl")
AWKWARD_SHARE = 0.05
CHUNK_BYTES = 1 << 20
_B36 = string.digits + string.ascii_lowercase
_LOW = [(a + b + c).encode() for a in _B36 for b in _B36 for c in _B36]  # 46,656 fixed-width id tails
_ID_NS = [b"%d:" % n for n in range(64)]  # digest prefixes of ids by length, see records_digest()


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    records: int
    bytes: int
    distinct_keys: int
    digest: str  # records_digest() of every record written, in order


def b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


def id_prefix(seed: int) -> str:
    # "_" never occurs in Reddit ids (base 36), so generated ids cannot collide with real ones; the
    # seed before it keeps runs with different seeds apart.
    return f"g{b36(seed)}_"


class _Ids:
    """Unique ids: the prefix, a base-36 counter of blocks, then a fixed three-character tail.

    Built a block (46,656 ids) at a time, so handing out an id costs a list slice, not a call.
    """

    def __init__(self, seed: int) -> None:
        self.prefix = id_prefix(seed)
        self.hi = 0
        self.block: list[bytes] = []
        self.pos = 0

    def take(self, k: int) -> list[bytes]:
        out: list[bytes] = []
        while len(out) < k:
            if self.pos == len(self.block):
                head = (self.prefix + b36(self.hi)).encode()
                self.block, self.pos, self.hi = [head + low for low in _LOW], 0, self.hi + 1
            m = min(k - len(out), len(self.block) - self.pos)
            out += self.block[self.pos:self.pos + m]
            self.pos += m
        return out


def records_digest(rows: Iterable[Sequence[object]]) -> str:
    """SHA-256 of the rows' values as UTF-8 text, each as ``<bytes>:<value>``: equal for a CSV or JSON copy."""
    h = hashlib.sha256()
    for row in rows:
        h.update(b"".join(_ns(v) for v in row))
    return h.hexdigest()


def _ns(value: object) -> bytes:
    # Length-prefixed, so no value can pass for a value boundary whatever it holds.
    data = str(value).encode()
    return b"%d:%s" % (len(data), data)


def csv_field(value: object) -> str:
    """One field as ``csv.writer`` (default dialect, QUOTE_MINIMAL) writes it inside a row."""
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_pair(key: str, value: object) -> str:
    text = str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)
    return f'"{key}": {text}'


@dataclass(frozen=True)
class _Frame:
    """What surrounds the rows: a header, text before and after each row, a footer.

    In a JSON array the first row has no comma before it: ``first_lead`` replaces ``lead`` there.
    """

    header: bytes
    lead: bytes
    first_lead: bytes
    end: bytes
    footer: bytes


def _frame(profile: Profile, fmt: str) -> _Frame:
    if fmt == "csv":
        return _Frame(",".join(profile.fields).encode() + b"\r\n", b"", b"", b"\r\n", b"")
    if fmt == "jsonl":
        return _Frame(b"", b"", b"", b"\n", b"")
    return _Frame(b"[", b",\n", b"\n", b"", b"\n]\n")


@dataclass
class _Pieces:
    """Encoded parts of a row, ``head[i] id mid[i] body[j] tail[i]`` (i: a sample, j: a body), and of
    its digest. ``head`` starts with the frame's lead and ``tail`` ends with its row end."""

    head: list[bytes] = field(default_factory=list)
    mid: list[bytes] = field(default_factory=list)
    tail: list[bytes] = field(default_factory=list)
    meta_bytes: list[int] = field(default_factory=list)
    head_digest: list[bytes] = field(default_factory=list)
    mid_digest: list[bytes] = field(default_factory=list)
    tail_digest: list[bytes] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    body_digest: list[bytes] = field(default_factory=list)


def _split(fields: Sequence[str]) -> tuple[list[str], list[str], list[str], bool]:
    k = fields.index("id")
    b = fields.index("body") if "body" in fields else len(fields)
    if b < k:
        raise ValueError("the body column must come after the id column")
    return list(fields[:k]), list(fields[k + 1:b]), list(fields[b + 1:]), b < len(fields)


def _pieces(profile: Profile, fmt: str, frame: _Frame, metas: Sequence[samples.Sample],
            bodies: Sequence[str]) -> _Pieces:
    head_f, mid_f, tail_f, has_body = _split(profile.fields)
    p = _Pieces()
    for s in metas:
        hv, mv, tv = ([getattr(s, f) for f in fs] for fs in (head_f, mid_f, tail_f))
        if fmt == "csv":
            h = "".join(csv_field(v) + "," for v in hv)
            m = "".join("," + csv_field(v) for v in mv)
            t = "".join("," + csv_field(v) for v in tv)
        else:
            h = "{" + "".join(_json_pair(f, v) + ", " for f, v in zip(head_f, hv, strict=True)) + '"id": "'
            m = '"' + "".join(", " + _json_pair(f, v) for f, v in zip(mid_f, mv, strict=True))
            t = "".join(", " + _json_pair(f, v) for f, v in zip(tail_f, tv, strict=True)) + "}"
        p.head.append(frame.lead + h.encode())
        p.mid.append(m.encode())
        p.tail.append(t.encode() + frame.end)
        p.meta_bytes.append(len(p.head[-1]) + len(p.mid[-1]) + len(p.tail[-1]))
        for digests, vs in ((p.head_digest, hv), (p.mid_digest, mv), (p.tail_digest, tv)):
            digests.append(b"".join(_ns(v) for v in vs))
    for body in bodies if has_body else []:
        p.body.append(("," + csv_field(body) if fmt == "csv" else ", " + _json_pair("body", body)).encode())
        p.body_digest.append(_ns(body))
    if not has_body:
        p.body, p.body_digest = [b""], [b""]
    return p


def _body_table(real: int, awkward_count: int) -> list[int]:
    """Body indices to draw uniformly from, so that AWKWARD_SHARE of draws are awkward bodies."""
    extra = max(awkward_count, round(real * AWKWARD_SHARE / (1 - AWKWARD_SHARE)))
    return list(range(real)) + [real + i % awkward_count for i in range(extra)]


def _interleave(n: int, *columns: Iterable[bytes]) -> bytes:
    """Rows of ``n`` cells each taken from every column in turn, joined: row 0 col 0, row 0 col 1, …

    The columns are laid into one list by slice assignment and joined once: no Python code runs per
    row, which is what makes the generator fast.
    """
    parts = [b""] * (n * len(columns))
    for c, column in enumerate(columns):
        parts[c::len(columns)] = column
    return b"".join(parts)


class _Writer:
    """Draws rows chunk by chunk and writes them until the next row would pass the target size."""

    def __init__(self, profile: Profile, fmt: str, metas: Sequence[samples.Sample], seed: int) -> None:
        self.rng = random.Random(seed)
        real = [s.body for s in metas]
        awkward_bodies = awkward.pool(self.rng, real)
        self.has_body = "body" in profile.fields
        self.frame = _frame(profile, fmt)
        self.p = _pieces(profile, fmt, self.frame, metas, real + awkward_bodies)
        self.metas = range(len(metas))
        self.table = _body_table(len(real), len(awkward_bodies)) if self.has_body else [0]
        # The canaries open the file so that even a small one holds every awkward class.
        self.first = list(range(len(real), len(real) + awkward.CANARY_COUNT)) if self.has_body else []
        self.ids = _Ids(seed)
        self.digest = hashlib.sha256()
        self.records = 0
        sample = self.table[::97]
        self.avg_row = (sum(self.p.meta_bytes) / len(metas) + 8
                        + sum(len(self.p.body[j]) for j in sample) / len(sample))

    def write(self, fh: BinaryIO, target_bytes: int) -> None:
        frame = self.frame
        fh.write(frame.header)
        # Every row is counted with the full lead; the first one's is shorter (JSON array: no comma).
        budget = target_bytes - len(frame.header) - len(frame.footer) + len(frame.lead) - len(frame.first_lead)
        written = 0
        while budget > written:
            k = max(16, int(min(CHUNK_BYTES, budget - written) / self.avg_row) + 1)
            n, size = self._chunk(fh, k, budget - written)
            written += size
            if n < k:
                break
        fh.write(frame.footer)

    def _chunk(self, fh: BinaryIO, k: int, room: int) -> tuple[int, int]:
        """Write up to k rows that fit in ``room`` bytes; return (rows, bytes as counted by the budget)."""
        p, rng = self.p, self.rng
        metas_i = rng.choices(self.metas, k=k)
        bodies_j = rng.choices(self.table, k=k) if self.has_body else [0] * k
        if self.records == 0:
            bodies_j[:len(self.first)] = self.first
        ids = self.ids.take(k)
        data = _interleave(k, map(p.head.__getitem__, metas_i), ids, map(p.mid.__getitem__, metas_i),
                           map(p.body.__getitem__, bodies_j), map(p.tail.__getitem__, metas_i))
        n = k
        if len(data) > room:  # the target falls inside this chunk: keep the rows that fit
            ends = list(itertools.accumulate(p.meta_bytes[i] + len(p.body[j]) + len(ident)
                                             for i, j, ident in zip(metas_i, bodies_j, ids, strict=True)))
            n = bisect_right(ends, room)
            data = data[:ends[n - 1]] if n else b""
            del metas_i[n:], bodies_j[n:], ids[n:]
        size = len(data)
        if n and self.records == 0:
            data = self.frame.first_lead + data[len(self.frame.lead):]
        fh.write(data)
        self.digest.update(_interleave(
            n, map(p.head_digest.__getitem__, metas_i), map(_ID_NS.__getitem__, map(len, ids)), ids,
            map(p.mid_digest.__getitem__, metas_i), map(p.body_digest.__getitem__, bodies_j),
            map(p.tail_digest.__getitem__, metas_i)))
        self.records += n
        return n, size


def generate(tenant: str, target_bytes: int, out: Path, seed: int = 0, fmt: str | None = None,
             samples_dir: Path | None = None) -> GeneratedFile:
    """Write ``tenant`` records to ``out`` (replaced atomically) up to ``target_bytes``: the file ends
    one row short of the target at most, so it is within a few KiB of it."""
    profile = profile_for(tenant)
    fmt = fmt or profile.fmt
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    writer = _Writer(profile, fmt, samples.load(samples_dir or samples.default_dir()), seed)
    # Atomic, so a file generated straight into staging is never taken half-written; not synced:
    # a benchmark input is cheap to make again, and syncing would dominate the timing.
    staged = AtomicFile(out.parent, out.name, overwrite=True, durable=False)
    with staged as fh:
        writer.write(fh, target_bytes)
    assert staged.path is not None
    # Ids come from one counter, so every record's primary key is distinct by construction.
    return GeneratedFile(staged.path, writer.records, staged.size, writer.records,
                         writer.digest.hexdigest())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producers.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant", required=True, choices=sorted(PROFILES))
    parser.add_argument("--mb", required=True, type=float, help="target size in MiB (the file never exceeds it)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0, help="same seed, same file; different seeds, disjoint ids")
    parser.add_argument("--format", choices=FORMATS, help="default: the tenant's own (tenant1 json, tenant2 csv)")
    parser.add_argument("--samples", type=Path,
                        help=f"folder of real samples (default: ${samples.SAMPLES_ENV}, else data/reddit)")
    args = parser.parse_args(argv)
    if args.mb <= 0 or args.seed < 0:
        parser.error("--mb must be > 0 and --seed >= 0")
    started = time.monotonic()
    try:
        g = generate(args.tenant, round(args.mb * MB), args.out, args.seed, args.format, args.samples)
    except MysimbdpError as e:
        print(f"producers.generate: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"producers.generate: error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    secs = time.monotonic() - started
    print(f"{g.path}\trecords={g.records}\tbytes={g.bytes}\tdistinct_keys={g.distinct_keys}"
          f"\tseconds={secs:.2f}\tMB/s={g.bytes / MB / secs:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
