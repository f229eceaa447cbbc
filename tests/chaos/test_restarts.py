"""Chaos: the real worker on a stream while Redis restarts (cleanly, SIGKILL then start,
or losing its last second of writes as on a power loss), while the Kafka broker restarts,
and while a second worker joins and the first leaves; README's "Delivery guarantees"
table says what must happen in each case.

Every test compares what came out with one clean backtest of the same lines: every
expected `eventId` and no other (deduplicated by `eventId`, as consumers do), each lead's
events (first occurrences) in the backtest's order, identical event contents, the same
dead letters, and the final per-lead state in Redis equal to the backtest's. A worker may
exit 1 during an outage (its contract: a batch it cannot get past crashes it, and a
supervisor restarts it); `Supervisor` plays that part. Services that a test restarts are
its own; the tests that do not restart Kafka share a broker private to this module.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import orjson
import pytest
import redis.asyncio
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from streams.devstack.kafka import KafkaBroker
from streams.devstack.process import ServiceError
from streams.devstack.redis import RedisServer
from streams.devstack.worker import WorkerProcess
from streams.engine.leadstate import LeadState
from streams.samples import sample_activities
from streams.state.redis_store import RedisStore
from tests.integration.streaming import (
    PARTITIONS,
    Expected,
    TopicReader,
    backtest,
    isolated_settings,
    lead_key,
    per_lead,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
ACTIVITIES = 9_000
LEADS = 200
BATCH_SIZE = 300
"""Small, so that many batches are in flight when the failure lands."""
DEADLINE = 240.0
"""Seconds the workers get to deliver everything after the failure."""
FEED_CHUNK = 200
FEED_INTERVAL = 0.5
"""A paced run produces `FEED_CHUNK` lines every `FEED_INTERVAL` s (~22 s in all)."""
LOST_WRITES = 1.0
"""Seconds of Redis writes a simulated power loss takes away (`appendfsync everysec`)."""
HANG_TIMEOUT = 45.0
"""Seconds a worker that logged a failed batch or a crash may take to exit."""
BATCH_FAILED = r"batch of \d+ records failed"
CRASHED = re.compile(rb"batch of \d+ records failed|Crashed reason=")
PROGRESS_TIMEOUT = 120.0
"""Seconds to wait for the stream to reach the point where the failure is injected."""


def unavailable(what: str, exc: BaseException) -> NoReturn:
    """As in tests/integration/conftest.py: skip locally, fail under CI=true."""
    message = f"{what} is unavailable: {type(exc).__name__}: {exc}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


Service = TypeVar("Service", KafkaBroker, RedisServer)


def started(service: Service) -> Service:
    try:
        return service.start()
    except (ServiceError, OSError) as exc:
        service.close()
        unavailable(type(service).__name__, exc)


@pytest.fixture(scope="module")
def kafka() -> Iterator[KafkaBroker]:
    """A broker of this module's own for the tests that do not restart it (never the
    session's: a chaos test that goes wrong must not take other tests down with it)."""
    broker = started(KafkaBroker())
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private `redis-server` (AOF, appendfsync everysec) that the test may restart."""
    server = started(RedisServer())
    try:
        yield server
    finally:
        server.close()


class Supervisor:
    """Runs named workers with the same settings and, like systemd or Kubernetes would,
    starts a new one whenever one exits (exit 1 is how a worker gives up on a batch).
    Every process it started stays listed, for log tails in failure messages."""

    def __init__(self, settings: dict[str, str], log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.running: dict[str, WorkerProcess] = {}
        self.started: list[tuple[str, WorkerProcess]] = []
        self.exits: list[str] = []
        """One line per worker that exited on its own: `<label> exited <code>`."""
        self.hung: list[str] = []
        """Workers that logged a failed batch but had not exited `HANG_TIMEOUT` s later:
        killed and replaced, as a liveness probe would, and reported (README: exit 1)."""
        self._counts: Counter[str] = Counter()
        self._crashed_at: dict[int, float] = {}
        self._log_read: dict[int, int] = {}

    def start(self, name: str) -> WorkerProcess:
        self._counts[name] += 1
        label = f"{name}-{self._counts[name]}"
        worker = WorkerProcess(self.settings, self.log_dir / f"{label}.log").start()
        self.started.append((label, worker))
        self.running[name] = worker
        return worker

    def stop(self, name: str) -> int | None:
        """SIGTERM (a graceful stop) and no restart; the exit code."""
        worker = self.running.pop(name)
        worker.stop(grace=30.0)
        return worker.proc.returncode if worker.proc is not None else None

    def supervise(self) -> None:
        for name, worker in list(self.running.items()):
            if not worker.alive():
                code = worker.proc.returncode if worker.proc is not None else None
                self.exits.append(f"{self.label(worker)} exited {code}")
                self.start(name)
            elif self._hung(worker):
                self.hung.append(
                    f"{self.label(worker)} logged its crash and was still running "
                    f"{HANG_TIMEOUT:.0f} s later (killed)"
                )
                worker.kill()
                self.start(name)

    def _hung(self, worker: WorkerProcess) -> bool:
        """Whether the worker logged a failed batch or a crash over `HANG_TIMEOUT` s ago
        (the log is read incrementally: a broker outage makes it grow by megabytes)."""
        key = id(worker)
        if key not in self._crashed_at:
            try:
                with worker.log_path.open("rb") as log:
                    log.seek(self._log_read.get(key, 0))
                    chunk = log.read()
            except OSError:
                return False
            # Keep a partial last line for the next read.
            complete = chunk.rfind(b"\n") + 1
            self._log_read[key] = self._log_read.get(key, 0) + complete
            if not CRASHED.search(chunk[:complete]):
                return False
            self._crashed_at[key] = time.monotonic()
        return time.monotonic() - self._crashed_at[key] > HANG_TIMEOUT

    def run_until(self, done: Callable[[], bool], timeout: float, poll: Callable[[], None]) -> bool:
        """Poll (which blocks briefly) and supervise until `done()` or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            poll()
            if done():
                return True
            if time.monotonic() >= deadline:
                return False
            self.supervise()

    def label(self, worker: WorkerProcess) -> str:
        return next(label for label, w in self.started if w is worker)

    def grep(self, pattern: str) -> int:
        """Lines matching `pattern` in the logs of every worker started."""
        regex = re.compile(pattern)
        count = 0
        for _, worker in self.started:
            text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
            count += sum(1 for line in text.splitlines() if regex.search(line))
        return count

    def tails(self, lines: int = 15) -> str:
        parts = [f"exits: {self.exits or 'none'}; hung: {self.hung or 'none'}"]
        for label, worker in self.started:
            code = worker.proc.returncode if worker.proc is not None else None
            parts.append(f"--- {label} (exit {code}), {worker.log_path}:\n{worker.log_tail(lines)}")
        return "\n".join(parts)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def close(self) -> None:
        for _, worker in self.started:
            worker.kill()


