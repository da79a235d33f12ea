"""The local stack: real Redis, Kafka and Cassandra as local processes, without Docker.

For development, demos and CI only: runtime code never imports this package. Everything lives under
``$MYSIMBDP_HOME``: jars in ``jars/<service>``, configuration in ``<service>/conf``, data in
``<service>/data``, logs in ``logs/<service>.log`` and pid files in ``run/<service>.pid``.

Modules: ``lifecycle`` (up, down, restart, status), ``mode`` (a home secure or plain), ``service``
(what every service has in common), ``redis``, ``kafka``, ``cassandra``, ``prometheus`` (optional)
(one per service), ``tuning``
(Cassandra's ingest settings), ``java`` and ``jars`` (the JVM and the jars Kafka and Cassandra run
from). It may import ``core`` and the client libraries, nothing else.
"""

from __future__ import annotations

from .cassandra import STORAGE_PORT
from .lifecycle import SERVICES, ServiceState, all_up, down, node_names, restart, status, up

__all__ = ["SERVICES", "STORAGE_PORT", "ServiceState", "all_up", "down", "node_names", "restart", "status", "up"]
