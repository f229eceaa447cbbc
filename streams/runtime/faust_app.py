# Findings (faust-streaming 0.15.3, aiokafka 0.14; checked on the Kafka 3.9 devstack with
# bench/passthrough.py and small experiments):
#
# * Cost. Faust's consumer hands each record to the streams in `_drain_messages` via
#   `self.wait_first(callback(message), self.suspend_flow.wait())`: 4 asyncio tasks and an
#   `asyncio.wait` per record, plus event-loop turns in the stream iterator. A pass-through
#   agent is CPU-bound there (a few thousand records/s on 2 cores beside the broker),
#   whatever the fetch/produce settings. `create_app(fast_drain=True)` runs that callback
#   inline when it completes without suspending (~2x). Also, `faust.Worker` with a
#   WARNING+ loglevel sets the root logger to DEBUG for its terminal spinner, so every
#   `logger.debug()` in faust/aiokafka builds a record: `run_worker` turns it off.
#   Pass-through, 200k records, 2 shared cores, records/s, Kafka 3.9 | Tansu (gone): per-event
#   `await out.send` 1.9-2.3k | 1.5k; take_events 2.8-4.1k | 3.1k; noack_take 2.9-3.4k |
#   3.4k; noack_take + fast_drain 6.6-6.9k | 7.9k; raw aiokafka getmany+send_batch 50-58k
#   | 71k (bench/passthrough.py).
# * App factory. `faust.App(...)` does no I/O (consumer, producer, connections are made
#   when a worker starts; the datadir too). Create the app, its topics and agents in a
#   function (`create_app`, agents as closures or in a `register(app)`), autodiscover off.
# * Topics. `app.topic(name, partitions=N)` only describes a topic. Consumed topics are
#   created at start only with `internal=True` (with `partitions`, else the
#   `topic_partitions` setting, default 8); produced-only topics never are (the broker may
#   auto-create them with its own count): `await topic.maybe_declare()` at the top of the
#   agent, before its `async for`. An existing topic is used as is, count unchecked.
# * Offsets. Per partition, Faust commits the offset after the highest contiguous *acked*
#   one, every `broker_commit_interval` s and every `broker_commit_every` acks, and at
#   stop, each time after `producer.flush()` (delivery of all sends). Not on a revocation:
#   it forgets the revoked partitions' acked offsets (revocation.py commits them first).
#   A per-event `async for` acks an event once the body returns for it. `take_events`
#   acks the batch in a `finally` when the generator resumes *or is closed*, so a body
#   interrupted by SIGTERM/cancel gets its batch committed: measured, lost. At-least-once:
#   `async for events in stream.noack_take(max_, within)` (yields events, never acks);
#   write Redis, send, await the delivery futures, then `event.ack()` each (measured: that
#   batch stays uncommitted on SIGTERM, on `app.crash`, and across rebalances with two
#   workers, nothing lost). `event.message.partition/.offset` give idempotency keys.
# * Errors. An exception escaping a take_events/noack_take agent body stalls the worker:
#   no progress and no exit for as long as watched (30 s). Catch in the body; on a fatal
#   error `await app.crash(exc)`: the worker stops and exits 1 with the batch's offsets
#   uncommitted (measured), so it is redelivered after the restart.
# * Running. `faust.Worker(app, loglevel=...).execute_from_commandline()` (`run_worker`)
#   runs in-process, handles SIGINT/SIGTERM as a graceful stop (agents cancelled, acked
#   offsets committed, producer flushed; ~1.2 s here) and exits the process (0, or 1 after
#   a crash); it never returns. `app.main()` is the `faust` click CLI: it parses
#   `sys.argv` (`worker -l info`) and runs autodiscovery; for scripts only.
# * Producing. `await topic.send()`/`topic.send_soon()` build FutureMessages with sensor
#   callbacks; `send_soon` adds a queue drained one message at a time, whose `flush()`
#   returns after 0.1 s without progress. Cheaper and explicit: `app.producer.send(...)`
#   appends to aiokafka's batch and returns the delivery future; await a batch's futures
#   once (`send_all`) before acking it.
"""Faust `App` settings, app factory and worker runner for a fast consumer+producer worker.

Supported: faust-streaming 0.15.x (pinned in pyproject.toml); the Faust internals that
`fast_drain` and `batch_drain` rely on are checked by tests/unit/test_faust_internals.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import faust
from faust.tables import TableManager

from streams.runtime.fast_drain import FastDrainTransport
from streams.runtime.revocation import RevocationCommitStreamTransport, RevocationCommitTransport

# `noack_take` batch: large enough to amortise per-batch work (one Redis round trip, one
# wait for delivery), small enough to stay well under a second of processing.
TAKE_MAX = 2000
# Flush a partial batch after this many seconds without reaching TAKE_MAX.
TAKE_WITHIN = 0.1


def broker_urls(bootstrap: str | Sequence[str]) -> list[str]:
    """`host:port[,host:port]` (or a list of them) as Faust broker URLs."""
    hosts = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    return [h.strip() if "://" in h else f"kafka://{h.strip()}" for h in hosts if h.strip()]


def fast_app_settings(
    bootstrap: str | Sequence[str],
    *,
    datadir: str | Path,
    web_port: int | None = None,
    buffer_maxsize: int = 16384,
    poll_records: int = 5000,
    fetch_bytes: int = 4 * 1024 * 1024,
    commit_every: int = 50_000,
    commit_interval: float = 1.0,
    linger_ms: int = 5,
    batch_bytes: int = 512 * 1024,
) -> dict[str, Any]:
    """Keyword settings for `faust.App(id, **settings)` for a consumer+producer agent.

    - broker: `kafka://` URLs (aiokafka driver).
    - datadir: where Faust keeps its per-app directory; somewhere writable, not the cwd.
    - autodiscover=False: no package scanning at start (the factory registers agents).
    - key_serializer/value_serializer="raw": events carry the bytes; the agent decodes
      with orjson, far cheaper than Faust's json codec and Record models per event.
    - consumer_auto_offset_reset="earliest": a new group starts at the beginning.
    - stream_buffer_maxsize: per-partition prefetch queue towards the stream; larger
      keeps the stream fed while a batch is processed (default 4096).
    - broker_max_poll_records / consumer_max_fetch_size: records per poll and bytes per
      partition per fetch (defaults: unbounded / 1 MiB): fewer, larger fetches.
    - broker_commit_every / broker_commit_interval: a commit flushes the producer and,
      when triggered by the count, stalls the drain loop: commit on a 1 s timer and at
      most every 50k acks (defaults 2.8 s, 10k acks).
    - producer_linger_ms / producer_max_batch_size / producer_max_request_size: let
      aiokafka build large batches (defaults: 0 ms, 16 KiB, 1 MB). Acks stay at the
      default (all), which at-least-once needs.
    - stream_wait_empty=False: on rebalance and stop, do not wait for in-flight events;
      they are unacked, so they are redelivered (at-least-once) instead of blocking.
    - topic_disable_leader=True: no `<id>-__assignor-__leader` topic (nothing uses
      `on_leader`): one topic less to create and subscribe.
    - web_enabled: only when a port is given (health endpoint); off saves the aiohttp
      server, its start time and a port.
    - worker_redirect_stdouts=False: print() stays print(), not WARNING log lines.
    """
    settings: dict[str, Any] = {
        "broker": broker_urls(bootstrap),
        "datadir": str(datadir),
        "autodiscover": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "consumer_auto_offset_reset": "earliest",
        "stream_buffer_maxsize": buffer_maxsize,
        "broker_max_poll_records": poll_records,
        "consumer_max_fetch_size": fetch_bytes,
        "broker_commit_every": commit_every,
        "broker_commit_interval": commit_interval,
        "producer_linger_ms": linger_ms,
        "producer_max_batch_size": batch_bytes,
        "producer_max_request_size": max(2 * batch_bytes, 1_000_000),
        "stream_wait_empty": False,
        "topic_disable_leader": True,
        "web_enabled": web_port is not None,
        "worker_redirect_stdouts": False,
    }
    if web_port is not None:
        settings["web_port"] = web_port
    return settings


def service_options(
    web_host: str, web_port: int, session_timeout: float, heartbeat_interval: float = 1.0
) -> dict[str, Any]:
    """The Faust settings every long-running process of ours (worker, dispatcher) shares:
    its web port serving only our /health, /ready and /metrics, its group timing, and a
    producer that fails a send instead of stalling the process.

    Group timing: a member learns of a rebalance (another member joining or leaving) only
    from its next heartbeat's answer, and the group's partitions wait for every member to
    rejoin, so the heartbeat interval (at most a third of the session timeout) bounds that
    wait; measured with bench/rebalance.py, a graceful leave stalled the group 2.7 s with
    Faust's 3 s heartbeat (README, "Rebalances")."""
    return {
        "web_enabled": True,
        "web_bind": web_host,
        "web_port": web_port,
        # Faust's router and table views answer anyone (where each key lives, table
        # contents) and have no authentication: off, with the graph and stats views.
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        "broker_session_timeout": session_timeout,
        "broker_heartbeat_interval": min(heartbeat_interval, session_timeout / 3),
        # Faust's default, stated: a record is acknowledged once on every in-sync replica.
        "producer_acks": -1,
        # Faust's default lets a send retry for 20 minutes (its batch expiry): a batch whose
        # partition has no leader (or too few in-sync replicas) stalls the process, holding
        # its partitions, with its commit timer overlapping. Past this bound (well above a
        # leader failover, which takes the brokers' session timeout, 9 s by default) the
        # send fails, and the process exits 1 for its supervisor to restart it.
        "producer_request_timeout": 3 * session_timeout,
    }


