"""Throttling failed authentications at the identity endpoint, per client id and per address.

Guessing a secret takes many tries; a sliding window of failed tries per client id (the id
as sent, cut to 100 characters) and per remote address bounds them. While either key has
`limit` failures in the last `window` seconds, every identity call for it is refused, a
correct secret included (else the refusal would not slow a guesser down), until its oldest
failure leaves the window: HTTP 429 with `Retry-After`. Refused calls are not counted, so a
key is free again one window after the failures stop. Tokens already issued keep working:
a client locked out by someone else's failures loses nothing it holds.

Logging is bounded too: each failure below the limit is one line, the moment a key becomes
throttled is one line, and nothing more is logged for that key until it is free again.

Memory is bounded: at most `max_keys` keys of each kind are tracked; past that the key
whose last failure is oldest is forgotten. Used from the event loop only (no lock).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_KEYS: Final = 10_000
MAX_ID_CHARS: Final = 100


@dataclass(frozen=True)
class Throttled:
    """A refusal: which key (`what`, e.g. "client id 'x'") and when to try again."""

    what: str
    retry_after: int
    newly: bool
    """True the first time this key is refused in this window: the call that logs it."""


class _Window:
    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._announced: set[str] = set()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            self._announced.discard(key)
            return None
        return failures

    def blocked(self, key: str, now: float) -> tuple[int, bool] | None:
        """(seconds to wait, first refusal of this episode), or None when `key` may try."""
        failures = self._recent(key, now)
        if failures is None or len(failures) < self.limit:
            return None
        newly = key not in self._announced
        self._announced.add(key)
        return max(1, math.ceil(failures[0] + self.window - now)), newly

    def fail(self, key: str, now: float) -> None:
        failures = self._recent(key, now)
        if failures is None:
            failures = self._failures[key] = deque()
            while len(self._failures) > self.max_keys:
                old, _ = self._failures.popitem(last=False)
                self._announced.discard(old)
        else:
            self._failures.move_to_end(key)
        failures.append(now)


class AuthThrottle:
    def __init__(
        self,
        per_client: int,
        per_address: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.window = window
        self.clock = clock
        self._clients = _Window(per_client, window, max_keys)
        self._addresses = _Window(per_address, window, max_keys)

    def check(self, client_id: str, address: str) -> Throttled | None:
        """Refuse the call when its client id or its address is throttled."""
        now = self.clock()
        client_id = client_id[:MAX_ID_CHARS]
        for window, key, what in (
            (self._addresses, address, f"address {address}"),
            (self._clients, client_id, f"client id {client_id!r}"),
        ):
            blocked = window.blocked(key, now)
            if blocked is not None:
                return Throttled(what, *blocked)
        return None

    def failed(self, client_id: str, address: str) -> None:
        now = self.clock()
        self._clients.fail(client_id[:MAX_ID_CHARS], now)
        self._addresses.fail(address, now)
