"""The real worker on the local stack: sustained throughput, latency at a fixed offered rate,
and, in the same run on the same broker, its peers (a Quix Streams application with
per-lead state, pass-through variants) and the ratios.

    .venv/bin/pip install -e '.[bench]'     # the Quix Streams peers
    .venv/bin/python bench/stream.py [--records 100000] [--leads 2000]

1. throughput: N sample activities (the sample rules/, the stream `python -m streams sample`
   makes) are written to a fresh topic first; then a worker starts, and the rate is read
   off its own /metrics (`streams_activities_total`) from the first processed activity to
   the N-th, so the group join is not counted. Redis's memory per lead is printed after it;
2. peers (`--peers`, `PEERS`): the same N records in a fresh topic, each contestant in a
   process of its own (bench/passthrough.py), its rate from its output records' arrival,
   first to N-th; then the worker's ratio to each;
3. latency: a fresh worker, activities sent at a fixed rate (half, a quarter and a tenth of
   the sustained rate by default) for --seconds; for each membership event, the time from
   its activity's send to the event's arrival at a consumer (`--timing consumed`, the
   default) or to its append (`--timing appended`, its broker LogAppendTime, read after
   the phase: no consumer runs during it): p50 and p99. The load generator runs in a
   process of its own (librdkafka by default, `--harness`; what is due sent at each
   millisecond tick, with a 1 ms linger above 2,000/s, `--sender-linger`), the timing
   consumer in this one (the output topic only, raw bytes, decoded after the phase; the
   input records' append times are read after it), on the same cores as the worker, the
   broker and Redis. Each phase prints the CPU time per activity of the contestant, the
   broker, Redis, the load generator and the timing consumer, and their sum in cores at
   the offered rate, so that a phase that fell behind says whether the machine could
   have kept up at all. Then, in each phase, the same for the peers (`--latency-peers`:
   each re-produces every activity, so every activity is timed) at the same offered
   rate, with the same harness, and the worker's p50 and p99 ratios to theirs;
   `--compare NAME=STREAMS_X=V` times a worker with other settings in each phase too,
   alternating which goes first (interleaved pairs in one sitting).
   Each phase's worker starts cold (a new process, group, topics and Redis keys): the
   phase prints its cold start (spawn -> /ready, and the first record's latency, sent once
   /ready answers, split into its append and the worker's part) and the latencies per
   second of sending over the first five seconds, then the rest, and the slowest records.
   The broker is warmed first by unreported worker phases (--broker-warmup, by default
   until its JIT compiler's share falls under 1 µs per activity, at most 90 s, after the
   throughput phase too): a fresh broker's JVM appended records up to seconds late in its
   first minute, which is what the first latency phases measured before (`warm_broker`).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import passthrough  # noqa: E402
from bench.broker_requests import BrokerRequests, Delta  # noqa: E402
from streams.devstack.kafka import KafkaBroker, create_topics  # noqa: E402
from streams.devstack.redis import RedisServer  # noqa: E402
from streams.devstack.worker import WorkerProcess  # noqa: E402
from streams.samples import SAMPLE_START, sample_activities  # noqa: E402

PARTITIONS = 4
_ACTIVITIES_RE = re.compile(r'^streams_activities_total\{outcome="[a-z]+"\} ([0-9.e+]+)$', re.M)


def processed(worker: WorkerProcess) -> int:
    try:
        return int(sum(float(v) for v in _ACTIVITIES_RE.findall(worker.metrics())))
    except OSError:
        return 0


PEERS = {
    "quix-state": "Quix Streams, per-lead RocksDB state read and written, one record out per in",
    "quix": "Quix Streams, decode and re-produce",
    "noack-take-fast": "Faust per-event pass-through agent, fast drain (the pre-batch path)",
    "noack-take": "Faust pass-through agent on Faust's stock consumer",
    "raw": "raw aiokafka loop: getmany, decode, encode, send_batch (the Python ceiling)",
    "confluent-pass": "the floor, not a processor: confluent-kafka poll -> produce of each "
    "record's bytes, nothing decoded, offsets auto-committed, no wait for deliveries",
}
"""The contestants run against the worker, each on the same records (bench/passthrough.py
runs them in a process of their own); the Quix Streams apps need the `bench` extra."""


def preload(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    """The worker's input, keyed by lead id, into a peer's input topic."""
    send = producer(bootstrap, 50)
    for line in lines:
        send.send(topic, key=str(orjson.loads(line)["leadId"]).encode(), value=line)
    send.flush(300)
    send.close()


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
    bootstrap: str,
    redis_url: str,
    lines: list[bytes],
    logs: Path,
    timeout: float,
    worker_env: dict[str, str],
) -> tuple[float, float]:
    """(activities/s, seconds to the first processed activity)."""
    settings = fresh_settings(bootstrap, redis_url) | worker_env
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


HARNESSES = {
    "confluent": "confluent-kafka (librdkafka, from the bench extra): little CPU per record",
    "kafka-python": "kafka-python, as the earlier measurements were taken",
}
"""Clients of the load generator and the timing consumer (`--harness`)."""

TIMINGS = {
    "consumed": "each output record is read by the timing consumer as it is appended (the "
    "output topic only, kept as raw bytes, decoded after the phase): produce -> consumed",
    "appended": "no consumer during the phase: the output records are read after it, and "
    "each timed at its broker append time (LogAppendTime): produce -> appended",
}
"""What a latency phase times (`--timing`); the input records' append times (the "append"
segment) are read after the phase either way."""

LINGER_ABOVE: Final = 2000.0
AUTO_LINGER_MS: Final = 1.0
"""The load generator's default linger: none up to LINGER_ABOVE activities/s, this many ms
above. With none, librdkafka sends a produce request as soon as it can, most holding a
record or two: at 22,000/s the broker spent 26-37 µs of CPU per record on them alone (a
scratch measurement, the broker and the load generator only, load average 7-8), 17 µs
with 1 ms (which at most adds 1 ms to each record's latency, in its "append" segment)."""

TICK: Final = 0.001
"""The load generator's shortest sleep: at rates above 1/TICK it sends what is due each
tick in one go, rather than sleeping between records (a sleep of tens of microseconds
wakes late on a busy machine; measured against a sleep per record, 05:55 UTC, the load
generator's CPU per record was 7-16 µs either way: no saving that the noise would not
hide)."""


READER_WAIT_MS: Final = 100
"""The timing consumer's fetch long poll (ms). The broker answers a fetch as soon as a
record is appended to a partition it holds (fetch.min.bytes 1), so this bounds only its
empty fetches: with 5 ms (the earlier value) they were most of its 104-173 fetches/s at
1,000/s and 107-123/s at 15,000/s (a worker far behind, appending about once a second),
against 51/s and 8-9/s with 100 ms; its "read" segment stayed inside the noise (p50 / p99
at 1,000/s 1.2 / 45.0 and 2.2 / 155 ms with 5 ms, 1.7 / 81.4 and 1.2 / 37.9 ms with 100 ms;
`--broker-requests`, two alternated pairs, 08:56-09:07 UTC, load average 8.8-14)."""


@dataclass(frozen=True)
class Harness:
    """The load generator and the timing consumer of the latency phases, and the
    processes whose CPU time each phase accounts besides the contestant's."""

    client: str = "confluent"
    """A `HARNESSES` name."""
    timing: str = "consumed"
    """A `TIMINGS` name."""
    linger_ms: float | None = None
    """The load generator's producer linger (None: `linger_for` the offered rate)."""
    services: dict[str, int] = field(default_factory=dict)
    """Name -> pid of the broker and Redis, for their CPU time per activity."""
    reader_wait_ms: int = READER_WAIT_MS
    """The timing consumer's fetch long poll (`--reader-fetch-wait`)."""
    requests: BrokerRequests | None = None
    """The broker's request counters (`--broker-requests`), read around each phase; the
    load generator and the timing consumer then count their own requests (librdkafka's
    statistics), so that the contestant's share is the rest."""


STATS_MS: Final = 1000
"""librdkafka's statistics interval with `--broker-requests` (its request counts)."""


def rdkafka_requests(stats: str) -> dict[str, float]:
    """Requests sent, by kind, summed over the brokers of a librdkafka statistics JSON."""
    counts: dict[str, float] = {}
    for broker in orjson.loads(stats).get("brokers", {}).values():
        for kind, count in broker.get("req", {}).items():
            if count:
                counts[kind] = counts.get(kind, 0) + count
    return counts


def linger_for(harness: Harness, rate: float) -> float:
    """The load generator's linger (ms) at `rate` activities/s."""
    if harness.linger_ms is not None:
        return harness.linger_ms
    return AUTO_LINGER_MS if rate > LINGER_ABOVE else 0.0


Keyed = list[tuple[bytes, bytes]]
"""Records to send: (key, value)."""


def paced_sender(
    harness: Harness, bootstrap: str, linger_ms: float, stats: list[str]
) -> tuple[
    Callable[[str, list[tuple[bytes, bytes]]], None], Callable[[], None], Callable[[], None]
]:
    """The load generator's client: (send(topic, [(key, value), ...]), serve, finish), acks=1;
    `serve` is called once per tick (the client's queue; with the confluent client only
    failed deliveries are reported back, `delivery.report.only.error`). With
    `harness.requests`, librdkafka's statistics are appended to `stats` (the last one
    after `finish`)."""
    if harness.client == "confluent":
        from confluent_kafka import Producer  # type: ignore[import-untyped]

        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "linger.ms": linger_ms,
            "delivery.report.only.error": True,
        }
        if harness.requests is not None:
            config |= {"statistics.interval.ms": STATS_MS, "stats_cb": stats.append}
        fast = Producer(config)
        produce = fast.produce

        def send(topic: str, records: Keyed) -> None:
            for key, value in records:
                try:
                    produce(topic, value, key)
                except BufferError:  # the client's queue is full: the broker is behind
                    while True:
                        fast.poll(0.01)
                        try:
                            produce(topic, value, key)
                            break
                        except BufferError:
                            continue

        def flush() -> None:
            fast.flush(30)
            if harness.requests is not None:  # the statistics after the last request
                time.sleep(STATS_MS / 1000 * 1.2)
                fast.poll(0)

        return send, lambda: fast.poll(0), flush
    slow = producer(bootstrap, round(linger_ms))

    def send_slow(topic: str, records: Keyed) -> None:
        for key, value in records:
            slow.send(topic, key=key, value=value)

    def finish() -> None:
        slow.flush()
        slow.close()

    return send_slow, lambda: None, finish