def stored_states(redis_url: str, app_id: str) -> dict[int, LeadState]:
    """Every lead the app id holds in Redis, loaded as the workers load them."""

    async def load() -> dict[int, LeadState]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            prefix = f"{app_id}:lead:"
            ids = [
                int(key.decode().removeprefix(prefix).strip("{}"))
                async for key in client.scan_iter(match=f"{prefix}*", count=1000)
            ]
            return await RedisStore(client, app_id, ttl_ms=0).load(ids)
        finally:
            await client.aclose()

    return asyncio.run(load())


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record of `topic`, up to its end offsets now, with a fresh consumer: what a
    downstream consumer would get, whatever became of the live readers across outages."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        values: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"{topic}: not read to {ends} in {timeout} s"
            for tp, records in consumer.poll(timeout_ms=500).items():
                values.extend(orjson.loads(r.value) for r in records if r.offset < ends[tp])
        return values
    finally:
        consumer.close()


def activity_counts(metrics: str) -> dict[str, float]:
    """`streams_activities_total` by outcome, from a worker's /metrics."""
    found = re.findall(r'^streams_activities_total\{outcome="(\w+)"\} (\S+)$', metrics, re.M)
    return {outcome: float(value) for outcome, value in found}


@dataclass
class Run:
    """One generated stream, produced to topics of its own (all at once, or paced: a
    chunk every `FEED_INTERVAL` s as `poll` is called), with the backtest's answer and
    readers of what the workers write."""

    bootstrap: str
    redis_url: str
    lines: list[bytes]
    expected: Expected
    settings: dict[str, str]
    memberships: TopicReader
    """Read live, to see how far the workers got (`outputs` reads the topics at the end)."""
    pending: list[bytes] = field(default_factory=list)
    """Lines not produced yet (paced runs)."""
    ends: dict[TopicPartition, int] | None = None
    """End offsets of the activities topic, once every line is produced."""
    _producer: KafkaProducer | None = None
    _next_feed: float = 0.0
    _next_check: float = 0.0
    _ids: set[str] = field(default_factory=set)
    _read: int = 0

    @classmethod
    def create(cls, bootstrap: str, redis_url: str, seed: int, *, paced: bool = False) -> Run:
        lines = [orjson.dumps(a) for a in sample_activities(ACTIVITIES, LEADS, seed)]
        expected = backtest(RULES, lines)
        assert len(expected.events) > 1500 and expected.rejected  # the stream exercises rules
        settings = isolated_settings(bootstrap, redis_url, RULES)
        settings["STREAMS_BATCH_SIZE"] = str(BATCH_SIZE)
        run = cls(
            bootstrap,
            redis_url,
            lines,
            expected,
            settings,
            TopicReader(bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"]),
        )
        if paced:
            run.pending = list(lines)
            run._producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
            run._next_feed = time.monotonic()
            run.feed()
        else:
            produce(bootstrap, run.topic, lines, lead_key)
            run.produced()
        return run

    @property
    def topic(self) -> str:
        return self.settings["STREAMS_TOPIC_ACTIVITIES"]

    def feed(self) -> None:
        """Produce the chunks that are due (one idempotent producer, keyed by lead id:
        each lead's records stay in order in one partition)."""
        producer = self._producer
        if producer is None:
            return
        while self.pending and time.monotonic() >= self._next_feed:
            chunk, self.pending = self.pending[:FEED_CHUNK], self.pending[FEED_CHUNK:]
            for line in chunk:
                producer.send(self.topic, key=lead_key(line), value=line)
            producer.flush(timeout=30)
            self._next_feed += FEED_INTERVAL
        if not self.pending:
            producer.close()
            self._producer = None
            self.produced()

    def produced(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
            self.ends = consumer.end_offsets(tps)
        finally:
            consumer.close()
        assert sum(self.ends.values()) == len(self.lines)

    @property
    def app_id(self) -> str:
        return self.settings["STREAMS_APP_ID"]

    def poll(self) -> None:
        self.feed()
        self.memberships.poll()

    def ids(self) -> set[str]:
        values = self.memberships.values
        self._ids.update(e["eventId"] for e in values[self._read :])
        self._read = len(values)
        return self._ids

    def emitted(self) -> int:
        """Distinct eventIds read so far."""
        return len(self.ids())

    def fraction(self, part: float) -> Callable[[], bool]:
        want = int(len(self.expected.ids) * part)
        return lambda: self.emitted() >= want

    def committed_to_the_end(self) -> bool:
        """The consumer group committed every activity: all were evaluated, saved and
        acknowledged, so Redis holds the final state."""
        if self.ends is None or time.monotonic() < self._next_check:
            return False
        self._next_check = time.monotonic() + 1.0
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=self.app_id, enable_auto_commit=False
            )
        except KafkaError:
            return False
        try:
            return all((consumer.committed(tp) or 0) >= end for tp, end in self.ends.items())
        except KafkaError:
            return False
        finally:
            consumer.close()

    def complete(self) -> bool:
        """Every activity committed: all were evaluated and their events and dead letters
        delivered, so nothing more will come out."""
        return self.committed_to_the_end()

    def outputs(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The membership events and dead letters in the topics, once the workers stopped."""
        return (
            read_topic(self.bootstrap, self.settings["STREAMS_TOPIC_MEMBERSHIPS"]),
            read_topic(self.bootstrap, self.settings["STREAMS_TOPIC_DLQ"]),
        )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
        self.memberships.close()

    def check(
        self,
        outputs: tuple[list[dict[str, Any]], list[dict[str, Any]]],
        done: bool,
        supervisor: Supervisor,
    ) -> None:
        """README's guarantees, against the backtest of the same lines."""
        logs = supervisor.tails()
        expected = self.expected
        got, dead = outputs
        letters = {(d["partition"], d["offset"]): d for d in dead}
        ids = {e["eventId"] for e in got}
        missing = expected.ids - ids
        extra = ids - expected.ids
        assert not missing and not extra, (
            f"{len(missing)} expected eventIds never emitted (e.g. "
            f"{[e for e in expected.events if e['eventId'] in missing][:3]}), "
            f"{len(extra)} unexpected (e.g. {[e for e in got if e['eventId'] in extra][:3]}); "
            f"{len(got)} events in the topic ({len(self.memberships.values)} read live), "
            f"every activity committed: {done}\n{logs}"
        )
        assert done, f"the group did not commit every activity within {DEADLINE:.0f} s\n{logs}"
        want_order = per_lead(expected.events)
        got_order = per_lead(got)
        disordered = sorted(lead for lead in want_order if got_order.get(lead) != want_order[lead])
        assert not disordered, f"leads whose events came out of order: {disordered}\n{logs}"
        by_id = {e["eventId"]: e for e in expected.events}
        different = [e for e in got if e != by_id[e["eventId"]]]
        assert not different, f"events differing from the backtest's: {different[:3]}"
        assert Counter(d["error"]["code"] for d in letters.values()) == Counter(
            d["error"]["code"] for d in expected.rejected
        ), logs

        stored = stored_states(self.redis_url, self.app_id)
        assert set(stored) == set(expected.leads), (
            f"leads in Redis but not in the backtest: {sorted(set(stored) - set(expected.leads))}"
            f"; in the backtest but not in Redis: {sorted(set(expected.leads) - set(stored))}"
        )
        wrong = [
            lead
            for lead, state in expected.leads.items()
            if (stored[lead].history, stored[lead].fields, stored[lead].runs, stored[lead].max_ts)
            != (state.history, state.fields, state.runs, state.max_ts)
            or set(stored[lead].seen) != set(state.seen)
        ]
        assert not wrong, f"leads whose Redis state differs from the backtest's: {wrong}\n{logs}"
        assert not supervisor.hung, f"a crashed worker did not exit: {supervisor.hung}\n{logs}"


def report(
    name: str,
    outputs: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    supervisor: Supervisor,
    started_at: float,
    **extra: Any,
) -> None:
    """One line for `pytest -s`: what the failure did to the workers."""
    events = outputs[0]
    copies = len(events) - len({e["eventId"] for e in events})
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    print(
        f"\n[{name}] {time.monotonic() - started_at:.1f} s, {len(events)} events, "
        f"{copies} redelivered copies, worker exits: {supervisor.exits or 'none'}, "
        f"hung: {supervisor.hung or 'none'}, "
        f"batch failures logged: {supervisor.grep(BATCH_FAILED)} {details}"
    )


def lose_the_last_second(server: RedisServer, tmp_path: Path) -> None:
    """A host crash under `appendfsync everysec`: the AOF as it was on disk one second
    before Redis died. SIGKILL alone loses nothing (what Redis wrote is in the page cache),
    so the AOF is copied, the worker runs on for a second, Redis is killed and the copy
    put back (a command cut in the middle is dropped by `aof-load-truncated yes`)."""
    aof = server.workdir / "appendonlydir"
    snapshot = tmp_path / "aof-one-second-before"
    shutil.copytree(aof, snapshot)
    time.sleep(LOST_WRITES)
    server.kill()
    shutil.rmtree(aof)
    shutil.copytree(snapshot, aof)
    server.start()


LOST_SECOND_IS_COMMITTED = pytest.mark.xfail(
    # Not strict: whether the lost second holds a committed batch depends on how far the
    # worker got in it, which a loaded machine changes; seen passing 2 times in ~10 runs.
    strict=False,
    reason=(
        "BUG, documented (README: 'Redis losing acknowledged writes'): under appendfsync "
        "everysec the writes lost with the AOF's last second belong to batches already acked "
        "and committed (offsets commit every 1 s, right after delivery), so they are never "
        "redelivered: their activities vanish from the leads' state, and later ones, "
        "evaluated against it, miss expected eventIds and emit new ones"
    ),
)


@pytest.mark.parametrize(
    "how",
    [
        "restart",
        "sigkill",
        pytest.param("power-loss", marks=LOST_SECOND_IS_COMMITTED),
    ],
)
def test_a_redis_restart_mid_stream_loses_nothing_and_invents_nothing(
    how: str, kafka: KafkaBroker, redis_server: RedisServer, tmp_path: Path
) -> None:
    """`restart()` is SIGTERM (Redis writes its AOF out) then start on the same port and
    data; `sigkill` is a crash of the process: whatever it wrote to the AOF comes back;
    `power-loss` loses the last second of writes, which README says AOF everysec allows."""
    began = time.monotonic()
    seed = {"restart": 41, "sigkill": 42, "power-loss": 45}[how]
    run = Run.create(kafka.bootstrap, redis_server.url, seed=seed)
    supervisor = Supervisor(run.settings, tmp_path)
    try:
        supervisor.start("worker")
        reached = supervisor.run_until(run.fraction(0.25), PROGRESS_TIMEOUT, run.poll)
        assert reached, f"a quarter of the events did not come out\n{supervisor.tails()}"
        at_failure = run.emitted()
        assert at_failure < len(run.expected.ids), "the stream ended before the failure"
        if how == "restart":
            redis_server.restart()
        elif how == "sigkill":
            redis_server.kill()
            redis_server.start()
        else:
            lose_the_last_second(redis_server, tmp_path)
        done = supervisor.run_until(run.complete, DEADLINE, run.poll)
        supervisor.stop_all()
        outputs = run.outputs()
        report(how, outputs, supervisor, began, emitted_before_failure=at_failure)
        run.check(outputs, done, supervisor)
    finally:
        supervisor.close()
        run.close()


def test_a_broker_restart_mid_stream_loses_nothing_and_invents_nothing(tmp_path: Path) -> None:
    """A controlled broker shutdown and start on the same port and data, while batches
    are in flight: clients reconnect, or the worker exits 1 and is started again."""
    began = time.monotonic()
    broker = started(KafkaBroker())
    server = started(RedisServer())
    run: Run | None = None
    supervisor: Supervisor | None = None
    try:
        run = Run.create(broker.bootstrap, server.url, seed=43)
        supervisor = Supervisor(run.settings, tmp_path)
        supervisor.start("worker")
        reached = supervisor.run_until(run.fraction(0.25), PROGRESS_TIMEOUT, run.poll)
        assert reached, f"a quarter of the events did not come out\n{supervisor.tails()}"
        at_failure = run.emitted()
        assert at_failure < len(run.expected.ids), "the stream ended before the failure"
        outage = time.monotonic()
        broker.restart()
        outage = time.monotonic() - outage
        done = supervisor.run_until(run.complete, DEADLINE, run.poll)
        supervisor.stop_all()
        outputs = run.outputs()
        report(
            "broker restart",
            outputs,
            supervisor,
            began,
            emitted_before_failure=at_failure,
            outage_s=round(outage, 1),
        )
        run.check(outputs, done, supervisor)
    finally:
        if supervisor is not None:
            supervisor.close()
        if run is not None:
            run.close()
        broker.close()
        server.close()


def test_a_rebalance_mid_stream_loses_nothing_and_invents_nothing(
    kafka: KafkaBroker, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two workers of one app id on 4 partitions: the second joins mid-stream (partitions
    move to it), then the first stops gracefully while the second carries on."""
    began = time.monotonic()
    run = Run.create(kafka.bootstrap, redis_server.url, seed=44, paced=True)
    supervisor = Supervisor(run.settings, tmp_path)

    def processed(name: str) -> float:
        try:
            return sum(activity_counts(supervisor.running[name].metrics()).values())
        except OSError:
            return 0.0

    try:
        supervisor.start("first")
        reached = supervisor.run_until(run.fraction(0.15), PROGRESS_TIMEOUT, run.poll)
        assert reached, f"15% of the events did not come out\n{supervisor.tails()}"
        supervisor.start("second")
        reached = supervisor.run_until(lambda: processed("second") > 0, 90, run.poll)
        assert reached, f"the second worker got no records\n{supervisor.tails()}"
        first = activity_counts(supervisor.running["first"].metrics())
        at_leave = run.emitted()
        assert at_leave < len(run.expected.ids), "the stream ended before the first left"
        first_exit = supervisor.stop("first")
        done = supervisor.run_until(run.complete, DEADLINE, run.poll)
        second = activity_counts(supervisor.running["second"].metrics())
        supervisor.stop_all()
        outputs = run.outputs()
        report(
            "rebalance",
            outputs,
            supervisor,
            began,
            emitted_when_first_left=at_leave,
            first_exit=first_exit,
            first=first,
            second=second,
        )
        run.check(outputs, done, supervisor)
        assert sum(first.values()) > 0 and sum(second.values()) > 0, (first, second)
    finally:
        supervisor.close()
        run.close()
