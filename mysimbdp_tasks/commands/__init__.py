"""Handlers of the `mysimbdp` sub-commands, one module per part of the platform.

May import every package below it (core, services, batch, stream, control, worker, stack), but
inside the handlers: `cli.py` imports these modules to build its parser, and a process such as the
watcher must not load Kafka, Cassandra or Celery just because another sub-command would need them.
"""
