"""The streaming worker: a Faust app, built by a factory, that runs the shared pipeline.

Records arrive in batches beneath Faust's per-event Stream (streams/runtime/batch_drain.py:
each fetch of Faust's consumer, as aiokafka's records, which Faust never acks by itself;
Faust keeps group membership, commits, rebalance callbacks and the lifecycle). Before the
first batch, while the group is joined, the agent loads the save script and the producer's
metadata (`warm_up`). Per batch, in this order:
1. evaluate: decode, load the batch's leads (cached ones from memory, the others from
   Redis in one round trip), run the engine, save them in one round trip (compare-and-set
   per lead; a conflict, meaning another writer touched a lead, evaluates the whole batch
   again from a fresh load);
2. once every earlier batch is delivered and acked, produce the membership events (keyed
   by lead id) and the dead letters, and wait until the broker acknowledged every one of
   them; with `delivery_overlap` (the default) the agent evaluates the next batches (1)
   meanwhile, up to `evaluate_ahead` of them waiting for their sends, which the in-flight
   task issues (streams/runtime/in_flight.py), so sends stay in batch order and a batch's
   events are never delivered after an earlier batch's delivery failed;
3. only then ack the batch's records (`BatchDrainConsumer.ack_batch`), in batch order,
   whose offsets Faust commits on its next commit; a graceful revocation first lets the
   batches handed out settle and commits them (streams/runtime/revocation.py); a batch
   that did not is not acked, nor sent if not yet issued (Faust re-reads its records from
   the committed offsets, and the replay is a no-op).
A crash anywhere before 3 redelivers the batch (and any later one, evaluated or not):
each activity is found in its lead's `seen` at the same position, changes nothing, and
its events are produced again with the same `eventId`s (at-least-once, idempotent). No
activity is lost: nothing is acked before its effects are stored and its events
delivered. An error the batch cannot get past, or a failed delivery, makes the worker
exit at once with status 1 (`crash_now`), rather than stall or stop gracefully, so that a
supervisor restarts it and the batch is redelivered.

The lead states the worker saved stay cached (`STREAMS_STATE_CACHE_LEADS`) and are used
without asking Redis while it owns their partitions; the cache is emptied when its
partitions are revoked (Faust's `app.on_partitions_revoked` signal, sent by its rebalance
callback after the flow stopped: checked by tests/unit/test_faust_internals.py), and a
stale entry (a zombie's) fails the save's compare-and-set.

`/ready` answers 200 once the group is joined, the assignment in force and the warm-up
done, and stays so through later rebalances (streams/runtime/readiness.py); `/health` is
liveness.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, NoReturn

import faust
import orjson
from aiokafka.errors import KafkaTimeoutError

from streams.engine.activity import Rejection, minimal_dead_letter
from streams.engine.compiler import Plan
from streams.engine.datatypes import datetime_to_us
from streams.engine.leadstate import LeadState
from streams.pipeline import BatchResult, Processor, RecordLike
from streams.runtime.batch_drain import Batch, batch_consumer, subscribe
from streams.runtime.batch_send import BatchSender
from streams.runtime.faust_app import create_app, send_all, service_options
from streams.runtime.fetch_wait import FetchWait, set_fetch_wait
from streams.runtime.hot_reload import (
    ReloadMetrics,
    RulesReloader,
    SwitchLog,
    switch_between_batches,
)
from streams.runtime.in_flight import InFlight, Issue
from streams.runtime.metrics import CONTENT_TYPE, ConsumerLag, WorkerMetrics
from streams.runtime.readiness import Readiness
from streams.runtime.revocation import stopping
from streams.settings import WorkerSettings
from streams.state.redis_client import redis_client
from streams.state.redis_store import SAVE_LEADS_LUA, RedisStore, StateConflict

log = logging.getLogger(__name__)

CONFLICT_RETRIES: Final = 5
WARM_UP_SECONDS: Final = 5.0
"""The longest the agent spends warming up (`warm_up`) before it takes its first batch."""

Delivery = Coroutine[Any, Any, None]
"""What waits for a batch's sends to be acknowledged (`BatchHandler.dispatch`)."""


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A batch evaluated (its states saved), its events not yet sent."""

    records: Sequence[Any]
    """Its records as fetched (aiokafka `ConsumerRecord`s), which the pipeline read as
    they are (`RecordLike`)."""
    result: BatchResult
    started: float
    """`time.perf_counter()` when its evaluation began."""
    appended: list[float]
    """Its records' timestamps (Unix seconds), for the metrics."""

    def originals(self) -> dict[tuple[int, int], tuple[bytes | None, RecordLike]]:
        """(partition, offset) -> (the record's key, the record), for its dead letters'
        records only (a batch has thousands of records and few dead letters)."""
        wanted = {(d["partition"], d["offset"]) for d in self.result.dead_letters}
        offsets = {offset for _, offset in wanted}
        return {
            (r.partition, r.offset): (r.key, r)
            for r in self.records
            if r.offset in offsets and (r.partition, r.offset) in wanted
        }


