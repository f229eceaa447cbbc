"""The dispatcher: a Faust app whose agent reads `campaign-memberships` and calls the
actions each membership's campaign lists (actions.md).

Per membership, in this order:
1. its calls are made (`Dispatch.handle`), each ending in success or a failure; a slow
   endpoint holds only its own calls (per-endpoint gates), and memberships are handled
   concurrently, up to `STREAMS_DISPATCHER_IN_FLIGHT` at once;
2. the dead letters of its failed calls are produced to `actions.dlq` and acknowledged
   by the broker;
3. only then is the membership acked, and only once every membership before it in its
   partition was acked (`InOrderAcks`: Faust would otherwise commit past one still in
   progress), so a membership still in progress holds back the commit of those after
   it: a crash (kill -9 included) redelivers every membership whose calls had not all
   ended, and they are made again with the same `Idempotency-Key`s.
An error in 2 (the broker refuses the dead letters) makes the process exit at once with
status 1 (`crash_now`), so that nothing is acked that was not delivered.

On a graceful stop (SIGTERM, Ctrl-C), in this order, before Faust's own stop begins
(`Stopping.drain`, run by the worker on the signal): no membership is started any more;
those under way get `STREAMS_DISPATCHER_STOP_GRACE` seconds to end (and be acked). Then
Faust stops: the agent is cancelled, the stream stops acking by itself (closing
`noack_take` hands acking back to it, which would ack records never handed to us:
`stop_stream_acks`), what is still under way is cancelled, never acked, and Faust commits
what was acked: the rest is redelivered to the next dispatcher.

`/ready` is the worker's (streams/runtime/readiness.py): 200 once the dispatcher has joined
its group (`STREAMS_APP_ID-dispatcher`), the assignment is in force and its warm-up is
done; then it stays 200 through later rebalances, and answers 503 `"waiting": "stop"` from
the SIGTERM on (`Stopping.drain`'s grace included, before Faust's own stop begins). Its
warm-up is what a first membership needs before a call can go out: the action plan
(compiled and its secrets resolved before the app is built: a bad one refuses the start)
and the agent's HTTP session, caller and handler built on it. A dead letter's topic
metadata is not part of it: the producer fetches it at the first dead letter. A rebalance
commits the acked memberships first (`revocation_commit`, streams/runtime/revocation.py).
Group timing is the worker's settings: `STREAMS_SESSION_TIMEOUT` and
`STREAMS_HEARTBEAT_INTERVAL` (at most a third of it; `GroupMemberSettings`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import faust
import orjson

from streams.actions.acks import InOrderAcks, Ticket
from streams.actions.caller import Caller
from streams.actions.dispatch import Dispatch
from streams.actions.metrics import ActionMetrics
from streams.actions.secrets import Secrets
from streams.engine.compiler import Plan
from streams.runtime.faust_app import create_app, send_all, service_options
from streams.runtime.metrics import CONTENT_TYPE
from streams.runtime.readiness import Readiness
from streams.runtime.worker import crash_now
from streams.settings import DispatcherSettings

log = logging.getLogger(__name__)

TAKE = 500
TAKE_WITHIN = 0.05


def _position(event: Any) -> str:
    message = event.message
    return f"{message.topic}/{message.partition}/{message.offset}"


async def stop_stream_acks(stream: Any, take: Any) -> None:
    """Close the `noack_take` generator and keep the stream from acking anything itself.

    Closing it restores the stream's `enable_acks` (True); its passive drainer would then
    ack (and Faust commit) records that arrive while the app stops, never handed to the
    agent. No await lies between the generator's `finally` and the assignment below, so
    no record slips through. Reaches into Faust: `Stream.enable_acks` is checked by
    tests/unit/test_dispatcher_acks.py."""
    await take.aclose()
    stream.enable_acks = False


class Stopping:
    """The memberships under way, and whether new ones may start (not once draining)."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.closed = False
        self.running: set[asyncio.Task[None]] = set()

    async def drain(self) -> None:
        """Start no membership any more; give those under way `grace` seconds to end."""
        self.closed = True
        if self.running:
            log.info(
                "stopping: %d membership(s) under way, waiting up to %gs",
                len(self.running),
                self.grace,
            )
            await asyncio.wait(set(self.running), timeout=self.grace)

    async def cancel(self, acks: InOrderAcks) -> None:
        """Cancel what is still under way (never acked, so redelivered)."""
        left = set(self.running)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=1)
        log.info(
            "stopped: %d membership(s) cancelled, %d not acked (redelivered)",
            len(left),
            acks.pending(),
        )


