"""What the Celery broker (Redis) holds: the ids of the tasks still queued or delivered and unacknowledged.

Celery's Redis transport takes a message off its queue (BRPOP) and only then records it as
unacknowledged (celery/kombu#305); a worker killed with SIGKILL between the two loses that message
for good. The sweepers (batch jobs, stream micro-batches) therefore ask the broker which of the
tasks they still wait for it holds anywhere; a task held nowhere on two looks in a row was lost.

One call reads a queue and the unacknowledged hash once, whatever the number of tasks asked about.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from ..core import names


def task_id_of(raw: bytes | str) -> str | None:
    """The task id in a kombu message as Celery's Redis transport stores it, or None if unreadable."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if isinstance(message, list) and message:  # unacked entries: [message, exchange, routing_key]
        message = message[0]
        if isinstance(message, str | bytes):
            try:
                message = json.loads(message)
            except ValueError:
                return None
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else None


def held_ids(client: redis.Redis, queues: Iterable[str]) -> set[str]:
    """Ids of every task queued on ``queues`` or delivered to any worker and not yet acknowledged."""
    pipe = client.pipeline(transaction=False)
    queues = list(queues)
    for queue in queues:
        pipe.lrange(queue, 0, -1)
    # The shared hash, and the tenants' own ones (secure mode: names.unacked_keys).
    hashes = [names.UNACKED, *sorted({names.unacked_keys(names.queue_tenant(q))[0] for q in queues})]
    for key in hashes:
        pipe.hvals(key)
    found = pipe.execute()
    queued, unacked = found[:len(queues)], found[len(queues):]
    ids = {task_id_of(raw) for raws in queued for raw in raws}
    ids.update(task_id_of(raw) for raws in unacked for raw in raws)
    ids.discard(None)
    return ids  # type: ignore[return-value]