class BatchTimes:
    """One batch's time in the store's `load` and `save` calls (`TimedStore`), and whether
    its save has begun (with `save_overlap` the agent goes on to the next batch then)."""

    __slots__ = ("load", "save", "saving")

    def __init__(self) -> None:
        self.load = 0.0
        self.save = 0.0
        self.saving = asyncio.Event()


_BATCH: ContextVar[BatchTimes | None] = ContextVar("streams_batch_times", default=None)
"""The batch being evaluated in this task (`BatchHandler.evaluate_batch` sets it)."""


class TimedStore:
    """The worker's `RedisStore`, with the time its `load` and `save` calls take, counted
    on the batch being evaluated in the calling task (`BatchTimes`), so that two batches
    evaluated at once (`save_overlap`) are timed apart (`streams_batch_stage_seconds`)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        with _timed("load"):
            return await self.store.load(lead_ids)

    async def save(self, states: Mapping[int, LeadState]) -> None:
        with _timed("save"):
            await self.store.save(states)

    async def load_core(self, lead_ids: list[int]) -> None:
        """`load` for the native core (`RedisStore.load_core`)."""
        with _timed("load"):
            await self.store.load_core(lead_ids)

    async def save_core(self, lead_ids: list[int], payloads: list[tuple[int, bool, bytes]]) -> None:
        """`save` for the native core (`RedisStore.save_core`)."""
        with _timed("save"):
            await self.store.save_core(lead_ids, payloads)


@contextmanager
def _timed(stage: str) -> Iterator[None]:
    """Counts the block's time on the batch being evaluated (`BatchTimes.load` or
    `.save`); a save marks the batch as saving."""
    started = time.perf_counter()
    times = _BATCH.get()
    if times is not None and stage == "save":
        times.saving.set()
    try:
        yield
    finally:
        if times is not None:
            spent = time.perf_counter() - started
            if stage == "save":
                times.save += spent
            else:
                times.load += spent


class BatchHandler:
    """Steps 1-2 of the module docstring for one batch (`evaluate_batch`, `issue`, then
    the returned delivery); kept apart from Faust's types so that what it does in which
    order reads in one place."""

    def __init__(
        self,
        app: faust.App,
        settings: WorkerSettings,
        processor: Processor,
        metrics: WorkerMetrics,
    ) -> None:
        self.app = app
        self.settings = settings
        self.processor = processor
        self.metrics = metrics
        self.sender = BatchSender(app.producer)

    async def evaluate(self, records: Sequence[RecordLike], retry: bool = True) -> BatchResult:
        """The batch through the pipeline; a `StateConflict` evaluates it again from a fresh
        load, up to `CONFLICT_RETRIES` times, unless `retry` is false (`save_overlap`: a
        later batch may have read the lead meanwhile), when it is raised."""
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                return await self.processor.process(records, datetime_to_us(datetime.now(UTC)))
            except StateConflict as exc:
                self.metrics.conflicts.inc()
                if not retry:
                    raise
                log.warning(
                    "batch of %d records: %s; evaluating again (%d/%d)",
                    len(records),
                    exc,
                    attempt,
                    CONFLICT_RETRIES,
                )
        raise RuntimeError(f"state conflicts persisted over {CONFLICT_RETRIES} attempts")

    async def evaluate_batch(
        self,
        records: Sequence[Any],
        fetched_at: float = 0.0,
        times: BatchTimes | None = None,
        retry: bool = True,
    ) -> Evaluated:
        """Step 1 for a batch of fetched records (`BatchDrainConsumer.next_batch`, fetched
        at Unix time `fetched_at`), timing each stage into `times` (a fresh one if None);
        `retry` as for `evaluate`."""
        times = times if times is not None else BatchTimes()
        _BATCH.set(times)
        started = time.perf_counter()
        stages = self.metrics.stage_seconds
        appended = [(r.timestamp or 0) / 1000 for r in records]  # ms; 0: none (not counted)
        if fetched_at:
            stages.labels("queued").observe(max(0.0, time.time() - fetched_at))
            self.metrics.fetch_delay.observe_ages(fetched_at, appended)
        # aiokafka's records are the pipeline's (`RecordLike`): no copy per record.
        result = await self.evaluate(records, retry)
        stages.labels("load").observe(times.load)
        stages.labels("save").observe(times.save)
        spent = time.perf_counter() - started
        stages.labels("evaluate").observe(max(0.0, spent - times.load - times.save))
        return Evaluated(records, result, started, appended)

    async def evaluate_or_exit(
        self, records: Sequence[Any], fetched_at: float, times: BatchTimes
    ) -> Evaluated:
        """`evaluate_batch` in a task of its own (`save_overlap`), conflicts not retried: a
        failure makes the worker exit at once (`crash_now`, before any later batch can
        save), and the batch and every later one are redelivered."""
        try:
            return await self.evaluate_batch(records, fetched_at, times, retry=False)
        except Exception:
            log.exception(
                "batch of %d records failed; exiting (it will be redelivered)", len(records)
            )
            crash_now()

    async def issue_when_evaluated(
        self, evaluation: Awaitable[Evaluated], counts: Callable[[], bool]
    ) -> Delivery:
        """`issue`, once the batch's evaluation (its states saved) is done, unless the
        batch no longer `counts` then (`BatchDrainConsumer.counts`: a revocation committed
        meanwhile, the next owner reads its records again and may have sent them and
        later events of the same leads already): sent now, its events would follow
        those. Its delivery is then nothing, and its ack is discarded."""
        evaluated = await evaluation
        if not counts():
            return asyncio.sleep(0)
        return await self.issue(evaluated)

    async def issue(self, batch: Evaluated) -> Delivery:
        """The sends of step 2: append every membership event and dead letter of an
        evaluated batch, in order, to the producer. Returns the rest of step 2, which waits
        for the broker's acknowledgements; the batch is acked (step 3) once that returns."""
        issued = time.perf_counter()
        result = batch.result
        dumps = orjson.dumps
        events = await self.sender.issue(
            self.settings.topic_memberships,
            [(b"%d" % event["leadId"], dumps(event)) for event in result.events],
        )
        letters: list[Awaitable[Any]] = []
        originals: dict[tuple[int, int], tuple[bytes | None, RecordLike]] = {}
        if result.dead_letters:
            originals = batch.originals()
            letters = await self.issue_dead_letters(result.dead_letters, originals)
        return self.confirm(batch, events, letters, originals, issued)

    async def confirm(
        self,
        batch: Evaluated,
        events: list[Awaitable[Any]],
        letters: list[Awaitable[Any]],
        originals: dict[tuple[int, int], tuple[bytes | None, RecordLike]],
        issued: float,
    ) -> None:
        """The rest of step 2: wait until the broker acknowledged every event and dead
        letter of the batch (raises if one failed); `originals` as `issue` built them."""
        await asyncio.gather(*events)
        if letters:
            await self.confirm_dead_letters(batch.result.dead_letters, letters, originals)
        self.metrics.stage_seconds.labels("deliver").observe(time.perf_counter() - issued)
        self.metrics.record_batch(batch.result, batch.appended, batch.started)

    async def issue_dead_letters(
        self,
        letters: Sequence[dict[str, Any]],
        originals: dict[tuple[int, int], tuple[bytes | None, RecordLike]],
    ) -> list[Awaitable[Any]]:
        """Append the dead letters, keyed as their records were, in order per partition,
        one record batch per partition as the events (`BatchSender.issue_each`: a `send`
        per letter cost more than all of a batch's events); each letter's delivery is its
        batch's, so a batch the broker refuses (one letter in it larger than the topic
        allows) fails each of its letters, and `confirm_dead_letters` sends each again
        alone."""
        dumps = orjson.dumps
        return await self.sender.issue_each(
            self.settings.topic_dlq,
            [(originals[(d["partition"], d["offset"])][0], dumps(d)) for d in letters],
        )

    async def confirm_dead_letters(
        self,
        letters: Sequence[dict[str, Any]],
        deliveries: list[Awaitable[Any]],
        originals: dict[tuple[int, int], tuple[bytes | None, RecordLike]],
    ) -> None:
        """Wait for the dead letters. A letter the producer or the broker refuses, and
        refuses again when sent alone (`_send_alone`: too large for the topic's
        max.message.bytes or the producer's request size, or any other error that is not
        a transient one, `_transient`) is replaced by `minimal_dead_letter`, unkeyed (the
        key may be what is too large), which names the record's position and why: a
        poison record never stops the partitions. A transient error (the broker is away)
        fails the batch as before, to be redelivered; so does a minimal letter that fails
        too, which means the broker itself is failing."""
        producer = self.app.producer
        topic = self.settings.topic_dlq
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        fallbacks: list[tuple[bytes | None, bytes]] = []
        for letter, outcome in zip(letters, outcomes, strict=True):
            if not isinstance(outcome, Exception):
                if isinstance(outcome, BaseException):
                    raise outcome
                continue
            if _transient(outcome):
                raise outcome
            key, record = originals[(letter["partition"], letter["offset"])]
            outcome = await _send_alone(producer, topic, key, orjson.dumps(letter), outcome)
            if outcome is None:
                continue
            reason = f"{type(outcome).__name__}: {outcome}"
            log.warning(
                "dead letter for %s/%d/%d not sent (%s); sending a minimal one",
                record.topic,
                record.partition,
                record.offset,
                reason,
            )
            rejection = Rejection(letter["error"]["code"], letter["error"]["message"])
            minimal = minimal_dead_letter(
                record.value, rejection, record.topic, record.partition, record.offset, reason
            )
            fallbacks.append((None, orjson.dumps(minimal)))
        if fallbacks:
            await send_all(producer, topic, fallbacks)
            self.metrics.minimal_dead_letters.inc(len(fallbacks))


