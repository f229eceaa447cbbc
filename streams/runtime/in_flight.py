"""The batches whose events are sent and not yet acknowledged by the broker, acked in order.

Why: at a low rate most of a batch's time is waiting: for Redis and for the broker's
acknowledgement of its events (the append and the acks=all round trip). With this the
agent evaluates batch k+1 (states loaded, the engine, states saved) while batch k's
events are being acknowledged, instead of after.

The agent's order per batch, and the invariants it keeps:
1. evaluate the batch (its states are saved: a crash from here on replays it as a
   redelivery, same events, same `eventId`s);
2. `settled()`: wait until every earlier batch is delivered and acked; raises the failed
   delivery, if one failed;
3. issue the batch's sends on the one producer, then `push` it with what waits for their
   acknowledgement.
So sends are issued in batch order and a batch's sends only once every earlier batch is
delivered: a lead's events reach the topic in the order of its activities, and no event
of a batch is delivered when an earlier batch's delivery failed. Batches are acked in
push order, each only after its own delivery succeeded, so no offset is committed past an
undelivered event. The first failed delivery stops the acking for good: `on_failure` is
called with it (the worker exits there) and `settled`/`push` raise it afterwards. `close`
(the agent stopping) stops waiting: batches not acked stay unacked and are redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    """Pushed batches, acked in push order with `ack(batch)` once their delivery succeeded
    (module doc)."""

    def __init__(
        self, ack: Callable[[T], None], on_failure: Callable[[BaseException, T], None]
    ) -> None:
        self._ack = ack
        self._on_failure = on_failure
        self._queue: asyncio.Queue[tuple[T, Awaitable[None]]] = asyncio.Queue()
        self._unacked = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def settled(self) -> None:
        """Wait until every pushed batch is acked; raises the failed delivery, if one
        failed."""
        await self._settled.wait()
        self._raise_failure()

    def push(self, batch: T, delivery: Awaitable[None]) -> None:
        """A batch whose sends are issued; `delivery` completes when the broker
        acknowledged all of them (and raises if any failed)."""
        self._raise_failure()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._confirm())
        self._unacked += 1
        self._settled.clear()
        self._queue.put_nowait((batch, delivery))

    async def close(self) -> None:
        """Stop waiting for deliveries; what is not acked stays unacked."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._discard_queued()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _discard_queued(self) -> None:
        """Close the deliveries never awaited (a coroutine would warn at collection)."""
        while not self._queue.empty():
            delivery = self._queue.get_nowait()[1]
            close = getattr(delivery, "close", None)
            if close is not None:
                close()

    async def _confirm(self) -> None:
        while True:
            batch, delivery = await self._queue.get()
            try:
                await delivery
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._failure = exc
                self._discard_queued()
                self._settled.set()  # wakes `settled`, which raises
                self._on_failure(exc, batch)
                return
            self._ack(batch)
            self._unacked -= 1
            if not self._unacked:
                self._settled.set()
