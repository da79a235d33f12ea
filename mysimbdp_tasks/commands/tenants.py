"""`mysimbdp tenants check|apply|list|remove`: configuration and provisioning."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ..core.errors import MysimbdpError
from ..core.settings import Settings
from .common import echo, print_rows, redis_client

if TYPE_CHECKING:
    from ..core.tenants import Tenant
    from ..services.registry import Registry


def tenants_check(settings: Settings, args: argparse.Namespace) -> int:
    from ..core import tenants

    found = tenants.load(args.file)
    rows = [{"tenant": t.name, "keyspace": t.namespace, "table": t.table_name, "key": str(t.key),
             "paths": [p for p, on in (("batch", t.batch), ("stream", t.stream)) if on]} for t in found.values()]
    return print_rows(rows, args.json, lambda r: f"{r['tenant']}: ok (keyspace {r['keyspace']}, table {r['table']}, "
                                                 f"key {r['key']}, paths: {', '.join(r['paths'])})")


def tenants_apply(settings: Settings, args: argparse.Namespace) -> int:
    """Plan everything first (Kafka, Cassandra, registry), refuse or print the plan, then change."""
    from ..core import tenants
    from ..security import kafka_access
    from ..services import cassandra as db
    from ..services import provisioning, topics
    from ..services.registry import Registry

    found = tenants.load(args.file)
    client = redis_client(settings)
    registry = Registry(client)
    plan = _plan(settings, found, registry, replace=args.replace)
    if args.dry_run:
        _print_plan(plan, args)
        return 1 if plan["problems"] else 0
    if plan["problems"]:
        raise provisioning.refused(plan["problems"])
    wanted = plan["wanted"]
    registry.claim_namespaces(list(wanted.values()))  # before anything is created
    cluster, session = db.connect(settings)
    try:
        provisioning.execute(session, plan["cassandra"], echo=echo if not args.json else _quiet)
        if settings.secure:  # each tenant's role and Redis user, once its keyspace exists
            from ..security import access

            for line in access.grant(settings, session, client, wanted.values()):
                (_quiet if args.json else echo)(line)
    finally:
        cluster.shutdown()
    created = topics.execute(settings, plan["kafka"])
    # Secure mode: each tenant's Kafka user and the ACLs of its topics (idempotent; plain mode: nothing).
    kafka_access.grant(settings, wanted)
    for t in wanted.values():
        registry.save(t)
    stale = sorted(set(registry.active_names()) - set(found))
    if args.prune:
        for name in stale:
            registry.deactivate(name)
    if args.json:
        print(json.dumps(_plan_json(plan) | {"applied": True, "topics_created": sorted(created)}, indent=2))
        return 0
    for t in wanted.values():
        kept = plan["tenants"][t.name]["kept"]
        print(f"{t.name}: keyspace {t.namespace}, table {t.table_name} key {t.key}: provisioned, active"
              + (f" (kept its applied {' and '.join(kept)} settings)" if kept else ""))
    for change in plan["kafka"].changes(topics.wanted(wanted.values())):
        print(change)
    for name in stale:
        print(f"{name}: not in {args.file}: deactivated (data kept)" if args.prune
              else f"{name}: active but not in {args.file} (use --prune to deactivate it)")
    return 0


def _quiet(_: str) -> None:
    pass


def _plan(settings: Settings, found: dict[str, Tenant], registry: Registry, replace: bool) -> dict[str, Any]:
    """What applying ``found`` would change; reads Redis, Kafka and Cassandra, changes nothing."""
    from ..core import changes, sinks
    from ..services import cassandra as db
    from ..services import provisioning, topics

    applied = registry.all()
    wanted = {n: t if replace else changes.merge(applied.get(n), t) for n, t in found.items()}
    kafka = topics.plan(settings, wanted.values())  # Kafka first: away, and nothing is created
    cluster, session = db.connect(settings)
    try:
        cassandra = [provisioning.plan(session, t, settings.replication) for t in wanted.values()]
    finally:
        cluster.shutdown()
    problems = [m for p in cassandra for m in p.problems] + kafka.problems + _claim_problems(applied, wanted)
    per_tenant = {
        p.tenant.name: {"settings": changes.diff(applied.get(p.tenant.name), p.tenant),
                        "kept": changes.kept_paths(applied.get(p.tenant.name), found[p.tenant.name], p.tenant),
                        "cassandra": p.changes + [f"problem: {m}" for m in p.problems],
                        "kafka": kafka.changes([p.tenant.ingest_topic, p.tenant.dead_topic,
                                                *(sinks.topic(p.tenant.name, s.name) for s in p.tenant.sinks)])}
        for p in cassandra
    }
    platform = kafka.changes(set(topics.wanted([])))
    active = registry.active_names()
    return {"wanted": wanted, "cassandra": cassandra, "kafka": kafka, "problems": problems, "tenants": per_tenant,
            "platform": platform, "not_in_file": sorted(active - set(found)),
            "inactive_to_activate": sorted(set(found) - active)}


def _claim_problems(applied: dict[str, Tenant], wanted: dict[str, Tenant]) -> list[str]:
    return [f"{t.name}.namespace: keyspace {t.namespace!r} belongs to tenant {o.name!r}; choose another namespace"
            for t in wanted.values() for o in applied.values() if o.namespace == t.namespace and o.name != t.name]


def _plan_json(plan: dict[str, Any]) -> dict[str, Any]:
    return {"tenants": plan["tenants"], "platform_topics": plan["platform"], "problems": plan["problems"],
            "activated": plan["inactive_to_activate"], "not_in_file": plan["not_in_file"]}


def _print_plan(plan: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(_plan_json(plan) | {"applied": False}, indent=2))
        return
    print(f"plan for {args.file} (--dry-run: nothing is changed)")
    for name, t in plan["tenants"].items():
        changed = t["settings"] or t["cassandra"] or t["kafka"] or name in plan["inactive_to_activate"]
        print(f"{name}:" + ("" if changed else " no change"))
        for line in t["settings"]:
            print(f"  registry: {line}")
        for path in t["kept"]:
            print(f"  registry: keeps its applied {path} settings (the file gives none; --replace drops them)")
        if name in plan["inactive_to_activate"]:
            print("  registry: activate")
        for line in t["cassandra"]:
            print(f"  cassandra: {line}")
        for line in t["kafka"]:
            print(f"  kafka: {line}")
    for line in plan["platform"]:
        print(f"platform: {line}")
    for name in plan["not_in_file"]:
        print(f"{name}: active but not in {args.file}: " + ("deactivate" if args.prune else "left as it is (--prune)"))
    if plan["problems"]:
        print("refused, apply would change nothing:\n" + "\n".join(f"  - {m}" for m in plan["problems"]))


def tenants_credentials(settings: Settings, args: argparse.Namespace) -> int:
    """What the tenant's clients need to log in; ``--rotate`` first replaces its password everywhere."""
    from ..security import access
    from ..services import cassandra as db
    from ..services.registry import Registry

    if not settings.secure:
        raise MysimbdpError("the stack is not in secure mode: no credentials are needed "
                            "(start it with `mysimbdp stack up --secure`)")
    client = redis_client(settings)
    tenant = Registry(client).all().get(args.name)
    if tenant is None:
        raise MysimbdpError(f"tenant {args.name!r} has not been applied (mysimbdp tenants apply FILE)")
    if args.rotate:
        cluster, session = db.connect(settings)
        try:
            access.rotate(settings, session, client, tenant)
        finally:
            cluster.shutdown()
    found = access.client_credentials(settings, tenant)
    if args.json:
        print(json.dumps(found | {"rotated": args.rotate}, indent=2))
        return 0
    print(f"tenant {tenant.name}" + (" (password rotated: clients must use the new one)" if args.rotate else ""))
    print(f"  password:  {found['password']}  (also in {found['password_file']}, mode 0600)")
    k, c, r = found["kafka"], found["cassandra"], found["redis"]
    print(f"  kafka:     {k['bootstrap']} user {k['username']} ({k['security_protocol']}, {k['sasl_mechanism']}; "
          f"CA {k['ssl_cafile']}), writes {k['ingest_topic']} and {k['reports_topic']}, reads {k['dead_topic']}")
    print(f"  cassandra: {', '.join(c['hosts'])} role {c['role']}, {' and '.join(c['permissions'])} on keyspace "
          f"{c['keyspace']}")
    print(f"  redis:     {r['url']} user {r['username']} (the tenant's worker pool)")
    return 0


