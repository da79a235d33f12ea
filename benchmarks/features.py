"""The features benchmark: the cost of a tenant's data features, variant against variant, in one run.

    mysimbdp bench features [--json-out FILE] [--mb 10] [--concurrency 2] [--keep]
    python -m benchmarks.features [same options]

Each *variant* is a tenant configuration (overrides of the shipped tenant1): the same generated
JSON file goes through a private platform (watcher + the tenant's worker pool) once per variant, on
a fresh tenant and keyspace each. Measured: rows landed, seconds from the rename into staging to
the receipt, and the worker pool's CPU seconds per row (the usable measure on a busy machine). The
variants are a list (:data:`VARIANTS`): a feature adds its own on and off variants there.

Today: the tenant's table alone (quality rules off), the same with the five tagging quality rules of
``benchmarks/data/quality-tenants.json`` on, and the table plus a Kafka topic and a Parquet lake (three
sinks); with three sinks every row is in every sink when the receipt is written (the sinks'
outcomes are in it), unless a sink was away.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import topics
from producers.generate import generate

from . import harness
from .errors import PlatformError
from .harness import ROOT, run_cli, run_meta
from .resources import ResourceSampler

MIB = 1024 * 1024
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Variant:
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)  # tenant settings over the shipped tenant1


# Rules that every generated row passes or is only tagged by, so every row lands in both variants.
QUALITY_RULES = json.loads((ROOT / "benchmarks" / "data" / "quality-tenants.json").read_text(encoding="utf-8")
                           )["tenant1"]["quality"]

VARIANTS: list[Variant] = [
    Variant("one sink (table)"),
    Variant("one sink, quality rules on (5 rules that tag)", {"quality": QUALITY_RULES}),
    Variant("three sinks (table, kafka, parquet lake)", {"sinks": [
        {"name": "feed", "kind": "kafka", "partitions": 3},
        {"name": "lake", "kind": "files", "format": "parquet"},
    ]}),
]


@dataclass(frozen=True)
class Options:
    mb: float = 10
    concurrency: int = 2
    json_out: Path = RESULTS / "features.json"
    workdir: Path | None = None
    keep: bool = False


def parse_options(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="mysimbdp bench features", description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=Options.mb, help="size of the generated JSON file (MB)")
    p.add_argument("--concurrency", type=int, default=Options.concurrency, help="worker pool processes")
    p.add_argument("--json-out", type=Path, default=Options.json_out)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the tenants, keyspaces and work folder")
    a = p.parse_args(argv)
    return Options(a.mb, a.concurrency, a.json_out, a.workdir, a.keep)


def measure(settings: Settings, variant: Variant, src: Path, workdir: Path, options: Options,
            client: Any, session: Any) -> dict[str, Any]:
    overrides = {"max_file_size": max(64, int(options.mb) + 1), **variant.overrides}
    tenant = harness.fresh_tenant("tenant1", overrides=overrides)
    harness.provision(session, settings, tenant)
    topics.ensure(settings, [tenant])
    harness.register(client, tenant)
    try:
        with harness.Platform(settings, tenant, workdir / f"home-{tenant.name}", options.concurrency) as platform:
            name = f"{tenant.name}-features{src.suffix}"
            with ResourceSampler(platform.worker_pid) as sampler:
                renamed_at = platform.stage(src, name)
                receipt = platform.wait_receipt(name, timeout=1800)
    finally:
        if not options.keep:
            harness.discard(client, session, tenant)
    if receipt.status != "done":
        raise PlatformError(f"{variant.label}: the file ended {receipt.status} ({receipt.data.get('reason')})")
    rows = int(receipt.data["rows_ok"])
    seconds = float(receipt.data["finished_at"]) - renamed_at
    cpu = sampler.report().cpu_s
    return {"variant": variant.label, "overrides": variant.overrides, "rows": rows, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 1), "worker_cpu_s": round(cpu, 2),
            "worker_cpu_us_per_row": round(cpu * 1e6 / rows, 1), "sinks": receipt.data.get("sinks")}


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    workdir = harness.work_folder(options.workdir, "features-")
    client, cluster, session = harness.connect(settings)
    measured = []
    try:
        src = generate("tenant1", int(options.mb * MIB), workdir / "data" / "features.json").path
        for variant in VARIANTS:
            print(f"{variant.label} ...", flush=True)
            measured.append(measure(settings, variant, src, workdir, options, client, session))
            m = measured[-1]
            print(f"  {m['rows']:,} rows in {m['seconds']:.2f} s: {m['rows_per_s']:,.0f} rows/s, "
                  f"worker CPU {m['worker_cpu_us_per_row']:.1f} us/row", flush=True)
    finally:
        cluster.shutdown()
        client.close()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    doc = {**run_meta(options, started, load_before), "variants": measured}
    options.json_out.parent.mkdir(parents=True, exist_ok=True)
    options.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results: {options.json_out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
