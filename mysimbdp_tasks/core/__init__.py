"""The pure core: errors, settings, the tenant model, CQL identifiers, reading and converting files,
the report wire format and every name the platform uses (queues, tasks, Redis keys, topics).

Reading a file: ``formats`` (what a file is: format detection, ``Record``, ``Chunk``) <- ``jsonstream``
(incremental JSON) <- ``parsing`` (the readers) and ``chunks`` (the planner). Converting values:
``values`` (shared helpers; text, booleans, identifiers, bytes) <- ``numeric``, ``timestamps`` <-
``convert`` (the ``CONVERTERS`` table and ``RowConverter``). ``rows`` puts the two together for one
chunk.

May import: the standard library and pure libraries (psutil for :mod:`procs`). Never a client of
Redis, Kafka, Cassandra or Celery; nothing here opens a network connection.
"""