PHASE_END_BEFORE: Final = timedelta(hours=1)
"""How long before the clock a latency phase's latest activity is dated."""


def activity_date(activity: dict[str, Any]) -> datetime:
    """A sample activity's date; one without an offset (a sample poison record) as UTC."""
    moment = datetime.fromisoformat(activity["activityDate"])
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def phase_activities(count: int, leads: int, seed: int, now: datetime) -> list[dict[str, Any]]:
    """A phase's sample activities (throughput and latency), every one dated at least
    `PHASE_END_BEFORE` before `now`. The sample stream advances each lead 1-144 hours per
    activity from January 2026: past about 100 activities per lead (a half-rate phase gives
    300) its dates pass today and the worker's one-day future horizon, and 38% of such a phase's
    records were dead letters the peers, which check no dates, never pay for (`histcpu`,
    session 7). Moving `start` moves every date by the same amount (it draws nothing from
    the stream's random numbers), so the stream is otherwise the same."""
    activities = list(sample_activities(count, leads, seed=seed))
    if not activities:
        return activities
    latest = max(activity_date(a) for a in activities)
    if latest <= now - PHASE_END_BEFORE:
        return activities
    begin = SAMPLE_START - (latest - (now - PHASE_END_BEFORE))
    return list(sample_activities(count, leads, seed=seed, start=begin))


def due(start: float, rate: float, now: float, total: int) -> int:
    """How many records of a paced send are due `now` (monotonic) when the first is due
    at `start`: the first at once, then one every 1/rate seconds."""
    if now < start:
        return 0
    return min(total, int((now - start) * rate) + 1)


def send_times(identities: list[str], ticks: list[tuple[int, float]]) -> dict[str, float]:
    """{identity: its send time} from a paced send's wake-ups, (index of the wake-up's
    first record, its time): each record has its wake-up's time, the one with the
    greatest first index not above its own."""
    sent: dict[str, float] = {}
    for number, (first, stamp) in enumerate(ticks):
        upto = ticks[number + 1][0] if number + 1 < len(ticks) else len(identities)
        for identity in identities[first:upto]:
            sent[identity] = stamp
    return sent


def send_paced(
    harness: Harness,
    bootstrap: str,
    topic: str,
    items: Keyed,
    rate: float,
    go: Any,
    out: Any,
) -> None:
    """The load generator (in its own process): (key, value) at `rate` per second, what is
    due sent at each wake-up, at most one wake-up per `TICK`; its client is made first,
    then it says "ready" through `out` and waits for `go` (an Event) to start. Each
    wake-up's records are stamped with its time (time.time(), taken before its first
    send: the wall clock, which the record timestamps of the breakdown are on too), kept
    once per wake-up rather than per record: it sends back through `out` at the end those
    wake-ups, [(index of its first record, its time)] (`send_times` maps them to the
    records), then the CPU time it spent sending, how late (s) its latest wake-up was
    against the schedule, and its requests by kind (`rdkafka_requests`, empty without
    `harness.requests`)."""
    stats: list[str] = []
    send, serve, finish = paced_sender(harness, bootstrap, linger_for(harness, rate), stats)
    out.send("ready")
    go.wait()
    cpu = time.process_time()
    ticks: list[tuple[int, float]] = []
    total = len(items)
    least = TICK if rate > 1 / TICK else 0.0
    start = time.monotonic()
    done = 0
    behind = 0.0
    while done < total:
        now = time.monotonic()
        upto = due(start, rate, now, total)
        if upto > done:
            behind = max(behind, now - (start + done / rate))
            ticks.append((done, time.time()))
            send(topic, items[done:upto])
            done = upto
            serve()
        pause = max(start + done / rate - time.monotonic(), least)
        if pause > 0 and done < total:
            time.sleep(pause)
    finish()
    spent = time.process_time() - cpu
    out.send(ticks)
    out.send(spent)
    out.send(behind)
    out.send(rdkafka_requests(stats[-1]) if stats else {})


