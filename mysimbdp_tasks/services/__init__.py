"""Adapters to the services: Cassandra (connections, the sink, provisioning), Kafka topics and dead
letters, and the Redis-backed registry, quotas, task dispatch, what the broker holds (``broker``) and
written micro-batches (``completions``); per-process connections of a worker; event logs; waiting out
a service that is away (``outages``).

May import: :mod:`mysimbdp_tasks.core` and the client libraries. Never the batch, stream, control
or worker packages.
"""
