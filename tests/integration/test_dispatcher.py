"""The dispatcher as a process on real Kafka, calling a real HTTP server on loopback:
every membership's calls are made, failed ones are dead-lettered on actions.dlq, and a
SIGKILL mid-stream loses nothing (every expected call made at least once, duplicates with
the same Idempotency-Key and the same body)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from streams.actions.payload import idempotency_key
from streams.devstack.process import ManagedProcess, free_port
from streams.runtime.connections import ensure_topics
from tests.actions_server import Server, status
from tests.integration.streaming import (
    PARTITIONS,
    TopicReader,
    lead_key,
    listening_address,
    produce,
)
from tests.unit.actions_rules import action, campaign, rules_dir

pytestmark = pytest.mark.integration

SECRET = "integration-secret-value"


class ThreadedServer:
    """The loopback server on an event loop of its own thread (the test is synchronous)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server = asyncio.run_coroutine_threadsafe(Server().start(), self.loop).result(
            10
        )

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def http_server() -> Iterator[Server]:
    threaded = ThreadedServer()
    try:
        yield threaded.server
    finally:
        threaded.close()


class Dispatcher(ManagedProcess):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(
            "dispatcher",
            [sys.executable, "-m", "streams", "dispatcher"],
            log,
            {**os.environ, **env, "STREAMS_DISPATCHER_PORT": str(self.port)},
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), self.log_tail()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"not ready:\n{self.log_tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())


def membership(n: int, campaign_id: int = 2001, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": str(uuid.UUID(int=n)),
        "campaignId": campaign_id,
        "campaignName": "Conference follow-up",
        "leadId": 1000 + n % 97,
        "activityId": f"a{n}",
        "activityTypeId": 100001,
        "activityDate": "2026-09-25T23:56:35Z",
        "trigger": "Attends Conference",
        "rulesVersion": "v1",
        "activityPrimary": "PyCon",
        "activityAttributes": {"numberOfAttendees": n},
        **extra,
    }


def setup(tmp_path: Path, bootstrap: str, server: Server, **action_extra: Any) -> dict[str, str]:
    rules = rules_dir(
        tmp_path,
        actions=[
            action(
                url=f"{server.base}/crm",
                payload={"event": "$event.id", "n": "$activity.attributes.numberOfAttendees"},
                authentication={"type": "basic", "username": "streams", "secret": "CRM_SECRET"},
                **action_extra,
            )
        ],
        campaigns=[campaign({"action": "notifyCrm", "path": "/leads/$lead.id"})],
    )
    run = uuid.uuid4().hex[:8]
    env = {
        "STREAMS_BROKER": bootstrap,
        "STREAMS_RULES_DIR": str(rules),
        "STREAMS_APP_ID": f"test-{run}",
        "STREAMS_TOPIC_MEMBERSHIPS": f"memberships-{run}",
        "STREAMS_TOPIC_ACTIONS_DLQ": f"actions-dlq-{run}",
        "STREAMS_PARTITIONS": str(PARTITIONS),
        "STREAMS_SESSION_TIMEOUT": "6",
        "STREAMS_CONNECT_TIMEOUT": "20",
        "STREAMS_DISPATCHER_BACKOFF": "0.05",
        "CRM_SECRET": SECRET,
    }
    ensure_topics(
        bootstrap,
        {
            env["STREAMS_TOPIC_MEMBERSHIPS"]: PARTITIONS,
            env["STREAMS_TOPIC_ACTIONS_DLQ"]: PARTITIONS,
        },
    )
    return env


