"""The Celery worker: the app (built by a function), ``lease`` (renews the tasks the worker holds, so
a short visibility timeout brings back only a dead worker's) and the thin tasks that call the batch
and stream cores.

May import: everything below it (:mod:`core`, :mod:`services`, :mod:`batch.files`,
:mod:`stream.writer`). Nothing below imports this package: intake sends tasks by name.
"""
