"""CPU per row of the quality rules, in this process, without any service.

    python -m benchmarks.quality_cpu [--rows 60000] [--repeat 3] [--json-out FILE]

For each shipped tenant shape it ingests one file of the Reddit samples (repeated up to ``--rows``)
with the platform's ``ingest_chunk`` three ways: without rules (the sink's encoder: rows straight
to bytes, as a pool process does), converted to Python values and serialized as the sink binds
them but with no rule (the cost of leaving the encoder), and with the rules of
``benchmarks/data/quality-tenants.json`` (rules that only tag, so every row lands in every
variant). The writer serializes each row with the driver's serializers, as the sink does, and
writes nothing. It prints the best of ``--repeat`` runs of process CPU per row (user + system):
on a busy machine CPU per row, not rows/s, is the measure to compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cassandra import cqltypes

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.encoding import RowEncoder
from mysimbdp_tasks.core.formats import detect_format
from mysimbdp_tasks.core.quality import Checker
from mysimbdp_tasks.core.rows import converter_for, ingest_chunk
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services.serializers import UNSET_VALUE, column_serializer

from .harness import ROOT, SHIPPED_TENANTS

RULES = ROOT / "benchmarks" / "data" / "quality-tenants.json"
# As compose/demo.sh finds them.
SAMPLES = Path(os.environ.get("MYSIMBDP_SAMPLES", ROOT.parent / "shared" / "data" / "reddit"))
PROTOCOL = 5


def serializers(tenant: Tenant) -> dict[str, Any]:
    return {name: column_serializer(cqltypes._cqltypes[ctype], PROTOCOL)  # noqa: SLF001 - CQL name -> type
            for name, ctype in tenant.columns}


def sample_file(like: str, rows: int, folder: Path, samples: Path) -> Path:
    """A JSON Lines file of tenant1's records or a CSV of tenant2's, of ``rows`` rows."""
    if like == "tenant1":
        records = [r for p in sorted(samples.glob("1000rows*.json")) for r in json.loads(p.read_text())]
        path = folder / "t1.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for i in range(rows):
                fh.write(json.dumps(records[i % len(records)]) + "\n")
        return path
    with (samples / "10000rows.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header, body = next(reader), list(reader)
    path = folder / "t2.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(rows):
            w.writerow(body[i % len(body)])
    return path


def measure(tenant: Tenant, path: Path, variant: str, repeat: int) -> dict[str, Any]:
    sers = serializers(tenant)
    encoder = RowEncoder(tenant.column_types, tenant.key.columns, sers, UNSET_VALUE)
    ordered = tuple(sers[name] for name in tenant.column_names)

    def write(rows: Iterable[Sequence[Any]], _refuse: Any) -> int:
        n = 0
        for row in rows:
            if type(row) is not list:  # Python values: serialized as the sink binds them
                [UNSET_VALUE if v is None else s(v) for s, v in zip(ordered, row, strict=True)]
            n += 1
        return n

    best, landed, counts = float("inf"), 0, None
    for _ in range(repeat):
        converter = encoder if variant == "no rules (encoder)" else converter_for(tenant)
        check = Checker(tenant.quality) if variant == "rules" else None
        t0 = time.process_time()
        result = ingest_chunk(path, detect_format(path), None, converter, write, check=check)
        best = min(best, time.process_time() - t0)
        landed, counts = result.rows_ok, result.quality
    return {"variant": variant, "rows": landed, "cpu_us_per_row": round(best / max(landed, 1) * 1e6, 2),
            "quality": counts}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.quality_cpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=60000, help="rows per file (default 60000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is kept (default 3)")
    ap.add_argument("--samples", type=Path, default=SAMPLES,
                    help="the Reddit samples folder (default MYSIMBDP_SAMPLES)")
    ap.add_argument("--json-out", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    plain = tenants.load(SHIPPED_TENANTS)
    ruled = tenants.load(RULES)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for like in ("tenant1", "tenant2"):
            path = sample_file(like, args.rows, Path(tmp), args.samples)
            for variant in ("no rules (encoder)", "no rules (values)", "rules"):
                tenant = ruled[like] if variant == "rules" else plain[like]
                line = {"tenant": like, "rules": len(ruled[like].quality.rules) if variant == "rules" else 0,
                        **measure(tenant, path, variant, args.repeat)}
                out.append(line)
                print(f"{like}  {variant:<20} rules={line['rules']}  rows={line['rows']}  "
                      f"cpu/row={line['cpu_us_per_row']} us", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
