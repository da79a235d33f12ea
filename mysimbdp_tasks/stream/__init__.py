"""The near-realtime path: the bridge (intake: Kafka topic -> validated, quota-checked micro-batches
on the tenant's queue, offsets committed once written) with ``messages`` (validation), ``inflight``
(micro-batches not yet written), ``commits`` (asynchronous offset commits) and ``wire`` (the
task's payload); and the writer (inside a worker:
micro-batch -> Cassandra or dead letters, windowed metrics).

May import: :mod:`~mysimbdp_tasks.core` and :mod:`~mysimbdp_tasks.services`.
"""