def send(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    produce(
        bootstrap,
        topic,
        [orjson.dumps(e) for e in events],
        lead_key,
    )


def test_calls_and_dead_letters_end_to_end(
    tmp_path: Path, kafka_bootstrap: str, http_server: Server
) -> None:
    env = setup(tmp_path, kafka_bootstrap, http_server)
    http_server.default = status(200)
    http_server.script("/crm/leads/1003", status(404, b"no such lead"))
    events = [membership(n) for n in range(1, 41)]
    events.append(membership(41, activityAttributes={}))  # missing_value
    events.append(membership(42, campaign_id=9999))  # a campaign without actions here
    events.append({"not": "a membership"})
    send(kafka_bootstrap, env["STREAMS_TOPIC_MEMBERSHIPS"], events)
    letters = TopicReader(kafka_bootstrap, env["STREAMS_TOPIC_ACTIONS_DLQ"])
    env["STREAMS_WEB_HOST"] = "127.0.0.1"
    with Dispatcher(env, tmp_path / "dispatcher.log").start() as dispatcher:
        dispatcher.wait_ready()
        # Its web port as the worker's: where it was told, and none of Faust's open views.
        assert listening_address(dispatcher.port) == "127.0.0.1"
        for path in ("/router/", "/table/", "/graph/", "/stats/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{dispatcher.port}{path}", timeout=5)
            assert refused.value.code == 404, path
        got = letters.until(lambda v: len(v) >= 2, 60, dispatcher.alive)
        deadline = time.monotonic() + 30
        while len({s.headers["Idempotency-Key"] for s in http_server.seen}) < 40:
            assert time.monotonic() < deadline and dispatcher.alive(), dispatcher.log_tail()
            time.sleep(0.2)
        metrics = dispatcher.metrics()
    letters.close()
    keys = {s.headers["Idempotency-Key"] for s in http_server.seen}
    assert keys == {idempotency_key(e["eventId"], "notifyCrm") for e in events[:40]}
    assert {(x["error"], x["eventId"]) for x in got} == {
        ("http_status", events[2]["eventId"]),
        ("missing_value", events[40]["eventId"]),
    }
    assert SECRET not in orjson.dumps(got).decode() and SECRET not in metrics
    labels = f'action="notifyCrm",endpoint="{http_server.base}",outcome="success"'
    assert f"streams_action_calls_total{{{labels}}} 39.0" in metrics
    assert 'streams_dispatcher_memberships_total{outcome="malformed"} 1.0' in metrics
    assert 'streams_dispatcher_memberships_total{outcome="no_actions"} 1.0' in metrics


class FailsFirst:
    """Answers 503 to the first try of each Idempotency-Key and 200 (after 50 ms) to the
    next: a call ends only at its second try, so a membership acked before its calls ended
    would show as a key that never got its 200."""

    def __init__(self) -> None:
        self.tries: dict[str, int] = {}
        self.succeeded: set[str] = set()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        key = request.headers["Idempotency-Key"]
        self.tries[key] = self.tries.get(key, 0) + 1
        if self.tries[key] == 1:
            return web.Response(status=503)
        await asyncio.sleep(0.05)
        self.succeeded.add(key)
        return web.Response(status=200)


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_a_dispatcher_stopped_mid_stream_loses_no_call(
    tmp_path: Path, kafka_bootstrap: str, http_server: Server, how: str
) -> None:
    env = setup(tmp_path, kafka_bootstrap, http_server)
    env["STREAMS_DISPATCHER_STOP_GRACE"] = "0"  # what is under way at SIGTERM is cancelled
    endpoint = FailsFirst()
    http_server.default = endpoint
    total = 400
    events = [membership(n) for n in range(1, total + 1)]
    send(kafka_bootstrap, env["STREAMS_TOPIC_MEMBERSHIPS"], events)
    expected = {idempotency_key(e["eventId"], "notifyCrm") for e in events}
    letters = TopicReader(kafka_bootstrap, env["STREAMS_TOPIC_ACTIONS_DLQ"])

    with Dispatcher(env, tmp_path / "first.log").start() as first:
        first.wait_ready()
        deadline = time.monotonic() + 120
        while len(endpoint.succeeded) < total // 4:
            assert time.monotonic() < deadline and first.alive(), first.log_tail()
            time.sleep(0.05)
        if how == "sigkill":
            first.kill()
        else:
            first.stop(grace=60)
            assert first.proc is not None and first.proc.returncode == 0, first.log_tail()
    assert len(endpoint.succeeded) < total, "stopped too late to test"
    with Dispatcher(env, tmp_path / "second.log").start() as second:
        second.wait_ready()
        deadline = time.monotonic() + 240
        while endpoint.succeeded != expected:
            assert time.monotonic() < deadline and second.alive(), second.log_tail()
            time.sleep(0.2)
    assert endpoint.succeeded == expected
    bodies: dict[str, set[bytes]] = {}
    for seen in http_server.seen:
        bodies.setdefault(seen.headers["Idempotency-Key"], set()).add(seen.body)
        assert seen.path.startswith("/crm/leads/")
    assert all(len(b) == 1 for b in bodies.values())  # a repeated call is the same call
    assert letters.until(lambda v: False, 2) == []  # every call ended in success
    letters.close()
    again = sum(1 for n in endpoint.tries.values() if n > 2)
    print(f"{how}: {len(http_server.seen)} requests, {again} keys tried again after the stop")


class HoldsEarly:
    """Holds the first try of the `held` keys unanswered until `release` is set, and answers
    200 to every other try: the held memberships are the first of their partitions, so
    while they hang every later one of the same partition ends and is acked."""

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.release = threading.Event()  # set by the test's thread
        self.tries: dict[str, int] = {}
        self.succeeded: set[str] = set()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        key = request.headers["Idempotency-Key"]
        self.tries[key] = self.tries.get(key, 0) + 1
        if key in self.held and self.tries[key] == 1:
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return web.Response(status=503)
        self.succeeded.add(key)
        return web.Response(status=200)


def test_sigterm_with_calls_hanging_commits_none_of_them(
    tmp_path: Path, kafka_bootstrap: str, http_server: Server
) -> None:
    """SIGTERM while the first membership of each partition is still calling, all those
    after it done: none of them may be committed past (Faust commits the first run of acked
    offsets in a new group, even one that does not start at offset 0), and the stop must
    not wait for the hung calls beyond STREAMS_DISPATCHER_STOP_GRACE."""
    env = setup(tmp_path, kafka_bootstrap, http_server, timeout="10 minutes")
    env["STREAMS_DISPATCHER_STOP_GRACE"] = "1"
    total = 200
    events = [membership(n) for n in range(1, total + 1)]
    keys = [idempotency_key(e["eventId"], "notifyCrm") for e in events]
    held = set(keys[:8])  # sent first: the lowest offsets of their partitions
    endpoint = HoldsEarly(held)
    http_server.default = endpoint
    send(kafka_bootstrap, env["STREAMS_TOPIC_MEMBERSHIPS"], events)

    with Dispatcher(env, tmp_path / "first.log").start() as first:
        first.wait_ready()
        deadline = time.monotonic() + 120
        while len(endpoint.succeeded) < total - len(held) or len(endpoint.tries) < total:
            assert time.monotonic() < deadline and first.alive(), first.log_tail()
            time.sleep(0.1)
        time.sleep(3)  # a few of Faust's commits (every second) with the held ones hanging
        stopping = time.monotonic()
        first.stop(grace=60)
        took = time.monotonic() - stopping
        assert first.proc is not None and first.proc.returncode == 0, first.log_tail()
        assert took < 50, f"the stop took {took:.1f}s"
    assert endpoint.succeeded.isdisjoint(held)
    endpoint.release.set()

    with Dispatcher(env, tmp_path / "second.log").start() as second:
        second.wait_ready()
        deadline = time.monotonic() + 120
        while not held <= endpoint.succeeded:
            assert time.monotonic() < deadline and second.alive(), (
                f"held calls never made again: {sorted(held - endpoint.succeeded)}\n"
                + second.log_tail()
            )
            time.sleep(0.2)
    assert endpoint.succeeded == set(keys)
    log = (tmp_path / "first.log").read_text(errors="replace")
    assert "stopped: 8 membership(s) cancelled" in log


def test_sigterm_lets_calls_under_way_end_and_commits_them(
    tmp_path: Path, kafka_bootstrap: str, http_server: Server
) -> None:
    """Within STREAMS_DISPATCHER_STOP_GRACE, the calls under way at SIGTERM end, and their
    memberships are committed at the stop: the next dispatcher calls none of them again."""
    env = setup(tmp_path, kafka_bootstrap, http_server, timeout="10 minutes")
    env["STREAMS_DISPATCHER_STOP_GRACE"] = "60"
    total = 100
    events = [membership(n) for n in range(1, total + 1)]
    keys = [idempotency_key(e["eventId"], "notifyCrm") for e in events]
    held = set(keys[:8])
    endpoint = HoldsEarly(held)
    http_server.default = endpoint
    send(kafka_bootstrap, env["STREAMS_TOPIC_MEMBERSHIPS"], events)
    try:
        with Dispatcher(env, tmp_path / "first.log").start() as first:
            first.wait_ready()
            deadline = time.monotonic() + 120
            while len(endpoint.succeeded) < total - len(held) or len(endpoint.tries) < total:
                assert time.monotonic() < deadline and first.alive(), first.log_tail()
                time.sleep(0.1)
            assert first.proc is not None
            os.killpg(first.proc.pid, signal.SIGTERM)
            time.sleep(4)  # longer than Faust's own stop (~2 s): waiting for the held calls
            assert first.alive(), first.log_tail()
            endpoint.release.set()  # the held first tries get 503, the retries 200
            first.proc.wait(60)
            assert first.proc.returncode == 0, first.log_tail()
    finally:
        endpoint.release.set()
    assert endpoint.succeeded == set(keys)
    requests = len(http_server.seen)
    with Dispatcher(env, tmp_path / "second.log").start() as second:
        second.wait_ready()
        time.sleep(5)
    assert len(http_server.seen) == requests, "memberships ended before the stop were redone"
