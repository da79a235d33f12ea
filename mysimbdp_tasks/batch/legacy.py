"""Adopting the open jobs of a platform that named job keys by ingest id only.

Before job keys were named by tenant (``mysimbdp:job:<tenant>:<ingest id>``, see :mod:`.jobs`),
a job was ``mysimbdp:job:<ingest id>`` with its chunk outcomes beside it, and every open job was in
one set, ``mysimbdp:jobs:open``. Files in flight across an upgrade must still finish, so the
watcher adopts those jobs when it starts: each job's tenant is read from its own record, its keys
move to the new names, and it joins its tenant's open set, where the sweeper and the tasks find it.

Adopting is safe while pools already run the new code: a chunk that recorded its outcome under the
new name first keeps it (the old record only fills what is missing), and the sweeper sends the
finalize of a job whose every chunk then has an outcome. A batch slot held across the upgrade gets
its lease in the tenant's own key (:mod:`.slots`), so its pool can go on renewing it.
"""

from __future__ import annotations

import json
import logging

import redis

from ..core import names
from ..services.scripts import source
from .jobs import TTL

log = logging.getLogger(__name__)


def adopt(client: redis.Redis) -> int:
    """Move every job of the old open set to its tenant's names; how many were adopted."""
    ids = sorted(_text(i) for i in client.smembers(names.JOBS_OPEN))
    if not ids:
        return 0
    move = client.register_script(source("adopt_job"))
    adopted = 0
    for ingest_id in ids:
        old_job, old_chunks = names.legacy_job_keys(ingest_id)
        raw = client.hget(old_job, "job")
        tenant = json.loads(raw).get("tenant") if raw is not None else None
        if not isinstance(tenant, str) or not tenant:
            client.srem(names.JOBS_OPEN, ingest_id)  # expired, or not a job this platform can place
            log.warning("ingest=%s open job of an older platform has no record left; dropped from the open set",
                        ingest_id)
            continue
        move(keys=[old_job, old_chunks, names.job_key(tenant, ingest_id), names.job_chunks_key(tenant, ingest_id),
                   names.jobs_open_key(tenant), names.JOBS_TENANTS, names.JOBS_OPEN,
                   names.SLOTS_HELD, names.SLOTS_RUNNING, names.slot_lease_key(tenant)],
             args=[ingest_id, tenant, TTL])
        adopted += 1
        log.info("tenant=%s ingest=%s open job of an older platform adopted under the tenant's names", tenant,
                 ingest_id)
    return adopted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
