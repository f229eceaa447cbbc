"""The streaming demo: the embedded stack (Apache Kafka, redis-server), a worker and the
HTTP API, a paced stream, memberships as they come. The API gets a client of its own for
the run, and the demo prints `curl` lines that send one more activity through it, whose
membership the feed then shows. Everything it starts is stopped on the way out, Ctrl-C
included."""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from streams.cli.demo import describe_membership
from streams.devstack.api import ApiProcess
from streams.devstack.kafka import KAFKA_VERSION, KafkaBroker
from streams.devstack.process import ServiceError
from streams.devstack.redis import RedisServer
from streams.devstack.worker import WorkerProcess
from streams.engine.compiler import Plan
from streams.paths import cache_dir
from streams.samples import sample_activities
from streams.settings import WorkerSettings

QUIET_SECONDS = 5.0
"""After the last activity is sent, the demo ends once nothing new came for this long..."""
FIRST_RESULT_WAIT = 90.0
"""... or, if nothing came at all, this long after (the worker's first group join)."""
API_CLIENT = "demo"
API_LEAD = 9001
"""The lead of the activity the printed `curl` lines send: none of the sample's."""


@contextlib.contextmanager
def local_stack(settings: WorkerSettings) -> Iterator[tuple[str, str]]:
    """(bootstrap, redis url): the configured services when STREAMS_BROKER or
    STREAMS_REDIS_URL are set, else a private Apache Kafka node (KRaft) and redis-server."""
    with contextlib.ExitStack() as stack:
        if "STREAMS_BROKER" in os.environ:
            bootstrap = ",".join(settings.bootstrap_servers)
        else:
            print(f"starting Apache Kafka {KAFKA_VERSION} (one KRaft node) ...", flush=True)
            try:
                bootstrap = stack.enter_context(KafkaBroker()).bootstrap
            except ServiceError as exc:
                raise SystemExit(f"demo: Kafka did not start: {exc}") from None
        if "STREAMS_REDIS_URL" in os.environ:
            redis_url = settings.redis_url
        else:
            print("starting redis-server ...", flush=True)
            try:
                redis_url = stack.enter_context(RedisServer()).url
            except ServiceError as exc:
                raise SystemExit(f"demo: redis-server did not start: {exc}") from None
        yield bootstrap, redis_url


def api_activity(now: datetime | None = None) -> dict[str, Any]:
    """A large conference attended yesterday: the sample campaign 'Big conferences' takes
    every such attendance, so the feed shows the lead joining it."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "leadId": API_LEAD,
        "activityDate": moment.isoformat(),
        "activityTypeId": 100001,
        "primaryAttributeValue": "PyCon US",
        "attributes": [
            {"apiName": "conferenceDate", "value": (moment - timedelta(days=1)).isoformat()},
            {"apiName": "numberOfAttendees", "value": 2500},
        ],
    }


def _activity_of(record: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The activity a membership event came from, for its description: one of the sample's,
    or the one the API snippet sends (its marketoGUID is the engine's, not known here)."""
    found = by_id.get(record["activityId"])
    if found is not None:
        return found
    return api_activity() if record["leadId"] == API_LEAD else {}


def api_snippet(url: str, client_id: str, secret: str) -> str:
    """Shell lines (curl and sed only) that get a token and add one activity through the
    API: Marketo's identity call, then Add Custom Activities."""
    token_url = (
        f"{url}/identity/oauth/token?grant_type=client_credentials"
        f"&client_id={client_id}&client_secret={secret}"
    )
    body = orjson.dumps({"input": [api_activity()]}).decode()
    return (
        f"  token=$(curl -s {shlex.quote(token_url)} \\\n"
        '          | sed -E \'s/.*"access_token":"([^"]+)".*/\\1/\')\n'
        f"  curl -s -H \"Authorization: Bearer $token\" -H 'Content-Type: application/json' \\\n"
        f"       {url}/rest/v1/activities/external.json \\\n"
        f"       -d {shlex.quote(body)}"
    )


