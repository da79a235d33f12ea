"""Monitoring and control: the monitor (reports in, decisions out), the manager (scales a tenant's
pool), the supervisor (runs and restarts the platform's processes) and the process table.

May import: :mod:`~mysimbdp_tasks.core` and :mod:`~mysimbdp_tasks.services`. The Celery app the
manager needs for pool control is handed in by the command that builds it.
"""
