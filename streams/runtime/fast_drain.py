"""A Faust consumer that hands each record to its stream inline instead of in 4 tasks.

Faust's consumer (`faust.transport.consumer.Consumer._drain_messages`, faust-streaming
0.15) delivers every record with `await self.wait_first(callback(message),
self.suspend_flow.wait())`: two tasks, an `asyncio.wait` and their cancellation per record,
so that a delivery blocked on a full stream queue or on flow control is abandoned when a
rebalance suspends the flow. That costs more than the worker's whole evaluation of the
record (bench/passthrough.py: the pass-through agent at ~3k records/s, ~7k with this).

`FastDrainConsumer.wait_first` steps the callback coroutine by hand, once (`send(None)`):
if it finishes without suspending (queue not full, flow active) that is the whole
delivery, exactly what its task would have done, and the `suspend_flow.wait()` coroutine is
closed unawaited; if it suspends, the rest of it runs under Faust's own `wait_first`
(`_resume` finishes it as its task would), so a rebalance still abandons it. Group
membership, commits, rebalance callbacks and acks are Faust's, unchanged.

What this relies on, checked by tests/unit/test_faust_internals.py (which fails loudly when
an upgrade changes them): the drain loop is the only caller of the consumer's
`wait_first` with exactly two coroutines and no timeout; `mode`'s `WaitResults(done,
results, stopped)`; the aiokafka driver's `Transport.Consumer` class attribute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import WaitResults


class FastDrainConsumer(aiokafka_driver.Consumer):
    """The aiokafka-driver consumer without the per-record tasks of `wait_first`
    (module doc)."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        if len(coros) != 2 or timeout is not None or not asyncio.iscoroutine(coros[0]):
            return await super().wait_first(*coros, timeout=timeout)
        callback, other = coros
        try:
            pending = callback.send(None)
        except BaseException as exc:
            if asyncio.iscoroutine(other):
                other.close()  # never awaited: the suspend_flow.wait() coroutine
            if isinstance(exc, StopIteration):
                return WaitResults([callback], [exc.value], False)
            raise
        return await super().wait_first(_resume(callback, pending), other)


class FastDrainTransport(aiokafka_driver.Transport):
    Consumer = FastDrainConsumer


async def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    """Run a coroutine that was started by hand and suspended on `pending` (a future,
    or None for a bare `asyncio.sleep(0)`) to completion, as its task would."""
    try:
        while True:
            try:
                if pending is None:
                    await asyncio.sleep(0)
                else:
                    await asyncio.wait((pending,))
            except asyncio.CancelledError as exc:
                if pending is not None:
                    pending.cancel()
                pending = coro.throw(exc)
            else:
                pending = coro.send(None)
    except StopIteration as done:
        return done.value