async def _send_alone(
    producer: Any, topic: str, key: bytes | None, value: bytes, refused: Exception
) -> Exception | None:
    """Send a refused dead letter again on its own: the broker refuses a whole record
    batch when it is larger than the topic's max.message.bytes, so a letter that fits may
    have been refused only for sharing a batch with one that does not (the batch drain's
    fetches hold many records). None once delivered; the error if it is refused alone
    (a transient one raises); `refused` if it cannot even be appended."""
    try:
        delivery = await producer.send(topic, key, value, None, None, None)
    except Exception:
        return refused
    try:
        await delivery
    except Exception as exc:
        if _transient(exc):
            raise
        return exc
    return None


def _transient(exc: BaseException) -> bool:
    """An error of the broker or the connection rather than of the message: a timeout, a
    lost connection, or anything Kafka calls retriable (Faust wraps errors raised at
    `send` in ProducerSendError, whose cause is the Kafka error)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return isinstance(cause, KafkaTimeoutError | TimeoutError | OSError) or bool(
        getattr(cause, "retriable", False)
    )


async def start_evaluation(
    handler: BatchHandler, batch: Batch, counts: Callable[[], bool]
) -> Issue:
    """`save_overlap`: evaluate the batch in a task of its own and return once its save has
    begun (or it ended), so that the agent evaluates the next batch while this one's save
    is in flight: the store makes a load of a lead whose save is in flight wait for it, so
    each lead is still read after its previous batch's save. Returns what issues the
    batch's sends once its evaluation is done, if the batch still `counts` then. A failure
    exits at once (`BatchHandler.evaluate_or_exit`)."""
    times = BatchTimes()
    evaluation = asyncio.ensure_future(
        handler.evaluate_or_exit(batch.records, batch.fetched_at, times)
    )
    saving = asyncio.ensure_future(times.saving.wait())
    try:
        await asyncio.wait({evaluation, saving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        saving.cancel()
    return partial(handler.issue_when_evaluated, evaluation, counts)


async def warm_up(store: RedisStore, sender: BatchSender, topics: Sequence[str]) -> None:
    """What the first batch would otherwise wait for, done while the worker joins its
    group (the agent has subscribed; no record is consumed before `next_batch`): a
    connection to Redis with the save script loaded (a fresh or restarted Redis answers a
    first save NOSCRIPT, which costs it two more round trips), and the producer's metadata
    of the topics the worker sends to (asked by aiokafka at a topic's first send). Not
    needed for correctness: a failure, or a warm-up longer than `WARM_UP_SECONDS`, is
    logged, and the first batch meets it again and fails or succeeds as it would have."""
    try:
        async with asyncio.timeout(WARM_UP_SECONDS):
            await store.client.script_load(SAVE_LEADS_LUA)
            for topic in topics:
                await sender.warm_up(topic)
    except Exception as exc:
        log.warning("warm-up before consuming failed (%s: %s)", type(exc).__name__, exc)


def delivery_failed(exc: BaseException, batch: Batch) -> NoReturn:
    """A batch's events or dead letters were not delivered: nothing from it on may be
    acked, so exit at once (`crash_now`); it and every later batch are redelivered."""
    log.error(
        "delivery of a batch of %d records failed (%s: %s); exiting (it will be redelivered)",
        len(batch.records),
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    crash_now()


def crash_now() -> NoReturn:
    """Exit at once, with status 1, like a kill -9: no graceful stop and so no offset
    commit. With the per-event Stream (`noack_take`), a graceful stop handed acking back to
    the stream, which then acked and committed records of other partitions that were never
    evaluated (found by tests/chaos). The batch drain acks nothing by itself, but a hard
    exit stays the one way out of a failed batch: nothing in flight is committed, everything
    not committed is redelivered, and the evaluation turns that into a no-op."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(1)


def build_app(settings: WorkerSettings, plan: Plan, datadir: Path) -> faust.App:
    """The worker's Faust app; nothing connects until a `faust.Worker` starts it."""
    app = create_app(
        settings.app_id,
        settings.bootstrap_servers,
        datadir=datadir,
        # Faust's per-record delivery to the Stream costs more than our whole evaluation
        # (a pass-through agent ran no faster than this worker): the batch drain hands
        # each fetch to the agent as one batch (batch_drain.py).
        batch_drain=True,
        topic_partitions=settings.partitions,
        broker_max_poll_records=max(settings.batch_size, 500),
        # A batch's sends are all appended before the producer's sender runs, so they go
        # out together without lingering; a linger would only delay each batch's events.
        producer_linger_ms=0,
        **service_options(
            settings.web_host,
            settings.web_port,
            settings.session_timeout,
            settings.heartbeat_interval,
        ),
    )
    set_fetch_wait(app, FetchWait(settings.fetch_max_wait_ms, settings.fetch_min_bytes))
    activities = app.topic(settings.topic_activities, partitions=settings.partitions)
    metrics = WorkerMetrics(
        ConsumerLag(settings.bootstrap_servers, settings.app_id, settings.topic_activities)
    )
    reloader = RulesReloader(
        plan,
        settings,
        settings.rules_reload_interval,
        ReloadMetrics(metrics.registry, metrics.rules_info),
    )
    readiness = Readiness(settings.topic_activities, metrics.registry)
    readiness.connect(app)

    @app.agent(activities, name="evaluate")
    async def evaluate(stream: Any) -> None:
        store = RedisStore(
            redis_client(settings.redis_url, cluster=settings.redis_cluster),
            settings.app_id,
            ttl_ms=0,
            wait_replicas=settings.redis_wait_replicas,
            on_quarantine=lambda *_: metrics.quarantined.inc(),
            on_core_fallback=lambda reason: metrics.native_fallbacks.labels(reason).inc(),
            cache_leads=settings.state_cache_leads,
            # Trusted while this worker owns the partitions: emptied on revocation
            # (`forget_cached_states`); a stale one fails the save's compare-and-set.
            check_cached=False,
        )
        processor = Processor(plan, TimedStore(store), settings.dedup_horizon_us, settings.limits)
        handler = BatchHandler(app, settings, processor, metrics)
        switches = SwitchLog(store.client, settings.app_id)
        revoked_from.append(store)
        switch_logs.append(switches)
        log.info(
            "evaluating %s with rules %s (%d campaigns); delivery overlap %s, %d batch(es) "
            "ahead, save overlap %s",
            settings.topic_activities,
            plan.rules_version,
            len(plan.campaigns),
            settings.delivery_overlap,
            settings.evaluate_ahead,
            settings.save_overlap,
        )
        subscribe(stream)
        await warm_up(store, handler.sender, [settings.topic_memberships, settings.topic_dlq])
        readiness.warmed()
        consumer = batch_consumer(app)
        in_flight: InFlight[Batch] = InFlight(
            consumer.ack_batch,
            delivery_failed,
            settings.evaluate_ahead if settings.delivery_overlap else 0,
            counts=consumer.counts,  # a batch of revoked partitions is not sent
        )
        try:
            while True:
                batch = await consumer.next_batch(settings.batch_size, settings.batch_wait)
                try:
                    if not settings.delivery_overlap:
                        await in_flight.settled()
                    await switch_between_batches(handler, reloader, switches, batch.records)
                    if settings.save_overlap:
                        issue = await start_evaluation(
                            handler, batch, partial(consumer.counts, batch)
                        )
                    else:
                        evaluated = await handler.evaluate_batch(batch.records, batch.fetched_at)
                        issue = partial(handler.issue, evaluated)
                    # Sends in batch order, each batch's once the earlier ones are
                    # delivered; the agent goes on at most `evaluate_ahead` batches ahead
                    # of them (streams/runtime/in_flight.py).
                    waiting = time.perf_counter()
                    await in_flight.submit(batch, issue)
                    metrics.stage_seconds.labels("settle").observe(time.perf_counter() - waiting)
                except Exception:
                    log.exception(
                        "batch of %d records failed; exiting (it will be redelivered)",
                        len(batch.records),
                    )
                    crash_now()
        finally:
            await in_flight.close()

    revoked_from: list[RedisStore] = []
    switch_logs: list[SwitchLog] = []

    @app.on_partitions_revoked.connect
    async def forget_cached_states(sender: Any, /, *revoked: Any, **_: Any) -> None:
        # Eager rebalancing revokes every partition; the leads of those this worker gets
        # back may be saved by another worker meanwhile (the generation check would catch
        # that), and those it does not get back would only take memory.
        for store in revoked_from:
            store.forget_cached()
        for switch_log in switch_logs:  # another worker may record switches meanwhile
            switch_log.forget()

    if settings.rules_reload_interval > 0:

        @app.timer(settings.rules_reload_interval)  # type: ignore[untyped-decorator]  # faust: untyped
        async def reload_rules() -> None:
            # In a thread: reading and compiling a changed directory (and waiting for a
            # catalog change's lock) must not hold up the event loop, whose heartbeats keep
            # the partitions. The agent puts the new plan in force before its next batch.
            await asyncio.to_thread(reloader.poll)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "rulesVersion": reloader.plan.rules_version})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        # Ready once the group is joined, the assignment in force and the warm-up done;
        # it stays so through later rebalances (streams/runtime/readiness.py).
        body, status = readiness.view(app.rebalancing, stopping(app))
        return web.json(body, status=status)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        readiness.waiting(app.rebalancing, stopping(app))  # latches `streams_ready`
        return web.bytes(await metrics.render_async(), content_type=CONTENT_TYPE)

    return app
