"""A tenant's batch ``priority``: which admitted file takes a free batch slot first.

``priority`` in the tenant configuration is an integer from 0 to 9, or one of the names ``low``
(2), ``normal`` (5, the default) and ``high`` (8); a higher number runs first. It matters only when
the platform limits how many files run at once (``MYSIMBDP_BATCH_SLOTS``, see
:mod:`mysimbdp_tasks.batch.slots`): files waiting for a slot are released by priority, then by
admission time. Pure: no service, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LOWEST, HIGHEST = 0, 9
NAMES = {"low": 2, "normal": 5, "high": 8}
FORM = f"an integer from {LOWEST} to {HIGHEST} (higher runs first) or one of {', '.join(NAMES)}"
# Ranks are sorted-set scores: a level's band is wider than any admission time in epoch seconds,
# and a double still tells admissions 0.1 ms apart within it.
BAND = 1e10


@dataclass(frozen=True)
class Priority:
    level: int = NAMES["normal"]

    @property
    def text(self) -> str:
        named = [n for n, v in NAMES.items() if v == self.level]
        return f"{named[0]} ({self.level})" if named else str(self.level)


DEFAULT = Priority()


def parse(raw: object, bad: Callable[[str, str], None]) -> Priority:
    """A tenant's ``priority``; a problem goes to ``bad(path, message)`` (see core.tenants)."""
    if isinstance(raw, str) and raw.strip().lower() in NAMES:
        return Priority(NAMES[raw.strip().lower()])
    if isinstance(raw, int) and not isinstance(raw, bool) and LOWEST <= raw <= HIGHEST:
        return Priority(raw)
    bad("priority", f"expected {FORM}, got {raw!r}")
    return DEFAULT


def rank(level: int, admitted_at: float) -> float:
    """Sort key of a waiting file (lowest first): higher levels first, then the earlier admitted."""
    return (HIGHEST - level) * BAND + admitted_at
