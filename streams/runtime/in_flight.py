"""Evaluated batches on their way out: their sends issued in order, each batch's once every
earlier batch is delivered, and the batches acked in order.

Why: at a low rate most of a batch's time is waiting: for Redis and for the broker's
acknowledgement of its events (the append and the acks=all round trip). With this the
agent evaluates the next batches (states loaded, the engine, states saved) while a batch's
events are being acknowledged, instead of after; and the next batch's sends are issued
by this module's task the moment the earlier delivery completes, not when the agent next
gets round to it.

The agent's order per batch, and the invariants it keeps:
1. evaluate the batch (its states are saved: a crash from here on replays it as a
   redelivery, same events, same `eventId`s);
2. `submit` it with what issues its sends; `submit` returns once at most `ahead` submitted
   batches wait to be issued (0: once this one is issued, that is once every earlier
   batch is delivered), so the agent is at most `ahead` batches ahead of the sends;
3. this module's task, one batch at a time in submit order: issue the batch's sends on the
   one producer, wait for their acknowledgement, ack the batch; then the next batch.
So sends are issued in batch order and a batch's sends only once every earlier batch is
delivered: a lead's events reach the topic in the order of its activities, and no event
of a batch is delivered when an earlier batch's delivery failed. Batches are acked in
submit order, each only after its own delivery succeeded, so no offset is committed past
an undelivered event. The first failure, of a delivery or of issuing the sends, stops
everything for good: no later batch's sends are issued, `on_failure` is called with it (the
worker exits there) and `settled`/`submit` raise it afterwards. `close` (the agent
stopping) stops waiting: batches not acked stay unacked and are redelivered, and batches
not issued never are. A batch that no longer `counts` when its turn to be issued comes (a
rebalance revoked its partitions: its records are read again, by the new owner or after a
seek) is skipped, neither issued nor acked: sending its events would only duplicate them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

Issue = Callable[[], Awaitable[Awaitable[None]]]
"""Issues a batch's sends and returns what completes when the broker acknowledged all of
them (and raises if any failed)."""


class InFlight(Generic[T]):
    """Submitted batches, issued and acked in submit order with `ack(batch)` once their
    delivery succeeded (module doc)."""

    def __init__(
        self,
        ack: Callable[[T], None],
        on_failure: Callable[[BaseException, T], None],
        ahead: int = 0,
        counts: Callable[[T], bool] | None = None,
    ) -> None:
        if ahead < 0:
            raise ValueError(f"ahead must be >= 0, not {ahead}")
        self._ack = ack
        self._counts = counts
        self._on_failure = on_failure
        self.ahead = ahead
        self._queue: asyncio.Queue[tuple[T, Issue]] = asyncio.Queue()
        self._unacked = 0
        self._unissued = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self._issued = asyncio.Event()
        """Set whenever a batch was issued (or everything stopped)."""
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def settled(self) -> None:
        """Wait until every submitted batch is acked; raises the failure, if one failed."""
        await self._settled.wait()
        self._raise_failure()

    async def submit(self, batch: T, issue: Issue) -> None:
        """A batch evaluated: `issue` is called once every earlier batch is delivered.
        Returns once at most `ahead` submitted batches are not issued yet; raises the
        failure, if one failed."""
        self._raise_failure()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._send())
        self._unacked += 1
        self._unissued += 1
        self._settled.clear()
        self._queue.put_nowait((batch, issue))
        while self._unissued > self.ahead and self._failure is None:
            self._issued.clear()
            await self._issued.wait()
        self._raise_failure()

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
        while not self._queue.empty():
            self._queue.get_nowait()

    async def _send(self) -> None:
        while True:
            batch, issue = await self._queue.get()
            if self._counts is not None and not self._counts(batch):
                self._skip()  # its records are read again: sending them would duplicate
                continue
            try:
                delivery = await issue()
                self._unissued -= 1
                self._issued.set()
                await delivery
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._failure = exc
                self._discard_queued()
                self._settled.set()  # wakes `settled`, which raises
                self._issued.set()  # wakes `submit`, which raises
                self._on_failure(exc, batch)
                return
            self._ack(batch)
            self._unacked -= 1
            if not self._unacked:
                self._settled.set()

    def _skip(self) -> None:
        """A batch neither issued nor acked (`counts` is false)."""
        self._unissued -= 1
        self._issued.set()
        self._unacked -= 1
        if not self._unacked:
            self._settled.set()
