"""The Faust internals the consumption paths rely on (streams/runtime/batch_drain.py, the
worker's; streams/runtime/fast_drain.py, the per-event one kept for bench/passthrough.py;
streams/runtime/faust_app.py), and what the two consumers do with them.

These fail loudly when an upgrade of faust-streaming or mode-streaming changes what the fast
drain steps by hand: read fast_drain.py's module doc before changing the pins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import inspect
import re
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord
from faust.tables import TableManager
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import WaitResults

from streams.runtime.batch_drain import QUEUED_BATCHES, BatchDrainConsumer, BatchDrainTransport
from streams.runtime.fast_drain import FastDrainConsumer, FastDrainTransport
from streams.runtime.faust_app import PromptTableManager, create_app


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version(name))[:3])


def test_the_installed_faust_is_the_supported_one() -> None:
    assert (0, 15, 2) <= _version("faust-streaming") < (0, 16), (
        "faust-streaming outside the range fast_drain.py was checked against"
    )
    assert (0, 7) <= _version("mode-streaming") < (0, 8)
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"faust-streaming>=0.15.2,<0.16"' in pyproject


def test_the_drain_loop_is_the_only_two_coroutine_caller_of_wait_first() -> None:
    """FastDrainConsumer takes any `wait_first(coro, coro)` without timeout for the drain
    loop's delivery: that must stay the only such call, with the callback first."""
    source = inspect.getsource(faust_consumer)
    assert source.count("wait_first(") == 1
    call = " ".join(source[source.index("wait_first(") :].split())
    assert call.startswith("wait_first( callback(message), self.suspend_flow.wait() )"), call[:80]
    drain = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert "await self.wait_first(" in drain
    assert "wait_first" not in inspect.getsource(aiokafka_driver.Consumer)


def test_mode_wait_results_and_the_transport_hook() -> None:
    assert WaitResults._fields == ("done", "results", "stopped")
    assert aiokafka_driver.Transport.Consumer is aiokafka_driver.Consumer
    assert FastDrainTransport.Consumer is FastDrainConsumer
    assert "spinner" in inspect.getsource(faust.Worker.__init__), "run_worker turns it off"


def test_create_app_swaps_in_the_fast_drain_transport(tmp_path: Path) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, fast_drain=True)
    assert isinstance(app.transport, FastDrainTransport)
    assert app.transport.Consumer is FastDrainConsumer
    plain = create_app("t", "localhost:1", datadir=tmp_path)
    assert type(plain.transport) is aiokafka_driver.Transport


async def _wait_first(*coros: Any, timeout: Any = None) -> Any:
    """`FastDrainConsumer.wait_first` on a consumer that is never started: the inline path
    touches nothing of it."""
    consumer = FastDrainConsumer.__new__(FastDrainConsumer)
    return await FastDrainConsumer.wait_first(consumer, *coros, timeout=timeout)


def test_a_callback_that_does_not_suspend_is_delivered_inline() -> None:
    closed: list[str] = []

    async def callback() -> str:
        return "delivered"

    async def suspend_flow() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            closed.append("never awaited")

    async def main() -> WaitResults:
        other = suspend_flow()
        result = await _wait_first(callback(), other)
        assert other.cr_frame is None, "the flow coroutine is closed"
        return result

    result = asyncio.run(main())
    assert isinstance(result, WaitResults)
    assert result.results == ["delivered"]
    assert result.stopped is False


def test_a_callback_that_raises_at_once_raises() -> None:
    async def callback() -> None:
        raise ValueError("boom")

    async def suspend_flow() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        await _wait_first(callback(), suspend_flow())

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main())


