"""`mysimbdp report`: one tenant's batch and stream ingestion in one report (text, JSON or an HTML page).

Reads through :mod:`~mysimbdp_tasks.reporting.sources`, computes with
:mod:`~mysimbdp_tasks.reporting.aggregate`, renders with :mod:`~mysimbdp_tasks.reporting.page`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ConfigProblem, MysimbdpError
from ..core.settings import Settings
from ..reporting.period import Period, iso, parse_time
from ..reporting.series import amount
from .common import redis_client


def when(text: str) -> float:
    """An argparse type: ``--since`` / ``--until`` as epoch seconds."""
    try:
        return parse_time(text, time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def report(settings: Settings, args: argparse.Namespace) -> int:
    from ..reporting import aggregate, page, sources
    from ..services import cassandra as db
    from ..services.registry import Registry

    now = time.time()
    until = args.until if args.until is not None else now
    if args.since is not None and args.since >= until:
        raise ConfigError([ConfigProblem("--since", f"{iso(args.since)} is not before --until {iso(until)}")])
    period = Period(args.since, until)
    client = redis_client(settings)
    known = Registry(client).all()
    if args.tenant and args.tenant not in known:
        raise MysimbdpError(f"tenant {args.tenant!r} is not known; known: {', '.join(sorted(known)) or 'none'}")
    chosen = [known[args.tenant]] if args.tenant else [known[n] for n in sorted(known)]
    cluster, session = db.connect(settings)
    try:
        reports = [aggregate.build(sources.gather(settings, t, period, session, client), period, now) for t in chosen]
    finally:
        cluster.shutdown()
    lines = aggregate.compare(reports)
    if args.html:
        text = page.tenant_page(reports[0]) if args.tenant else page.comparison_page(lines, reports)
        _write(args.html, text)
        # On stderr with --json, so that stdout stays one JSON document.
        print(f"report written to {args.html}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        data: dict[str, Any] = reports[0] if args.tenant else {
            "period": period.to_json(), "comparison": lines, "tenants": reports}
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for r in reports:
            _print_text(r)
        if not reports:
            print("no tenant is applied yet (mysimbdp tenants apply FILE)")
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise MysimbdpError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


def _print_text(r: dict[str, Any]) -> None:
    b, s, lat = r["batch"], r["stream"], r["latency"]
    p = r["period"]
    print(f"{r['tenant']}: {p['since'] or 'all records'} to {p['until']}")
    print(f"  batch:  files in {b['files_in']} (done {b['files_done']}, failed {b['files_failed']}, rejected "
          f"{b['files_rejected']}, unfinished {b['files_unfinished']}); rows landed {b['rows_landed']}, "
          f"refused {b['rows_refused']}")
    print(f"  stream: messages in {s['messages_in']}; landed {s['messages_landed']}, refused {s['messages_refused']}")
    for name, d in (("file processing", lat["file_processing_ms"]),
                    ("stream end to end", lat["stream_end_to_end_ms"])):
        if d["count"]:
            print(f"  {name} ms: p50 {d['p50']}, p95 {d['p95']}, p99 {d['p99']}, max {d['max']} ({d['count']})")
    if r["refusals"]:
        print("  refusals: " + ", ".join(f"{x['path']} {x['kind']} {x['reason']}: {x['count']}"
                                         for x in r["refusals"]))
    quota = ", ".join(f"{q['what']} {amount(q['used'])}/{amount(q['limit'])}" for q in r["quota"]["lines"])
    print(f"  quota today ({r['quota']['day']}): {quota or 'none'}")
