"""`InFlight`: batches acked in push order, each after its own delivery and every earlier
one's; the first failed delivery stops the acking for good."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from streams.runtime.in_flight import InFlight


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.failed: list[tuple[str, int]] = []

    def ack(self, batch: int) -> None:
        self.acked.append(batch)

    def on_failure(self, exc: BaseException, batch: int) -> None:
        self.failed.append((str(exc), batch))


def test_batches_are_acked_in_push_order_whatever_order_their_deliveries_complete() -> None:
    async def main() -> None:
        seen = Recorder()
        flight: InFlight[int] = InFlight(seen.ack, seen.on_failure)
        loop = asyncio.get_running_loop()
        deliveries = [loop.create_future() for _ in range(3)]
        for n, delivery in enumerate(deliveries):
            flight.push(n, delivery)
        deliveries[2].set_result(None)
        deliveries[1].set_result(None)
        await settle()
        assert seen.acked == [], "batch 0 is not delivered yet: nothing after it either"
        deliveries[0].set_result(None)
        await settle()
        assert seen.acked == [0, 1, 2]
        await flight.close()

    run(main())


def test_settled_waits_until_every_pushed_batch_is_acked() -> None:
    async def main() -> None:
        seen = Recorder()
        flight: InFlight[int] = InFlight(seen.ack, seen.on_failure)
        await asyncio.wait_for(flight.settled(), 1)  # nothing pushed: settled at once
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        flight.push(0, first)
        flight.push(1, second)
        waiting = asyncio.ensure_future(flight.settled())
        first.set_result(None)
        await settle()
        assert seen.acked == [0] and not waiting.done(), "batch 1 is not delivered yet"
        second.set_result(None)
        await asyncio.wait_for(waiting, 1)
        assert seen.acked == [0, 1]
        await flight.close()

    run(main())


def test_a_failed_delivery_stops_the_acking_for_good() -> None:
    """Batch 1 fails while batch 2 is delivered: 0 is acked, 1 and 2 never are, the
    failure is reported once with batch 1, and the agent's next `settled` and `push` raise
    it (so the next evaluated batch's events are never sent)."""

    async def main() -> None:
        seen = Recorder()
        flight: InFlight[int] = InFlight(seen.ack, seen.on_failure)
        loop = asyncio.get_running_loop()
        deliveries = [loop.create_future() for _ in range(3)]
        for n, delivery in enumerate(deliveries):
            flight.push(n, delivery)
        deliveries[0].set_result(None)
        deliveries[2].set_result(None)
        deliveries[1].set_exception(RuntimeError("not enough replicas"))
        await settle()
        assert seen.acked == [0]
        assert seen.failed == [("not enough replicas", 1)]
        with pytest.raises(RuntimeError, match="not enough replicas"):
            await flight.settled()
        with pytest.raises(RuntimeError, match="not enough replicas"):
            flight.push(3, loop.create_future())
        assert seen.acked == [0]
        await flight.close()

    run(main())


def test_a_settled_wait_raises_when_a_delivery_fails() -> None:
    async def main() -> None:
        seen = Recorder()
        flight: InFlight[int] = InFlight(seen.ack, seen.on_failure)
        delivery = asyncio.get_running_loop().create_future()
        flight.push(0, delivery)
        waiting = asyncio.ensure_future(flight.settled())
        await settle()
        delivery.set_exception(RuntimeError("broker away"))
        with pytest.raises(RuntimeError, match="broker away"):
            await asyncio.wait_for(waiting, 1)
        assert seen.acked == []
        await flight.close()

    run(main())


def test_close_leaves_what_is_not_delivered_unacked_and_closes_pending_coroutines() -> None:
    async def main() -> None:
        seen = Recorder()
        flight: InFlight[int] = InFlight(seen.ack, seen.on_failure)
        blocked = asyncio.get_running_loop().create_future()
        ran: list[int] = []

        async def delivery(n: int) -> None:
            ran.append(n)
            await blocked

        flight.push(0, delivery(0))
        never = delivery(1)
        flight.push(1, never)
        await settle()
        await flight.close()
        assert seen.acked == [] and seen.failed == []
        assert ran == [0], "batch 1's delivery was never awaited"
        assert inspect.getcoroutinestate(never) == "CORO_CLOSED", "closed: no warning"

    run(main())
