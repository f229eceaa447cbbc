"""The commit before a revocation (streams/runtime/revocation.py), and the Faust behaviour it
makes up for, which fails loudly here if an upgrade of faust-streaming changes it."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator, OffsetCommitRequest
from faust.app import base as faust_app_base
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from streams.runtime.faust_app import create_app
from streams.runtime.revocation import (
    CommitsBeforeRevocation,
    RevocationCommitConsumer,
    RevocationCommitStreamConsumer,
    settle_and_commit_before_stop,
    stopping,
)

# The worker's consumer (the batch drain) and the dispatcher's (Faust's own, feeding the
# Stream): both commit before a revocation.
CONSUMERS = pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"batch_drain": True}, RevocationCommitConsumer),
        ({"revocation_commit": True}, RevocationCommitStreamConsumer),
    ],
)


def test_faust_forgets_the_acked_offsets_of_revoked_partitions_without_committing() -> None:
    source = inspect.getsource(faust_consumer.Consumer.on_partitions_revoked)
    assert "self._acked.pop(tp, None)" in source
    assert "self._on_partitions_revoked" in source
    assert "commit" not in source.replace("committed_offset", ""), (
        "Faust now commits on revocation itself: revocation.py may be redundant"
    )
    commit = inspect.signature(faust_consumer.Consumer.commit)
    assert list(commit.parameters)[:2] == ["self", "topics"]


@CONSUMERS
def test_the_acked_offsets_are_committed_before_faust_forgets_them(
    tmp_path: Path, options: dict[str, bool], kind: type[CommitsBeforeRevocation]
) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, **options)
    consumer = app.consumer
    assert type(consumer) is kind
    tp = TP("activities", 0)
    consumer._acked[tp] = [5, 6]
    seen: list[Any] = []

    async def commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        seen.append(("commit", set(topics), list(consumer._acked.get(tp, []))))
        return True

    async def app_handler(revoked: Any) -> None:
        seen.append(("app", set(revoked), list(consumer._acked.get(tp, []))))

    consumer.commit = commit  # type: ignore[method-assign]
    consumer._on_partitions_revoked = app_handler
    asyncio.run(consumer.on_partitions_revoked({tp}))
    assert seen == [("commit", {tp}, [5, 6]), ("app", {tp}, [])]


@CONSUMERS
def test_no_commit_for_an_empty_revocation_or_while_stopping(
    tmp_path: Path, options: dict[str, bool], kind: type[CommitsBeforeRevocation]
) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, **options)
    assert type(app.consumer) is kind
    consumer = app.consumer
    commits: list[Any] = []

    async def commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        commits.append(topics)
        return True

    async def app_handler(revoked: Any) -> None:
        return None

    consumer.commit = commit  # type: ignore[method-assign]
    consumer._on_partitions_revoked = app_handler
    asyncio.run(consumer.on_partitions_revoked(set()))
    app._stopped.set()  # mode's Service: `should_stop` is true
    asyncio.run(consumer.on_partitions_revoked({TP("activities", 1)}))
    assert commits == []


def test_faust_stops_the_flow_in_the_revocation_handler_that_the_settle_anticipates() -> None:
    """The worker's consumer stops the flow itself before the commit (`hold_batches`), as
    Faust's revocation handler would right after it: the call must be Faust's, idempotent,
    and the handler must run after the consumer's `on_partitions_revoked` pops the acked
    offsets (so the settle and the commit see them)."""
    source = inspect.getsource(faust_app_base.App._on_partitions_revoked)
    assert "consumer.stop_flow" in source
    stop_flow = inspect.getsource(faust_consumer.Consumer.stop_flow)
    assert "self.flow_active = False" in stop_flow
    revoked = inspect.getsource(faust_consumer.Consumer.on_partitions_revoked)
    assert revoked.index("self._acked.pop(tp, None)") < revoked.index("self._on_partitions_revoked")


def _record(offset: int) -> SimpleNamespace:
    """What the batch drain hands out and acks of an aiokafka `ConsumerRecord`."""
    return SimpleNamespace(topic="activities", partition=0, offset=offset)


def _revoking_worker_consumer(
    tmp_path: Path, seen: list[Any]
) -> tuple[RevocationCommitConsumer, TP]:
    """The worker's consumer, never started, its commit, acks and the app's handler
    recording into `seen`."""
    app = create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True)
    consumer = app.consumer
    assert isinstance(consumer, RevocationCommitConsumer)
    tp = TP("activities", 0)

    async def commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        seen.append(("commit", None if topics is None else set(topics)))
        return True

    async def app_handler(revoked: Any) -> None:
        seen.append(("app", set(revoked)))

    consumer.commit = commit  # type: ignore[method-assign]
    consumer._on_partitions_revoked = app_handler
    consumer._ack_all = lambda messages: seen.append(  # type: ignore[method-assign]
        ("ack", [m.offset for m in messages])
    )
    return consumer, tp


def test_a_revocation_waits_for_the_batches_in_flight_then_commits_their_acks(
    tmp_path: Path,
) -> None:
    """A batch handed out before the revocation and being delivered: the revocation stops
    handing out batches (a queued one is dropped), waits for the batch's ack, and only
    then commits and lets Faust forget the partitions; the batch's ack counts."""
    seen: list[Any] = []

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, seen)
        consumer.batches.put_nowait((0, [_record(5), _record(6)], 0.0))
        in_flight = await consumer.next_batch(2)
        consumer.batches.put_nowait((0, [_record(7)], 0.0))  # fetched, never handed out
        revoking = asyncio.ensure_future(consumer.on_partitions_revoked({tp}))
        await asyncio.sleep(0.05)
        assert not revoking.done() and seen == [], "the revocation must wait for the batch"
        assert consumer.flow_active is False and consumer.batches.empty()
        assert consumer.counts(in_flight)
        consumer.ack_batch(in_flight)  # its delivery succeeded
        await asyncio.wait_for(revoking, 1)
        assert not consumer.counts(in_flight)

    asyncio.run(main())
    assert seen == [
        ("ack", [5, 6]),
        ("commit", {TP("activities", 0)}),
        ("app", {TP("activities", 0)}),
    ]