class TimingReader:
    """The timing consumer: every partition of `topics` from the beginning, no group;
    `poll` returns (topic, value, the record's timestamp in Unix seconds), values as the
    raw bytes; during a phase it `take`s the client's records as they are and `unpack`s
    them after it (nothing done per record while a phase runs)."""

    def __init__(
        self,
        client: str,
        bootstrap: str,
        topics: list[str],
        count_requests: bool = False,
        wait_ms: int = READER_WAIT_MS,
    ) -> None:
        self.kind = client
        self.client: Any
        self.stats: list[str] = []
        """librdkafka's statistics (`count_requests`), the newest last."""
        if client == "confluent":
            from confluent_kafka import OFFSET_BEGINNING, Consumer

            config: dict[str, Any] = {
                "bootstrap.servers": bootstrap,
                "group.id": f"timing-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": wait_ms,
            }
            if count_requests:
                config |= {"statistics.interval.ms": STATS_MS, "stats_cb": self.stats.append}
            self.client = Consumer(config)
            self.client.assign([self._tp(t, p, OFFSET_BEGINNING) for t, p in _parts(topics)])
            return
        from kafka import KafkaConsumer, TopicPartition

        self.client = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms)
        self.client.assign([TopicPartition(t, p) for t, p in _parts(topics)])
        self.client.seek_to_beginning()

    @staticmethod
    def _tp(topic: str, partition: int, offset: int | None = None) -> Any:
        from confluent_kafka import TopicPartition as Partition

        return (
            Partition(topic, partition) if offset is None else Partition(topic, partition, offset)
        )

    def take(self, timeout: float) -> list[Any]:
        """The records that arrived, as the client returns them (nothing done per record:
        `unpack` them later), waiting up to `timeout` for the first."""
        if self.kind == "confluent":
            # `consume(n, timeout)` waits for n records or the timeout: the first record
            # with `poll`, then whatever else is already here.
            first = self.client.poll(timeout)
            if first is None:
                return []
            return [first, *self.client.consume(10_000, 0)]
        return [
            records
            for records in self.client.poll(timeout_ms=int(timeout * 1000)).values()
            if records
        ]

    def unpack(self, taken: list[Any]) -> list[tuple[str, bytes, float]]:
        """`take`'s records as (topic, value, the record's timestamp in Unix seconds), in
        the order they arrived."""
        if self.kind == "confluent":
            return [
                (m.topic(), m.value(), m.timestamp()[1] / 1000) for m in taken if m.error() is None
            ]
        return [
            (record.topic, record.value, record.timestamp / 1000)
            for records in taken
            for record in records
        ]

    def poll(self, timeout: float) -> list[tuple[str, bytes, float]]:
        return self.unpack(self.take(timeout))

    def drop(self, topic: str) -> None:
        """Stop reading `topic`; the other topics go on from where they are."""
        if self.kind == "confluent":
            self.client.incremental_unassign([self._tp(topic, p) for p in range(PARTITIONS)])
            return
        keep = [tp for tp in self.client.assignment() if tp.topic != topic]
        positions = {tp: self.client.position(tp) for tp in keep}
        self.client.assign(keep)
        for tp, offset in positions.items():
            self.client.seek(tp, offset)

    def end_offsets(self, topics: list[str]) -> dict[tuple[str, int], int]:
        """Each partition's high watermark (the offset its next record will get)."""
        if self.kind == "confluent":
            return {
                (t, p): self.client.get_watermark_offsets(self._tp(t, p), timeout=10)[1]
                for t, p in _parts(topics)
            }
        from kafka import TopicPartition

        ends = self.client.end_offsets([TopicPartition(t, p) for t, p in _parts(topics)])
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def read_to_end(
        self, topics: list[str], timeout: float = 120
    ) -> list[tuple[str, bytes, float]]:
        """Every record of `topics` (this reader's, from the beginning) up to their high
        watermarks as of now."""
        ends = {tp: end for tp, end in self.end_offsets(topics).items() if end > 0}
        got: list[tuple[str, bytes, float]] = []
        want = sum(ends.values())
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            got.extend(self.poll(0.5))
        return got

    def requests(self) -> dict[str, float]:
        """Its requests so far, by kind (the newest statistics; empty without them)."""
        return rdkafka_requests(self.stats[-1]) if self.stats else {}

    def close(self) -> None:
        self.client.close()


@dataclass
class PacedSend:
    """A load generator started by `start_paced_sender`: `wait_ready`, then `go.set()`,
    then, once `receive.poll()`, its `report`."""

    receive: Any
    """The pipe end its report arrives on (`send_paced`)."""
    process: Any
    go: Any
    """The Event that starts its sending."""
    identities: list[str]
    """Its records' identities (`marketoGUID`), in sending order."""

    def wait_ready(self) -> None:
        """Until its records are handed over and its client made."""
        while not self.receive.poll(0.5):
            if not self.process.is_alive():
                raise SystemExit(f"latency: the load generator exited ({self.process.exitcode})")
        self.receive.recv()

    def report(self) -> tuple[dict[str, float], float, float, dict[str, float]]:
        """Once it sent everything (`receive.poll()`): ({identity: its send time}, its CPU
        time, how late its latest wake-up was (s), its requests by kind); see
        `send_paced`."""
        ticks = self.receive.recv()
        cpu, behind, requests = self.receive.recv(), self.receive.recv(), self.receive.recv()
        return send_times(self.identities, ticks), cpu, behind, requests


def start_paced_sender(
    harness: Harness,
    bootstrap: str,
    topic: str,
    activities: list[dict[str, Any]],
    probe: dict[str, Any],
    rate: float,
) -> PacedSend:
    """Start `send_paced` in a spawned process (no inherited threads, so that its pacing
    does not share the caller's interpreter with the timing consumer; time.time() is the
    same clock in both) on `activities` but the warm-up `probe`, keyed by lead and
    identified by `marketoGUID`; it sends once `go` is set. Encoding the records and
    handing them over happen here, before the phase's CPU accounting starts."""
    sending = [a for a in activities if a is not probe]
    items = [(str(a["leadId"]).encode(), orjson.dumps(a)) for a in sending]
    spawn = multiprocessing.get_context("spawn")
    receive, give = spawn.Pipe(duplex=False)
    go = spawn.Event()
    sender = spawn.Process(
        target=send_paced, args=(harness, bootstrap, topic, items, rate, go, give), daemon=True
    )
    sender.start()
    return PacedSend(receive, sender, go, [a["marketoGUID"] for a in sending])