def test_a_callback_that_suspends_finishes_under_modes_wait_first() -> None:
    """A full stream queue: the delivery waits, then completes; Faust's `wait_first`
    (mode's) runs it with the flow coroutine, as without the fast drain."""
    steps: list[str] = []

    async def callback(gate: asyncio.Event) -> str:
        steps.append("started")
        await gate.wait()
        steps.append("resumed")
        return "delivered late"

    async def suspend_flow(never: asyncio.Event) -> None:
        await never.wait()

    async def main() -> Any:
        gate, never = asyncio.Event(), asyncio.Event()
        consumer = FastDrainConsumer.__new__(FastDrainConsumer)
        seen: list[int] = []

        async def parent(self: Any, *coros: Any, timeout: Any = None) -> Any:
            seen.append(len(coros))
            done, _ = await asyncio.wait(
                [asyncio.ensure_future(c) for c in coros], return_when=asyncio.FIRST_COMPLETED
            )
            return WaitResults(list(done), [d.result() for d in done], False)

        asyncio.get_running_loop().call_later(0.05, gate.set)
        original = faust_consumer.Consumer.wait_first
        faust_consumer.Consumer.wait_first = parent  # type: ignore[method-assign]
        try:
            result = await FastDrainConsumer.wait_first(
                consumer, callback(gate), suspend_flow(never)
            )
        finally:
            faust_consumer.Consumer.wait_first = original  # type: ignore[method-assign]
        assert seen == [2]
        return result

    result = asyncio.run(main())
    assert steps == ["started", "resumed"]
    assert result.results == ["delivered late"]


# --- The batch drain (streams/runtime/batch_drain.py): what it copies and calls of Faust.


def test_the_fetcher_runs_the_drain_loop_the_batch_drain_replaces() -> None:
    """The Fetcher service runs `consumer._drain_messages(fetcher)`; the batch drain's
    loop is a copy of Faust's with a batch `put` instead of a per-record delivery, so
    Faust's loop must still do what the copy does, in the same order."""
    fetcher = inspect.getsource(faust_consumer.Fetcher)
    assert "_drain_messages(self)" in " ".join(fetcher.split())
    drain = " ".join(inspect.getsource(faust_consumer.Consumer._drain_messages).split())
    for step in (
        "getmany = self.getmany",
        "get_read_offset = self._read_offset.__getitem__",
        "set_read_offset = self._read_offset.__setitem__",
        "commit_every = self._commit_every",
        "acks_enabled_for = self.app.topics.acks_enabled_for",
        "ait = cast(AsyncIterator, getmany(timeout=1.0))",
        "if r_offset is None or offset >= r_offset:",
        "gap = offset - (r_offset or 0)",
        "if gap > 1 and r_offset:",
        "await self._add_gap(tp, r_offset + 1, offset)",
        "if self._n_acked >= commit_every: self._n_acked = 0 await self.commit()",
        "set_read_offset(tp, offset)",
        "except self.consumer_stopped_errors:",
    ):
        assert step in drain, f"Faust's drain loop changed: {step!r} is gone"
    assert inspect.isasyncgenfunction(faust_consumer.Consumer.getmany)
    getmany = " ".join(inspect.getsource(faust_consumer.Consumer.getmany).split())
    for check in ("if not self.flow_active:", "new_generation_id != generation_id"):
        assert check in getmany, f"Faust's getmany no longer filters with {check!r}"


def test_flow_control_and_acks_that_the_batch_drain_relies_on() -> None:
    stop_flow = " ".join(inspect.getsource(faust_consumer.Consumer.stop_flow).split())
    assert "self.flow_active = False" in stop_flow
    assert "self.suspend_flow.set()" in stop_flow
    revoked = " ".join(inspect.getsource(faust.App._on_partitions_revoked).split())
    assert "T(consumer.stop_flow)()" in revoked, "revocation must stop the flow (drops batches)"
    assert "consumer.stop_flow()" in inspect.getsource(faust.App._stop_consumer)
    # An ack is offset bookkeeping only; commits skip partitions no longer assigned.
    ack = inspect.getsource(faust_consumer.Consumer.ack)
    assert "acked_index.add(offset)" in ack and "self._n_acked += 1" in ack
    commit = inspect.getsource(faust_consumer.Consumer._commit_offsets)
    assert "if tp in assignment:" in commit and "revoked[tp] = offset" in commit
    # subscribe(): iterating a topic adds it to the Conductor (subscription, acks).
    aiter_source = inspect.getsource(faust.topics.Topic.__aiter__)
    assert "self.app.topics.add(" in aiter_source
    assert aiokafka_driver.Transport.Consumer is aiokafka_driver.Consumer
    assert BatchDrainTransport.Consumer is BatchDrainConsumer
    # A fetch overtaken by a rebalance is dropped, then every partition seeked again.
    seek = " ".join(inspect.getsource(faust_consumer.Consumer.perform_seek).split())
    assert "await self.seek_to_committed()" in seek and "read_offset.update(" in seek
    assert "await self.wait(self.can_resume_flow)" in " ".join(
        inspect.getsource(faust_consumer.Consumer._wait_next_records).split()
    )
    # next_batch marks each partition's inbound time, as a Stream does for the livelock check.
    on_event_in = inspect.getsource(faust.sensors.Monitor.on_stream_event_in)
    assert "self.stream_inbound_time[tp] = monotonic()" in on_event_in
    verify = inspect.getsource(aiokafka_driver.AIOKafkaConsumerThread.verify_event_path)
    assert "monitor.stream_inbound_time.get(tp)" in verify


