"""The near-realtime path: the bridge (intake: Kafka topic -> validated, quota-checked micro-batches
on the tenant's queue) and the writer (inside a worker: micro-batch -> Cassandra, windowed metrics).

May import: :mod:`~mysimbdp_tasks.core` and :mod:`~mysimbdp_tasks.services`.
"""