def consumer_group(settings: DispatcherSettings) -> str:
    return f"{settings.app_id}-dispatcher"


def build_app(
    settings: DispatcherSettings,
    plan: Plan,
    secrets: Secrets,
    datadir: Path,
    stopping: Stopping | None = None,
) -> faust.App:
    """The dispatcher's Faust app; nothing connects until a `faust.Worker` starts it. Run
    it with `before_stop=stopping.drain` so a SIGTERM lets the calls under way end."""
    stopping = stopping if stopping is not None else Stopping(settings.dispatcher_stop_grace)
    app = create_app(
        consumer_group(settings),
        settings.bootstrap_servers,
        datadir=datadir,
        topic_partitions=settings.partitions,
        # Its acks are in each partition's order, of handled memberships only: commit them
        # before a rebalance revokes the partitions (revocation.py).
        revocation_commit=True,
        **service_options(
            settings.web_host,
            settings.dispatcher_port,
            settings.session_timeout,
            settings.heartbeat_interval,
        ),
    )
    memberships = app.topic(settings.topic_memberships, partitions=settings.partitions)
    metrics = ActionMetrics()
    metrics.rules_info.labels(plan.rules_version).set(1)
    readiness = Readiness(settings.topic_memberships, metrics.registry)
    readiness.connect(app)

    @app.agent(memberships, name="dispatch")
    async def dispatch(stream: Any) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector)
        caller = Caller(plan.actions, secrets, session, metrics, settings.dispatcher_backoff)
        handler = Dispatch(plan.actions, caller)
        slots = asyncio.Semaphore(settings.dispatcher_in_flight)
        running = stopping.running
        acks = InOrderAcks()

        async def one(event: Any, key: tuple[str, int], ticket: Ticket) -> None:
            try:
                try:
                    letters = await handler.handle(event.message.value)
                except Exception:  # a bug on one record must not crash-loop the process
                    log.exception("membership at %s skipped", _position(event))
                    metrics.memberships.labels("failed").inc()
                    letters = []
                if letters:
                    await send_all(
                        app.producer,
                        settings.topic_actions_dlq,
                        [(str(x["leadId"]).encode(), orjson.dumps(x)) for x in letters],
                    )
                acks.done(key, ticket)
            except Exception:
                log.exception("dead letters could not be delivered; exiting (redelivered)")
                crash_now()
            finally:
                slots.release()
                metrics.in_flight.dec()

        readiness.warmed()
        log.info(
            "dispatching %s with rules %s: %d actions, %d campaigns using them",
            settings.topic_memberships,
            plan.rules_version,
            len(plan.actions.actions),
            len(plan.actions.uses),
        )
        take = stream.noack_take(TAKE, within=TAKE_WITHIN)
        try:
            async for events in take:
                for event in events:
                    await slots.acquire()
                    if stopping.closed:  # draining: wait to be cancelled, start nothing
                        slots.release()
                        await asyncio.Future()
                    metrics.in_flight.inc()
                    key, ticket = acks.receive(event)
                    task = asyncio.create_task(one(event, key, ticket))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            await stop_stream_acks(stream, take)
            await stopping.cancel(acks)
            await session.close()

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "rulesVersion": plan.rules_version})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        # Ready once the group is joined, the assignment in force and the warm-up done;
        # it stays so through later rebalances (streams/runtime/readiness.py).
        body, status = readiness.view(app.rebalancing, app.should_stop or stopping.closed)
        return web.json(body, status=status)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        # Latches `streams_ready`; stopping from the SIGTERM on, the grace included.
        readiness.waiting(app.rebalancing, app.should_stop or stopping.closed)
        return web.bytes(metrics.render(), content_type=CONTENT_TYPE)

    return app
