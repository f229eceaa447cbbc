"""`InFlight`: batches issued and acked in submit order, each batch's sends issued only once
every earlier batch is delivered; the agent at most `ahead` batches ahead of the sends;
the first failure stops everything for good."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest

from streams.runtime.in_flight import InFlight, Issue
from streams.runtime.worker import BatchHandler


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    """The acks and failures `InFlight` reports, and a fake producer: `issuer(n)` is batch
    n's `Issue`, which logs the issue and returns a delivery completed by the test
    (`deliveries[n]`)."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.failed: list[tuple[str, int]] = []
        self.issued: list[int] = []
        self.deliveries: dict[int, asyncio.Future[None]] = {}

    def ack(self, batch: int) -> None:
        self.acked.append(batch)

    def on_failure(self, exc: BaseException, batch: int) -> None:
        self.failed.append((str(exc), batch))

    def issuer(self, n: int, error: Exception | None = None) -> Issue:
        async def issue() -> Awaitable[None]:
            if error is not None:
                raise error
            self.issued.append(n)
            self.deliveries[n] = asyncio.get_running_loop().create_future()
            return self.deliveries[n]

        return issue


def flight(seen: Recorder, ahead: int) -> InFlight[int]:
    return InFlight(seen.ack, seen.on_failure, ahead)


def test_each_batch_is_issued_only_once_every_earlier_one_is_delivered_and_acked() -> None:
    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead=8)
        for n in range(3):
            await out.submit(n, seen.issuer(n))
        await settle()
        assert seen.issued == [0], "batch 0 not delivered yet: batch 1 waits"
        seen.deliveries[0].set_result(None)
        await settle()
        assert seen.acked == [0] and seen.issued == [0, 1]
        seen.deliveries[1].set_result(None)
        await settle()
        seen.deliveries[2].set_result(None)
        await asyncio.wait_for(out.settled(), 1)
        assert seen.acked == [0, 1, 2] and seen.issued == [0, 1, 2]
        await out.close()

    run(main())


@pytest.mark.parametrize("ahead", [0, 1, 2])
def test_submit_returns_once_at_most_ahead_batches_wait_to_be_issued(ahead: int) -> None:
    """Batch 0 is issued and not delivered: batches 1.. wait. Submitting batch k returns at
    once while k <= ahead (the agent may evaluate the next batch), and otherwise only once
    batch 0 is delivered and batch 1 issued."""

    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead)
        await asyncio.wait_for(out.submit(0, seen.issuer(0)), 1)  # issued at once
        for n in range(1, ahead + 1):
            await asyncio.wait_for(out.submit(n, seen.issuer(n)), 1)
        blocked = asyncio.ensure_future(out.submit(ahead + 1, seen.issuer(ahead + 1)))
        await settle()
        assert not blocked.done(), f"{ahead + 1} batches would wait to be issued"
        assert seen.issued == [0]
        seen.deliveries[0].set_result(None)
        await asyncio.wait_for(blocked, 1)
        assert seen.issued == [0, 1] and seen.acked == [0]
        await out.close()

    run(main())


def test_settled_waits_until_every_submitted_batch_is_acked() -> None:
    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead=1)
        await asyncio.wait_for(out.settled(), 1)  # nothing submitted: settled at once
        await out.submit(0, seen.issuer(0))
        await out.submit(1, seen.issuer(1))
        waiting = asyncio.ensure_future(out.settled())
        seen.deliveries[0].set_result(None)
        await settle()
        assert seen.acked == [0] and not waiting.done(), "batch 1 is not delivered yet"
        seen.deliveries[1].set_result(None)
        await asyncio.wait_for(waiting, 1)
        assert seen.acked == [0, 1]
        await out.close()

    run(main())


def test_a_failed_delivery_stops_everything_for_good() -> None:
    """Batch 1's delivery fails: 0 is acked, 1 never is, batch 2 is never issued (nothing
    is delivered after a failed delivery), the failure is reported once with batch 1, and
    the agent's `submit` blocked meanwhile, its next `settled` and `submit` raise it."""

    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead=0)
        await out.submit(0, seen.issuer(0))
        blocked = asyncio.ensure_future(out.submit(1, seen.issuer(1)))
        seen.deliveries[0].set_result(None)
        await asyncio.wait_for(blocked, 1)
        assert seen.issued == [0, 1] and seen.acked == [0]
        blocked = asyncio.ensure_future(out.submit(2, seen.issuer(2)))
        await settle()
        seen.deliveries[1].set_exception(RuntimeError("not enough replicas"))
        await settle()
        assert seen.acked == [0] and seen.issued == [0, 1]
        assert seen.failed == [("not enough replicas", 1)]
        with pytest.raises(RuntimeError, match="not enough replicas"):
            await asyncio.wait_for(blocked, 1)
        with pytest.raises(RuntimeError, match="not enough replicas"):
            await out.settled()
        with pytest.raises(RuntimeError, match="not enough replicas"):
            await out.submit(3, seen.issuer(3))
        await settle()
        assert seen.acked == [0] and seen.issued == [0, 1]
        await out.close()

    run(main())


