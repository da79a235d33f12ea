"""How long to wait before trying again: exponential backoff, and the supervisor's restart policy.

Pure: the clock and the sleeping belong to the callers (:mod:`services.outages` waits for a service,
:mod:`control.supervisor` restarts a dead process), so both rules are tested without either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``initial``, then ``factor`` times longer after each failure, never above ``cap`` seconds."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failure number ``attempt`` (0 = the first failure)."""
        # Bounded exponent: a process that kept failing for days must not overflow the float.
        return min(self.cap, self.initial * self.factor ** min(max(attempt, 0), 64))


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a process that died, the way supervisord and systemd do it.

    Each death in a row waits longer (``backoff``), so a process that dies at once (a bad setting,
    a service away) is not restarted in a tight loop. A process that ran ``reset_after`` seconds
    before dying counts as healthy: its next restart waits only the first delay again.
    """

    backoff: Backoff = Backoff(initial=1.0, factor=2.0, cap=60.0)
    reset_after: float = 60.0

    def after_exit(self, failures: int, ran_for: float) -> tuple[int, float]:
        """(deaths in a row, including this one; seconds to wait before the restart)."""
        failures = 1 if ran_for >= self.reset_after else failures + 1
        return failures, self.backoff.delay(failures - 1)


# Waiting for a service that is away: short first waits so a blip costs little, and a cap low
# enough that a process is back within seconds of the service.
OUTAGE_BACKOFF = Backoff(initial=0.5, factor=2.0, cap=10.0)
RESTART_POLICY = RestartPolicy()
