"""Pacing a producer at a steady rate: the token bucket the stream producer and the benchmarks share."""

from __future__ import annotations

# A request costs the client and the broker about the same whatever it carries: the client gathers a
# partition's records for one linger (benchmarks/README.md, "The tenant client's linger").
LINGER_MS = 20
PACE_TICK = LINGER_MS / 1000  # a paced sender wakes at most once a linger and sends what has accrued
PACE_BURST = 0.1  # seconds of sending a paced sender may catch up after a stall


class TokenBucket:
    """Paces a sender at ``rate`` messages per second without a sleep per message.

    Tokens accrue continuously up to ``burst``. ``take`` spends one, or says how long to wait: until
    a tick's worth of tokens (``rate * tick``) has accrued, so a sender at 2,000 msg/s wakes every
    20 ms (one linger) and sends forty, rather than sleeping 2,000 times a second.
    """

    def __init__(self, rate: float, now: float, burst: float | None = None, tick: float = PACE_TICK) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate * PACE_BURST)
        self.chunk = min(self.capacity, max(1.0, rate * tick))
        self.tokens = self.capacity
        self.last = now

    def take(self, now: float) -> float:
        """Spend a token and return 0.0, or return the seconds to wait before asking again."""
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
        if self.tokens >= 1.0 - 1e-9:  # float dust must not cost an extra wake-up
            self.tokens -= 1.0
            return 0.0
        return (self.chunk - self.tokens) / self.rate