def test_a_failure_drops_the_batches_waiting_to_be_issued() -> None:
    """With the agent ahead (batch 2 submitted while batch 1 waits for batch 0), batch 0's
    failure leaves 1 and 2 never issued."""

    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead=2)
        for n in range(3):
            await asyncio.wait_for(out.submit(n, seen.issuer(n)), 1)
        seen.deliveries[0].set_exception(RuntimeError("refused"))
        await settle()
        assert seen.issued == [0] and seen.acked == [] and seen.failed == [("refused", 0)]
        await out.close()

    run(main())


def test_sends_that_cannot_be_issued_are_a_failure() -> None:
    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead=1)
        await out.submit(0, seen.issuer(0, RuntimeError("buffer full")))
        with pytest.raises(RuntimeError, match="buffer full"):
            await asyncio.wait_for(out.submit(1, seen.issuer(1)), 1)
        await settle()
        assert seen.failed == [("buffer full", 0)] and seen.issued == []
        with pytest.raises(RuntimeError, match="buffer full"):
            await out.settled()
        await out.close()

    run(main())


def test_close_leaves_what_is_not_delivered_unacked_and_issues_nothing_more() -> None:
    async def main() -> None:
        seen = Recorder()
        out = flight(seen, ahead=1)
        await out.submit(0, seen.issuer(0))
        await out.submit(1, seen.issuer(1))
        await settle()
        await out.close()
        await settle()
        assert seen.deliveries[0].cancelled(), "no longer waited for"
        assert seen.acked == [] and seen.failed == [] and seen.issued == [0]

    run(main())


def test_ahead_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="ahead"):
        InFlight(Recorder().ack, Recorder().on_failure, -1)


def test_a_batch_that_no_longer_counts_is_neither_issued_nor_acked() -> None:
    """A rebalance revoked batch 1's partitions while batch 0 was being delivered: when its
    turn comes it is skipped (its records are read again: sending them would duplicate),
    and the batches after it go on."""

    async def main() -> None:
        seen = Recorder()
        revoked: set[int] = set()
        out = InFlight(seen.ack, seen.on_failure, 8, counts=lambda n: n not in revoked)
        for n in range(3):
            await out.submit(n, seen.issuer(n))
        await settle()
        assert seen.issued == [0]
        revoked.add(1)
        seen.deliveries[0].set_result(None)
        await settle()
        assert seen.issued == [0, 2] and seen.acked == [0]
        seen.deliveries[2].set_result(None)
        await asyncio.wait_for(out.settled(), 1)
        assert seen.acked == [0, 2] and seen.failed == []
        await out.close()

    run(main())


def test_save_overlap_a_batch_evaluated_after_the_revocation_commit_is_not_sent() -> None:
    """`STREAMS_SAVE_OVERLAP`: a batch's turn comes while it still counts, but its issue
    first waits for its evaluation (`BatchHandler.issue_when_evaluated`); the revocation's
    settle times out and commits meanwhile. Its records are read again by the next owner,
    which may have sent them and later events of the same leads by then: sent now, its
    events would reach the topic after those (a lead's membership history out of order),
    so it is not sent."""

    async def main() -> None:
        seen = Recorder()
        counting = [True]
        sent: list[str] = []
        evaluation: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def issue(evaluated: Any) -> Awaitable[None]:
            sent.append(evaluated)
            return asyncio.sleep(0)

        handler: Any = SimpleNamespace(issue=issue)  # the one method it calls
        out = InFlight(seen.ack, seen.on_failure, 8, counts=lambda n: counting[0])

        def still_counts() -> bool:
            return counting[0]

        await out.submit(
            0, partial(BatchHandler.issue_when_evaluated, handler, evaluation, still_counts)
        )
        await settle()
        counting[0] = False  # the revocation's commit
        evaluation.set_result("evaluated")
        await asyncio.wait_for(out.settled(), 1)
        assert sent == [], "sent after the commit: the next owner sends it again, earlier"
        assert seen.failed == []
        await out.close()

    run(main())
