"""The platform's Redis Lua scripts, kept as ``lua/*.lua`` files beside this module.

Each file is read once per process; its owner (:class:`~.quotas.Quotas`,
:class:`~mysimbdp_tasks.batch.jobs.Jobs`) registers it once per instance, and the processes keep
one instance each, so no call re-reads or re-hashes a script.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua`` (shipped as package data)."""
    return resources.files(__package__ or __name__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