def tenants_list(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import cassandra as db
    from ..services import provisioning
    from ..services.registry import Registry

    registry = Registry(redis_client(settings))
    known = registry.all()
    unreadable = registry.unreadable()
    active = registry.active_names()
    cluster, session = db.connect(settings)
    try:
        rows = [
            {
                "tenant": t.name,
                "active": t.name in active,
                "provisioned": provisioning.provisioned(session, t),
                "keyspace": t.namespace,
                "table": t.table_name,
                "key": str(t.key),
            }
            for t in sorted(known.values(), key=lambda t: t.name)
        ]
    finally:
        cluster.shutdown()
    if args.json:
        refused = [{"tenant": n, "active": n in active, "unreadable": why} for n, why in sorted(unreadable.items())]
        print(json.dumps(rows + refused, indent=2))
        return 0
    if not rows and not unreadable:
        print("no tenants applied yet (mysimbdp tenants apply FILE)")
    for name, why in sorted(unreadable.items()):
        print(f"{name:<12} {'active' if name in active else 'inactive':<9} its applied configuration no longer "
              f"validates: {why}")
    for r in rows:
        print(f"{r['tenant']:<12} {'active' if r['active'] else 'inactive':<9} "
              f"{'provisioned' if r['provisioned'] else 'NOT provisioned':<16} {r['keyspace']}.{r['table']} {r['key']}")
    return 0


def tenants_remove(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import cassandra as db
    from ..services import provisioning, topics
    from ..services.registry import Registry

    registry = Registry(redis_client(settings))
    known = registry.all()
    say = _quiet if args.json else print
    unreadable = registry.unreadable()
    if args.name in unreadable:
        # Its stored configuration no longer validates: ingestion stops, but nothing is dropped on
        # the strength of a configuration the platform cannot read.
        registry.deactivate(args.name)
        say(f"{args.name}: deactivated: no new files or messages are admitted")
        if args.drop_data:
            raise MysimbdpError(f"{args.name}: its applied configuration no longer validates "
                                f"({unreadable[args.name]}); data kept")
        if args.json:
            print(json.dumps({"tenant": args.name, "active": False, "keyspace": None, "data": "kept"}, indent=2))
        return 0
    if args.name not in known:
        raise MysimbdpError(f"tenant {args.name!r} is not known; known: {', '.join(sorted(known)) or 'none'}")
    registry.deactivate(args.name)
    say(f"{args.name}: deactivated: no new files or messages are admitted")
    if args.drop_data:
        owner = registry.namespace_owner(known[args.name].namespace)
        sharing = sorted(n for n, t in known.items() if t.namespace == known[args.name].namespace and n != args.name)
        if (owner and owner != args.name) or sharing:
            raise MysimbdpError(f"{args.name}: keyspace {known[args.name].namespace} is also used by "
                                f"{', '.join(sharing) or owner}; data kept")
        cluster, session = db.connect(settings)
        try:
            provisioning.drop_data(session, known[args.name])
            if settings.secure:
                from ..security import access

                access.revoke(settings, session, redis_client(settings), known[args.name])
        finally:
            cluster.shutdown()
        topics.delete_tenant_topics(settings, known[args.name])
        registry.forget(args.name)
        say(f"{args.name}: keyspace {known[args.name].namespace} and its topics dropped"
            + (", its Cassandra role, Redis user and Kafka user too" if settings.secure else ""))
    else:
        say(f"{args.name}: data kept in keyspace {known[args.name].namespace} (use --drop-data to delete it)")
    if args.json:
        print(json.dumps({"tenant": args.name, "active": False, "keyspace": known[args.name].namespace,
                          "data": "dropped" if args.drop_data else "kept"}, indent=2))
    return 0
