"""Commit the acked offsets of partitions before they are revoked.

Faust's consumer, when a rebalance revokes partitions (`Consumer.on_partitions_revoked`),
forgets their acked offsets (`_acked`, `_acked_index`, `_committed_offset`...) without
committing them; it commits only on its timer (`broker_commit_interval`, 1 s here) and at
stop. So every rebalance (a worker joining or leaving: eager rebalancing revokes every
member's partitions) redelivered up to a commit interval of already delivered records of
each partition, and the worker evaluated them again and sent their memberships again
(same `eventId`s: at-least-once, but each is a duplicate downstream and work redone while
the group catches up).

`RevocationCommitConsumer.on_partitions_revoked` first commits what is acked (Faust's
`commit`, which flushes the producer first, as the timer's commit does), while the
generation is still valid (aiokafka calls the revocation before it rejoins): Kafka's
advice for a rebalance listener. Before that commit, in this order
(`settle_and_commit`): (1) no batch is handed out any more (`hold_batches`: Faust's
`stop_flow`, which its own revocation handler calls right after; queued fetches are
dropped, never evaluated); (2) the batches already handed out finish (evaluated, sent,
acknowledged by the broker, acked) for at most `settle_seconds`, their acks still counting
(`BatchDrainConsumer.counts`); (3) the commit; (4) the held epoch stops counting
(`release_batches`): a later ack is discarded and a batch whose turn to be sent comes
after it is never sent (`InFlight`'s `counts`), so its records, read again by the new
owner, are not sent twice. A revocation after a lost session (not graceful: the group
evicted this worker, its partitions are another's already) skips (2): `in_group`. Without
(1)-(2) the batches being delivered at the revocation were not acked and their new owner
sent their memberships again. The worker's SIGTERM
does the same before Faust's stop (`settle_and_commit_before_stop`, its `before_stop`):
Faust's stop cancels the agent, which left the batches in flight unacked. A batch not
settled in time is not acked and is redelivered as before. A commit that fails because the
group already moved on returns False in Faust's driver ("already rebalanced"), and those
records are redelivered as before: nothing is committed that was not delivered (acks
follow deliveries, batch_drain).

The dispatcher (streams/actions/dispatcher.py) has the same defect on Faust's own
consumer (a rebalance called the actions of up to a commit interval of handled memberships
again, with the same keys), and the same cure (`RevocationCommitStreamConsumer`): it acks a
membership only once its calls ended and its dead letters were delivered, and in each
partition's order (`InOrderAcks`), so its acked offsets are a prefix of what it received
and committing them commits nothing unhandled; memberships still calling are not acked
and are redelivered as before. It has no settle (`settles` false: its revocation commits
at once, as before): one was tried (waiting for its calls under way after an early
`stop_flow`) and made more calls again, not fewer, and so did an empty settle step
(README, "Rebalances"); Faust's handler already waits for the Stream's unacked
memberships.

Relies on (checked by tests/unit/test_revocation.py): Faust's `Consumer.on_partitions_revoked`
dropping the acked offsets of `revoked` and then calling the app's handler, which calls
`stop_flow` (idempotent: it clears `flow_active`); `Consumer.commit` taking TPs; aiokafka
resetting its coordinator's generation when the group forgets the member (`in_group`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from aiokafka.consumer.group_coordinator import OffsetCommitRequest
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.runtime.batch_drain import BatchDrainConsumer, BatchDrainTransport
from streams.runtime.fetch_wait import ShortFetchWaitConsumer

log = logging.getLogger(__name__)


SETTLE_SECONDS: Final = 2.0
"""The longest a graceful revocation waits for the deliveries in flight before its commit.
Every member's partitions wait for the slowest member to rejoin, so this is part of the
group's pause at worst; well inside the session timeout (6 s by default) and the rebalance timeout
(Faust's 60 s), so a stuck send cannot hold the group. Measured (README, "Rebalances"):
the wait took 7-255 ms on a loaded machine."""


class CommitsBeforeRevocation(aiokafka_driver.Consumer):
    """Commits acked offsets before a revocation (module doc), once what is in flight
    settled (`settle_before_revocation`, at most `settle_seconds`); mixed into a
    consumer."""

    settle_seconds: float = SETTLE_SECONDS
    settles = False
    """Whether `settle_before_revocation` has anything to wait for."""
    stopping = False
    """Set by `settle_and_commit_before_stop`: the app stops once it returns."""
    _settle_lock: asyncio.Lock | None = None
    """One settle and commit at a time (`settle_and_commit`)."""

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        if revoked and not self.app.should_stop:
            await self.settle_and_commit(revoked, "a revocation")
        await super().on_partitions_revoked(revoked)

    async def settle_and_commit(self, tps: set[Any] | None, why: str) -> None:
        """Let what is in flight settle (at most `settle_seconds`), then commit the acked
        offsets of `tps` (None: every assigned partition); what settles later does not
        count. Never raises: what is not committed is redelivered. One at a time: a
        SIGTERM during a revocation's settle (a rolling deploy) waits for its commit, as a
        second hold would take the held epoch's place and discard the acks it waits for."""
        if self._settle_lock is None:
            self._settle_lock = asyncio.Lock()
        async with self._settle_lock:
            await self._settle_and_commit(tps, why)

    async def _settle_and_commit(self, tps: set[Any] | None, why: str) -> None:
        started = time.monotonic()
        try:  # what settles after this must not count, even if cancelled midway
            try:
                if self.settles:
                    async with asyncio.timeout(self.settle_seconds):
                        await self.settle_before_revocation()
            except TimeoutError:
                log.warning(
                    "deliveries in flight not settled within %.1f s of %s: what is not "
                    "acked is redelivered",
                    self.settle_seconds,
                    why,
                )
            try:
                await self.commit(tps)
            except Exception:  # the records are redelivered, as without this commit
                log.exception("commit before %s failed", why)
        finally:
            self.after_revocation_commit()
        log.info(
            "%s: deliveries in flight waited for and acks committed in %.3f s",
            why,
            time.monotonic() - started,
        )

    async def settle_before_revocation(self) -> None:
        """What is in flight, finished and acked before the commit (unbounded: the caller
        bounds it); nothing by default."""

    def after_revocation_commit(self) -> None:
        """After the commit (or its failure, or a cancellation of the settle or the
        commit): what settles after this must not count."""


class RevocationCommitConsumer(CommitsBeforeRevocation, BatchDrainConsumer):
    """The batch-drain consumer (the worker's), committing acked offsets before a
    revocation, once the batches handed out have been delivered and acked."""

    settles = True

    async def settle_before_revocation(self) -> None:
        self.hold_batches()
        if not self.in_group():
            log.warning(
                "partitions revoked after this worker left the group (its session was "
                "lost): the batches in flight are not waited for, nor sent if not yet issued"
            )
            return
        await self.batches_settled()

    def in_group(self) -> bool:
        """Whether the group still knows this member: after a lost session (aiokafka
        resets its generation, then calls the revocation) its partitions are another's
        already, reading them from the committed offsets; a settle would only send the
        batches in flight alongside the new owner's later events of the same leads, and
        the commit fails anyway. True before the consumer has started."""
        consumer = getattr(self._thread, "_consumer", None)
        if consumer is None:
            return True
        return bool(consumer._coordinator.generation != OffsetCommitRequest.DEFAULT_GENERATION_ID)

    def after_revocation_commit(self) -> None:
        self.release_batches()


async def settle_and_commit_before_stop(app: Any) -> None:
    """The worker's `before_stop` (streams/runtime/faust_app.py `run_worker`): on SIGTERM,
    before Faust's stop cancels the agent (which leaves the batches in flight unacked, so
    the next owner sent their events again), the batches handed out settle and what is
    acked is committed, as before a revocation; no batch is handed out after it."""
    consumer = app.consumer
    if isinstance(consumer, CommitsBeforeRevocation):
        consumer.stopping = True
        await consumer.settle_and_commit(None, "a graceful stop")


def stopping(app: Any) -> bool:
    """Whether the app is stopping: from the SIGTERM on, its settle before the stop
    (`settle_and_commit_before_stop`) included, for readiness to answer "stop"."""
    return bool(app.should_stop) or getattr(app.consumer, "stopping", False)


class RevocationCommitTransport(BatchDrainTransport):
    Consumer = RevocationCommitConsumer


class RevocationCommitStreamConsumer(CommitsBeforeRevocation, ShortFetchWaitConsumer):
    """Faust's consumer feeding the Stream (the dispatcher's), committing acked offsets
    before a revocation, with the short fetch wait (fetch_wait.py: a busy partition's
    memberships must not wait for a fetch of idle ones)."""


class RevocationCommitStreamTransport(aiokafka_driver.Transport):
    Consumer = RevocationCommitStreamConsumer
