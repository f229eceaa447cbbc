"""Batches whose events are sent and not yet acknowledged by the broker, acked in order.

Why: at a low rate most of a batch's time is the wait for the broker's acknowledgement of
its events (the producer's linger, the append, the acks=all round trip), during which the
worker did nothing. With `depth` > 1 the agent evaluates the next batches while earlier
ones are being acknowledged.

Invariants:
- The agent calls `reserve` before evaluating a batch (waiting while `depth` batches await
  their acknowledgement: depth 1 is the sequential worker) and `push` once its sends are
  issued; sends are issued on one producer in batch order, so a lead's events reach the
  broker in the order of its activities across overlapping batches.
- Deliveries are awaited, and batches acked, strictly in push order: a batch is acked
  only after its own delivery and every earlier batch's succeeded, so no offset is ever
  committed past an undelivered event.
- The first failed delivery stops the acking for good: `on_failure` is called with it
  (the worker exits there), nothing after it is acked, and `reserve` raises it.
- `close` (the agent stopping) cancels the waiting: batches not yet acked stay unacked
  and are redelivered, as any batch in flight at a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    """Up to `depth` batches awaiting acknowledgement; `ack(batch)` is called for each, in
    push order, once its delivery succeeded (module doc)."""

    def __init__(
        self,
        depth: int,
        ack: Callable[[T], None],
        on_failure: Callable[[BaseException, T], None],
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth}")
        self.depth = depth
        self._ack = ack
        self._on_failure = on_failure
        self._slots = asyncio.Semaphore(depth)
        self._queue: asyncio.Queue[tuple[T, Awaitable[None]]] = asyncio.Queue()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def reserve(self) -> None:
        """Wait for a free slot (fewer than `depth` batches in flight); raises the failed
        delivery, if one failed."""
        self._raise_failure()
        await self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            self._raise_failure()

    def push(self, batch: T, delivery: Awaitable[None]) -> None:
        """A reserved batch whose sends are issued; `delivery` completes when the broker
        acknowledged all of them (and raises if any failed)."""
        self._raise_failure()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._confirm())
        self._queue.put_nowait((batch, delivery))

    async def close(self) -> None:
        """Stop waiting for deliveries; what is not acked stays unacked."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, delivery = self._queue.get_nowait()
            _discard(delivery)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _confirm(self) -> None:
        while True:
            batch, delivery = await self._queue.get()
            try:
                await delivery
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._failure = exc
                while not self._queue.empty():
                    _discard(self._queue.get_nowait()[1])
                self._slots.release()  # wake a waiting `reserve`, which raises
                self._on_failure(exc, batch)
                return
            self._ack(batch)
            self._slots.release()


def _discard(delivery: Awaitable[None]) -> None:
    """Close a delivery never awaited (a coroutine would warn), or cancel a future."""
    close = getattr(delivery, "close", None)
    if close is not None:
        close()
    else:
        cancel = getattr(delivery, "cancel", None)
        if cancel is not None:
            cancel()