def test_create_app_swaps_in_the_batch_drain_transport(tmp_path: Path) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True)
    assert isinstance(app.transport, BatchDrainTransport)
    with pytest.raises(ValueError, match="choose one"):
        create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True, fast_drain=True)


def test_fausts_table_manager_start_is_the_one_the_prompt_one_skips_the_sleep_of() -> None:
    """`PromptTableManager.on_start` is Faust's without its `sleep(1.0)`: Faust's must
    still be exactly that sleep, then `_update_channels`, then `recovery.start`."""
    body = inspect.getsource(TableManager.on_start).split('"""')[-1]
    steps = [" ".join(line.split()) for line in body.strip().splitlines()]
    assert steps == [
        "await self.sleep(1.0)",
        "if not self.should_stop:",
        "await self._update_channels()",
        "await self.recovery.start()",
    ], steps
    assert inspect.iscoroutinefunction(TableManager._update_channels)
    assert isinstance(inspect.getattr_static(TableManager, "recovery"), property)
    assert "if self._recovery is None:" in inspect.getsource(TableManager.recovery.fget)


async def _start_tables(app: faust.App) -> list[str]:
    """What the app's table manager's `on_start` does, in order (its I/O stubbed)."""
    manager = app.tables
    steps: list[str] = []

    async def sleep(seconds: float) -> None:
        steps.append(f"sleep {seconds}")

    async def update_channels() -> None:
        steps.append("channels")

    async def start_recovery() -> None:
        steps.append("recovery")

    manager.sleep = sleep
    manager._update_channels = update_channels
    manager._recovery = SimpleNamespace(start=start_recovery)  # what `recovery` returns
    await manager.on_start()
    return steps


def test_an_app_without_tables_starts_its_table_manager_without_fausts_sleep(
    tmp_path: Path,
) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True)
    assert isinstance(app.tables, PromptTableManager)
    assert asyncio.run(_start_tables(app)) == ["channels", "recovery"]


def test_an_app_with_a_table_keeps_fausts_start(tmp_path: Path) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path)
    app.Table("counts", default=int)
    assert asyncio.run(_start_tables(app)) == ["sleep 1.0", "channels", "recovery"]


def _batch_consumer() -> BatchDrainConsumer:
    """The queue side of a `BatchDrainConsumer` that is never started: `next_batch` and
    `stop_flow` touch nothing else of it but Faust's flow flags."""
    consumer = BatchDrainConsumer.__new__(BatchDrainConsumer)
    consumer.batches = asyncio.Queue(QUEUED_BATCHES)
    consumer.epoch = 0
    consumer._held = None
    consumer._settling = None
    consumer._open = Counter()
    consumer._batch_acked = asyncio.Event()
    consumer.flow_active = True
    consumer.can_resume_flow = asyncio.Event()
    consumer.suspend_flow = asyncio.Event()
    consumer.app = None  # no monitor: `_mark_inbound` skips it
    return consumer


def test_next_batch_joins_queued_fetches_up_to_the_limit_in_order() -> None:
    async def main() -> list[list[int]]:
        consumer = _batch_consumer()
        consumer.batches.put_nowait((0, [1, 2], 0.0))
        consumer.batches.put_nowait((0, [3, 4, 5], 0.0))
        first = await consumer.next_batch(4)
        consumer.batches.put_nowait((0, [6], 0.0))
        second = await consumer.next_batch(4)
        return [first.records, second.records]

    assert asyncio.run(main()) == [[1, 2], [3, 4, 5, 6]]


def test_next_batch_waits_for_more_only_when_told() -> None:
    async def main() -> tuple[list[int], list[int]]:
        consumer = _batch_consumer()
        consumer.batches.put_nowait((0, [1], 0.0))
        at_once = (await consumer.next_batch(10)).records
        consumer.batches.put_nowait((0, [2], 0.0))
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, consumer.batches.put_nowait, (0, [3], 0.0))
        waited = (await consumer.next_batch(10, wait=2.0)).records
        return at_once, waited

    assert asyncio.run(main()) == ([1], [2, 3])


