"""The batch path: the staging watcher and its sweeper (intake), the folder life cycle and job state,
and ``files`` (planning, ingesting and finalizing one admitted file inside a worker).

May import: :mod:`~mysimbdp_tasks.core` and :mod:`~mysimbdp_tasks.services`. The watcher sends tasks
by name through :mod:`~mysimbdp_tasks.services.dispatch` and never imports the worker or Cassandra.
"""
