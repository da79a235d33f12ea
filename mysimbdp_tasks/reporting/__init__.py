"""The per-tenant report (`mysimbdp report`): batch and stream together, from what the platform
records. ``sources`` reads the records (Cassandra's metrics tables, the event log, the dead letters,
the quota counters); the rest is pure: ``period`` (``--since`` / ``--until``), ``records`` (what is
read), ``series`` (time buckets, percentiles), ``aggregate`` (records to the report's numbers),
``plots`` (matplotlib PNGs) and ``page`` (the self-contained HTML page).

May import: :mod:`~mysimbdp_tasks.core` and :mod:`~mysimbdp_tasks.services`; only ``sources`` imports
a client library.
"""
