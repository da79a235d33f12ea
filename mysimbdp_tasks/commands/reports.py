"""`mysimbdp status`, `summary` and `bench`: what runs, what the platform did, and how fast."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..control import processes
from ..core.errors import MysimbdpError
from ..core.settings import Settings
from .common import redis_client


def status(settings: Settings, args: argparse.Namespace) -> int:
    if not args.tenant:
        return process_status(settings, args)
    return tenant_status(settings, args)


def process_status(settings: Settings, args: argparse.Namespace) -> int:
    """Each platform process: pid, state, uptime, restarts. Read from files: works while Redis is away."""
    from ..control.supervisor import snapshot

    data = snapshot(settings) | {"secure": settings.secure}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    sup = data["supervisor"]
    if sup["running"]:
        waits = ", ".join(f"waiting for {s}" for s in sup["waiting_for"])
        print(f"supervisor: pid {sup['pid']}, up {_duration(sup['uptime_s'])}{'; ' + waits if waits else ''}")
        print(processes.metrics_line(sup.get("metrics")))
    else:
        print("supervisor: not running (`mysimbdp up` starts it)")
    print(f"mode: {settings.mode}")
    print(f"{'NAME':<24} {'PID':>7}  {'STATE':<44} {'UPTIME':>8} {'RESTARTS':>8} {'POOL':>4}")
    for p in data["processes"]:
        pool = p.get("pool")
        print(f"{p['name']:<24} {p['pid'] or '-':>7}  {p['state']:<44} {_duration(p['uptime_s']):>8} "
              f"{p['restarts']:>8} {'-' if pool is None else pool:>4}")
    return 0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def tenant_status(settings: Settings, args: argparse.Namespace) -> int:
    from ..services.quotas import Quotas
    from ..services.registry import Registry
    from . import queries as report

    client = redis_client(settings)
    registry = Registry(client)
    known = registry.all()
    if args.tenant not in known:
        raise MysimbdpError(f"tenant {args.tenant!r} is not known; known: {', '.join(sorted(known)) or 'none'}")
    tenant = known[args.tenant]
    data: dict[str, Any] = {
        "tenant": tenant.name,
        "active": registry.is_active(tenant.name),
        "usage_today": report.usage(Quotas(client), tenant),
        "files": report.file_outcomes(settings, tenant.name),
        "latest": report.latest_files(settings, tenant.name, args.latest),
        "windows": [w.text for w in tenant.windows],
        "scheduled": report.scheduled_files(client, tenant.name),
        "priority": tenant.priority.level,
        "queued": report.queued_files(client, tenant.name),
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{tenant.name} ({'active' if data['active'] else 'inactive'}), usage today (UTC):")
    for what, u in data["usage_today"].items():
        if isinstance(u, dict):
            print(f"  {what:<9} {u['used']:>12} / {u['limit']}")
    f = data["files"]
    print(f"files: {f['done']} done, {f['failed']} failed, {f['rejected']} rejected, {f['in_progress']} in progress")
    if data["windows"] or data["scheduled"]:
        print(f"ingestion windows (UTC): {', '.join(data['windows']) or 'any time'}; "
              f"{len(data['scheduled'])} file(s) scheduled, waiting for one to open")
        for e in data["scheduled"]:
            print(f"  starts {e['starts_at']}  {e['file']} (admitted {e['admitted_at']})")
    if data["queued"]:
        print(f"batch priority {tenant.priority.text}; {len(data['queued'])} file(s) queued for a batch slot")
        for e in data["queued"]:
            print(f"  #{e['position']}  {e['file']} (admitted {e['admitted_at']})")
    print("latest files:")
    for e in data["latest"]:
        rows = f" rows ok {e['rows_ok']}, refused {e['rows_refused']}" if e["rows_ok"] is not None else ""
        print(f"  {e['time']}  {e['status']:<8} {e['file']}{rows} {e['reason']}")
    return 0


def summary(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import cassandra as db
    from ..services.quotas import Quotas
    from ..services.registry import Registry
    from . import queries as report

    client = redis_client(settings)
    known = Registry(client).all()
    streaming = [t for t in known.values() if t.stream is not None]
    if args.wait and not report.wait_idle(settings, args.wait):
        print(f"warning: files still pending after {args.wait} s", file=sys.stderr)
    if args.wait and streaming and not report.wait_stream_idle(settings, streaming, args.wait):
        print(f"warning: messages still pending after {args.wait} s", file=sys.stderr)
    cluster, session = db.connect(settings)
    try:
        rows = []
        for t in sorted(known.values(), key=lambda t: t.name):
            row = {"tenant": t.name, **report.file_outcomes(settings, t.name),
                   "rows_in_cassandra": report.rows_in_table(session, t), "table": f"{t.namespace}.{t.table_name}"}
            if t.stream is not None:
                row["messages_accepted_today"] = Quotas(client).usage(t.name)["messages"]
                row["dead_letters"] = dict(report.dead_letters(settings, t))
            rows.append(row)
    finally:
        cluster.shutdown()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r["refusal_reasons"].items())) or "none"
        print(f"{r['tenant']} ({r['table']}): {r['rows_in_cassandra']} rows in Cassandra")
        print(f"  batch:  files accepted {r['done']}, failed {r['failed']}, rejected {r['rejected']} "
              f"(reasons: {reasons}); rows landed {r['rows_ok']}, rows refused {r['rows_refused']}")
        if "dead_letters" in r:
            dead = ", ".join(f"{k}: {v}" for k, v in sorted(r["dead_letters"].items())) or "none"
            print(f"  stream: messages accepted today {r['messages_accepted_today']}, "
                  f"dead-lettered {sum(r['dead_letters'].values())} (reasons: {dead})")
    return 0


# --------------------------------------------------------------------------------------------
# benchmarks
# --------------------------------------------------------------------------------------------

# kind -> module of benchmarks/ with main(settings, argv) -> int; each benchmark parses its own options.
BENCHMARKS = {"batch": "benchmarks.batch", "stream": "benchmarks.stream", "sweep": "benchmarks.sweep",
              "anchors": "benchmarks.anchors", "cassandra": "benchmarks.cassandra_tuning",
              "scale": "benchmarks.scale", "features": "benchmarks.features"}


def bench(settings: Settings, args: argparse.Namespace) -> int:
    import importlib

    return int(importlib.import_module(BENCHMARKS[args.kind]).main(settings, args.options))