def _parts(topics: list[str]) -> list[tuple[str, int]]:
    return [(t, p) for t in topics for p in range(PARTITIONS)]


STAGES = ("queued", "load", "evaluate", "save", "settle", "deliver")
_STAGE_RE = re.compile(
    r'^streams_batch_stage_seconds_(sum|count)\{stage="([a-z]+)"\} ([0-9.e+-]+)$', re.M
)
_FETCH_RE = re.compile(r"^streams_fetch_delay_seconds_(sum|count) ([0-9.e+-]+)$", re.M)
_SIZE_RE = re.compile(r"^streams_batch_records_(sum|count) ([0-9.e+-]+)$", re.M)


def worker_stages(worker: WorkerProcess) -> tuple[dict[str, float], dict[str, float]]:
    """Sums (s) and counts, from the worker's /metrics, of each stage of its path per batch,
    and ("fetch") per activity from its append to the return of the worker's fetch."""
    text = worker.metrics()
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for kind, stage, value in _STAGE_RE.findall(text):
        (sums if kind == "sum" else counts)[stage] = float(value)
    for kind, value in _FETCH_RE.findall(text):
        (sums if kind == "sum" else counts)["fetch"] = float(value)
    for kind, value in _SIZE_RE.findall(text):
        (sums if kind == "sum" else counts)["records"] = float(value)
    return sums, counts


def stage_means(
    before: tuple[dict[str, float], dict[str, float]],
    after: tuple[dict[str, float], dict[str, float]],
) -> dict[str, float]:
    """Mean seconds of each stage between two `worker_stages` readings."""
    means = {}
    for stage, total in after[0].items():
        count = after[1].get(stage, 0) - before[1].get(stage, 0)
        if count > 0:
            means[stage] = (total - before[0].get(stage, 0.0)) / count
    return means


