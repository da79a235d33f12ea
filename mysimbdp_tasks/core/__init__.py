"""The pure core: errors, settings, the tenant model, CQL identifiers, type conversion, parsing, rows,
the report wire format and every name the platform uses (queues, tasks, Redis keys, topics).

May import: the standard library and pure libraries (psutil for :mod:`procs`). Never a client of
Redis, Kafka, Cassandra or Celery; nothing here opens a network connection.
"""
