"""The sweeper benchmark: how long one sweep takes as the backlog of queued files grows.

    mysimbdp bench sweep [--backlogs 100,1000,3000,10000] [--repeats 3] [--json-out FILE] [--plot FILE]
    python -m benchmarks.sweep [same options]

For each backlog N, on a queue of its own (a fresh tenant name, no worker): N open jobs, stale (no
progress since their admission), each with its file task really sent to the tenant's queue through
Celery, as the watcher leaves them when the tenant's pool is down. Then the sweeper of the
platform (``batch.sweeper.Sweeper``) sweeps ``--repeats`` times; the median is reported, with the
tasks it sent again (0 expected: every task is held by the queue) and, for scale, the time of one
read of the broker, which the sweeper before this design paid once per stale job.
Only Redis is needed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.batch.sweeper import Sweeper
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import identities
from mysimbdp_tasks.services import broker
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.worker.celery_app import make_app

from .harness import ROOT, positive_ints, publish, run_cli, run_meta

RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Options:
    backlogs: tuple[int, ...] = (100, 1_000, 3_000, 10_000)
    repeats: int = 3
    json_out: Path = RESULTS / "sweep.json"
    plot_out: Path | None = RESULTS / "sweep.png"


def parse_options(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="mysimbdp bench sweep", description=__doc__.split("\n")[0])
    p.add_argument("--backlogs", type=positive_ints, default=Options.backlogs, help="queued files per case")
    p.add_argument("--repeats", type=int, default=Options.repeats, help="sweeps per case (the median counts)")
    p.add_argument("--json-out", "--json", dest="json_out", type=Path, default=Options.json_out)
    p.add_argument("--plot", dest="plot_out", type=Path, default=Options.plot_out)
    p.add_argument("--no-plot", dest="plot_out", action="store_const", const=None)
    a = p.parse_args(argv)
    return Options(a.backlogs, max(1, a.repeats), a.json_out, a.plot_out)


def _backlog(client: redis.Redis, dispatch: Dispatch, processing: Path, n: int) -> tuple[str, list[str]]:
    """A fresh tenant queue holding ``n`` file tasks, and their ``n`` open, stale jobs."""
    tenant = "bsweep" + uuid.uuid4().hex[:8]
    jobs = Jobs(client)
    ids = []
    for _ in range(n):
        ingest_id = uuid.uuid4().hex
        job = {"ingest_id": ingest_id, "tenant": tenant, "file": f"{tenant}-x.csv", "bytes": 100,
               "day": "2026-01-01", "admitted_at": 0.0, "path": str(processing / tenant / f"{ingest_id}__x.csv")}
        jobs.open(job, now=0.0)
        dispatch.send_file(job)
        ids.append(ingest_id)
    return tenant, ids


def _forget(client: redis.Redis, tenant: str, ids: list[str]) -> None:
    pipe = client.pipeline(transaction=False)
    for ingest_id in ids:
        pipe.srem(names.jobs_open_key(tenant), ingest_id)
        pipe.delete(names.job_key(tenant, ingest_id))
    pipe.delete(names.batch_queue(tenant))
    pipe.execute()


def measure(client: redis.Redis, dispatch: Dispatch, n: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        processing = Path(tmp)
        t0 = time.perf_counter()
        tenant, ids = _backlog(client, dispatch, processing, n)
        enqueue_s = time.perf_counter() - t0
        try:
            sweeper = Sweeper(client, processing, dispatch, stall_s=1.0)
            times, resent = [], 0
            for _ in range(repeats):
                t = time.perf_counter()
                resent += len(sweeper.sweep())
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            broker.held_ids(client, [names.batch_queue(tenant)])
            read_s = time.perf_counter() - t
        finally:
            _forget(client, tenant, ids)
    return {"backlog": n, "sweep_s": round(statistics.median(times), 4), "sweeps_s": [round(x, 4) for x in times],
            "resent": resent, "broker_read_s": round(read_s, 4),
            "old_design_estimate_s": round(read_s * n, 1), "enqueue_s": round(enqueue_s, 2)}


def render(doc: dict[str, Any], out: Path) -> Path:
    from .plotting import pyplot, save

    plt = pyplot()
    rows = doc["cases"]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [r["backlog"] for r in rows]
    ax.plot(xs, [r["sweep_s"] for r in rows], marker="o", label="one sweep (this design)")
    ax.plot(xs, [r["old_design_estimate_s"] for r in rows], marker="x", linestyle="--",
            label="one broker read per stale job (estimate)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("queued files (stale open jobs)")
    ax.set_ylabel("seconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save(fig, "sweep time as the backlog grows", out)


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    client = redis.Redis.from_url(identities.redis_url(settings))
    dispatch = Dispatch(make_app(settings))
    cases = []
    for n in options.backlogs:
        cases.append(measure(client, dispatch, n, options.repeats))
        print(f"backlog {n:>6,}: sweep {cases[-1]['sweep_s']:.3f} s", flush=True)
    doc = {**run_meta(options, started, load_before), "cases": cases,
           "timing": "median wall time of Sweeper.sweep() over stale jobs whose tasks are all queued"}
    table = "\n".join(
        [f"{'backlog':>8} {'sweep s':>9} {'re-sent':>8} {'broker read s':>14} {'old design est. s':>18}"]
        + [f"{c['backlog']:>8,} {c['sweep_s']:>9.3f} {c['resent']:>8} {c['broker_read_s']:>14.4f} "
           f"{c['old_design_estimate_s']:>18.1f}" for c in cases])
    summary = (f"largest backlog {cases[-1]['backlog']:,}: one sweep takes {cases[-1]['sweep_s']:.2f} s "
               f"(it runs in its own thread; intake does not wait for it)")
    publish(doc, table, summary, options.json_out, options.plot_out, render)
    return 0


if __name__ == "__main__":
    run_cli(main)
