"""`mysimbdp quality --tenant T`: rows checked and failed per quality rule, over files and stream windows."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from typing import Any

from ..core.settings import Settings
from ..reporting.period import iso
from .dead import tenant_of_registry
from .report import when


def totals(rows: Iterable[dict[str, Any]], actions: dict[str, str]) -> list[dict[str, Any]]:
    """Per rule (the tenant's rules first, in their order, then any recorded under a rule removed since):
    rows checked and failed over files and over stream windows."""
    out: dict[str, dict[str, Any]] = {}

    def entry(rule: str, action: str) -> dict[str, Any]:
        return out.setdefault(rule, {"rule": rule, "action": action,
                                     "files": {"count": 0, "checked": 0, "failed": 0},
                                     "stream": {"count": 0, "checked": 0, "failed": 0}})

    for rule, action in actions.items():
        entry(rule, action)
    for r in rows:
        side = entry(r["rule"], r.get("action") or "unknown")["files" if r["source"] == "file" else "stream"]
        side["count"] += 1
        side["checked"] += int(r.get("checked") or 0)
        side["failed"] += int(r.get("failed") or 0)
    return list(out.values())


def quality(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import cassandra as db
    from ..services import quality_metrics

    tenant = tenant_of_registry(settings, args.tenant)
    until = time.time()
    cluster, session = db.connect(settings)
    try:
        rules = totals(quality_metrics.read(session, tenant, args.since, until), tenant.quality.actions)
    finally:
        cluster.shutdown()
    since = iso(args.since) if args.since is not None else None
    if args.json:
        print(json.dumps({"tenant": tenant.name, "since": since, "until": iso(until), "rules": rules}, indent=2))
        return 0
    print(f"{tenant.name}: quality rules{f' since {since}' if since else ''}"
          + ("" if rules else ": none configured and none recorded"))
    for r in rules:
        f, s = r["files"], r["stream"]
        print(f"  {r['rule']:<24} {r['action']:<7} files: {f['failed']}/{f['checked']} failed in {f['count']} file(s)"
              f"   stream: {s['failed']}/{s['checked']} failed in {s['count']} window(s)")
    return 0


def add_parsers(sub: Any, json_flag: Any) -> None:
    p = sub.add_parser("quality", help="a tenant's data-quality rules: rows checked and failed per rule, over files "
                                       "and stream windows")
    p.add_argument("--tenant", required=True, help="the tenant whose quality metrics are read")
    p.add_argument("--since", type=when, metavar="WHEN",
                   help="only files and windows since WHEN: a duration back (30m, 2h, 1d) or an ISO time in UTC")
    json_flag(p)
    p.set_defaults(handler=quality)