def test_stop_flow_drops_queued_and_late_batches_of_the_old_epoch() -> None:
    """A rebalance (Faust's `stop_flow`) drops every batch fetched before it, including one
    whose put completes after it: those records are unacked and read again by the owner."""

    async def main() -> list[int]:
        consumer = _batch_consumer()
        consumer.batches.put_nowait((0, [1, 2], 0.0))
        consumer.batches.put_nowait((0, [3], 0.0))
        consumer.stop_flow()
        assert consumer.flow_active is False and consumer.suspend_flow.is_set()
        assert consumer.batches.empty()
        consumer.batches.put_nowait((0, [4], 0.0))  # a put that raced the revocation
        consumer.batches.put_nowait((1, [5, 6], 0.0))
        batch = await consumer.next_batch(10)
        assert batch.epoch == 1
        return batch.records

    assert asyncio.run(main()) == [5, 6]


def test_a_batch_handed_out_before_a_rebalance_is_not_acked() -> None:
    """Faust's commit takes the acked run from its lowest offset, not from the committed
    one: an ack of a batch evaluated across a rebalance could commit past records Faust
    re-reads after its seek and that are not evaluated again yet."""
    acked: list[int] = []

    async def main() -> None:
        consumer = _batch_consumer()
        consumer._ack_all = acked.extend  # type: ignore[method-assign]
        consumer.batches.put_nowait((0, [1, 2], 0.0))
        current = await consumer.next_batch(10)
        consumer.ack_batch(current)
        consumer.batches.put_nowait((0, [3, 4], 0.0))
        overtaken = await consumer.next_batch(10)
        consumer.stop_flow()
        consumer.ack_batch(overtaken)

    asyncio.run(main())
    assert acked == [1, 2]


def test_a_batch_carries_the_time_its_first_fetch_returned() -> None:
    async def main() -> float:
        consumer = _batch_consumer()
        consumer.batches.put_nowait((0, [1], 5.0))
        consumer.batches.put_nowait((0, [2], 6.0))
        return (await consumer.next_batch(10)).fetched_at

    assert asyncio.run(main()) == 5.0


def test_faust_sends_the_revocation_signal_that_empties_the_worker_state_cache(
    tmp_path: Path,
) -> None:
    """The worker connects `forget_cached_states` to `app.on_partitions_revoked`, which
    Faust's rebalance callback sends (after stopping the flow and flushing the producer)
    with the revoked partitions; a receiver gets the app as sender."""
    source = inspect.getsource(faust.App._on_partitions_revoked)
    assert "self.on_partitions_revoked.send)(revoked)" in source
    assert source.index("consumer.stop_flow") < source.index("on_partitions_revoked.send")
    app = create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True)
    got: list[tuple[Any, Any]] = []

    @app.on_partitions_revoked.connect
    async def receiver(sender: Any, /, *revoked: Any, **_: Any) -> None:
        got.append((sender, revoked))

    asyncio.run(app.on_partitions_revoked.send({"tp"}))
    assert got == [(app, ({"tp"},))]


def test_the_worker_connects_its_cache_eviction_to_the_revocation_signal(
    tmp_path: Path,
) -> None:
    from streams.engine.compiler import load_plan
    from streams.runtime.worker import build_app
    from streams.settings import WorkerSettings

    root = Path(__file__).resolve().parents[2]
    settings = WorkerSettings(rules_dir=root / "rules", broker="localhost:1")
    app = build_app(settings, load_plan(settings.rules_dir), tmp_path)
    names = [getattr(r, "__name__", "") for r in app.on_partitions_revoked.iter_receivers(app)]
    assert "forget_cached_states" in names


# --- The batch sender (streams/runtime/batch_send.py): what it calls of Faust and aiokafka.


