"""The Celery worker: the app (built by a function) and the thin tasks that call the batch and stream
cores.

May import: everything below it (:mod:`core`, :mod:`services`, :mod:`batch.files`,
:mod:`stream.writer`). Nothing below imports this package: intake sends tasks by name.
"""
