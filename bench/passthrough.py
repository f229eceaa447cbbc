"""Pass-through throughput: Faust agents (per-event, take_events, noack_take) vs raw aiokafka.

    .venv/bin/python bench/passthrough.py --records 200000
    .venv/bin/python bench/passthrough.py --variants take,raw
    .venv/bin/python bench/passthrough.py --bootstrap HOST:PORT --set broker_commit_every=10000

The parent starts a broker (or uses --bootstrap), creates `in` (4 partitions) and one
output topic per variant (`out-<variant>`, so each run counts only its own records;
with --bootstrap all names get a `-<run id>` suffix, the broker may hold older runs),
pre-loads N ~250-byte JSON records keyed by lead id into `in` with kafka-python, then
for each variant starts a worker in a subprocess (`passthrough.py worker <variant>`)
with a fresh consumer group. The worker decodes each record (orjson), re-encodes it and
produces it to its output topic, committing offsets. The parent counts the output topic
until N records arrived (not the end offsets: some Kafka-compatible brokers report them
wrong). The rate is N over
the time from the first output record to the last, so the group join is excluded; the
join delay (worker spawn to first output record) is printed apart, and so are the rate
from the output records' own timestamps and the worker's SIGTERM shutdown time.

Variants: per-event-default (Faust defaults, `await out.send` per event), per-event
(same code, tuned settings), take (tuned, `take_events`, one `app.producer.send` per
record, deliveries awaited per batch), take-send-soon (`topic.send_soon` instead),
noack-take (tuned, `noack_take`, deliveries awaited, then each event acked: the
at-least-once form), `<agent>-fast` (the same on `create_app(fast_drain=True)`), raw
(aiokafka getmany, one BatchBuilder per output partition, send_batch, commit),
confluent-pass (confluent-kafka, the `bench` extra: each record's bytes re-produced
undecoded, auto-commit; a floor, not a processor).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from streams.devstack.kafka import KafkaBroker, create_topics  # noqa: E402
from streams.devstack.process import ManagedProcess  # noqa: E402
from streams.runtime import faust_app  # noqa: E402

PARTITIONS = 4
LEADS = 20_000
FAUST_AGENTS = ("per-event-default", "per-event", "take", "take-send-soon", "noack-take")
QUIX_APPS = ("quix", "quix-state")
ALL_VARIANTS = (
    *FAUST_AGENTS,
    *(f"{a}-fast" for a in FAUST_AGENTS[1:]),
    "raw",
    "confluent-pass",
    *QUIX_APPS,
)
DEFAULT_VARIANTS = ("per-event", "take", "noack-take", "noack-take-fast", "raw")


# --- records -------------------------------------------------------------------------


def make_record(i: int) -> tuple[bytes, bytes]:
    """A ~250-byte custom-activity JSON record keyed by its lead id."""
    lead = f"lead-{i % LEADS:06d}"
    doc = {
        "id": uuid.UUID(int=i).hex,
        "lead_id": lead,
        "type": "custom.webinar_attended",
        "ts": 1_717_000_000_000 + i,
        "attrs": {
            "webinar": f"wb-{i % 97}",
            "minutes": i % 120,
            "source": "web",
            "country": "DE",
            "utm": {"campaign": f"spring-{i % 13}", "medium": "email"},
        },
    }
    return lead.encode(), orjson.dumps(doc)


def preload(bootstrap: str, topic: str, n: int) -> float:
    """Write N records to `topic` with kafka-python (acks=1, large lingering batches);
    returns records/s. Raises if any record failed."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=50,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    start = time.monotonic()
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in map(make_record, range(n))]
        producer.flush(timeout=300)
        failed = sum(1 for f in futures if not f.succeeded())
        if failed:
            raise RuntimeError(f"preload: {failed} of {n} records not acknowledged")
    finally:
        producer.close(timeout=30)
    return n / (time.monotonic() - start)


# --- parent: run one variant and count its output ------------------------------------


@dataclass
class Result:
    variant: str
    count: int
    join_s: float  # worker spawn -> first output record
    span_s: float  # first output record -> N-th, as they arrive at the counter
    ts_span_s: float  # the output records' own timestamps: first -> last
    stop_s: float  # SIGTERM -> worker exit
    exit_code: int | None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.span_s if self.span_s > 0 else 0.0

    @property
    def ts_rate(self) -> float:
        return self.count / self.ts_span_s if self.ts_span_s > 0 else 0.0