def test_the_producer_internals_the_batch_sender_relies_on() -> None:
    """`BatchSender` takes aiokafka's producer from Faust's and partitions as aiokafka's
    `send` does (`_partition`), then queues record batches with `create_batch` and
    `send_batch`; an upgrade that changes any of it must fail here."""
    ensure = inspect.getsource(aiokafka_driver.Producer._ensure_producer)
    assert "return self._producer" in ensure
    partition = " ".join(inspect.getsource(AIOKafkaProducer._partition).split())
    for step in (
        "all_partitions = list(self._metadata.partitions_for_topic(topic))",
        "available = list(self._metadata.available_partitions_for_topic(topic))",
        "return self._partitioner(serialized_key, all_partitions, available)",
    ):
        assert step in partition, f"aiokafka's partitioning changed: {step!r} is gone"
    send = inspect.getsource(AIOKafkaProducer.send)
    assert "await self.client._wait_on_metadata(topic)" in send
    assert list(inspect.signature(AIOKafkaProducer.send_batch).parameters) == [
        "self",
        "batch",
        "topic",
        "partition",
    ]
    assert list(inspect.signature(AIOKafkaProducer.create_batch).parameters) == ["self"]
    append = inspect.signature(BatchBuilder.append).parameters
    assert {"timestamp", "key", "value"} <= set(append)
    # Faust gives aiokafka its default partitioner unless `producer_partitioner` is set.
    post_init = inspect.getsource(aiokafka_driver.Producer.__post_init__)
    assert "self.partitioner = DefaultPartitioner()" in post_init
    assert '"partitioner": self.partitioner' in inspect.getsource(
        aiokafka_driver.Producer._settings_default
    )


# --- The batch drain's copies of Faust's getmany and ack, held to Faust's own.


def test_the_getmany_and_ack_steps_the_batch_drain_copies() -> None:
    getmany = " ".join(inspect.getsource(faust_consumer.Consumer.getmany).split())
    for step in (
        "records, active_partitions = await self._wait_next_records(timeout)",
        "generation_id = self.app.consumer_generation_id",
        "if records is None or self.should_stop: return",
        "records_it = self.scheduler.iterate(records)",
        "active_partitions is None or tp in active_partitions or tp in self._buffered_partitions",
        "highwater_mark = self.highwater(tp)",
        "self.app.monitor.track_tp_end_offset(tp, highwater_mark)",
        "yield tp, to_message(tp, record)",
        "await self.perform_seek()",
    ):
        assert step in getmany, f"Faust's getmany changed: {step!r} is gone"
    ack = " ".join(inspect.getsource(faust_consumer.Consumer.ack).split())
    for step in (
        "with ack_lock: if not message.acked: message.acked = True",
        "if self.app.topics.acks_enabled_for(message.topic):",
        "committed = self._committed_offset[tp]",
        "if committed is None or offset >= committed:",
        "acked_index = self._acked_index[tp] if offset not in acked_index:",
        "self._unacked_messages.discard(message) acked_index.add(offset)",
        "acked_for_tp = self._acked[tp] acked_for_tp.append(offset) self._n_acked += 1",
        "finally: notify(self._waiting_for_ack)",
    ):
        assert step in ack, f"Faust's ack changed: {step!r} is gone"
    # Only a Stream's iteration tracks a message (adds it to `_unacked_messages`): the
    # batch drain never feeds one, so its bulk ack has nothing to discard.
    assert "add_unacked(message)" in inspect.getsource(faust.streams.Stream)


def _message(topic: str, partition: int, offset: int) -> Any:
    tp = faust.types.TP(topic, partition)
    return faust.types.Message(topic, partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp)


def _record(topic: str, partition: int, offset: int) -> Any:
    """What `_ack_all` reads of an aiokafka `ConsumerRecord`."""
    return SimpleNamespace(topic=topic, partition=partition, offset=offset)


def _ack_consumer(acking: set[str]) -> Any:
    """The ack bookkeeping of a consumer that is never started."""
    consumer = BatchDrainConsumer.__new__(BatchDrainConsumer)
    consumer.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=acking.__contains__))
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._committed_offset[faust.types.TP("a", 1)] = 5
    consumer._acked_index = defaultdict(set)
    consumer._acked = defaultdict(list)
    consumer._n_acked = 0
    consumer._waiting_for_ack = None
    consumer._unacked_messages = WeakSet()
    return consumer