def log_append_time(bootstrap: str, topics: list[str]) -> None:
    """Have the broker stamp records with their append time, for the breakdown."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, t, configs={"message.timestamp.type": "LogAppendTime"}
                )
                for t in topics
            ]
        )
    finally:
        admin.close()


class Timed:
    """One latency phase's figures: end-to-end latencies (s), and per activity the
    segments of its path: sent -> its append to the activities topic -> its first membership
    event's append to the memberships topic -> that event read by the timing consumer."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.segments: dict[str, list[float]] = {"append": [], "worker": [], "read": []}
        self.timeline: list[tuple[float, float, float, float, float]] = []
        """Per timed activity: (its send, seconds after the phase's first send; end to
        end; append; worker; read), the last three -1 where unknown."""
        self.stages: dict[str, float] = {}
        self.timing = "consumed"
        """What end to end means: produce -> "consumed" or -> "appended" (`TIMINGS`)."""
        self.sent = 0
        self.cpu: dict[str, float] = {}
        """CPU time (user and system, every thread) of the contestant's process
        ("contestant") and of the services (`Harness.services`: the broker, Redis) from
        the warm-up's end to the last output seen."""
        self.sender_cpu = 0.0
        """CPU time of the load generator's process while it sent."""
        self.sender_linger = 0.0
        """The load generator's linger (ms)."""
        self.sender_behind = 0.0
        """How late (s) the load generator's latest wake-up was against its schedule."""
        self.reader_cpu = 0.0
        """CPU time of the timing consumer (this process) over the phase."""
        self.broker_jit = 0.0
        """Of the broker's CPU time, its JIT compiler threads' (a young JVM compiles its
        request paths for minutes: not a cost per request)."""
        self.broker: Delta | None = None
        """The broker's requests from just before the first send to the phase's end."""
        self.harness_requests: dict[str, dict[str, float]] = {}
        """"load generator" / "timing consumer" -> their requests by kind over the phase."""
        self.topics: tuple[str, str] = ("", "")
        """The contestant's input and output topics."""
        self.start: dict[str, float] = {}
        """The contestant's start, seconds from its spawn (`time.monotonic()`): "ready"
        (the worker's /ready), "probe" (the warm-up record sent), "first" (its output
        read here)."""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def jit_seconds(pid: int, threads: dict[str, bool] | None = None) -> float:
    """CPU time so far of a JVM's JIT compiler threads (`C1 CompilerThreadN`, `C2 ...`;
    their names are cut to 15 characters in /proc). `threads` (thread id -> whether it is
    a compiler thread), kept by the caller across calls, saves reading each thread's name
    again: a JVM has tens of threads, and a phase reads this ten times a second."""
    known = {} if threads is None else threads
    ticks = 0
    tasks = Path(f"/proc/{pid}/task")
    for task in os.listdir(tasks):
        with contextlib.suppress(OSError):
            jit = known.get(task)
            if jit is None:
                name = (tasks / task / "comm").read_text()
                jit = known[task] = name.startswith(("C1 Compiler", "C2 Compiler"))
            if jit:
                fields = (tasks / task / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def latency(
    bootstrap: str,
    redis_url: str,
    rate: float,
    seconds: float,
    logs: Path,
    worker_env: dict[str, str],
    contestant: str = "worker",
    spy: Path | None = None,
    harness: Harness | None = None,
    scrape_first: bool = True,
) -> Timed:
    """A latency phase at `rate` activities/s for `seconds`, of the worker or of a peer
    (a `PEERS` name: it re-produces each activity, so every activity is timed);
    `scrape_first`: the worker's /metrics read before the warm-up record (and not again
    until the phase's end), not once the warm-up's output arrived."""
    if contestant == "worker":
        settings = fresh_settings(bootstrap, redis_url) | worker_env
        topic_in, topic_out = (
            settings["STREAMS_TOPIC_ACTIVITIES"],
            settings["STREAMS_TOPIC_MEMBERSHIPS"],
        )
        process: Any = WorkerProcess(settings, logs / "latency-worker.log")
        identity = "activityId"
    else:
        topic_in = f"latency-{uuid.uuid4().hex[:8]}"
        topic_out = f"{topic_in}.out"
        create_topics(bootstrap, {topic_in: PARTITIONS, topic_out: PARTITIONS})
        process = passthrough.variant_process(contestant, bootstrap, topic_in, topic_out, logs, [])
        identity = "marketoGUID"
    log_append_time(bootstrap, [topic_in, topic_out])
    activities = phase_activities(int(rate * seconds), 2000, 5, datetime.now(UTC))
    readings: list[tuple[dict[str, float], dict[str, float]]] = []
    spying: list[subprocess.Popen[bytes]] = []
    harness = harness or Harness()

    def warmed() -> None:
        if contestant == "worker" and not readings:
            readings.append(worker_stages(process))
        if spy is not None:
            spying.append(py_spy(process.pid, spy / f"{contestant}-{rate:.0f}.txt", seconds))

    spawned = time.monotonic()
    with process:
        if contestant == "worker":
            process.wait_ready(120)
            if scrape_first:
                # The first scrape creates the worker's consumer-lag reader (kafka-python, in
                # a thread: its client loop holds the interpreter for a second or so); left
                # to the phase's first reading, it stalled the phase's first seconds. Every
                # scrape reads the lag (a few requests to the broker from that thread), so
                # the stage readings are taken here and after the phase, none while records
                # are sent; the means then include the warm-up record's batch.
                readings.append(worker_stages(process))
        ready = time.monotonic() - spawned
        timed = time_phase(
            bootstrap,
            topic_in,
            topic_out,
            activities,
            rate,
            identity,
            process.alive,
            warmed,
            harness,
            {"contestant": process.pid, **harness.services},
        )
        timed.start = {"ready": ready} | {
            k: v - spawned if k in ("probe", "first") else v for k, v in timed.start.items()
        }
        if readings:  # the warm-up's group join left out
            timed.stages = stage_means(readings[0], worker_stages(process))
        for spied in spying:
            spied.wait(60)
    return timed


def py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Sample the process's threads (py-spy, idle samples included) for `seconds`, into
    `out` as collapsed stacks: `--spy DIR` (needs `pip install py-spy` and ptrace)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)]
    argv += ["--duration", str(int(seconds)), "--format", "raw", "--threads", "--idle"]
    argv += ["--rate", "200", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_phase(
    bootstrap: str,
    topic_in: str,
    topic_out: str,
    activities: list[dict[str, Any]],
    rate: float,
    identity: str,
    alive: Callable[[], bool],
    warmed: Callable[[], None],
    harness: Harness,
    pids: dict[str, int],
) -> Timed:
    """Warm up (the first activity, until its output arrives: the contestant's group join
    happens before the clock starts), then send the rest at `rate` and time each output
    record (matched to its activity by its `identity` field) from send to its arrival here
    or its append (`harness.timing`); `warmed` is called once the warm-up's output arrived.
    The CPU time of the processes in `pids` (name -> pid) is taken from then to the last
    output seen."""
    timed = Timed()
    timed.timing = harness.timing
    timed.sender_linger = linger_for(harness, rate)
    timed.topics = (topic_in, topic_out)
    counting = harness.requests is not None
    consumer = TimingReader(
        harness.client, bootstrap, [topic_in, topic_out], counting, harness.reader_wait_ms
    )
    warm = producer(bootstrap, 0)
    probe = next(a for a in activities if a["activityTypeId"] == 12)
    timed.start["probe"] = time.monotonic()
    probe_sent = time.time()
    warm.send(topic_in, key=str(probe["leadId"]).encode(), value=orjson.dumps(probe))
    warm.flush()
    warm.close()
    deadline = time.monotonic() + 120
    stamps: dict[str, float] = {}
    while "out" not in stamps:
        for topic, _, timestamp in consumer.poll(0.02):
            stamps.setdefault("in" if topic == topic_in else "out", timestamp)
        if time.monotonic() > deadline or not alive():
            consumer.close()
            raise SystemExit(f"latency: no output on {topic_out} after the warm-up record")
    timed.start["first"] = time.monotonic()
    if "in" in stamps:
        timed.start["probe append"] = stamps["in"] - probe_sent
        timed.start["probe worker"] = stamps["out"] - stamps["in"]
    consumed = harness.timing == "consumed"
    # During the phase the timing consumer reads the output topic only (or nothing); the
    # input records' append times are read after it.
    consumer.drop(topic_in)
    if not consumed:
        consumer.drop(topic_out)
    warmed()
    sending = start_paced_sender(harness, bootstrap, topic_in, activities, probe, rate)
    sending.wait_ready()
    broker_from = harness.requests.read() if harness.requests is not None else None
    consumer.poll(STATS_MS / 1000 * 1.2)  # its statistics as of now
    reader_requests = consumer.requests()
    threads: dict[str, bool] = {}
    cpu_from = {name: cpu_seconds(pid) for name, pid in pids.items()}
    jit_from = jit_seconds(pids["broker"], threads) if "broker" in pids else 0.0
    reader_from = time.process_time()

    sending.go.set()
    sent_at: dict[str, float] = {}
    taken: list[tuple[list[Any], float]] = []
    """(the records of a `take`, when it returned), as read."""
    last_out = -1
    quiet_since = time.monotonic()
    cpu_to = dict(cpu_from)
    jit_to = jit_from
    reader_to = reader_from
    sampled = 0.0
    receive = sending.receive
    while not sent_at or time.monotonic() - quiet_since < 3:
        if not sent_at and receive.poll():
            sent_at, timed.sender_cpu, timed.sender_behind, requests = sending.report()
            timed.harness_requests["load generator"] = requests
        if consumed:
            records = consumer.take(0.1)
            if records:
                taken.append((records, time.time()))
            progressed = bool(records)
        else:
            receive.poll(0.5)
            out = sum(consumer.end_offsets([topic_out]).values())
            progressed, last_out = out != last_out, out
        if progressed:
            quiet_since = time.monotonic()
            if quiet_since - sampled > 0.1:  # the CPU times up to the last output
                sampled = quiet_since
                cpu_to = {name: cpu_seconds(pid) for name, pid in pids.items()}
                jit_to = jit_seconds(pids["broker"], threads) if "broker" in pids else 0.0
                reader_to = time.process_time()
        if not sending.process.is_alive() and not sent_at and not receive.poll():
            raise SystemExit(f"latency: the load generator exited ({sending.process.exitcode})")
    timed.cpu = {name: cpu_to[name] - cpu_from[name] for name in pids}
    timed.broker_jit = jit_to - jit_from
    timed.reader_cpu = reader_to - reader_from
    if broker_from is not None and harness.requests is not None:
        timed.broker = Delta.between(broker_from, harness.requests.read())
        now_requests = consumer.requests()
        timed.harness_requests["timing consumer"] = {
            kind: count - reader_requests.get(kind, 0) for kind, count in now_requests.items()
        }
    sending.process.join(30)
    read = [
        (raw, timestamp, now)
        for records, now in taken
        for _, raw, timestamp in consumer.unpack(records)
    ]
    """(output value, its append time, when it was read here), as read."""
    del taken
    consumer.close()
    afterwards = [topic_in] if consumed else [topic_in, topic_out]
    after = TimingReader(harness.client, bootstrap, afterwards)
    appended: dict[str, float] = {}
    for topic, raw, timestamp in after.read_to_end(afterwards):
        if topic == topic_in:
            appended[orjson.loads(raw)["marketoGUID"]] = timestamp
        else:
            read.append((raw, timestamp, -1.0))
    after.close()
    arrived: dict[str, tuple[float, float]] = {}
    for raw, out_at, now in read:  # an activity's first output: read first, appended first
        activity = orjson.loads(raw)[identity]
        seen = arrived.get(activity)
        if seen is None or (not consumed and out_at < seen[0]):
            arrived[activity] = (out_at, now)
    first_send = min(sent_at.values(), default=0.0)
    for activity, (out_at, now) in arrived.items():
        if activity not in sent_at:
            continue
        sent = sent_at[activity]
        timed.latencies.append((now if consumed else out_at) - sent)
        parts = (-1.0, -1.0, now - out_at if consumed else -1.0)
        if activity in appended:
            parts = (appended[activity] - sent, out_at - appended[activity], parts[2])
            timed.segments["append"].append(parts[0])
            timed.segments["worker"].append(parts[1])
        if consumed:
            timed.segments["read"].append(parts[2])
        timed.timeline.append((sent - first_send, timed.latencies[-1], *parts))
    timed.timeline.sort()
    timed.sent = len(sent_at)
    return timed


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100)
    return f"p50 {cuts[49] * 1000:>6,.1f} ms, p99 {cuts[98] * 1000:>6,.1f} ms"


