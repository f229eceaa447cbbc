"""Capping, throttling and concurrency per endpoint (actions.md, "Endpoints").

Each endpoint has its own `Gate`, so a slow or dead endpoint only fills its own slots:
calls to others never wait behind it.

- throttle: the calls over `callsPerSecond` wait for their turn. Turns are handed out in
  the order calls arrive (one every 1/rate s), so the order is kept; a call whose turn is
  more than `maxDelay` away is refused at once (`delay_exceeded`) and takes no turn.
- cap: a token bucket of `callsPerSecond` tokens, refilled at that rate; a call that finds
  it empty is discarded (`capped`).
- concurrency: at most N tries in flight; the others wait, first come, first served.
A call is admitted once (its retries are not counted against the rate again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

from streams.actions.compiled import EndpointLimits

CAPPED: Final = "capped"
DELAY_EXCEEDED: Final = "delay_exceeded"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Gate:
    def __init__(
        self,
        limits: EndpointLimits,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.slots = asyncio.Semaphore(limits.concurrency)
        rate = limits.calls_per_second or 0.0
        self._interval = 1.0 / rate if rate else 0.0
        self._next_turn = 0.0
        self._tokens = max(1.0, rate)
        self._filled_at = clock()

    async def admit(self) -> str | None:
        """None once the call may go, else why it may not (`capped`, `delay_exceeded`)."""
        mode = self.limits.mode
        if mode == "cap":
            now = self.clock()
            rate = self.limits.calls_per_second or 0.0
            capacity = max(1.0, rate)
            self._tokens = min(capacity, self._tokens + (now - self._filled_at) * rate)
            self._filled_at = now
            if self._tokens < 1.0:
                return CAPPED
            self._tokens -= 1.0
            return None
        if mode == "throttle":
            now = self.clock()
            turn = max(now, self._next_turn)
            if turn - now > self.limits.max_delay:
                return DELAY_EXCEEDED
            self._next_turn = turn + self._interval
            if turn > now:
                await self.sleep(turn - now)
        return None


class Gates:
    """One `Gate` per endpoint, made on first use."""

    def __init__(
        self,
        limits: Callable[[str], EndpointLimits],
        clock: Clock = time.monotonic,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self.by_endpoint: dict[str, Gate] = {}

    def __getitem__(self, endpoint: str) -> Gate:
        gate = self.by_endpoint.get(endpoint)
        if gate is None:
            gate = self.by_endpoint[endpoint] = Gate(self._limits(endpoint), self._clock)
        return gate
