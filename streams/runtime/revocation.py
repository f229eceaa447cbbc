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
advice for a rebalance listener. A batch the agent is still evaluating is not acked yet and
is redelivered as before. A commit that fails because the group already moved on returns
False in Faust's driver ("already rebalanced"), and those records are redelivered as
before: nothing is committed that was not delivered (acks follow deliveries, batch_drain).

The dispatcher (streams/actions/dispatcher.py) has the same defect on Faust's own
consumer (a rebalance called the actions of up to a commit interval of handled memberships
again, with the same keys), and the same cure (`RevocationCommitStreamConsumer`): it acks a
membership only once its calls ended and its dead letters were delivered, and in each
partition's order (`InOrderAcks`), so its acked offsets are a prefix of what it received
and committing them commits nothing unhandled; memberships still calling are not acked
and are redelivered as before.

Relies on (checked by tests/unit/test_revocation.py): Faust's `Consumer.on_partitions_revoked`
dropping the acked offsets of `revoked` and calling the app's handler; `Consumer.commit`
taking TPs.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.runtime.batch_drain import BatchDrainConsumer, BatchDrainTransport
from streams.runtime.fetch_wait import ShortFetchWaitConsumer

log = logging.getLogger(__name__)


class CommitsBeforeRevocation(aiokafka_driver.Consumer):
    """Commits acked offsets before a revocation (module doc); mixed into a consumer."""

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        if revoked and not self.app.should_stop:
            try:
                await self.commit(revoked)
            except Exception:  # the records are redelivered, as without this commit
                log.exception("commit before the revocation of %d partitions failed", len(revoked))
        await super().on_partitions_revoked(revoked)


class RevocationCommitConsumer(CommitsBeforeRevocation, BatchDrainConsumer):
    """The batch-drain consumer (the worker's), committing acked offsets before a
    revocation."""


class RevocationCommitTransport(BatchDrainTransport):
    Consumer = RevocationCommitConsumer


class RevocationCommitStreamConsumer(CommitsBeforeRevocation, ShortFetchWaitConsumer):
    """Faust's consumer feeding the Stream (the dispatcher's), committing acked offsets
    before a revocation, with the short fetch wait (fetch_wait.py: a busy partition's
    memberships must not wait for a fetch of idle ones)."""


class RevocationCommitStreamTransport(aiokafka_driver.Transport):
    Consumer = RevocationCommitStreamConsumer
