"""`mysimbdp tenants check|apply|list|remove`: configuration and provisioning."""

from __future__ import annotations

import argparse
import json

from ..core.errors import MysimbdpError
from ..core.settings import Settings
from .common import echo, redis_client


def tenants_check(settings: Settings, args: argparse.Namespace) -> int:
    from ..core import tenants

    found = tenants.load(args.file)
    for t in found.values():
        paths = [p for p, on in (("batch", t.batch), ("stream", t.stream)) if on]
        print(f"{t.name}: ok (keyspace {t.namespace}, table {t.table_name}, key {t.key}, paths: {', '.join(paths)})")
    return 0


def tenants_apply(settings: Settings, args: argparse.Namespace) -> int:
    from ..core import tenants
    from ..services import cassandra as db
    from ..services import provisioning, topics
    from ..services.registry import Registry

    found = tenants.load(args.file)
    registry = Registry(redis_client(settings))
    registry.claim_namespaces(list(found.values()))  # before anything is created
    cluster, session = db.connect(settings)
    try:
        provisioning.apply(session, found.values(), settings.replication, echo=echo)
    finally:
        cluster.shutdown()
    created = topics.ensure(settings, found.values())
    for t in found.values():
        registry.save(t)
        print(f"{t.name}: keyspace {t.namespace}, table {t.table_name} key {t.key}: provisioned, active")
    if created:
        print(f"topics created: {', '.join(sorted(created))}")
    stale = sorted(set(registry.active_names()) - set(found))
    for name in stale:
        if args.prune:
            registry.deactivate(name)
            print(f"{name}: not in {args.file}: deactivated (data kept)")
        else:
            print(f"{name}: active but not in {args.file} (use --prune to deactivate it)")
    return 0


def tenants_list(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import cassandra as db
    from ..services import provisioning
    from ..services.registry import Registry

    registry = Registry(redis_client(settings))
    known = registry.all()
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
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no tenants applied yet (mysimbdp tenants apply FILE)")
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
    if args.name not in known:
        raise MysimbdpError(f"tenant {args.name!r} is not known; known: {', '.join(sorted(known)) or 'none'}")
    registry.deactivate(args.name)
    print(f"{args.name}: deactivated: no new files or messages are admitted")
    if args.drop_data:
        owner = registry.namespace_owner(known[args.name].namespace)
        sharing = sorted(n for n, t in known.items() if t.namespace == known[args.name].namespace and n != args.name)
        if (owner and owner != args.name) or sharing:
            raise MysimbdpError(f"{args.name}: keyspace {known[args.name].namespace} is also used by "
                                f"{', '.join(sharing) or owner}; data kept")
        cluster, session = db.connect(settings)
        try:
            provisioning.drop_data(session, known[args.name])
        finally:
            cluster.shutdown()
        topics.delete_tenant_topics(settings, known[args.name])
        registry.forget(args.name)
        print(f"{args.name}: keyspace {known[args.name].namespace} and its topics dropped")
    else:
        print(f"{args.name}: data kept in keyspace {known[args.name].namespace} (use --drop-data to delete it)")
    return 0
