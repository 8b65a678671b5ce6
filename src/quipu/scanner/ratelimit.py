"""The probe rate limit: an asyncio token bucket honouring ``maxProbesPerSecond``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable


class TokenBucket:
    """At most ``rate`` acquisitions per second after an initial ``burst``; 0 = unlimited.

    Each caller is given the next free time slot when it calls (first come, first served,
    however many wait) and sleeps until then. Slots follow one another at exactly
    ``1 / rate`` whatever the sleeps' granularity, so late wake-ups do not add up to a lower
    rate; a bucket left idle refills to ``burst`` (the generic cell rate algorithm).
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate < 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be 0 (unlimited) or a positive number (got {rate})")
        # A hundredth of a second's worth, and at least one slot of slack: enough to absorb
        # a late wake-up, too little to show as a burst on the wire.
        self.burst = max(1, burst if burst is not None else max(2, int(rate // 100)))
        self.rate = rate
        self._interval = 1 / rate if rate else 0.0
        self._tolerance = (self.burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf

    @property
    def unlimited(self) -> bool:
        return self.rate == 0

    async def acquire(self) -> None:
        """Wait for this caller's slot."""
        if self.unlimited:
            return
        now = self._clock() if self._clock else asyncio.get_running_loop().time()
        slot = max(self._next, now - self._tolerance)
        self._next = slot + self._interval
        if slot <= now:
            return
        try:
            await self._sleep(slot - now)
        except asyncio.CancelledError:
            # Hand the slot back when no later caller has queued behind it.
            if self._next == slot + self._interval:
                self._next = slot
            raise