def run_live_demo(
    plan: Plan,
    settings: WorkerSettings,
    count: int,
    leads: int,
    seed: int,
    rate: float,
    hold: bool = False,
) -> None:
    activities = list(sample_activities(count, leads, seed))
    by_id = {a["marketoGUID"]: a for a in activities}
    logs = cache_dir() / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    with local_stack(settings) as (bootstrap, redis_url):
        run = f"demo-{os.getpid()}"  # topics and state of its own: a rerun starts clean
        settings = settings.model_copy(
            update={
                "app_id": run,
                "topic_activities": f"{run}.activities",
                "topic_memberships": f"{run}.memberships",
                "topic_dlq": f"{run}.activities.dlq",
            }
        )
        env = {
            "STREAMS_BROKER": bootstrap,
            "STREAMS_REDIS_URL": redis_url,
            "STREAMS_RULES_DIR": str(settings.rules_dir),
            "STREAMS_APP_ID": settings.app_id,
            "STREAMS_TOPIC_ACTIVITIES": settings.topic_activities,
            "STREAMS_TOPIC_MEMBERSHIPS": settings.topic_memberships,
            "STREAMS_TOPIC_DLQ": settings.topic_dlq,
            "STREAMS_PARTITIONS": str(settings.partitions),
        }
        secret = secrets.token_urlsafe(18)
        api_env = {**env, "STREAMS_API_CLIENTS": f"{API_CLIENT}:{secret}"}
        print("starting a worker and the API (python -m streams worker, api) ...", flush=True)
        with (
            WorkerProcess(env, logs / "worker.log") as worker,
            ApiProcess(api_env, logs / "api.log") as api,
        ):
            try:
                worker.wait_ready(120)
            except ServiceError as exc:
                raise SystemExit(f"demo: the worker did not start: {exc}") from None
            try:
                api.wait_ready(120)
            except ServiceError as exc:
                raise SystemExit(f"demo: the API did not start: {exc}") from None
            print(
                f"worker ready (log: {logs / 'worker.log'}, metrics: "
                f"http://127.0.0.1:{worker.web_port}/metrics)\n"
                f"API ready on {api.url} (log: {logs / 'api.log'}); to add an activity "
                f"through it as client {API_CLIENT!r} (a secret made for this run):\n\n"
                f"{api_snippet(api.url, API_CLIENT, secret)}\n\n"
                f"sending {count} activities over {leads} leads at {rate:.0f}/s; "
                "Ctrl-C stops everything\n",
                flush=True,
            )
            _stream_and_show(bootstrap, settings, activities, by_id, rate, worker, hold)


def _stream_and_show(
    bootstrap: str,
    settings: WorkerSettings,
    activities: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    rate: float,
    worker: WorkerProcess,
    hold: bool,
) -> None:
    stop = threading.Event()
    sent = [0]

    def send() -> None:
        # A plain producer, as an application that does not validate would use: what the
        # catalog refuses reaches the worker and its dead-letter topic.
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        started = time.monotonic()
        for activity in activities:
            if stop.is_set():
                break
            producer.send(
                settings.topic_activities,
                key=str(activity["leadId"]).encode(),
                value=orjson.dumps(activity),
            )
            sent[0] += 1
            delay = started + sent[0] / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.flush(30)
        producer.close()

    sender = threading.Thread(target=send, name="demo-producer", daemon=True)
    # From the start of the run's own topics: whatever the worker emitted before this
    # consumer had its partitions (an activity added through the API as soon as the curl
    # lines were printed, or the stream's first) is shown too.
    consumer = KafkaConsumer(
        settings.topic_memberships,
        settings.topic_dlq,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=500,
    )
    sender.start()
    per_campaign: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    last_news = time.monotonic()
    held = False
    try:
        while worker.alive():
            for message in consumer:
                record = orjson.loads(message.value)
                last_news = time.monotonic()
                if message.topic == settings.topic_dlq:
                    rejected[record["error"]["code"]] += 1
                    print(
                        f"   rejected ({record['error']['code']}): {record['error']['message']}",
                        flush=True,
                    )
                else:
                    per_campaign[f"{record['campaignId']} {record['campaignName']}"] += 1
                    print(describe_membership(record, _activity_of(record, by_id)), flush=True)
            if not sender.is_alive() and hold and not held:
                held = True
                print(
                    f"\n{sent[0]} activities sent; the worker and the API keep running (try "
                    "the curl lines above); Ctrl-C stops everything",
                    flush=True,
                )
            if not sender.is_alive() and not hold:
                quiet = time.monotonic() - last_news
                if quiet > (QUIET_SECONDS if per_campaign or rejected else FIRST_RESULT_WAIT):
                    break
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the worker and the stack ...", flush=True)
    finally:
        stop.set()
        sender.join(timeout=10)
        consumer.close()
    print(f"\n{sent[0]} activities sent; memberships per campaign:")
    for campaign, members in sorted(per_campaign.items()):
        print(f"  {campaign:<36} {members:>5}")
    if rejected:
        print("rejected: " + ", ".join(f"{n} {code}" for code, n in rejected.most_common()))
    if not worker.alive():
        print(f"the worker stopped; its log: {Path(worker.log_path)}")