def measure_throughput(
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    lines: list[bytes],
    logs: Path,
    worker_env: dict[str, str],
) -> float:
    """The worker's sustained rate, Redis's memory per lead, the peers' rates and the
    ratios, printed; returns the worker's rate."""
    admin = redis.Redis.from_url(redis_url)
    memory_before = admin.info("memory")["used_memory"]
    rate, join = throughput(bootstrap, redis_url, lines, logs, args.timeout, worker_env)
    print(
        f"worker:       {rate:>9,.0f} activities/s sustained (first result after {join:.1f} s)",
        flush=True,
    )
    leads = len({orjson.loads(line)["leadId"] for line in lines})
    used = admin.info("memory")["used_memory"] - memory_before
    print(
        f"redis:        {used / leads:>9,.0f} bytes per lead ({leads:,} leads, "
        f"{len(lines) / leads:.0f} activities each on average)",
        flush=True,
    )
    admin.close()
    floors = {}
    for variant in args.peers:
        floor_in = f"floor-{uuid.uuid4().hex[:8]}"
        create_topics(bootstrap, {floor_in: PARTITIONS, f"{floor_in}.out": PARTITIONS})
        preload(bootstrap, floor_in, lines)
        result = passthrough.run_variant(
            variant, bootstrap, floor_in, f"{floor_in}.out", args.records, args.timeout, logs, []
        )
        floors[variant] = result.rate
        print(
            f"peer:         {result.rate:>9,.0f} records/s  {variant}: {PEERS[variant]} "
            f"({result.note or 'ok'})",
            flush=True,
        )
    for variant, peer_rate in floors.items():
        if peer_rate > 0:
            print(f"ratio:        worker / {variant:<16} {rate / peer_rate:>6.2f}", flush=True)
    return rate


def report_latency(who: str, timed: Timed, offered: float, what: str) -> bool:
    """Print one latency phase's figures; False if too few outputs were timed."""
    if len(timed.latencies) < 20:
        print(f"latency: {who}: only {len(timed.latencies)} outputs timed at {offered:,.0f}/s")
        return False
    label = "latency:" if who == "worker" else f"  {who}:"
    if who.startswith("worker "):  # a --compare variant
        label = f"latency {who.removeprefix('worker ')}:"
    per = 1e6 / timed.sent if timed.sent else 0.0
    print(
        f"{label:<14}{percentiles(timed.latencies)}"
        f" at {offered:>6,.0f} activities/s offered ({what}; "
        f"{timed.sent:,} sent, {len(timed.latencies):,} outputs timed; produce -> "
        f"{timed.timing})",
        flush=True,
    )
    cpu = {who: timed.cpu.get("contestant", 0.0)} | {
        name: seconds for name, seconds in timed.cpu.items() if name != "contestant"
    }
    cpu |= {"load generator": timed.sender_cpu, "timing consumer": timed.reader_cpu}
    total = sum(cpu.values()) * per
    print(
        "  CPU per activity sent: "
        + ", ".join(f"{name} {seconds * per:,.1f} µs" for name, seconds in cpu.items())
        + f" (of which the broker's JIT compiler {timed.broker_jit * per:,.1f} µs)"
        + f"; in all {total:,.0f} µs, {total * offered / 1e6:.2f} cores at the offered rate"
        f" of {os.cpu_count()} (from the warm-up's end to the last output, idle time "
        f"included); the load generator at most {timed.sender_behind * 1000:,.1f} ms "
        f"behind its schedule (linger {timed.sender_linger:g} ms); load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(
        "  per activity: "
        + "; ".join(
            f"{name} {percentiles(values)}"
            for name, values in timed.segments.items()
            if len(values) >= 20
        )
        + "  (append: sent -> appended to the input topic; worker: -> its "
        "output appended; "
        + (
            "read: -> read by the timing consumer)"
            if timed.timing == "consumed"
            else "no timing consumer during the phase: end to end is sent -> appended)"
        ),
        flush=True,
    )
    if who.startswith("worker") and {"ready", "probe", "first"} <= timed.start.keys():
        start = timed.start
        print(
            f"  cold start: ready {start['ready']:.2f} s after its spawn, first membership "
            f"read {start['first']:.2f} s after it (the warm-up record, sent once ready: "
            f"{(start['first'] - start['probe']) * 1000:,.0f} ms to its membership read "
            "here, of which "
            + (
                f"append {start['probe append'] * 1000:,.0f} ms, worker "
                f"{start['probe worker'] * 1000:,.0f} ms)"
                if "probe append" in start
                else "the split is unknown: its input record was not read first)"
            ),
            flush=True,
        )
    if timed.broker is not None:
        print_requests(who, timed)
    print_timeline(timed)
    if timed.stages:
        print(
            "  worker means: "
            + ", ".join(
                f"{stage} {timed.stages[stage] * 1000:.1f} ms"
                for stage in ("fetch", *STAGES)
                if stage in timed.stages
            )
            + f", {timed.stages.get('records', 0):.0f} records per batch"
            + "  (fetch per activity: appended -> its fetch returned; the rest per "
            "batch)",
            flush=True,
        )
    return True


REQUEST_KINDS: Final = ("Produce", "Fetch", "Heartbeat", "OffsetCommit", "Metadata")
"""Request kinds printed first, in this order; the others follow, by count."""
PART_KINDS: Final = ("FetchConsumer", "FetchFollower")
"""The broker's own split of Fetch (consumers', followers'): not requests of their own."""


