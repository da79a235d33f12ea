"""The platform's tenant registry, kept in Redis next to the quota counters.

``mysimbdp:tenants`` maps a tenant name to the configuration that was last *applied* (not the file on
disk, which may be edited at any time), and ``mysimbdp:tenants:active`` holds the tenants whose
ingestion is on (both named in :mod:`core.names`). The watcher, the bridge and the admission script
read these, so adding a tenant with ``tenants apply``, changing its limits, or taking it out with
``tenants remove`` takes effect without a restart.
"""

from __future__ import annotations

import json
import logging
import time

import redis

from ..core import names
from ..core import tenants as tenant_model
from ..core.errors import ConfigError, TenantError
from ..core.tenants import Tenant
from . import completions

log = logging.getLogger(__name__)

CONFIGS = names.TENANTS
ACTIVE = names.TENANTS_ACTIVE
NAMESPACES = names.TENANT_NAMESPACES  # keyspace -> the one tenant that owns it

# Claim every keyspace of an apply at once, or none: a keyspace owned by another tenant (applied in
# an earlier run, or by a concurrent one) is refused before anything is created.
_CLAIM = """
for i = 1, #KEYS do
  local owner = redis.call('HGET', KEYS[i], ARGV[2 * i - 1])
  if owner and owner ~= ARGV[2 * i] then
    return {ARGV[2 * i - 1], owner}
  end
end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], ARGV[2 * i - 1], ARGV[2 * i])
end
return {}
"""


class Registry:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def claim_namespaces(self, tenants: list[Tenant]) -> None:
        """Make each tenant the owner of its keyspace; refuse if another tenant owns one already.

        Owners are also derived from the applied configurations, so a registry written before
        ownership was recorded still protects its keyspaces.
        """
        for other in self.all().values():
            for t in tenants:
                if other.namespace == t.namespace and other.name != t.name:
                    raise TenantError(f"{t.name}.namespace: keyspace {t.namespace!r} belongs to tenant "
                                      f"{other.name!r}; choose another namespace")
        if not tenants:
            return
        args: list[str] = []
        for t in tenants:
            args += [t.namespace, t.name]
        clash = self.redis.eval(_CLAIM, len(tenants), *([NAMESPACES] * len(tenants)), *args)
        if clash:
            ns, owner = (x.decode() if isinstance(x, bytes) else str(x) for x in clash)
            claimant = next(t.name for t in tenants if t.namespace == ns)
            raise TenantError(f"{claimant}.namespace: keyspace {ns!r} belongs to tenant {owner!r}; "
                              f"choose another namespace")

    def namespace_owner(self, namespace: str) -> str | None:
        raw = self.redis.hget(NAMESPACES, namespace)
        return raw.decode() if isinstance(raw, bytes) else raw

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
        for ns, owner in self.redis.hgetall(NAMESPACES).items():
            if owner in (name, name.encode()):
                pipe.hdel(NAMESPACES, ns)
        # Its topics are gone too; offsets of a re-created topic start again at 0, so nothing
        # decided or written for the old ones may stand for the new.
        pipe.delete(names.stream_hw_key(name), names.stream_runs_key(name), names.replayed_key(name))
        pipe.execute()
        completions.forget_tenant(self.redis, name)

    def get(self, name: str) -> Tenant | None:
        """The configuration ``name`` was last applied with, or None."""
        raw = self.raw(name)
        return None if raw is None else parsed(name, raw)

    def raw(self, name: str) -> bytes | None:
        """The configuration ``name`` was last applied with, as stored (read :func:`parsed`), or None."""
        found = self.redis.hget(CONFIGS, name)
        return found.encode() if isinstance(found, str) else found

    def applied_at(self, name: str) -> str | None:
        """When ``name`` was last applied (changes with every apply, whatever changed)."""
        raw = self.redis.hget(names.TENANTS_APPLIED_AT, name)
        return raw.decode() if isinstance(raw, bytes) else raw

    def is_active(self, name: str) -> bool:
        return bool(self.redis.sismember(ACTIVE, name))

    def active_names(self) -> set[str]:
        return {n.decode() if isinstance(n, bytes) else n for n in self.redis.smembers(ACTIVE)}

    def names(self) -> set[str]:
        """The name of every tenant ever applied (active or not): their queues may still hold work."""
        return {n.decode() if isinstance(n, bytes) else n for n in self.redis.hkeys(CONFIGS)}

    def all(self) -> dict[str, Tenant]:
        """Every tenant ever applied (active or not), as it was applied.

        A stored configuration that no longer validates (the rules were tightened after it was
        applied) is left out, with a warning naming the tenant and why: it stops its own tenant,
        never the others (:meth:`unreadable` lists them; ``tenants remove`` still takes one out).
        """
        return self._read()[0]

    def unreadable(self) -> dict[str, str]:
        """Tenants whose stored configuration no longer validates -> why."""
        return self._read()[1]

    def _read(self) -> tuple[dict[str, Tenant], dict[str, str]]:
        found: dict[str, Tenant] = {}
        refused: dict[str, str] = {}
        for key, raw in self.redis.hgetall(CONFIGS).items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            try:
                found.update(tenant_model.parse(json.loads(raw), source="registry"))
            except ConfigError as exc:
                refused[name] = "; ".join(str(problem) for problem in exc.problems)
            except ValueError as exc:  # not JSON at all
                refused[name] = f"not valid JSON: {exc}"
            if name in refused:
                _warn_once(name, raw, refused[name])
        return found, refused

    def active(self) -> dict[str, Tenant]:
        names = self.active_names()
        return {n: t for n, t in self.all().items() if n in names}


_warned: set[tuple[str, bytes | str]] = set()  # one warning per stored configuration and process


def _warn_once(name: str, raw: bytes | str, why: str) -> None:
    if (name, raw) not in _warned:
        _warned.add((name, raw))
        log.warning("tenant=%s its applied configuration no longer validates; the tenant is left out until it "
                    "is applied again or removed (mysimbdp tenants remove %s): %s", name, name, why)


def parsed(name: str, raw: bytes) -> Tenant | None:
    """The tenant ``name`` of a stored configuration (:meth:`Registry.raw`)."""
    return tenant_model.parse(json.loads(raw), source="registry").get(name)