def test_the_bulk_ack_keeps_fausts_books_as_an_ack_per_message_would() -> None:
    """Acked twice, below the committed offset, on a topic without acks, interleaved
    partitions, a run of one partition broken and resumed: `_ack_all`, given aiokafka's
    records, leaves the offsets and counts Faust's `ack` leaves given its messages."""
    plan = [("a", 0, 3), ("a", 1, 4), ("a", 1, 5), ("a", 0, 4), ("b", 0, 9), ("a", 1, 7)]
    plan += [("a", 0, 3), ("a", 0, 8), ("b", 1, 2), ("a", 0, 9)]
    ours, faust_s = _ack_consumer({"a"}), _ack_consumer({"a"})
    records = [_record(*m) for m in plan]
    faust_messages = [_message(*m) for m in plan]
    ours._ack_all(records[:3])
    ours._ack_all(records[2:])
    for message in faust_messages[:3] + faust_messages[2:]:
        faust_consumer.Consumer.ack(faust_s, message)
    assert ours._n_acked == faust_s._n_acked == 6
    assert dict(ours._acked) == dict(faust_s._acked)
    assert dict(ours._acked_index) == dict(faust_s._acked_index)


def _fetch_consumer(records: dict[Any, list[Any]], active: set[Any] | None) -> Any:
    """What `getmany` and `_fetch` read of a consumer that is never started."""
    consumer = BatchDrainConsumer.__new__(BatchDrainConsumer)
    tracked: list[tuple[Any, int]] = []
    consumer.app = SimpleNamespace(
        consumer_generation_id=7,
        monitor=SimpleNamespace(track_tp_end_offset=lambda tp, hw: tracked.append((tp, hw))),
    )
    consumer.tracked = tracked

    async def wait_next_records(timeout: float) -> Any:
        return records, active

    consumer._wait_next_records = wait_next_records
    consumer._stopped = asyncio.Event()
    consumer._crashed = asyncio.Event()
    consumer.flow_active = True
    consumer._buffered_partitions = set()
    consumer.scheduler = faust.transport.utils.DefaultSchedulingStrategy()
    consumer.highwater = lambda tp: 100 + tp.partition
    return consumer


def test_the_fetch_gives_what_fausts_getmany_gives_a_partition_at_a_time() -> None:
    tp = faust.types.TP
    rec = SimpleNamespace
    records = {
        tp("a", p): [
            rec(
                topic="a",
                partition=p,
                offset=o,
                timestamp=1000,
                timestamp_type=0,
                headers=[],
                key=b"k",
                value=b"v%d" % o,
                checksum=None,
                serialized_key_size=1,
                serialized_value_size=2,
            )
            for o in range(10 * p, 10 * p + 3)
        ]
        for p in range(3)
    }

    async def main(active: set[Any] | None) -> tuple[Any, Any]:
        theirs = _fetch_consumer(records, active)
        given = [(t, m) async for t, m in faust_consumer.Consumer.getmany(theirs, timeout=1.0)]
        ours = _fetch_consumer(records, active)
        fetched = await ours._fetch(timeout=1.0)
        per_tp: dict[Any, list[Any]] = {}
        for t, m in given:
            per_tp.setdefault(t, []).append(m)
        flat = dict(fetched)
        assert set(flat) == set(per_tp)
        for t in flat:
            assert flat[t] == records[t]  # aiokafka's records themselves, not copies
            # ... holding what Faust's messages hold, as the worker reads it
            assert [_record_fields(r) for r in flat[t]] == [_fields(m) for m in per_tp[t]]
        return sorted(set(theirs.tracked)), sorted(set(ours.tracked))

    for active in (None, {tp("a", 0), tp("a", 2)}):
        theirs, ours = asyncio.run(main(active))
        assert theirs == ours


def _fields(message: Any) -> tuple[Any, ...]:
    return (
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        message.timestamp,
    )


def _record_fields(record: Any) -> tuple[Any, ...]:
    """`_fields` of the Faust message made of an aiokafka record, as the worker reads the
    record (streams/runtime/worker.py: the timestamp in ms)."""
    return (
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        (record.timestamp or 0) / 1000,
    )


def test_the_aiokafka_record_fields_the_worker_reads() -> None:
    """The batch drain hands aiokafka's `ConsumerRecord`s to the worker, which reads these
    fields, its timestamp as milliseconds (as Faust's `_to_message` does)."""
    fields = {f.name for f in dataclasses.fields(ConsumerRecord)}
    assert {"topic", "partition", "offset", "timestamp", "key", "value"} <= fields
    to_message = " ".join(inspect.getsource(aiokafka_driver.Consumer._to_message).split())
    assert "timestamp_s = timestamp / 1000.0" in to_message