def test_a_delivery_that_does_not_settle_in_time_is_neither_acked_nor_sent_later(
    tmp_path: Path,
) -> None:
    """A stuck delivery holds the revocation only `settle_seconds`: then the commit goes
    on without it, and its late ack is discarded (its records are read again), as is the
    send of a batch whose turn comes after the revocation (`counts`)."""
    seen: list[Any] = []

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, seen)
        consumer.settle_seconds = 0.1
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        stuck = await consumer.next_batch(1)
        await asyncio.wait_for(consumer.on_partitions_revoked({tp}), 2)
        assert not consumer.counts(stuck)
        consumer.ack_batch(stuck)

    asyncio.run(main())
    assert seen == [("commit", {TP("activities", 0)}), ("app", {TP("activities", 0)})]


def test_without_a_batch_in_flight_the_revocation_commits_at_once(tmp_path: Path) -> None:
    seen: list[Any] = []

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, seen)
        consumer.settle_seconds = 30.0
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        done = await consumer.next_batch(1)
        consumer.ack_batch(done)
        await asyncio.wait_for(consumer.on_partitions_revoked({tp}), 1)

    asyncio.run(main())
    assert seen == [("ack", [5]), ("commit", {TP("activities", 0)}), ("app", {TP("activities", 0)})]


def test_a_graceful_stop_settles_and_commits_and_reports_stop_from_its_start(
    tmp_path: Path,
) -> None:
    """The worker's SIGTERM (`before_stop`): readiness answers "stop" from its start, the
    batch in flight is waited for, then every assigned partition's acks are committed."""
    seen: list[Any] = []

    async def main() -> None:
        consumer, _ = _revoking_worker_consumer(tmp_path, seen)
        app = consumer.app
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        in_flight = await consumer.next_batch(1)
        assert not stopping(app)
        stop = asyncio.ensure_future(settle_and_commit_before_stop(app))
        await asyncio.sleep(0.05)
        assert stopping(app) and not stop.done() and seen == []
        consumer.ack_batch(in_flight)
        await asyncio.wait_for(stop, 1)

    asyncio.run(main())
    assert seen == [("ack", [5]), ("commit", None)]  # None: every assigned partition


