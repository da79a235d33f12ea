"""The stream path end to end on the secure stack: the tenant's producer logs in as the tenant over
TLS, the bridge and the workers as their platform principals, Celery's broker is ``rediss://`` and
the rows reach Cassandra over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kafka import KafkaProducer
from kit import DATA, Platform, new_tenant
from streamkit import encoded, messages, wait_rows

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import access, identities, tls
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import topics
from mysimbdp_tasks.services.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.slow, pytest.mark.timeout(600)]


def _secure_env(settings: Settings, home: Path) -> dict[str, str]:
    """What a platform process on ``home`` needs to join the secure stack: its endpoints, secure
    mode, and the stack's CA and secrets (linked, as a deployment would mount them)."""
    for folder in ("tls", "secrets"):
        (home / folder).symlink_to(settings.home / folder)
    return {"MYSIMBDP_SECURE": "1", "MYSIMBDP_REDIS_URL": f"redis://{settings.redis_host}:{settings.redis_port}/0",
            "MYSIMBDP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap_str,
            "MYSIMBDP_CASSANDRA_HOSTS": ",".join(f"{h}:{p}" for h, p in settings.cassandra_hosts)}


def test_a_tenants_messages_land_through_the_secure_stack(secure_stack: Settings, tmp_path: Path) -> None:
    client = redis.Redis.from_url(identities.redis_url(secure_stack))
    cluster, session = db.connect(secure_stack)
    platform = None
    tenant = new_tenant(client, session, secure_stack, like="tenant2")
    try:
        # What `tenants apply` does in secure mode: the tenant's Cassandra role and Redis user (its
        # pool logs in as them), then its topics with its Kafka user and ACLs.
        access.grant(secure_stack, session, client, [tenant])
        topics.ensure(secure_stack, [tenant])
        home = tmp_path / "home"
        home.mkdir()
        platform = Platform(secure_stack, tenant, home, extra_env=_secure_env(secure_stack, home))
        platform.start_worker()
        platform.start_bridge()
        sent = messages("tenant2", tenant, [DATA / "1000rows.csv"])[:300]
        producer = KafkaProducer(bootstrap_servers=secure_stack.kafka_bootstrap_str, acks="all",
                                 **tls.kafka_options(secure_stack, f"tenant:{tenant.name}"))
        for key, value in encoded(sent):
            producer.send(tenant.ingest_topic, key=key, value=value)
        producer.flush()
        producer.close()

        want = {(m["subreddit"], m["id"], m["author"]): m["body"] for m in sent}
        rows = wait_rows(session, tenant, len(want), platform)
        assert {(r.subreddit, r.id, r.author): r.body for r in rows} == want
        # Its pool was refused nothing on the way (the Redis keys and channels of its ACL user suffice).
        user = identities.account(identities.tenant_principal(tenant.name))
        assert [e for e in client.acl_log(count=128) if e.get("username") == user] == []
    finally:
        if platform is not None:
            platform.stop()
        Registry(client).forget(tenant.name)  # no platform process serves it later
        cluster.shutdown()
        client.close()