@dataclass
class Counted:
    count: int = 0
    first: float | None = None
    last: float | None = None
    ts_min: int = 2**63
    ts_max: int = 0
    note: str = ""


async def count_output(
    bootstrap: str, topic: str, n: int, deadline: float, alive: Callable[[], bool]
) -> Counted:
    """Read `topic` from the start until N records arrived, the deadline passed or the
    worker died."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await asyncio.wait_for(consumer.start(), 30)
    c = Counted()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        while c.count < n:
            if time.monotonic() > deadline:
                c.note = "timeout"
                break
            if not alive():
                c.note = "worker exited"
                break
            batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
            now = time.monotonic()
            for records in batches.values():
                if records:
                    c.first = now if c.first is None else c.first
                    c.last = now
                    c.count += len(records)
                    c.ts_min = min(c.ts_min, records[0].timestamp)
                    c.ts_max = max(c.ts_max, records[-1].timestamp)
    finally:
        await asyncio.wait_for(consumer.stop(), 30)
    return c


def variant_process(
    variant: str, bootstrap: str, topic_in: str, topic_out: str, logdir: Path, extra: list[str]
) -> ManagedProcess:
    """One variant's worker (`passthrough.py worker <variant>`), not started yet, in a fresh
    consumer group; its log in `logdir`."""
    group = f"bench-{variant}-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, str(Path(__file__).resolve()), "worker", variant]
    argv += ["--bootstrap", bootstrap, "--group", group, "--in", topic_in, "--out", topic_out]
    argv += ["--datadir", str(logdir / f"faust-{variant}"), *extra]
    return ManagedProcess(f"worker-{variant}", argv, logdir / f"{variant}.log", cwd=logdir)


def run_variant(
    variant: str,
    bootstrap: str,
    topic_in: str,
    topic_out: str,
    n: int,
    timeout: float,
    logdir: Path,
    extra: list[str],
) -> Result:
    worker = variant_process(variant, bootstrap, topic_in, topic_out, logdir, extra)
    spawned = time.monotonic()
    with worker:
        c = asyncio.run(count_output(bootstrap, topic_out, n, spawned + timeout, worker.alive))
        stopping = time.monotonic()
        worker.stop(grace=30.0)  # SIGTERM, SIGKILL after 30 s
        stop_s = time.monotonic() - stopping
    exit_code = worker.proc.returncode if worker.proc else None
    note = f"{c.note} (log: {worker.log_path})" if c.note else ""
    if c.first is None or c.last is None:
        return Result(variant, c.count, float("nan"), 0, 0, stop_s, exit_code, note or "no output")
    return Result(
        variant,
        c.count,
        join_s=c.first - spawned,
        span_s=c.last - c.first,
        ts_span_s=(c.ts_max - c.ts_min) / 1000,
        stop_s=stop_s,
        exit_code=exit_code,
        note=note,
    )


def parent(args: argparse.Namespace) -> int:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(ALL_VARIANTS)
    if unknown:
        sys.exit(f"unknown variants {sorted(unknown)}; known: {', '.join(ALL_VARIANTS)}")
    with contextlib.ExitStack() as stack:
        if args.bootstrap:
            bootstrap, name = args.bootstrap, f"broker at {args.bootstrap}"
        else:
            bootstrap, name = stack.enter_context(KafkaBroker()).bootstrap, "Apache Kafka 3.9"
        if args.keep_logs:
            logdir = Path(tempfile.mkdtemp(prefix="bench-passthrough-"))
        else:
            logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pt-")))
        run = f"-{uuid.uuid4().hex[:6]}" if args.bootstrap else ""
        topic_in, topic_out = f"in{run}", {v: f"out-{v}{run}" for v in variants}
        create_topics(
            bootstrap, {topic_in: PARTITIONS} | dict.fromkeys(topic_out.values(), PARTITIONS)
        )
        print(f"{name} on {bootstrap}: pre-loading {args.records} records", flush=True)
        rate = preload(bootstrap, topic_in, args.records)
        print(f"preload into {topic_in!r}: {rate:,.0f} records/s", flush=True)
        timeout = args.timeout or 120 + args.records / 1000
        extra = ["--take-max", str(args.take_max), "--take-within", str(args.take_within)]
        for setting in args.set:
            extra += ["--set", setting]
        results = []
        for variant in variants:
            r = run_variant(
                variant,
                bootstrap,
                topic_in,
                topic_out[variant],
                args.records,
                timeout,
                logdir,
                extra,
            )
            results.append(r)
            print(format_result(r), flush=True)
        print(f"\n{name}, {args.records} records, {os.cpu_count()} cores")
        print(f"{'variant':>20} {'rec/s':>8} {'ts rec/s':>8} {'join s':>6} {'stop s':>6}")
        for r in results:
            print(
                f"{r.variant:>20} {r.rate:>8,.0f} {r.ts_rate:>8,.0f} {r.join_s:>6.1f}"
                f" {r.stop_s:>6.1f}"
            )
        if args.keep_logs:
            print(f"worker logs in {logdir}")
    return 0 if all(r.count >= args.records for r in results) else 1


def format_result(r: Result) -> str:
    return (
        f"{r.variant:>20}: {r.rate:>8,.0f} rec/s (timestamps {r.ts_rate:>8,.0f})"
        f"  join {r.join_s:4.1f} s  span {r.span_s:6.2f} s  n={r.count}"
        f"  SIGTERM->exit {r.stop_s:.1f} s rc={r.exit_code} {r.note}"
    )


# --- worker subprocess ---------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    if args.variant == "raw":
        asyncio.run(raw_worker(args))
    elif args.variant == "confluent-pass":
        confluent_pass_worker(args)
    elif args.variant in QUIX_APPS:
        quix_worker(args)
    else:
        faust_worker(args)


def quix_worker(args: argparse.Namespace) -> None:
    """The peers (the `bench` extra): a Quix Streams application, at-least-once, that
    decodes each record and re-produces it (`quix`), or also reads and writes a per-key
    count in its RocksDB state and adds it to the record (`quix-state`): one record out
    per record in, as the worker emits one membership per activity with an `every time`
    campaign."""
    from quixstreams import Application

    loads, dumps = orjson.loads, orjson.dumps
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=str(Path(args.datadir) / "state"),
        processing_guarantee="at-least-once",
        loglevel="WARNING",
    )
    source = app.topic(args.topic_in, key_deserializer="bytes", value_deserializer="bytes")
    sink = app.topic(args.out, key_serializer="bytes", value_serializer="bytes")
    sdf = app.dataframe(source)
    if args.variant == "quix-state":

        def count(value: bytes, state: Any) -> bytes:
            doc = loads(value)
            seen = state.get("n", 0) + 1
            state.set("n", seen)
            doc["n"] = seen
            return dumps(doc)

        sdf = sdf.apply(count, stateful=True)
    else:
        sdf = sdf.apply(lambda value: dumps(loads(value)))
    sdf.to_topic(sink)
    app.run()


def faust_worker(args: argparse.Namespace) -> None:
    import faust

    loads, dumps = orjson.loads, orjson.dumps
    datadir = Path(args.datadir)
    datadir.mkdir(parents=True, exist_ok=True)
    agent_kind = args.variant.removesuffix("-fast")
    overrides = dict(parse_setting(s) for s in args.set)
    if agent_kind == "per-event-default":
        app = faust.App(
            args.group,
            broker=faust_app.broker_urls(args.bootstrap),
            datadir=datadir,
            web_enabled=False,
            key_serializer="raw",
            value_serializer="raw",
            **overrides,
        )
    else:
        fast = args.variant.endswith("-fast")
        app = faust_app.create_app(
            args.group, args.bootstrap, datadir=datadir, fast_drain=fast, **overrides
        )
    source = app.topic(args.topic_in, partitions=PARTITIONS)
    out = app.topic(args.out, partitions=PARTITIONS)
    out_name: str = args.out
    take_max: int = args.take_max
    within: float = args.take_within

    async def per_event(stream: Any) -> None:
        async for event in stream.events():
            await out.send(key=event.key, value=dumps(loads(event.value)))

    async def take(stream: Any) -> None:
        producer = app.producer
        async for events in stream.take_events(take_max, within):
            futures = [
                await producer.send(out_name, e.key, dumps(loads(e.value)), None, None, None)
                for e in events
            ]
            await asyncio.gather(*futures)

    async def take_send_soon(stream: Any) -> None:
        async for events in stream.take_events(take_max, within):
            for e in events:
                out.send_soon(key=e.key, value=dumps(loads(e.value)))

    async def noack_take(stream: Any) -> None:
        async for events in stream.noack_take(take_max, within):
            try:
                records = [(e.key, dumps(loads(e.value))) for e in events]
                await faust_app.send_all(app.producer, out_name, records)
            except Exception as exc:  # the batch stays unacked: redelivered after restart
                await app.crash(exc)  # the worker stops and exits 1
                return
            for e in events:
                e.ack()

    agents = {
        "per-event-default": per_event,
        "per-event": per_event,
        "take": take,
        "take-send-soon": take_send_soon,
        "noack-take": noack_take,
    }
    app.agent(source, name="passthrough")(agents[agent_kind])
    if agent_kind == "per-event-default":
        faust.Worker(app, loglevel="WARNING", workdir=datadir).execute_from_commandline()
    faust_app.run_worker(app, loglevel="WARNING", workdir=datadir)


def parse_setting(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


async def raw_worker(args: argparse.Namespace) -> None:
    """getmany -> decode/encode -> one BatchBuilder per output partition -> send_batch ->
    wait for delivery -> commit: at-least-once with no per-record await."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = AIOKafkaConsumer(
        args.topic_in,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, linger_ms=5, max_batch_size=512 * 1024
    )
    await asyncio.wait_for(consumer.start(), 60)
    await asyncio.wait_for(producer.start(), 60)
    loads, dumps = orjson.loads, orjson.dumps
    partitioner = DefaultPartitioner()
    try:
        partitions = sorted(await producer.partitions_for(args.out))
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=200, max_records=5 * args.take_max)
            if not fetched:
                continue
            builders: dict[int, Any] = {}
            futures: list[asyncio.Future[Any]] = []
            for records in fetched.values():
                for r in records:
                    value = dumps(loads(r.value))
                    p = partitioner(r.key, partitions, partitions)
                    b = builders.get(p)
                    if b is None:
                        b = builders[p] = producer.create_batch()
                    if b.append(key=r.key, value=value, timestamp=None) is None:  # full
                        futures.append(await producer.send_batch(b, args.out, partition=p))
                        b = builders[p] = producer.create_batch()
                        b.append(key=r.key, value=value, timestamp=None)
            for p, b in builders.items():
                futures.append(await producer.send_batch(b, args.out, partition=p))
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await asyncio.wait_for(producer.stop(), 30)
        await asyncio.wait_for(consumer.stop(), 30)


