"""The real worker on the local stack: sustained throughput, latency at a fixed offered rate,
and, in the same run on the same broker, a pass-through Faust agent as the floor.

    .venv/bin/python bench/stream.py [--records 100000] [--leads 2000]

1. throughput: N sample activities (the sample rules/, the stream `python -m streams sample`
   makes) are written to a fresh topic first; then a worker starts, and the rate is read
   off its own /metrics (`streams_activities_total`) from the first processed activity to
   the N-th, so the group join is not counted;
2. floor: the at-least-once pass-through agent of bench/passthrough.py (`noack_take`,
   decode, re-produce, await delivery, ack), same broker, same N, on the fast-drain
   consumer the worker uses and on Faust's stock one;
3. latency: a fresh worker, activities sent at a fixed rate (half, a quarter and a tenth of
   the sustained rate by default) for --seconds; for each membership event, the time from
   its activity's send to the event's arrival at a consumer: p50 and p99. The sender and
   the timing consumer run in this process, on the same 2 cores as the worker and broker.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import passthrough  # noqa: E402
from streams.devstack.kafka import KafkaBroker, create_topics  # noqa: E402
from streams.devstack.redis import RedisServer  # noqa: E402
from streams.devstack.worker import WorkerProcess  # noqa: E402
from streams.samples import sample_activities  # noqa: E402

PARTITIONS = 4
_ACTIVITIES_RE = re.compile(r'^streams_activities_total\{outcome="[a-z]+"\} ([0-9.e+]+)$', re.M)


def processed(worker: WorkerProcess) -> int:
    try:
        return int(sum(float(v) for v in _ACTIVITIES_RE.findall(worker.metrics())))
    except OSError:
        return 0


def fresh_settings(bootstrap: str, redis_url: str) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    settings = {
        "STREAMS_BROKER": bootstrap,
        "STREAMS_REDIS_URL": redis_url,
        "STREAMS_RULES_DIR": str(ROOT / "rules"),
        "STREAMS_APP_ID": f"bench-{run}",
        "STREAMS_TOPIC_ACTIVITIES": f"bench-{run}.activities",
        "STREAMS_TOPIC_MEMBERSHIPS": f"bench-{run}.memberships",
        "STREAMS_TOPIC_DLQ": f"bench-{run}.dlq",
        "STREAMS_PARTITIONS": str(PARTITIONS),
    }
    create_topics(bootstrap, {settings[k]: PARTITIONS for k in settings if "TOPIC" in k})
    return settings


def producer(bootstrap: str, linger_ms: int) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=linger_ms, batch_size=512 * 1024
    )


def throughput(
    bootstrap: str, redis_url: str, lines: list[bytes], logs: Path, timeout: float
) -> tuple[float, float]:
    """(activities/s, seconds to the first processed activity)."""
    settings = fresh_settings(bootstrap, redis_url)
    send = producer(bootstrap, 50)
    for line in lines:
        send.send(
            settings["STREAMS_TOPIC_ACTIVITIES"],
            key=str(orjson.loads(line)["leadId"]).encode(),
            value=line,
        )
    send.flush(300)
    spawned = time.monotonic()
    with WorkerProcess(settings, logs / "throughput-worker.log") as worker:
        first_at = first_count = None
        count = 0
        deadline = spawned + timeout
        while count < len(lines) and time.monotonic() < deadline and worker.alive():
            count = processed(worker)
            if count and first_at is None:
                first_at, first_count = time.monotonic(), count
            time.sleep(0.05)
        done = time.monotonic()
    if first_at is None or first_count is None or count <= first_count:
        raise SystemExit(
            f"throughput: the worker processed {count} of {len(lines)} "
            f"(log: {logs / 'throughput-worker.log'})"
        )
    return (count - first_count) / (done - first_at), first_at - spawned


def latency(
    bootstrap: str, redis_url: str, rate: float, seconds: float, logs: Path
) -> tuple[list[float], int]:
    """Latencies (s) of membership events, and the number of activities sent."""
    from kafka import KafkaConsumer, TopicPartition

    settings = fresh_settings(bootstrap, redis_url)
    activities = list(sample_activities(int(rate * seconds), 2000, seed=5))
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    with WorkerProcess(settings, logs / "latency-worker.log") as worker:
        worker.wait_ready(120)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=5)
        consumer.assign(
            [TopicPartition(settings["STREAMS_TOPIC_MEMBERSHIPS"], p) for p in range(PARTITIONS)]
        )
        consumer.seek_to_beginning()
        # Warm-up: the worker's first group join happens before the clock starts.
        warm = producer(bootstrap, 0)
        probe = next(a for a in activities if a["activityTypeId"] == 12)
        warm.send(
            settings["STREAMS_TOPIC_ACTIVITIES"],
            key=str(probe["leadId"]).encode(),
            value=orjson.dumps(probe),
        )
        warm.flush()
        deadline = time.monotonic() + 120
        while not consumer.poll(timeout_ms=200) and time.monotonic() < deadline:
            pass

        def send_all() -> None:
            send = producer(bootstrap, 0)
            start = time.monotonic()
            for n, activity in enumerate(activities[1:], 1):
                wait = start + n / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sent_at[activity["marketoGUID"]] = time.monotonic()
                send.send(
                    settings["STREAMS_TOPIC_ACTIVITIES"],
                    key=str(activity["leadId"]).encode(),
                    value=orjson.dumps(activity),
                )
            send.flush()

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        quiet_since = time.monotonic()
        while sender.is_alive() or time.monotonic() - quiet_since < 3:
            for records in consumer.poll(timeout_ms=100).values():
                now = time.monotonic()
                quiet_since = now
                for record in records:
                    sent = sent_at.get(orjson.loads(record.value)["activityId"])
                    if sent is not None:
                        latencies.append(now - sent)
        consumer.close()
    return latencies, len(sent_at)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0, help="each latency phase's length")
    parser.add_argument(
        "--latency-at",
        type=lambda t: [float(x) for x in t.split(",")],
        default=[0.5, 0.25, 0.1],
        help="offered rates for the latency phases, as fractions of the "
        "sustained rate (default 0.5,0.25,0.1)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    lines = [orjson.dumps(a) for a in sample_activities(args.records, args.leads, seed=3)]
    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-")))
        broker = stack.enter_context(KafkaBroker())
        redis_url = stack.enter_context(RedisServer()).url
        print(
            f"broker: Apache Kafka at {broker.bootstrap}; {len(lines):,} sample activities "
            f"over {args.leads:,} leads",
            flush=True,
        )
        rate, join = throughput(broker.bootstrap, redis_url, lines, logs, args.timeout)
        print(
            f"worker:       {rate:>9,.0f} activities/s sustained (first result after {join:.1f} s)",
            flush=True,
        )
        floors = {}
        for variant in ("noack-take-fast", "noack-take"):
            floor_in = f"floor-{uuid.uuid4().hex[:8]}"
            create_topics(broker.bootstrap, {floor_in: PARTITIONS, f"{floor_in}.out": PARTITIONS})
            passthrough.preload(broker.bootstrap, floor_in, args.records)
            result = passthrough.run_variant(
                variant,
                broker.bootstrap,
                floor_in,
                f"{floor_in}.out",
                args.records,
                args.timeout,
                logs,
                [],
            )
            floors[variant] = result.rate
            print(
                f"pass-through: {result.rate:>9,.0f} records/s ({variant}: decode, re-produce, "
                f"await delivery, ack; {result.note or 'ok'})",
                flush=True,
            )
        if floors["noack-take-fast"] > 0:
            print(
                f"ratio:        {rate / floors['noack-take-fast']:>9.0%} of the pass-through "
                "agent on the same consumer (noack-take-fast), "
                f"{rate / max(floors['noack-take'], 1):.0%} of Faust's stock one",
                flush=True,
            )
        for fraction in args.latency_at:
            offered = rate * fraction
            latencies, sent = latency(broker.bootstrap, redis_url, offered, args.seconds, logs)
            if len(latencies) >= 20:
                cuts = statistics.quantiles(latencies, n=100)
                print(
                    f"latency:      p50 {cuts[49] * 1000:>6,.0f} ms, "
                    f"p99 {cuts[98] * 1000:>6,.0f} ms"
                    f" at {offered:>6,.0f} activities/s offered ({fraction:.0%} of sustained; "
                    f"{sent:,} sent, {len(latencies):,} memberships timed)",
                    flush=True,
                )
            else:
                print(f"latency: only {len(latencies)} memberships timed at {offered:,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
