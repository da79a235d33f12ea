"""Adapters to the services: Cassandra (connections, the sink, provisioning), Kafka topics, and the
Redis-backed registry, quotas and task dispatch; per-process connections of a worker; event logs.

May import: :mod:`mysimbdp_tasks.core` and the client libraries. Never the batch, stream, control
or worker packages.
"""
