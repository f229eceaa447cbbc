"""One membership event through its campaign's actions: the calls and their dead letters.

`Dispatch.handle(raw)` decodes the event, builds each action's request (a missing value
is a dead letter at once), starts every call in the campaign's order of `actions` and
waits until each has ended in success or failure; it returns the dead letters, which the
dispatcher must have delivered before the membership's offset may be committed. It never
raises for a bad record or an endpoint's behaviour: a record that is not a membership
event is counted and skipped (there is no call to dead-letter).
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import ensure_future
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.actions.caller import Caller, CallResult
from streams.actions.compiled import ActionPlan, ActionUse
from streams.actions.payload import CallRequest, MissingValue, build_request, idempotency_key

log = logging.getLogger(__name__)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dead_letter(
    use: ActionUse,
    event: dict[str, Any],
    attempts: int,
    error: str,
    status: int | None = None,
    response: str | None = None,
    variable: str | None = None,
) -> dict[str, Any]:
    """The record of actions.md ("Calls"), plus `variable` for a `missing_value`."""
    letter: dict[str, Any] = {
        "action": use.action.name,
        "endpoint": use.action.endpoint,
        "eventId": event["eventId"],
        "campaignId": event["campaignId"],
        "leadId": event["leadId"],
        "idempotencyKey": idempotency_key(str(event["eventId"]), use.action.name),
        "attempts": attempts,
        "error": error,
        "status": status,
        "response": response,
        "failedAt": now_text(),
    }
    if variable is not None:
        letter["variable"] = variable
    return letter


def decode_membership(raw: bytes | None) -> dict[str, Any] | None:
    """The event, if it has what every call needs (eventId, campaignId, leadId); None for
    anything else (a tombstone, not JSON, not UTF-8, another shape)."""
    if not isinstance(raw, bytes | bytearray | memoryview | str):
        return None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    if not isinstance(event.get("eventId"), str) or not event["eventId"]:
        return None
    for member in ("campaignId", "leadId"):
        value = event.get(member)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
    return event


class Dispatch:
    def __init__(self, plan: ActionPlan, caller: Caller) -> None:
        self.plan = plan
        self.caller = caller
        self.metrics = caller.metrics
        self._handled = self.metrics.memberships.labels("handled")

    async def handle(self, raw: bytes | None) -> list[dict[str, Any]]:
        event = decode_membership(raw)
        if event is None:
            self.metrics.memberships.labels("malformed").inc()
            log.warning("a record that is not a membership event was skipped")
            return []
        uses = self.plan.uses.get(event["campaignId"])
        if not uses:
            self.metrics.memberships.labels("no_actions").inc()
            return []
        letters: list[dict[str, Any] | None] = []
        calls: list[tuple[int, ActionUse, Awaitable[CallResult]]] = []
        for use in uses:
            request = build_request(use, event)
            if isinstance(request, MissingValue):
                metrics = self.metrics.for_call(use.action.name, use.action.endpoint)
                metrics.outcome("missing_value").inc()
                letters.append(
                    dead_letter(use, event, 0, "missing_value", variable=request.variable)
                )
                continue
            letters.append(None)
            coroutine = self._call(request)
            # One call (the usual case) runs in this task; several run side by side.
            started = coroutine if len(uses) == 1 else ensure_future(coroutine)
            calls.append((len(letters) - 1, use, started))
        for index, use, pending in calls:
            result = await pending
            if not result.ok:
                letters[index] = dead_letter(
                    use,
                    event,
                    result.attempts,
                    result.error or "connection",
                    result.status,
                    result.response,
                )
        self._handled.inc()
        return [letter for letter in letters if letter is not None]

    async def _call(self, request: CallRequest) -> CallResult:
        try:
            return await self.caller.call(request)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug of ours must not lose the call silently
            log.exception(
                "call %s of event %s failed unexpectedly", request.action, request.event_id
            )
            return CallResult(False, 0, "connection")
