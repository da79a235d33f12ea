"""Redis ACL users in secure mode: ``platform_admin`` for the platform, one user per tenant pool.

The ``default`` user is switched off, so every connection must log in. A tenant's pool user may
touch its own queues and counters and the broker keys Celery's Redis transport needs; it may read
the tenant registry and nothing else of the platform's. What Celery needs, key by key, and what
could be narrowed further is written in the README (Security). Passwords are stored hashed
(``#<sha256>``) in the ACL file and never sent in a command another client could see.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from ..core import names
from . import secrets
from .identities import ADMIN, account, tenant_principal

log = logging.getLogger(__name__)

# Exchanges whose binding sets a worker adds itself to: its remote-control queue's, to hear broadcasts.
CELERY_EXCHANGES = ("celery.pidbox",)
# kombu's binding table of an exchange, and its set of bindings that never expire.
BINDING_TABLES = ("binding", "binding_permanent")
REGISTRY_KEYS = (names.TENANTS, names.TENANTS_ACTIVE)  # read only
# Pub/sub channels, as kombu's Redis transport names them: "/<db>." + exchange ("fanout_prefix"),
# then "/" + routing key ("fanout_patterns"). Celery's remote control is the fanout exchange
# "celery.pidbox" (broadcast, routing key ""): a worker PSUBSCRIBEs its channel. Task and worker
# events go to "celeryev" (made a fanout exchange on Redis), routing key the event's type
# ("task.succeeded", "worker.heartbeat"): a worker PUBLISHes them; without gossip it hears none.
PIDBOX_EXCHANGE = "celery.pidbox"
EVENTS_EXCHANGE = "celeryev"
PUBSUB_COMMANDS = ("subscribe", "psubscribe", "unsubscribe", "punsubscribe")


def pidbox_channel(db: int) -> str:
    return f"/{db}.{PIDBOX_EXCHANGE}"


def events_channels(db: int) -> str:
    """The pattern of every event channel (for PUBLISH: a glob, not a PSUBSCRIBE pattern)."""
    return f"/{db}.{EVENTS_EXCHANGE}/*"


def digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def tenant_rules(tenant: str, db: int = 0) -> list[str]:
    """The ACL rules of the tenant's pool user (without ``on`` and its password), for the Redis
    database ``db`` the platform uses (kombu names its pub/sub channels by it)."""
    queues = (names.batch_queue(tenant), names.stream_queue(tenant))
    keys = [
        # Its queues, with kombu's priority sub-queues ("<queue>\x06\x16<n>").
        *(f"~{q}*" for q in queues),
        # Bindings: read all (routing, also of remote-control replies), write only its own queues'
        # and its remote-control queue's, plus the one sorted set of binding deadlines every
        # consumer refreshes.
        "%R~_kombu.binding*",
        *(f"~_kombu.{table}.{x}" for x in (*queues, *CELERY_EXCHANGES) for table in BINDING_TABLES),
        "~_kombu.binding_deadlines",
        f"~{tenant}@*.celery.pidbox*",  # its workers' remote-control queues (node names "<tenant>@host")
        "~*.reply.celery.pidbox",  # answers to remote-control requests (Flower, `celery inspect`)
        # Its delivered, unacknowledged messages: kombu keeps one hash, index and mutex for all
        # queues by default; a secure pool gets its own (worker/celery_app.py).
        *(f"~{k}" for k in names.unacked_keys(tenant)),
        # Its own counters and stream bookkeeping.
        f"~{names.usage_key(tenant, '*')}",
        f"~{names.stream_hw_key(tenant)}",
        f"~{names.stream_runs_key(tenant)}",
        f"~{names.stream_done_pattern(tenant)}",
        # Its files' refund markers and its tasks' redelivery counters (admission verdicts are the
        # watcher's alone).
        f"~{names.refund_key(tenant, '*')}",
        f"~{names.redeliveries_key(tenant, '*')}",
        # Its files' jobs (state, chunk outcomes, finalizing lock) and its set of open jobs.
        f"~{names.job_key(tenant, '*')}",
        f"~{names.jobs_open_key(tenant)}",
        # Batch slots: only its files' leases and its asks for a slot again (the grants are the platform's).
        f"~{names.slot_lease_key(tenant)}",
        f"~{names.slot_wanted_key(tenant)}",
        *(f"%R~{k}" for k in REGISTRY_KEYS),
    ]
    commands = ["-@all", "+@read", "+@write", "+@keyspace", "+@list", "+@hash", "+@set",
                "+@sortedset", "+@string", "+@scripting", "+@transaction", "+@connection",
                "-@dangerous", "-@admin", "+client|setname", "+client|id", "+time", "+ping", "+echo"]
    # Pub/sub: it may listen on the remote-control channel (to obey commands sent to its own
    # workers) and nowhere else, and publish only events: a selector (Redis 7) grants PUBLISH on
    # the event channels alone, so a pool cannot broadcast a command (shutdown, pool_shrink…) that
    # every tenant's workers would obey. PUBLISH is taken off the root whatever category grants it.
    channels = ["resetchannels", f"&{pidbox_channel(db)}", *(f"+{c}" for c in PUBSUB_COMMANDS), "-publish",
                "-spublish", f"(+publish &{events_channels(db)})"]
    return [*commands, *channels, *keys]


def tenant_rules_for(client: Any, tenant: str) -> list[str]:
    """:func:`tenant_rules` for the database ``client`` (the platform's admin connection) is on."""
    return tenant_rules(tenant, int(client.connection_pool.connection_kwargs.get("db", 0) or 0))


def admin_lines(home: Path) -> list[str]:
    return [
        "user default off resetpass -@all",
        f"user {account(ADMIN)} on #{digest(secrets.password(home, ADMIN))} ~* &* +@all",
    ]


def write_aclfile(path: Path, home: Path) -> None:
    """The ACL file Redis starts with: the admin user, ``default`` off, and the tenant users kept."""
    kept = []
    if path.exists():
        own = ("user default ", f"user {account(ADMIN)} ")
        kept = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith(own)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join([*admin_lines(home), *kept]) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def ensure_tenant_user(client: Any, home: Path, tenant: str) -> str:
    """Create or reset the tenant's pool user with the store's password; saved to the ACL file."""
    principal = tenant_principal(tenant)
    user = account(principal)
    password = secrets.password(home, principal)
    # One command: the user never exists half set up. Only the password's hash is sent.
    client.execute_command("ACL", "SETUSER", user, "reset", "on", f"#{digest(password)}",
                           *tenant_rules_for(client, tenant))
    client.execute_command("ACL", "SAVE")
    log.info("tenant=%s redis user %s: its queues and counters only", tenant, user)
    return user


def add_password(client: Any, tenant: str, password: str) -> None:
    """A second password for the tenant's pool user: the one it had and ``password`` both log in
    (a rotation's first step; open connections are not touched)."""
    _set_passwords(client, tenant, f"#{digest(password)}")


def keep_only_password(client: Any, tenant: str, password: str) -> None:
    """``password`` becomes the pool user's only password (a rotation's last step). Redis keeps the
    connections that logged in with an older one; a new login with it is refused."""
    _set_passwords(client, tenant, "resetpass", f"#{digest(password)}")


def _set_passwords(client: Any, tenant: str, *rules: str) -> None:
    user = account(tenant_principal(tenant))
    # Only the hashes travel; the rules apply in order, in one command: no moment without a password.
    client.execute_command("ACL", "SETUSER", user, *rules)
    client.execute_command("ACL", "SAVE")
