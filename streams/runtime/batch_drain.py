"""A Faust consumer that hands each fetch to the agent as one batch, beneath the Stream.

Why: Faust delivers records one at a time (`Consumer._drain_messages` awaits
`wait_first(callback(message), suspend_flow.wait())` per record, the Conductor decodes it
into an Event and queues it, the Stream iterator takes it back out). Measured on main
(bench/stream.py, 100,000 sample activities): the worker ran at 3,634/s and a Faust
pass-through agent that does nothing, on the per-event path with `fast_drain`, at
3,516/s, while a raw aiokafka loop ran at 54,034/s and Quix Streams with per-lead state at
13,794/s: Faust's per-record delivery was the cap, not the evaluation.

`BatchDrainConsumer._drain_messages` replaces Faust's drain loop: it takes each fetch
as Faust's `getmany` would give it, a partition at a time (`_fetch`: Faust's filtering,
flow active, same consumer generation, partition active, checked once per fetch since
nothing awaits between its records; measured, Faust's per-record generator, round robin
and high-watermark read took a tenth of the worker's event-loop CPU), applies the same
per-record bookkeeping as Faust's loop (drop what is below the read offset, record gaps
for acking topics, commit every `broker_commit_every` acks) and puts the fetch, as one
list of records, on a bounded queue that the agent reads with `next_batch`. The records
are aiokafka's `ConsumerRecord`s as its fetcher made them (topic, partition, offset,
timestamp in ms, key, value): Faust's `Message` per record (`_to_message`), which only
its Stream and its per-message `ack` need, cost about 4% of the worker's CPU at 15,000
records/s (py-spy). The agent acks a batch's records (`ack_batch`: the books Faust's
`consumer.ack` keeps, for all of them under one lock) only after the batch is evaluated,
saved and its events and dead letters delivered; Faust commits acked offsets as before.

What stays Faust's: group membership, partition assignment and seeks, the commit timer,
the commit on rebalance and at stop (after a producer flush, and only for partitions
still assigned), rebalance callbacks, flow control and the worker's lifecycle. The topic
is subscribed as a Stream would (`subscribe`: the agent's channel iterator is added to
the Conductor, which also makes its acks count).

Rebalance: Faust calls `stop_flow()` when partitions are revoked (and at stop); this
consumer then drops every queued batch and bumps its epoch, so a batch fetched before the
revocation, even one whose `put` completes later or one `next_batch` was still gathering
(`wait`), is never handed out (as Faust clears the
streams' queues there). Those records were never acked: the new owner (or this worker,
after Faust's seek to the committed offsets) reads them again. The batches already handed
out get to finish first: the revocation holds the epoch they were handed out in
(`hold_batches`), waits for their acks (`batches_settled`, bounded by revocation.py) and
commits; after that (`release_batches`) an ack of a batch of an older epoch is discarded
(`counts`), and the store's compare-and-set catches a write that races the new owner.

What this relies on, checked by tests/unit/test_faust_internals.py (which fails loudly when
an upgrade changes them): the fetcher runs `_drain_messages(fetcher)`; `getmany(timeout)`
is an async generator of `(tp, message)` whose steps `_fetch` copies
(`_wait_next_records`, `_buffered_partitions`, `highwater`, the monitor's
`track_tp_end_offset`; `_to_message` it leaves out); `_read_offset`, `_add_gap`,
`_n_acked`, `_commit_every`, `commit`, `stop_flow`, `flow_active`, `suspend_flow`,
`can_resume_flow`, `perform_seek` (seek to the committed offsets, read offsets reset);
`ack`, whose bookkeeping `_ack_all` copies (`ack_lock`, `_committed_offset`,
`_acked_index`, `_acked`, `_waiting_for_ack`; held to Faust's own `ack` by a
differential test, as `_fetch` is to `getmany`); the fields of aiokafka's
`ConsumerRecord` that the worker reads (`topic`, `partition`, `offset`, `timestamp` in
ms, `key`, `value`, as `_to_message` reads them);
`app.topics.acks_enabled_for`; the filtering of commits by assignment in `_commit_offsets`;
`Monitor.stream_inbound_time` (read by the aiokafka driver's livelock check);
the aiokafka driver's `Transport.Consumer` class attribute.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final, cast

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.runtime.fetch_wait import ShortFetchWaitConsumer

# Fetched batches waiting for the agent: one being evaluated, this many queued behind it
# (each is at most `broker_max_poll_records` records). Small: records waiting here are
# latency, and a rebalance drops them.
QUEUED_BATCHES: Final = 2


Fetched = tuple[int, list[Any], float]
"""A queued fetch: (epoch, records, Unix time the fetch returned)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Fetched records (aiokafka `ConsumerRecord`s) handed to the agent, the epoch they
    were handed out in, and when (Unix seconds) the first of its fetches returned."""

    records: list[Any]
    epoch: int
    fetched_at: float = 0.0


class BatchDrainConsumer(ShortFetchWaitConsumer):
    """The aiokafka-driver consumer with a drain loop that queues whole fetches (module
    doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: asyncio.Queue[Fetched] = asyncio.Queue(QUEUED_BATCHES)
        """(epoch, records, Unix time the fetch returned), in fetch order."""
        self.epoch = 0
        self._held: Fetched | None = None
        self._settling: int | None = None
        """The epoch whose batches still count while a revocation waits for them
        (`hold_batches` to `release_batches`), None otherwise."""
        self._open: Counter[int] = Counter()
        """Epoch -> batches handed out in it and not acked yet."""
        self._batch_acked = asyncio.Event()

    def stop_flow(self) -> None:
        """Faust's, then drop every queued batch: its partitions may be revoked."""
        super().stop_flow()
        self.epoch += 1
        self._held = None
        while not self.batches.empty():
            self.batches.get_nowait()
        for epoch in [e for e in self._open if e not in (self.epoch, self._settling)]:
            del self._open[epoch]

    def counts(self, batch: Batch) -> bool:
        """Whether the batch's ack would still count: it was handed out in the current
        epoch, or in the one a revocation is waiting for (`hold_batches`). A batch that
        does not count must not be sent either: its records are read again."""
        return batch.epoch == self.epoch or batch.epoch == self._settling

    def hold_batches(self) -> None:
        """Before a revocation's commit (revocation.py): hand out no more batches (Faust's
        `stop_flow`, as its revocation handler is about to do; queued batches are dropped,
        never evaluated) while the batches already handed out still count, so that
        `batches_settled` can wait for their acks."""
        self._settling = self.epoch
        self.stop_flow()

    async def batches_settled(self) -> None:
        """Until every batch handed out in the held epoch is acked (unbounded: the caller
        bounds it)."""
        while self._settling is not None and self._open[self._settling] > 0:
            self._batch_acked.clear()
            await self._batch_acked.wait()

    def release_batches(self) -> None:
        """After the revocation's commit: the held epoch's batches no longer count (an ack
        is discarded, and their sends are not issued: `counts`)."""
        self._settling = None
        self._open = Counter({self.epoch: self._open[self.epoch]})

    async def next_batch(self, max_records: int, wait: float = 0.0) -> Batch:
        """The next fetched batch of the current epoch, joined with the batches queued
        behind it while the total stays within `max_records`; with `wait` > 0, waits up to
        that many seconds for more while below `max_records`. Records of one partition
        are in offset order, and batches in fetch order."""
        while True:
            first, fetched_at = await self._pop(None)
            batch = list(first)
            epoch = self.epoch  # `_pop` returns only batches of the current epoch
            deadline = asyncio.get_running_loop().time() + wait
            while len(batch) < max_records:
                remaining = deadline - asyncio.get_running_loop().time()
                if self.batches.empty() and self._held is None and remaining <= 0:
                    break
                try:
                    more, more_at = await self._pop(max(remaining, 0.0))
                except TimeoutError:
                    break
                if self.epoch != epoch or len(batch) + len(more) > max_records:
                    self._held = (self.epoch, more, more_at)  # the next call starts with it
                    break
                batch.extend(more)
            if self.epoch == epoch:
                break
            # The flow stopped while it waited for more (`wait`): its partitions may be
            # revoked, and a revocation's commit may not have waited for it. Dropped, as
            # the queued fetches were: its records are read again.
        self._mark_inbound(batch)
        self._open[epoch] += 1
        return Batch(batch, epoch, fetched_at)

    def _mark_inbound(self, batch: list[Any]) -> None:
        """What a Stream records when it takes an event (`Monitor.on_stream_event_in`):
        the time its partition last reached an agent, which Faust's livelock check
        (`verify_event_path`) reads to warn that a partition's stream is idle."""
        monitor = getattr(self.app, "monitor", None)
        inbound = getattr(monitor, "stream_inbound_time", None)
        if inbound is not None:
            now = time.monotonic()
            for topic, partition in {(r.topic, r.partition) for r in batch}:
                inbound[TP(topic, partition)] = now

    def ack_batch(self, batch: Batch) -> None:
        """Ack a handed-out batch's records (after its effects are stored and delivered),
        unless a rebalance came since it was handed out: then Faust has seeked to the
        committed offsets and reads those records again, and an ack now would let Faust's
        commit (which takes the acked run from its lowest offset, not from the committed
        one) skip records below it that are not yet evaluated again. The batches of an
        epoch held for a revocation (`hold_batches`) still count until its commit: Faust
        has not forgotten their partitions' acked offsets nor seeked yet."""
        if not self.counts(batch):
            return
        self._ack_all(batch.records)
        if self._open[batch.epoch] > 0:
            self._open[batch.epoch] -= 1
        self._batch_acked.set()

    def _ack_all(self, records: list[Any]) -> None:
        """Faust's `ack` (faust.transport.consumer.Consumer.ack) for many records, with
        its lock taken and its waiters notified once: for a topic with acks enabled, each
        record's offset (at or past the committed one, and not acked before) joins the
        partition's acked offsets and `_n_acked`. Faust's per-message `acked` flag only
        stops a second ack of the same message: here each record is acked once
        (`ack_batch` once per batch, and no batch holds a record twice: the drain drops
        what is below the read offset), and an offset acked again would be found in the
        acked offsets (until its commit) or below the committed one (after). The
        records were never tracked (added to `_unacked_messages`: only a Stream's
        iteration does it, and the batch drain feeds none), so there is nothing to
        discard from `_unacked_messages`. Records come in runs of one partition: its
        books are looked up once per run (nothing changes them while the lock is held)."""
        acks_enabled_for = self.app.topics.acks_enabled_for
        committed_offsets = self._committed_offset
        acked_indexes = self._acked_index
        acked_lists = self._acked
        acked = 0
        topic: str | None = None
        partition = -1
        acking = False
        committed: int | None = None
        acked_index: set[int] = set()
        acked_list: list[int] = []
        with ack_lock:
            try:
                for record in records:
                    if record.partition != partition or record.topic != topic:
                        topic, partition = record.topic, record.partition
                        acking = acks_enabled_for(topic)
                        if acking:
                            tp = TP(topic, partition)
                            committed = committed_offsets[tp]
                            acked_index = acked_indexes[tp]
                            acked_list = acked_lists[tp]
                    if not acking:
                        continue
                    offset = record.offset
                    if (committed is None or offset >= committed) and offset not in acked_index:
                        acked_index.add(offset)
                        acked_list.append(offset)
                        acked += 1
            finally:
                self._n_acked += acked
                notify(self._waiting_for_ack)

    async def _pop(self, timeout: float | None) -> tuple[list[Any], float]:
        """The next non-empty batch of the current epoch (the held one first) and when it
        was fetched; raises TimeoutError after `timeout` seconds without one."""
        while True:
            if self._held is not None:
                item, self._held = self._held, None
            elif timeout is None:
                item = await self.batches.get()
            elif not self.batches.empty():
                item = self.batches.get_nowait()
            else:
                item = await asyncio.wait_for(self.batches.get(), timeout)
            epoch, batch, fetched_at = item
            if epoch == self.epoch and batch:
                return batch, fetched_at

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's drain loop (faust.transport.consumer.Consumer._drain_messages), with
        one queue `put` per fetch instead of one delivery per record."""
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                epoch = self.epoch
                await self.sleep(0)
                if self.should_stop:
                    continue
                fetched = await self._fetch(timeout=1.0)
                fetched_at = time.time()
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                if not fetched:
                    continue
                if epoch != self.epoch or not self.flow_active:
                    await self._refetch_after_rebalance()
                    continue
                batch: list[Any] = []
                gaps: list[tuple[Any, int, int]] = []
                for tp, messages in fetched:  # no await from the epoch check to the end
                    acking = acks_enabled_for(tp.topic)
                    r_offset = read_offset[tp]
                    for message in messages:
                        offset = message.offset
                        if r_offset is not None and offset < r_offset:
                            continue  # already read: Faust drops it too
                        if r_offset and offset - r_offset > 1 and acking:
                            gaps.append((tp, r_offset + 1, offset))
                        r_offset = offset
                        batch.append(message)
                    read_offset[tp] = r_offset
                for tp, first, last in gaps:
                    await self._add_gap(tp, first, last)
                if batch:
                    await self._put((epoch, batch, fetched_at))
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise

    async def _fetch(self, timeout: float) -> list[tuple[Any, list[Any]]]:
        """Faust's `getmany` (faust.transport.consumer.Consumer.getmany) a partition at a
        time: (tp, its records as aiokafka gave them, in offset order) for each partition of
        the fetch that is active. Faust's generator checks the flow and the consumer
        generation before each record; nothing awaits between its records (nor in this
        loop), so they cannot change within one fetch and are checked once here. Its
        round robin across partitions only interleaves them, which a batch need not do;
        the partition's high watermark is read once per partition instead of per record
        (it too cannot change without an await); and its records are not made into Faust
        `Message`s (module doc)."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return []
        if not self.flow_active:
            # As Faust's getmany: a fetch while the flow is stopped seeks back.
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return []
        if self.app.consumer_generation_id != generation_id:
            return []
        track_end = self.app.monitor.track_tp_end_offset
        buffered = self._buffered_partitions
        fetched: list[tuple[Any, list[Any]]] = []
        for tp, tp_records in records.items():
            if not tp_records:
                continue
            if active_partitions is None or tp in active_partitions or tp in buffered:
                track_end(tp, self.highwater(tp))
                fetched.append((tp, list(tp_records)))
        return fetched

    async def _refetch_after_rebalance(self) -> None:
        """A fetch that a rebalance overtook (returned after `stop_flow`) is dropped
        without moving the read offsets; it may hold records from before Faust's seek to
        the committed offsets or the first ones after it, which the fetch position has
        passed. So, once the flow resumes (Faust has seeked by then), seek every assigned
        partition to its committed offset again: nothing of the new epoch has been handed
        out yet (this loop is the only one that hands out), so nothing is skipped; at
        worst records are evaluated again, which is a no-op."""
        await self.wait(cast(Any, self.can_resume_flow))
        if self.should_stop or not self.flow_active:
            return
        self.epoch += 1  # anything queued meanwhile predates this seek
        self._held = None
        while not self.batches.empty():
            self.batches.get_nowait()
        await self.perform_seek()

    async def _put(self, item: Fetched) -> None:
        """Queue the batch, waiting while the queue is full; abandoned if the flow stops
        meanwhile (a rebalance), as Faust abandons a blocked delivery."""
        if not self.batches.full():
            self.batches.put_nowait(item)
            return
        await self.wait_first(self.batches.put(item), self.suspend_flow.wait())
        # A put that won the race against stop_flow carries the old epoch: `_take` and
        # `next_batch` skip it.


class BatchDrainTransport(aiokafka_driver.Transport):
    Consumer = BatchDrainConsumer


def batch_consumer(app: faust.App) -> BatchDrainConsumer:
    """The app's consumer, which must be a `BatchDrainConsumer` (`create_app(...,
    batch_drain=True)`)."""
    consumer = app.consumer
    if not isinstance(consumer, BatchDrainConsumer):
        raise TypeError(f"{type(consumer).__name__} is not a BatchDrainConsumer")
    return consumer


def subscribe(stream: Any) -> None:
    """Subscribe the agent's topic as iterating its Stream would (`aiter(stream.channel)`
    adds the channel iterator to the Conductor, which subscribes to it and counts its
    acks), without ever reading the stream: records come from `next_batch`."""
    cast(Any, stream.channel).__aiter__()
