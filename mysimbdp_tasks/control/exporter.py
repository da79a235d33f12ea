"""The platform's one Prometheus endpoint, served by the supervisor (``MYSIMBDP_METRICS_ADDR``).

At each scrape it merges what every platform process wrote under ``run/metrics/``
(:class:`~mysimbdp_tasks.services.telemetry.FolderCollector`) and reads, at that moment, what no
process owns: today's quota use against the limits and the depth of each tenant's queues (Redis),
and which supervised processes run and how often they were restarted (the supervisor's table).
A scrape while Redis is away answers without the Redis-read values.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from prometheus_client import CollectorRegistry, start_http_server

from ..core import names
from ..core.errors import MysimbdpError
from ..core.settings import Settings
from ..core.tenants import Tenant
from ..security import logins
from ..services import telemetry

log = logging.getLogger(__name__)

RESOURCES = ("files", "bytes", "messages")


def limits(tenant: Tenant) -> dict[str, int]:
    """The tenant's daily limits per resource (0: that path is not enabled)."""
    b, s = tenant.batch, tenant.stream
    return {"files": b.max_files_per_day if b else 0, "bytes": b.max_bytes_per_day if b else 0,
            "messages": s.max_messages_per_day if s else 0}


def read_redis(client: redis.Redis, tenants: dict[str, Tenant], day: str) -> dict[str, Any]:
    """Quota rows and queue depths of ``tenants``, in one pipelined round trip."""
    ordered = sorted(tenants.values(), key=lambda t: t.name)
    pipe = client.pipeline(transaction=False)
    for t in ordered:
        pipe.hgetall(names.usage_key(t.name, day))
        pipe.llen(t.batch_queue)
        pipe.llen(t.stream_queue)
    replies = pipe.execute()
    quota, queues = [], []
    for i, t in enumerate(ordered):
        usage = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in replies[3 * i].items()}
        for resource, limit in limits(t).items():
            quota.append((t.name, resource, usage.get(resource, 0), limit))
        queues.append((t.name, "batch", int(replies[3 * i + 1])))
        queues.append((t.name, "stream", int(replies[3 * i + 2])))
    return {"quota": quota, "queues": queues}


def run(settings: Settings, stop: threading.Event) -> None:
    """``mysimbdp metrics``: the endpoint without a supervisor; tenants read from the registry per scrape."""
    from ..services.quotas import today
    from ..services.registry import Registry

    client = logins.redis_client(settings, socket_connect_timeout=2, socket_timeout=5)
    served = serve(settings, lambda: read_redis(client, Registry(client).active(), today()))
    if served["url"] is None:
        raise MysimbdpError(f"metrics not served: {served['error']}")
    print(f"metrics: {served['url']}", flush=True)
    stop.wait()


def serve(settings: Settings, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Serve /metrics in a thread of this process; returns what to publish: the url, or why not."""
    url = settings.metrics_url
    if url is None:
        return {"url": None, "error": "turned off (MYSIMBDP_METRICS_ADDR port 0)"}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(telemetry.FolderCollector(telemetry.folder(settings.run)))
    registry.register(telemetry.PlatformCollector(read))
    host, port = settings.metrics_addr
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:  # supervising goes on without metrics
        log.error("supervisor: metrics not served at %s: %s (set MYSIMBDP_METRICS_ADDR)", url, exc)
        return {"url": None, "error": f"{host}:{port}: {exc.strerror or exc}"}
    log.warning("supervisor: Prometheus metrics at %s", url)
    return {"url": url, "error": None}