def print_requests(who: str, timed: Timed) -> None:
    """The requests the broker served over a phase, per second, by kind: in all, the load
    generator's and the timing consumer's (their own counts), and the rest, which is the
    contestant's (and the broker's own, e.g. its KRaft heartbeats); then records per
    produce request and per fetch."""
    delta = timed.broker
    assert delta is not None
    harness = timed.harness_requests
    rest = dict(delta.requests)
    for counts in harness.values():
        for kind, count in counts.items():
            if kind in rest:
                rest[kind] -= count
    for part in PART_KINDS:
        rest.pop(part, None)
    kinds = [k for k in REQUEST_KINDS if delta.requests.get(k)]
    kinds += sorted(
        (
            k
            for k in delta.requests
            if k not in kinds and k not in PART_KINDS and delta.requests[k] > 0
        ),
        key=lambda k: -delta.requests[k],
    )

    def rates(counts: dict[str, float]) -> str:
        return ", ".join(
            f"{kind} {delta.per_second(counts.get(kind, 0)):,.1f}"
            for kind in kinds
            if counts.get(kind, 0) > 0
        )

    topic_in, topic_out = timed.topics
    records_in = delta.topic("MessagesInPerSec", topic_in)
    records_out = delta.topic("MessagesInPerSec", topic_out)
    sender_produce = harness.get("load generator", {}).get("Produce", 0)
    own_produce = rest.get("Produce", 0)
    own_fetch = rest.get("Fetch", 0)
    produce_parts = delta.topic("TotalProduceRequestsPerSec", topic_out) / max(own_produce, 1)
    fetch_parts = delta.topic("TotalFetchRequestsPerSec", topic_in) / max(own_fetch, 1)
    print(
        f"  broker requests/s over {delta.seconds:.1f} s: all {rates(delta.requests)}; "
        + "; ".join(f"{name} {rates(counts)}" for name, counts in harness.items())
        + f"; so {who} (and the broker's own) {rates(rest)}",
        flush=True,
    )
    print(
        f"  records per request: {who}'s produce {records_out / max(own_produce, 1):,.1f} "
        f"({delta.per_second(records_out):,.0f} records/s out), its fetch "
        f"{records_in / max(own_fetch, 1):,.1f}; the load generator's produce "
        f"{records_in / max(sender_produce, 1):,.1f}; partitions per request: "
        f"{who}'s produce {produce_parts:.2f}, fetch {fetch_parts:.2f}",
        flush=True,
    )


def print_timeline(timed: Timed) -> None:
    """The latencies over the phase: per second of sending for the first seconds, then the
    rest, and the slowest activities with when they were sent and their segments."""
    rows = timed.timeline
    if len(rows) < 20:
        return
    buckets: dict[int, list[float]] = {}
    for at, total, *_ in rows:
        buckets.setdefault(min(int(at), 5), []).append(total)
    for second, values in sorted(buckets.items()):
        values.sort()
        label = f"{second}-{second + 1} s" if second < 5 else "5 s on "
        print(
            f"  sent {label}: {len(values):>6,} timed, p50 {values[len(values) // 2] * 1000:>7,.1f}"
            f" ms, p99 {values[int(len(values) * 0.99)] * 1000:>7,.1f} ms,"
            f" max {values[-1] * 1000:>7,.1f} ms",
            flush=True,
        )
    slowest = sorted(rows, key=lambda row: -row[1])[:5]
    print(
        "  slowest: "
        + "; ".join(
            f"sent at {at:.2f} s: {total * 1000:,.0f} ms (append {a * 1000:,.0f}, worker "
            f"{w * 1000:,.0f}, read {r * 1000:,.0f})"
            for at, total, a, w, r in slowest
        ),
        flush=True,
    )


WARMUP_SECONDS: Final = 90.0
"""The default `--broker-warmup`: at most this long, in worker phases of WARMUP_PHASE s."""
WARMUP_PHASE: Final = 20.0
WARM_JIT_US: Final = 1.0
"""The broker is warm once its JIT compiler threads took less than this much CPU (µs) per
activity over a warm-up phase."""


def warm_broker(
    bootstrap: str,
    redis_url: str,
    logs: Path,
    worker_env: dict[str, str],
    harness: Harness,
    offered: float,
    seconds: float,
) -> None:
    """A fresh broker's JVM runs its produce and fetch paths slowly until it has compiled
    them: in its first ~30 s at 1,000/s, records took up to a second to be appended (the
    "append" segment), whoever consumed them; after the throughput phase (whose preload
    and fetches take other paths) its JIT compiler still took 30.1 of the broker's 50.7 µs
    of CPU per activity in the half-rate phase (2026-11-30, 09:10 UTC), and at 30,000/s
    on a fresh broker 6-11 µs per activity over its first minute of phases, under 1 µs
    after (12:15-12:27 UTC): a cold broker appended at p50 834 ms, p99 4.6 s, a warm one at
    p50 2 ms. A production broker runs for weeks, warm. So worker phases at `offered` (the
    first latency phase's rate), each of at most WARMUP_PHASE s and its own group, topics
    and Redis keys (the phases after them still time a worker that starts cold), are run
    first, until the broker's JIT took under WARM_JIT_US per activity in one or `seconds`
    are spent, so that the phases time the worker, not the broker's warm-up
    (--broker-warmup)."""
    spent = 0.0
    while spent < seconds:
        length = min(WARMUP_PHASE, seconds - spent)
        spent += length
        timed = latency(bootstrap, redis_url, offered, length, logs, worker_env, harness=harness)
        if not timed.latencies:
            continue
        jit = timed.broker_jit * 1e6 / timed.sent if timed.sent else 0.0
        print(
            f"broker warm-up: a worker at {offered:,.0f}/s for {length:.0f} s "
            f"(not a result): {percentiles(timed.latencies)}, append "
            f"{percentiles(timed.segments['append'])}; the broker's JIT compiler "
            f"{jit:,.1f} µs per activity",
            flush=True,
        )
        if "broker" in harness.services and jit < WARM_JIT_US:
            break