class PromptTableManager(TableManager):
    """Faust's `TableManager` without its start-up sleep when the app has no tables.

    `TableManager.on_start` sleeps 1 s before it finalizes the tables and starts their
    recovery, and the conductor subscribes the agents' topics only once that is done: every
    worker start waited 1 s before joining its group (measured, bench/stream.py: the first
    record sent once /ready answered spent 0.7-0.8 s in the worker, 10-35 ms without the
    sleep; the log had 1.0 s between "Waiting for tables to be registered" and the
    recovery's start). Tables are added when the app is
    defined, before it starts, so an app that has none when its table manager starts has
    nothing to wait for; one with tables keeps Faust's start as it is. Reaches into
    `_update_channels` and `recovery` (checked by tests/unit/test_faust_internals.py)."""

    async def on_start(self) -> None:
        if len(self):
            await super().on_start()
            return
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def create_app(
    app_id: str,
    bootstrap: str | Sequence[str],
    *,
    datadir: str | Path,
    fast_drain: bool = False,
    batch_drain: bool = False,
    revocation_commit: bool = False,
    **overrides: Any,
) -> faust.App:
    """A new `faust.App` (the id is also the consumer group) with `fast_app_settings`
    and `overrides`; no I/O until a worker starts it. Define topics and agents on the
    returned app. `fast_drain` swaps in `FastDrainConsumer` (per-event Stream, delivered
    inline); `batch_drain` swaps in `BatchDrainConsumer` (whole fetches to the agent via
    `batch_consumer(app).next_batch`, the Stream never fed) and commits acked offsets
    before a revocation; `revocation_commit` does the latter on Faust's own consumer (the
    Stream fed per record: the dispatcher's), revocation.py."""
    if fast_drain and batch_drain:
        raise ValueError("fast_drain and batch_drain are two consumption paths: choose one")
    if fast_drain and revocation_commit:
        raise ValueError("revocation_commit is for Faust's own consumer, not fast_drain's")
    settings = {
        **fast_app_settings(bootstrap, datadir=datadir),
        "TableManager": PromptTableManager,
        **overrides,
    }
    app = faust.App(app_id, **settings)
    # Before anything touches `app.transport` (app.topic, agents): it is created lazily.
    if fast_drain:
        app.transport = FastDrainTransport(app.conf.broker_consumer, app)
    if batch_drain:
        # The batch drain, committing acked offsets before a revocation (revocation.py).
        app.transport = RevocationCommitTransport(app.conf.broker_consumer, app)
    elif revocation_commit:
        app.transport = RevocationCommitStreamTransport(app.conf.broker_consumer, app)
    return app


