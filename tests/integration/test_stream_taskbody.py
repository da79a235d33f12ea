"""Stream task bodies on the broker: compressed and orjson-serialized by this bridge, plain JSON from
an older one; a worker ingests both alike (services/taskbody.py)."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from streamkit import dead, wait_rows

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import completions, taskbody
from mysimbdp_tasks.services.dispatch import Dispatch, shown
from mysimbdp_tasks.stream import wire
from mysimbdp_tasks.worker.celery_app import make_app
from producers.stream import key_for

pytestmark = pytest.mark.integration


def _records(tenant: str, prefix: str, n: int, bad_at: int) -> list[Any]:
    """Kafka records as the bridge holds them: ``n`` good comments and a malformed one at ``bad_at``."""
    out = []
    for i in range(n + 1):
        message = {"tenant": tenant, "created_utc": 1430458939 + i, "subreddit": f"s{i % 5}",
                   "id": f"{prefix}{i}", "author": f"a{i % 11}", "body": f"body {i}: \"quoted\", ünïcode [{i}]"}
        bad = b'{"id": "' + prefix.encode() + b'-bad", "ups": [1, 2'
        value = bad if i == bad_at else json.dumps(message, ensure_ascii=False).encode()
        out.append(SimpleNamespace(value=value, key=key_for(message), partition=0, offset=i, timestamp=1_700_000_000))
    return out


def _queued(client: redis.Redis, queue: str) -> dict[str, dict[str, Any]]:
    """The messages waiting on ``queue``, by task id: content type and compression as kombu stored them."""
    found = {}
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        found[message["headers"]["id"]] = {"content-type": message["content-type"],
                                           "compression": message["headers"].get("compression")}
    return found


def test_compressed_and_older_plain_json_micro_batches_both_land_every_row_and_dead_letter_the_bad_one(
        stream_tenant: Any, stream_platform: Any, settings: Settings, cassandra_session: Any,
        redis_client: redis.Redis) -> None:
    tenant = stream_tenant("tenant2")
    platform = stream_platform(tenant, worker=False)  # the tasks wait on the queue until the pool starts
    app = make_app(settings)
    new, old = (f"{tenant.name}-stream-test-{uuid.uuid4().hex[:6]}" for _ in range(2))
    new_records, old_records = _records(tenant.name, "new", 300, 120), _records(tenant.name, "old", 200, 7)

    Dispatch(app).send_messages(tenant.name, wire.batch(new_records), new)
    # What a bridge before compression sent: Celery's JSON, no compression header.
    app.send_task(names.INGEST_MESSAGES, args=(tenant.name, wire.batch(old_records)),
                  queue=names.stream_queue(tenant.name), task_id=old, serializer="json",
                  argsrepr=shown(tenant.name, micro_batch=old), kwargsrepr="{}")
    queued = _queued(redis_client, names.stream_queue(tenant.name))
    assert queued[new] == {"content-type": taskbody.CONTENT_TYPE, "compression": "application/zstd"}
    assert queued[old] == {"content-type": "application/json", "compression": None}

    platform.start_worker()
    rows = wait_rows(cassandra_session, tenant, 500, platform)
    want = {json.loads(r.value)["id"] for r in [*new_records, *old_records] if not r.value.endswith(b"[1, 2")}
    assert {r.id for r in rows} == want and len(want) == 500
    bodies = {r.id: r.body for r in rows}
    assert bodies["new3"] == 'body 3: "quoted", ünïcode [3]'
    letters = dead(settings, tenant, 2)
    # The original payloads, byte for byte, with the reason a worker gives a payload it cannot parse.
    assert sorted((d.value, dict(d.headers)["reason"].decode()) for d in letters) == [
        (b'{"id": "new-bad", "ups": [1, 2', "unusable_message"),
        (b'{"id": "old-bad", "ups": [1, 2', "unusable_message")]
    assert completions.done_among(redis_client, [new, old]) == {new, old}
