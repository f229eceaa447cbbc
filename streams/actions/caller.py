"""Making one call of an action, with its retries, within its budget (actions.md, "Calls").

For one `CallRequest`, in this order:
1. the endpoint's gate admits it (capping discards, throttling waits in order, both at
   most once per call), or the call ends as `capped` / `delay_exceeded`;
2. tries, within the `timeout` budget counted from admission, each holding one of the
   endpoint's concurrency slots only while in flight:
   the headers get `Idempotency-Key` and the authentication; each try may take an equal
   share of what is left of the `timeout` budget (so that a hung try leaves room for the
   next); 2xx ends the call. A connection error, a try's timeout, 429 or 5xx is retried,
   up to 3 times after the first, after `backoff * 2^(n-1)` s with jitter (x0.5-1.5) or
   after `Retry-After` when given, as long as the wait ends within the budget; a 401 with
   a bearer token drops the token and tries again at once with a new one (once per call);
   any other status is final;
3. the result: success, or what the dead letter says (error, status, attempts, the first
   KiB of the last response with secrets and tokens redacted).
Nothing here raises for an endpoint's behaviour: huge, endless, non-JSON or slow bodies
are read boundedly and within the try's time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import aiohttp

from streams.actions.auth import Authenticator, authenticator, is_retryable
from streams.actions.bodies import EXCERPT_BYTES, excerpt, read_bounded
from streams.actions.compiled import ActionPlan
from streams.actions.exceptions import CallFailed
from streams.actions.limits import CAPPED, Gates
from streams.actions.metrics import ActionMetrics, CallMetrics
from streams.actions.payload import CallRequest
from streams.actions.secrets import Secrets

log = logging.getLogger(__name__)

MAX_RETRIES: Final = 3
DEFAULT_BACKOFF: Final = 0.5
BODY_WAIT: Final = 1.0
"""Seconds given to reading the first KiB of a response once its status is known."""


@dataclass(frozen=True, slots=True)
class CallResult:
    ok: bool
    attempts: int
    error: str | None = None
    status: int | None = None
    response: str | None = None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Caller:
    """Calls of every action of a plan, sharing one HTTP session and one gate per
    endpoint."""

    def __init__(
        self,
        plan: ActionPlan,
        secrets: Secrets,
        session: aiohttp.ClientSession,
        metrics: ActionMetrics,
        backoff: float = DEFAULT_BACKOFF,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.secrets = secrets
        self.session = session
        self.metrics = metrics
        self.backoff = backoff
        self.jitter = jitter
        self.clock = clock
        self.gates = Gates(plan.limits, clock)
        self.auth: dict[str, Authenticator] = {
            name: authenticator(action, secrets) for name, action in plan.actions.items()
        }

    async def call(self, request: CallRequest) -> CallResult:
        started = self.clock()
        action = self.plan.actions[request.action]
        metrics = self.metrics.for_call(request.action, request.endpoint)
        gate = self.gates[request.endpoint]
        depth = metrics.queue_depth
        depth.inc()
        try:
            refused = await gate.admit()
        finally:
            depth.dec()
        if refused is not None:
            if refused == CAPPED:
                metrics.discarded.inc()
            result = CallResult(False, 0, refused)
        else:
            # The budget starts once admitted: a throttle's wait is bounded by maxDelay.
            result = await self._tries(request, action.timeout, self.clock(), gate, metrics)
        metrics.outcome("success" if result.ok else result.error or "connection").inc()
        metrics.seconds.observe(self.clock() - started)
        if not result.ok:
            log.warning(
                "call %s of event %s to %s failed for good: %s%s after %d tries",
                request.action,
                request.event_id,
                request.endpoint,
                result.error,
                f" {result.status}" if result.status is not None else "",
                result.attempts,
            )
        return result

    async def _tries(
        self, request: CallRequest, budget: float, started: float, gate: Any, metrics: CallMetrics
    ) -> CallResult:
        depth = metrics.queue_depth
        deadline = started + budget
        auth = self.auth[request.action]
        refreshed = False
        attempt = 0
        last = CallFailed("timeout", True)
        while attempt <= MAX_RETRIES:
            left = deadline - self.clock()
            if left <= 0:
                break
            attempt += 1
            if attempt > 1:
                metrics.retries.inc()
            share = left / (MAX_RETRIES + 2 - attempt)
            depth.inc()
            try:
                await gate.slots.acquire()
            finally:
                depth.dec()
            try:
                token = None
                try:
                    async with asyncio.timeout(share):
                        headers = dict(request.headers)
                        headers["Idempotency-Key"] = request.idempotency_key
                        query = list(request.query)
                        token = await auth.apply(self.session, headers, query)
                        await self._try(request, headers, query)
                    return CallResult(True, attempt)
                except TimeoutError:
                    last = CallFailed("timeout", True)
                except aiohttp.ClientError:
                    last = CallFailed("connection", True)
                except CallFailed as failed:
                    last = failed
            finally:
                gate.slots.release()
            if last.status == 401 and auth.refreshes and token is not None and not refreshed:
                auth.invalidate(token)
                refreshed = True
                continue
            if not last.retryable or attempt > MAX_RETRIES:
                break
            wait = last.retry_after
            if wait is None:
                wait = self.backoff * 2 ** (attempt - 1) * (0.5 + self.jitter())
            if self.clock() + wait >= deadline:
                break
            await asyncio.sleep(wait)
        return CallResult(
            False,
            attempt,
            last.error,
            last.status,
            self.secrets.redact(last.response) if last.response is not None else None,
        )

    async def _try(
        self, request: CallRequest, headers: dict[str, str], query: list[tuple[str, str]]
    ) -> None:
        """One HTTP exchange; returns on 2xx, raises CallFailed otherwise."""
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            request.method,
            request.url,
            params=query or None,
            data=request.body,
            headers=headers,
            allow_redirects=False,
        ) as response:
            status = response.status
            body = await self._excerpt(response, status)
            if 200 <= status < 300:
                return
            retry_after = (
                retry_after_seconds(response.headers.get("Retry-After"))
                if status == 429 or status == 503
                else None
            )
            raise CallFailed(
                "http_status", is_retryable(status), status, excerpt(body), retry_after
            )

    @staticmethod
    async def _excerpt(response: Any, status: int) -> bytes:
        """The first KiB of the body, given at most `BODY_WAIT` s: the status decides the
        try, so a slow body never turns a 2xx into a timeout (a 2xx body is read only to
        let the connection be reused)."""
        if 200 <= status < 300 and (response.content_length or 0) > EXCERPT_BYTES:
            return b""
        try:
            async with asyncio.timeout(BODY_WAIT):
                return await read_bounded(response, EXCERPT_BYTES)
        except (aiohttp.ClientError, TimeoutError):
            return b""
