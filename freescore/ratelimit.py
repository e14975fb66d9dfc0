"""The one token bucket: a budget of `burst` refilled at `rate` per second, time passed in.

Pure Python with no clock of its own, so a limit is tested by handing it times.
The events daemon budgets packets per connection with it, the clicker new ids
per remote address.
"""

from __future__ import annotations


class TokenBucket:
    """`take(now)` spends one token if there is one; the bucket refills continuously up to `burst`."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = self.burst
        self.stamp = now

    def refill(self, now: float) -> float:
        """Add what the time since the last call earned; return the seconds that passed.

        A clock that steps back earns nothing, now or later.
        """
        elapsed = now - self.stamp
        if elapsed <= 0:
            return 0.0
        self.stamp = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        return elapsed

    def take(self, now: float) -> bool:
        """Spend one token at time `now` (seconds); False when the bucket is empty."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