def compare_variant(text: str) -> tuple[str, dict[str, str]]:
    """`NAME=STREAMS_X=V,STREAMS_Y=W` -> (NAME, {STREAMS_X: V, STREAMS_Y: W})."""
    name, _, settings = text.partition("=")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    if not name or not env:
        raise SystemExit(f"--compare {text!r}: NAME=STREAMS_X=V[,STREAMS_Y=W] expected")
    return name, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0, help="each latency phase's length")
    parser.add_argument(
        "--latency-at",
        type=lambda t: [float(x) for x in t.split(",") if x],
        default=[0.5, 0.25, 0.1],
        help="offered rates for the latency phases, as fractions of the "
        "sustained rate (default 0.5,0.25,0.1)",
    )
    parser.add_argument(
        "--latency-rates",
        type=lambda t: [float(x) for x in t.split(",") if x],
        default=[1000.0],
        help="offered rates for more latency phases, in activities/s (default 1000)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STREAMS_X=VALUE",
        help="a worker setting for every worker of the run (repeatable), e.g. "
        "STREAMS_DELIVERY_OVERLAP=false",
    )
    parser.add_argument(
        "--no-throughput",
        action="store_true",
        help="skip the throughput phase and the peers (latency phases at --latency-rates only)",
    )
    parser.add_argument(
        "--logs", type=Path, metavar="DIR", help="keep the contestants' logs in DIR"
    )
    parser.add_argument(
        "--broker-warmup",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before the latency phases, warm the broker up with workers at the first "
        f"phase's rate, in phases of {WARMUP_PHASE:g} s, until its JIT compiler takes under "
        f"{WARM_JIT_US:g} µs per activity or for this long at most (default "
        f"{WARMUP_SECONDS:g}, after the throughput phase too; 0: time a cold broker too)",
    )
    parser.add_argument(
        "--peers",
        type=lambda t: [p for p in t.split(",") if p],
        default=["quix-state", "quix", "noack-take-fast", "raw"],
        help=f"contestants, in order (default quix-state,quix,noack-take-fast,raw): {list(PEERS)}",
    )
    parser.add_argument(
        "--latency-peers",
        type=lambda t: [p for p in t.split(",") if p],
        default=["raw", "quix-state"],
        help="contestants timed after the worker in each latency phase, at the same offered "
        f"rate with the same sender and timing consumer (default raw,quix-state; '' for "
        f"none): {list(PEERS)}",
    )
    parser.add_argument(
        "--no-scrape-first",
        dest="scrape_first",
        action="store_false",
        help="do not read the worker's /metrics before its warm-up record (as before "
        "2026-11-30 02:50 UTC: its first lag reading then falls in the timed phase)",
    )
    parser.add_argument(
        "--spy",
        type=Path,
        metavar="DIR",
        help="sample each latency phase's contestant with py-spy (collapsed stacks into DIR)",
    )
    parser.add_argument(
        "--harness",
        choices=list(HARNESSES),
        default="confluent",
        help="the load generator's and the timing consumer's Kafka client: "
        + "; ".join(f"{k}: {v}" for k, v in HARNESSES.items()),
    )
    parser.add_argument(
        "--timing",
        choices=list(TIMINGS),
        default="consumed",
        help="what the latency phases time, end to end: "
        + "; ".join(f"{k}: {v}" for k, v in TIMINGS.items()),
    )
    parser.add_argument(
        "--sender-linger",
        type=float,
        default=None,
        metavar="MS",
        help="the load generator's producer linger: each record waits up to this long in the "
        "client (counted in its latency) so that the broker gets fewer, larger produce "
        f"requests (default: 0 up to {LINGER_ABOVE:,.0f} activities/s, "
        f"{AUTO_LINGER_MS:g} ms above)",
    )
    parser.add_argument(
        "--reader-fetch-wait",
        type=int,
        default=READER_WAIT_MS,
        metavar="MS",
        help="the timing consumer's fetch long poll: how long the broker may hold its fetch "
        "when no new record is there (it answers as soon as one is appended; default "
        f"{READER_WAIT_MS}; 5 before 2026-11-30 09:10 UTC)",
    )
    parser.add_argument(
        "--broker-requests",
        action="store_true",
        help="read the broker's request counters (JMX, Kafka's JmxTool) around each latency "
        "phase and print its requests per second by kind, the harness's and the "
        "contestant's, and records per produce request and per fetch (the confluent "
        "harness counts its own requests)",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=STREAMS_X=V[,STREAMS_Y=W]",
        help="in each latency phase, also time a worker with these settings (on top of "
        "--set), named NAME; repeatable; the variants alternate, the first one first in "
        "odd phases and last in even ones, so that pairs are taken minutes apart at most",
    )
    args = parser.parse_args()
    unknown = (set(args.latency_peers) | set(args.peers)) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; known: {list(PEERS)}")
    now = datetime.now(UTC)
    lines = [orjson.dumps(a) for a in phase_activities(args.records, args.leads, 3, now)]
    with contextlib.ExitStack() as stack:
        logs = args.logs or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-"))
        )
        broker = stack.enter_context(KafkaBroker())
        redis_server = stack.enter_context(RedisServer())
        redis_url = redis_server.url
        services = {}
        if broker.process is not None and redis_server.process is not None:
            services = {"broker": broker.process.pid, "redis": redis_server.process.pid}
        requests = None
        if args.broker_requests and broker.process is not None:
            requests = BrokerRequests(broker.process.pid)
        harness = Harness(
            args.harness,
            args.timing,
            args.sender_linger,
            services,
            args.reader_fetch_wait,
            requests,
        )
        print(
            f"broker: Apache Kafka at {broker.bootstrap}; {len(lines):,} sample activities "
            f"over {args.leads:,} leads; load generator and timing consumer: {args.harness}, "
            "the load generator's linger "
            + (
                f"{args.sender_linger:g} ms"
                if args.sender_linger is not None
                else f"0 up to {LINGER_ABOVE:,.0f}/s, {AUTO_LINGER_MS:g} ms above"
            )
            + "; end to end: produce -> "
            f"{args.timing} ({TIMINGS[args.timing]}); {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
        worker_env = dict(item.split("=", 1) for item in args.set)
        rate = 0.0
        if not args.no_throughput:
            rate = measure_throughput(args, broker.bootstrap, redis_url, lines, logs, worker_env)
        phases = [(rate * f, f"{f:.0%} of sustained") for f in args.latency_at if rate]
        phases += [(r, "fixed") for r in args.latency_rates]
        warmup = args.broker_warmup
        if warmup is None:
            warmup = WARMUP_SECONDS
        if warmup > 0:
            first = phases[0][0] if phases else 1000.0
            warm_broker(broker.bootstrap, redis_url, logs, worker_env, harness, first, warmup)
        variants: list[tuple[str, dict[str, str]]] = [("", {})]
        variants += [compare_variant(text) for text in args.compare]
        for number, (offered, what) in enumerate(phases):
            order = variants if number % 2 == 0 else variants[::-1]
            timings: dict[str, Timed] = {}
            for name, env in order:
                timings[name] = latency(
                    broker.bootstrap,
                    redis_url,
                    offered,
                    args.seconds,
                    logs,
                    worker_env | env,
                    spy=args.spy,
                    harness=harness,
                    scrape_first=args.scrape_first,
                )
                label = f"worker {name} ({','.join(f'{k}={v}' for k, v in env.items())})"
                report_latency(label if name else "worker", timings[name], offered, what)
            timed = timings[""]
            if len(timed.latencies) < 20:
                continue
            for peer in args.latency_peers:
                peer_timed = latency(
                    broker.bootstrap,
                    redis_url,
                    offered,
                    args.seconds,
                    logs,
                    {},
                    peer,
                    args.spy,
                    harness,
                )
                if report_latency(peer, peer_timed, offered, what):
                    worker_cuts = statistics.quantiles(timed.latencies, n=100)
                    peer_cuts = statistics.quantiles(peer_timed.latencies, n=100)
                    print(
                        f"  ratio:        worker / {peer:<12} p50 "
                        f"{worker_cuts[49] / peer_cuts[49]:>5.2f}, p99 "
                        f"{worker_cuts[98] / peer_cuts[98]:>5.2f}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