def test_a_stop_during_a_revocations_settle_does_not_drop_the_batches_it_waits_for(
    tmp_path: Path,
) -> None:
    """A SIGTERM (a rolling deploy) while a revocation waits for a batch being delivered:
    the stop's settle must not take the held epoch's place (the batch would stop counting,
    its ack be discarded and its memberships sent again by the next owner); it waits for
    the revocation's commit, and the batch's ack is committed by it."""
    seen: list[Any] = []

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, seen)
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        in_flight = await consumer.next_batch(1)
        revoking = asyncio.ensure_future(consumer.on_partitions_revoked({tp}))
        await asyncio.sleep(0.05)
        stop = asyncio.ensure_future(settle_and_commit_before_stop(consumer.app))
        await asyncio.sleep(0.05)
        assert consumer.counts(in_flight), "the stop dropped the batch the revocation waits for"
        assert seen == [] and not revoking.done() and not stop.done()
        consumer.ack_batch(in_flight)
        await asyncio.wait_for(asyncio.gather(revoking, stop), 1)

    asyncio.run(main())
    assert seen == [
        ("ack", [5]),
        ("commit", {TP("activities", 0)}),
        ("app", {TP("activities", 0)}),
        ("commit", None),
    ]


def _lost_session(consumer: Any) -> None:
    """As aiokafka leaves its coordinator once the group no longer knows this member (the
    session expired: `GroupCoordinator.reset_generation`) before it calls the revocation."""
    coordinator = SimpleNamespace(generation=OffsetCommitRequest.DEFAULT_GENERATION_ID)
    consumer._thread._consumer = SimpleNamespace(_coordinator=coordinator)


def test_a_revocation_after_a_lost_session_does_not_wait_nor_send_what_is_in_flight(
    tmp_path: Path,
) -> None:
    """Not graceful: the group evicted this worker (its session expired) and its partitions
    are already another's, which reads them from the committed offsets. Waiting would only
    send the batches in flight while the new owner sends the same leads' later events (and
    the commit fails anyway): no wait, and the batches no longer count (not sent, not
    acked)."""
    seen: list[Any] = []

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, seen)
        consumer.settle_seconds = 30.0
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        in_flight = await consumer.next_batch(1)
        _lost_session(consumer)
        await asyncio.wait_for(consumer.on_partitions_revoked({tp}), 1)
        assert not consumer.counts(in_flight)

    asyncio.run(main())
    assert seen == [("commit", {TP("activities", 0)}), ("app", {TP("activities", 0)})]


def test_aiokafka_resets_the_generation_when_the_group_forgets_the_member() -> None:
    """What `RevocationCommitConsumer.in_group` reads: aiokafka's coordinator generation,
    reset to DEFAULT_GENERATION_ID (an unknown member or generation), on Faust's consumer
    thread's `_consumer`; fails loudly if an upgrade changes them."""
    reset = inspect.getsource(GroupCoordinator.reset_generation)
    assert "self.generation = OffsetCommitRequest.DEFAULT_GENERATION_ID" in reset
    heartbeat = inspect.getsource(GroupCoordinator._do_heartbeat)
    assert "UnknownMemberIdError" in heartbeat and "self.reset_generation()" in heartbeat
    assert OffsetCommitRequest.DEFAULT_GENERATION_ID == -1
    thread = inspect.getsource(aiokafka_driver.AIOKafkaConsumerThread.on_start)
    assert "self._consumer = self._create_consumer(" in thread


def test_a_settle_cancelled_midway_still_stops_the_held_batches_counting(
    tmp_path: Path,
) -> None:
    """A revocation cancelled while it waits (the consumer stopping): the held epoch must
    not go on counting, or a late ack, after Faust's seek to the committed offsets, would
    let its commit take an acked run past records not evaluated again."""

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, [])
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        in_flight = await consumer.next_batch(1)
        revoking = asyncio.ensure_future(consumer.on_partitions_revoked({tp}))
        await asyncio.sleep(0.05)
        revoking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await revoking
        assert not consumer.counts(in_flight)

    asyncio.run(main())


def test_a_batch_still_gathering_at_the_revocation_is_not_handed_out(tmp_path: Path) -> None:
    """`STREAMS_BATCH_WAIT` > 0: the agent took a fetch and waits for more when the
    revocation stops the flow. That batch was not handed out yet: it must not be after
    the commit (evaluated for partitions that are another's, never acked); its records are
    read again."""

    async def main() -> None:
        consumer, tp = _revoking_worker_consumer(tmp_path, [])
        consumer.batches.put_nowait((0, [_record(5)], 0.0))
        taking = asyncio.ensure_future(consumer.next_batch(10, wait=0.3))
        await asyncio.sleep(0.05)  # took the fetch, waits for more
        await asyncio.wait_for(consumer.on_partitions_revoked({tp}), 1)
        await asyncio.sleep(0.5)
        assert not taking.done(), "handed out after the revocation's commit"
        taking.cancel()

    asyncio.run(main())
