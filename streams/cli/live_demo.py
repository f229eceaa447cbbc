"""The streaming demo: the embedded stack, a worker, a paced stream, memberships as they
come. Everything it starts is stopped on the way out, Ctrl-C included."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from streams.cli.demo import describe_membership
from streams.devstack.process import ServiceError, cache_dir
from streams.devstack.redis import RedisServer
from streams.devstack.tansu import TansuBroker
from streams.devstack.worker import WorkerProcess
from streams.engine.compiler import Plan
from streams.samples import sample_activities
from streams.settings import WorkerSettings

QUIET_SECONDS = 5.0
"""After the last activity is sent, the demo ends once nothing new came for this long..."""
FIRST_RESULT_WAIT = 90.0
"""... or, if nothing came at all, this long after (the worker's first group join)."""


@contextlib.contextmanager
def local_stack(settings: WorkerSettings) -> Iterator[tuple[str, str]]:
    """(bootstrap, redis url): the configured services when STREAMS_BROKER or
    STREAMS_REDIS_URL are set, else an embedded Tansu broker and a private redis-server."""
    with contextlib.ExitStack() as stack:
        if "STREAMS_BROKER" in os.environ:
            bootstrap = ",".join(settings.bootstrap_servers)
        else:
            print("starting the embedded Kafka-compatible broker (Tansu) ...", flush=True)
            bootstrap = stack.enter_context(TansuBroker()).bootstrap
        if "STREAMS_REDIS_URL" in os.environ:
            redis_url = settings.redis_url
        else:
            print("starting redis-server ...", flush=True)
            redis_url = stack.enter_context(RedisServer()).url
        yield bootstrap, redis_url


def run_live_demo(
    plan: Plan, settings: WorkerSettings, count: int, leads: int, seed: int, rate: float
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
        print("starting a worker (python -m streams worker) ...", flush=True)
        with WorkerProcess(env, logs / "worker.log") as worker:
            try:
                worker.wait_ready(120)
            except ServiceError as exc:
                raise SystemExit(f"demo: the worker did not start: {exc}") from None
            print(
                f"worker ready (log: {logs / 'worker.log'}, metrics: "
                f"http://127.0.0.1:{worker.web_port}/metrics)\n"
                f"sending {count} activities over {leads} leads at {rate:.0f}/s; "
                "Ctrl-C stops everything\n",
                flush=True,
            )
            _stream_and_show(bootstrap, settings, activities, by_id, rate, worker)


def _stream_and_show(
    bootstrap: str,
    settings: WorkerSettings,
    activities: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    rate: float,
    worker: WorkerProcess,
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
    consumer = KafkaConsumer(
        settings.topic_memberships,
        settings.topic_dlq,
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        group_id=None,
        consumer_timeout_ms=500,
    )
    consumer.poll(timeout_ms=1000)  # join the partitions before the first activity goes out
    sender.start()
    per_campaign: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    last_news = time.monotonic()
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
                    print(
                        describe_membership(record, by_id.get(record["activityId"], {})), flush=True
                    )
            if not sender.is_alive():
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