def confluent_pass_worker(args: argparse.Namespace) -> None:
    """The cheapest contestant (the floor, not a processor): confluent-kafka (the `bench`
    extra) polls, re-produces each record's key and value as they are (nothing decoded),
    offsets auto-committed as consumed (no wait for the deliveries: not at-least-once);
    the producer's linger is 1 ms, as the load generator's above 2,000/s."""
    from confluent_kafka import Consumer, Producer  # type: ignore[import-untyped]

    stop = False

    def stopping(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": 1,
            "linger.ms": 1,
            "delivery.report.only.error": True,
        }
    )
    consumer.subscribe([args.topic_in])
    produce, out = producer.produce, args.out
    try:
        while not stop:
            first = consumer.poll(0.2)
            if first is None:
                producer.poll(0)
                continue
            for m in [first, *consumer.consume(10_000, 0)]:
                if m.error() is None:
                    while True:
                        try:
                            produce(out, m.value(), m.key())
                            break
                        except BufferError:  # its queue is full: wait for deliveries
                            producer.poll(0.1)
            producer.poll(0)
    finally:
        producer.flush(30)
        consumer.close()


# --- command line --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command")
    w = sub.add_parser("worker", help="(internal) run one variant's worker")
    w.add_argument("variant", choices=ALL_VARIANTS)
    w.add_argument("--bootstrap", required=True)
    w.add_argument("--group", required=True)
    w.add_argument("--in", dest="topic_in", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--datadir", required=True, help="Faust's data directory")
    for q in (p, w):
        q.add_argument("--take-max", type=int, default=faust_app.TAKE_MAX)
        q.add_argument("--take-within", type=float, default=faust_app.TAKE_WITHIN)
        q.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE", help="Faust setting"
        )
    p.add_argument("--bootstrap", help="use this running broker instead of starting one")
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=" ".join(ALL_VARIANTS))
    p.add_argument("--timeout", type=float, help="per variant, seconds (default 120 + N/1000)")
    p.add_argument("--keep-logs", action="store_true", help="keep the workers' logs")
    args = p.parse_args(argv)
    if args.command == "worker":
        worker(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
