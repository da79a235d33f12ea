"""The batch path: the staging watcher (intake) with ``routing`` (which tenant a staged file belongs
to, the owner rule) and ``claims`` (claimed files, crash recovery); the ``sweeper`` (lost tasks, in
its own thread beside intake); the folder life cycle (``folders``) and job state (``jobs``); and
``files`` (planning, ingesting and finalizing one admitted file inside a worker).

May import: :mod:`~mysimbdp_tasks.core` and :mod:`~mysimbdp_tasks.services`. The watcher sends tasks
by name through :mod:`~mysimbdp_tasks.services.dispatch` and never imports the worker or Cassandra.
"""
