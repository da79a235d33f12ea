"""The platform's tenant registry, kept in Redis next to the quota counters.

``mysimbdp:tenants`` maps a tenant name to the configuration that was last *applied* (not the file on
disk, which may be edited at any time), and ``mysimbdp:tenants:active`` holds the tenants whose
ingestion is on (both named in :mod:`core.names`). The watcher, the bridge and the admission script read these, so adding a tenant
with ``tenants apply`` or taking it out with ``tenants remove`` takes effect without a restart.
"""

from __future__ import annotations

import json
import time

import redis

from ..core import names
from ..core import tenants as tenant_model
from ..core.tenants import Tenant

CONFIGS = names.TENANTS
ACTIVE = names.TENANTS_ACTIVE


class Registry:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def save(self, tenant: Tenant) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(CONFIGS, tenant.name, tenant.to_json())
        pipe.sadd(ACTIVE, tenant.name)
        pipe.hset(names.TENANTS_APPLIED_AT, tenant.name, str(time.time()))
        pipe.execute()

    def deactivate(self, name: str) -> bool:
        return bool(self.redis.srem(ACTIVE, name))

    def forget(self, name: str) -> None:
        pipe = self.redis.pipeline()
        pipe.srem(ACTIVE, name)
        pipe.hdel(CONFIGS, name)
        pipe.hdel(names.TENANTS_APPLIED_AT, name)
        # Its topics are gone too; offsets of a re-created topic start again at 0.
        pipe.delete(names.stream_hw_key(name))
        pipe.execute()

    def is_active(self, name: str) -> bool:
        return bool(self.redis.sismember(ACTIVE, name))

    def active_names(self) -> set[str]:
        return {n.decode() if isinstance(n, bytes) else n for n in self.redis.smembers(ACTIVE)}

    def all(self) -> dict[str, Tenant]:
        """Every tenant ever applied (active or not), as it was applied."""
        found: dict[str, Tenant] = {}
        for raw in self.redis.hgetall(CONFIGS).values():
            found.update(tenant_model.parse(json.loads(raw), source="registry"))
        return found

    def active(self) -> dict[str, Tenant]:
        names = self.active_names()
        return {n: t for n, t in self.all().items() if n in names}
