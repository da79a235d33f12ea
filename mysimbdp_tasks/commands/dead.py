"""`mysimbdp dead list|show|replay`: a tenant's dead letters, and sending chosen ones back once."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from ..core import deadletters
from ..core.errors import TenantError
from ..core.settings import Settings
from .common import redis_client


def since(text: str) -> Any:
    """argparse type of ``--since``."""
    try:
        return deadletters.parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ref(text: str) -> str:
    """argparse type of a dead letter's ``<partition>:<offset>``."""
    try:
        return deadletters.parse_ref(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def tenant_of_registry(settings: Settings, name: str, *, replaying: bool = False) -> Any:
    """The applied tenant ``name``; refused if unknown, and for a replay if removed or without a stream path."""
    from ..services.registry import Registry

    registry = Registry(redis_client(settings))
    tenant = registry.get(name)
    if tenant is None:
        raise TenantError(f"tenant {name!r} is not applied (see `mysimbdp tenants list`)")
    if replaying and not registry.is_active(name):
        raise TenantError(f"tenant {name!r} is removed: its ingestion is off, so a replay would wait unread; apply it "
                          "again first")
    if replaying and not (tenant.stream and tenant.stream.max_messages_per_day):
        raise TenantError(f"tenant {name!r} has no stream path (max_messages_per_day is 0): a replay would be "
                          "refused again")
    return tenant


def _choice(args: argparse.Namespace) -> deadletters.Choice:
    return deadletters.Choice(reasons=frozenset(args.reason or ()), since=args.since,
                              refs=frozenset(getattr(args, "refs", None) or ()))


def _letters(settings: Settings, args: argparse.Namespace) -> list[deadletters.Letter]:
    from ..services import replay

    return deadletters.choose(replay.read(settings, args.tenant), _choice(args))


def dead_list(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import replay

    tenant_of_registry(settings, args.tenant)
    chosen = _letters(settings, args)
    book = replay.ReplayLog(redis_client(settings), args.tenant).all()
    parents = replay.lineage(book, args.tenant)
    rows = [{**x.to_dict(), "replay": book.get(x.ref, {}).get("state", ""),
             "replay_of": x.replay_of or parents.get(x.source, "")} for x in chosen]
    shown = rows[-args.limit:] if args.limit else rows
    if args.json:
        print(json.dumps({"tenant": args.tenant, "total": len(rows), "by_reason": Counter(r["reason"] for r in rows),
                          "letters": shown}, indent=2))
        return 0
    print(f"{args.tenant}: {len(rows)} dead letter(s)"
          + "".join(f", {n} {reason}" for reason, n in Counter(r["reason"] for r in rows).most_common()))
    for r in shown:
        extra = "".join(f" {k}={r[k]}" for k in ("replay", "replay_of") if r[k])
        print(f"  {r['ref']:>10}  {r['at']}  {r['reason']:<26} {r['detail'][:60]}{extra}")
    return 0


def dead_show(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import replay

    tenant_of_registry(settings, args.tenant)
    found = [x for x in replay.read(settings, args.tenant) if x.ref == args.ref]
    if not found:
        raise TenantError(f"tenant {args.tenant!r} has no dead letter {args.ref} (see `mysimbdp dead list`)")
    doc = {**found[0].to_dict(payload=True),
           "replay": replay.ReplayLog(redis_client(settings), args.tenant).all().get(args.ref)}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for k, v in doc.items():
            print(f"{k}: {v}")
    return 0


def dead_replay(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import replay

    tenant_of_registry(settings, args.tenant, replaying=True)
    chosen = _letters(settings, args)
    out = replay.replay(settings, redis_client(settings), args.tenant, chosen, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"tenant": args.tenant, **out.to_dict()}, indent=2))
    else:
        verb = "would replay" if out.dry_run else "replayed"
        print(f"{args.tenant}: {len(chosen)} dead letter(s) chosen; {verb} {len(out.sent)} to "
              f"{args.tenant}.ingest; {len(out.already)} already replayed, skipped; {len(out.failed)} failed")
        for f in out.failed:
            print(f"  {f['ref']}: {f['error']}")
    return 1 if out.failed else 0


def add_parsers(sub: Any, json_flag: Any) -> None:
    dead = sub.add_parser("dead", help="a tenant's dead letters: list, show one, replay chosen ones once"
                          ).add_subparsers(dest="dead_command", required=True, metavar="{list,show,replay}")

    def common(p: argparse.ArgumentParser, choose: bool = True) -> None:
        p.add_argument("--tenant", required=True, help="the tenant whose dead topic (<tenant>.dead) is read")
        if choose:
            p.add_argument("--reason", action="append", metavar="R",
                           help="only letters refused for this reason (e.g. daily_messages_exceeded); repeatable")
            p.add_argument("--since", type=since, metavar="WHEN",
                           help="only letters dead-lettered since WHEN: a duration back (30m, 2h, 1d) or an ISO time")
        json_flag(p)

    p = dead.add_parser("list", help="the tenant's dead letters, with reason, time and replay state")
    common(p)
    p.add_argument("--limit", type=int, default=0, metavar="N", help="show only the newest N (the counts cover all)")
    p.set_defaults(handler=dead_list)
    p = dead.add_parser("show", help="one dead letter in full: headers and original payload")
    common(p, choose=False)
    p.add_argument("ref", type=ref, help="the letter's <partition>:<offset> in the dead topic, as `dead list` shows")
    p.set_defaults(handler=dead_show)
    p = dead.add_parser("replay", help="send chosen dead letters back to the tenant's ingest topic, each at most "
                                       "once; they are validated and counted against the quota again")
    common(p)
    p.add_argument("--ref", dest="refs", type=ref, action="append", metavar="P:O",
                   help="only this letter (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="say what would be replayed, send nothing")
    p.set_defaults(handler=dead_replay)