class _Worker(faust.Worker):
    """A `faust.Worker` that awaits `before_stop` when SIGINT/SIGTERM arrives, before its
    graceful stop begins (Faust stops the consumer without waiting for agents' cleanup).
    Reaches into mode: `Worker._stop_on_signal` (checked by tests/unit/test_dispatcher_acks.py)."""

    before_stop: Callable[[], Awaitable[None]] | None = None

    async def _stop_on_signal(self, signal: Any) -> None:
        if self.before_stop is not None:
            try:
                await self.before_stop()
            except Exception:
                logging.getLogger(__name__).exception("before_stop failed; stopping")
        await super()._stop_on_signal(signal)


def run_worker(
    app: faust.App,
    *,
    loglevel: str = "INFO",
    workdir: str | Path | None = None,
    before_stop: Callable[[], Awaitable[None]] | None = None,
) -> NoReturn:
    """Run a worker for `app` in this process until SIGINT/SIGTERM (graceful stop, after
    `before_stop` when given), then exit the process: 0, or 1 after a crash. Faust's
    terminal spinner is disabled: with it (any loglevel of WARNING and up) the root logger
    is set to DEBUG and every `logger.debug()` call in faust and aiokafka builds a log
    record."""
    worker = _Worker(app, loglevel=loglevel, workdir=workdir)
    worker.before_stop = before_stop
    worker.spinner = None
    worker.execute_from_commandline()


async def send_all(
    producer: Any, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> None:
    """Produce (key, value) pairs through a Faust app's producer (`app.producer`) and
    wait once for all deliveries; raises if any failed."""
    await asyncio.gather(*await issue_all(producer, topic, records))


async def issue_all(
    producer: Any, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> list[Awaitable[Any]]:
    """Append (key, value) pairs, in order, to a Faust app's producer (`app.producer`)
    and return their delivery futures without waiting for them. Each `send` only appends
    to aiokafka's batch (it waits only while the producer's buffer is full)."""
    return [await producer.send(topic, key, value, None, None, None) for key, value in records]


__all__ = [
    "TAKE_MAX",
    "TAKE_WITHIN",
    "PromptTableManager",
    "broker_urls",
    "create_app",
    "fast_app_settings",
    "issue_all",
    "run_worker",
    "send_all",
]
