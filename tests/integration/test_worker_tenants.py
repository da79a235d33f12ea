"""A worker reads its tenant's applied configuration for every task: a re-applied one is taken up at
once, a removed tenant's work is refused."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.errors import TenantError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import context
from mysimbdp_tasks.services.registry import Registry

pytestmark = pytest.mark.integration


def test_a_worker_takes_up_a_reapplied_tenant_and_refuses_a_removed_one(make_tenant: Any, redis_client: redis.Redis,
                                                                         settings: Settings) -> None:
    tenant = make_tenant(like="tenant2", provision=False)
    process = context.current()
    kept = (process.settings, process.own_tenant)
    context.configure(settings)
    context.reset()
    try:
        first = context.tenant(tenant.name)
        assert first.stream is not None and first.stream.max_messages_per_day == tenant.stream.max_messages_per_day
        assert context.tenant(tenant.name) is first  # unchanged: not parsed again

        changed = tenants.parse({tenant.name: {**tenant.raw, "max_messages_per_day": 7}})[tenant.name]
        Registry(redis_client).save(changed)
        again = context.tenant(tenant.name)
        assert again.stream is not None and again.stream.max_messages_per_day == 7

        Registry(redis_client).forget(tenant.name)
        with pytest.raises(TenantError, match="not in the registry"):
            context.tenant(tenant.name)
    finally:
        context.close()
        process.settings, process.own_tenant = kept
