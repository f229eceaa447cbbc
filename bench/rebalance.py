"""Latency across rebalances: paced load against one worker while a second worker joins its
group, then leaves it gracefully (SIGTERM), and optionally a third joins and is SIGKILLed.

    .venv/bin/python bench/rebalance.py [--rate 1000] [--kill] [--set STREAMS_X=VALUE]

A fresh broker and redis-server; worker A starts and is warmed (its first membership read
back), then the load generator of bench/stream.py sends sample activities at `--rate` per
second in a process of its own, and the timing consumer of bench/stream.py reads the
activities and memberships topics. The events are scheduled from the first activity's
append: B spawned at `--join-at` s, B sent SIGTERM at `--leave-at`; with `--kill`, C
spawned at `--kill-join` and SIGKILLed at `--kill-at`. Printed:

- per second of sending: activities sent, p50/p99/max of send -> first membership read;
- per event (spawned, ready, SIGTERM, exited, SIGKILL): its time, and the stall around it:
  the worst latency of activities sent from 2 s before it to the next event (at most 10 s
  after), and the seconds of sending in that span whose p99 was above twice the steady p99
  (the seconds before the first event);
- the group's pauses, from the workers' logs: from each trigger (B's or C's JoinGroup,
  B's LeaveGroup, C's SIGKILL) to A's rebalance start (A learns of it at its next
  heartbeat; for a kill, once the session timeout expired) and to A's "Worker ready";
- duplicates (membership records delivered more than once: at-least-once, redelivered
  batches), each counted at the group change nearest to its activity's send, and losses
  (expected eventIds, from the backtest of the same stream in send
  order, never read: must be 0), and unexpected eventIds (must be 0);
- each worker's rebalances from its /metrics (`streams_rebalance_seconds`), how long B's
  graceful stop took (SIGTERM -> exit), and the load average at the start and the end.

Only the worker is measured here: the machine's other load is in the load averages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stream import (
    HARNESSES,
    ROOT,
    Harness,
    TimingReader,
    fresh_settings,
    log_append_time,
    producer,
    start_paced_sender,
    warm_broker,
)
from streams.devstack.kafka import KafkaBroker
from streams.devstack.redis import RedisServer
from streams.devstack.worker import WorkerProcess
from streams.engine.compiler import load_plan
from streams.pipeline import Processor, Record
from streams.samples import sample_activities
from streams.state.memory import MemoryStore

STALL_BEFORE = 2.0
"""Seconds before an event whose activities count in its stall."""
STALL_AFTER = 10.0
"""Seconds after an event whose activities count in its stall."""
_REBALANCE_RE = re.compile(r"^streams_rebalance_seconds_(sum|count) ([0-9.e+-]+)$", re.M)


@dataclass
class Member:
    """A worker of the run and what happened to it, in Unix seconds."""

    name: str
    process: WorkerProcess
    events: dict[str, float] = field(default_factory=dict)
    rebalances: tuple[float, float] = (0.0, 0.0)
    """(count, sum of seconds) of its `streams_rebalance_seconds`, last read."""

    def watch(self, stop: threading.Event) -> None:
        """Record when its /ready first answers 200 and when it exits (a thread)."""
        url = f"http://127.0.0.1:{self.process.web_port}/ready"
        while not stop.is_set():
            if not self.process.alive():
                self.events.setdefault("exited", time.time())
                return
            if "ready" not in self.events:
                with (
                    contextlib.suppress(OSError, urllib.error.HTTPError),
                    urllib.request.urlopen(url, timeout=1) as response,
                ):
                    if response.status == 200:
                        self.events["ready"] = time.time()
            with contextlib.suppress(OSError):
                text = self.process.metrics()
                found = {k: float(v) for k, v in _REBALANCE_RE.findall(text)}
                if found:
                    self.rebalances = (found.get("count", 0.0), found.get("sum", 0.0))
            time.sleep(0.05)


def expected_events(lines: list[bytes]) -> set[str]:
    """The eventIds the backtest emits for the stream in send order (one partition)."""
    processor = Processor(load_plan(ROOT / "rules"), MemoryStore())
    records = [Record(line, "file", 0, i) for i, line in enumerate(lines)]
    result = asyncio.run(processor.process(records, time.time_ns() // 1000))
    return {e["eventId"] for e in result.events}


_LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] (.*)$")


def log_times(path: Path, marker: str) -> list[float]:
    """Unix times of the worker's log lines holding `marker` (its log's local clock)."""
    times = []
    for line in path.read_text(errors="replace").splitlines():
        found = _LOG_LINE.match(line)
        if found and marker in found.group(2):
            stamp = time.strptime(found.group(1).split(",")[0], "%Y-%m-%d %H:%M:%S")
            times.append(time.mktime(stamp) + int(found.group(1).split(",")[1]) / 1000)
    return times


def group_pauses(members: dict[str, Member]) -> list[tuple[str, float, float]]:
    """Per group change, from the workers' logs: (what, seconds from the trigger to worker
    A's rebalance start, to A's "Worker ready"): B's and C's JoinGroup, B's LeaveGroup, C's
    SIGKILL. A member learns of a rebalance at its next heartbeat."""
    a = members["A"].process.log_path
    starts = log_times(a, "Revoking previously assigned partitions")
    readies = log_times(a, "Worker ready")
    triggers: list[tuple[str, float]] = []
    for name in ("B", "C"):
        if name not in members:
            continue
        path = members[name].process.log_path
        triggers += [(f"{name} joins", t) for t in log_times(path, "(Re-)joining group")[:1]]
        triggers += [(f"{name} leaves", t) for t in log_times(path, "LeaveGroup request")[:1]]
        if "SIGKILL" in members[name].events:
            triggers.append((f"{name} killed", members[name].events["SIGKILL"]))
    pauses = []
    for what, at in sorted(triggers, key=lambda t: t[1]):
        start = next((t for t in starts if t >= at), None)
        ready = next((t for t in readies if t >= at), None)
        if start is not None and ready is not None:
            pauses.append((what, start - at, ready - at))
    return pauses


def cut(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


def run(args: argparse.Namespace, bootstrap: str, redis_url: str, logs: Path) -> int:
    worker_env = dict(item.split("=", 1) for item in args.set)
    settings = fresh_settings(bootstrap, redis_url) | worker_env
    topic_in = settings["STREAMS_TOPIC_ACTIVITIES"]
    topic_out = settings["STREAMS_TOPIC_MEMBERSHIPS"]
    log_append_time(bootstrap, [topic_in, topic_out])
    activities = list(sample_activities(int(args.rate * args.seconds), args.leads, seed=7))
    probe = next(a for a in activities if a["activityTypeId"] == 12)
    lines = [orjson.dumps(probe)] + [orjson.dumps(a) for a in activities if a is not probe]
    expected = expected_events(lines)
    schedule: list[tuple[float, str, str]] = [
        (args.join_at, "B", "spawn"),
        (args.leave_at, "B", "SIGTERM"),
    ]
    if args.kill:
        schedule += [(args.kill_join, "C", "spawn"), (args.kill_at, "C", "SIGKILL")]
    schedule.sort()
    load_start = os.getloadavg()

    stop = threading.Event()
    members: dict[str, Member] = {}
    watchers: list[threading.Thread] = []

    def spawn(name: str) -> Member:
        member = Member(name, WorkerProcess(settings, logs / f"worker-{name}.log"))
        member.process.start()
        member.events["spawn"] = time.time()
        members[name] = member
        watcher = threading.Thread(target=member.watch, args=(stop,), daemon=True)
        watcher.start()
        watchers.append(watcher)
        return member

    reader = TimingReader(args.harness, bootstrap, [topic_in, topic_out])
    try:
        a = spawn("A")
        a.process.wait_ready(120)
        a.process.metrics()  # the consumer-lag reader's first scrape, out of the timed part
        warm = producer(bootstrap, 0)
        warm.send(topic_in, key=str(probe["leadId"]).encode(), value=lines[0])
        warm.flush()
        warm.close()
        deadline = time.monotonic() + 120
        event_ids: Counter[str] = Counter()  # the warm-up record's memberships count too
        while not event_ids:
            for topic, raw, _ in reader.poll(0.05):
                if topic == topic_out:
                    event_ids[orjson.loads(raw)["eventId"]] += 1
            if time.monotonic() > deadline or not a.process.alive():
                raise SystemExit(f"no membership for the warm-up record; {a.process.log_tail()}")
        receive, sender = start_paced_sender(
            Harness(args.harness), bootstrap, topic_in, activities, probe, args.rate
        )
        sent_at: dict[str, float] = {}
        activity_of: dict[str, str] = {}  # eventId -> its activity's marketoGUID
        arrived: dict[str, float] = {}
        first_append: float | None = None
        done_at: float | None = None
        pending = list(schedule)
        while True:
            now = time.time()
            if first_append is not None:
                while pending and now >= first_append + pending[0][0]:
                    _, name, action = pending.pop(0)
                    if action == "spawn":
                        spawn(name)
                    else:
                        member = members[name]
                        sig = signal.SIGTERM if action == "SIGTERM" else signal.SIGKILL
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(member.process.pid, sig)
                        member.events[action] = time.time()
            if not sent_at and receive.poll():
                sent_at.update(receive.recv())
                receive.recv()  # the sender's CPU time
                done_at = time.monotonic()
            records = reader.poll(0.05)
            now = time.time()
            for topic, raw, timestamp in records:
                value = orjson.loads(raw)
                if topic == topic_in:
                    if first_append is None:
                        first_append = timestamp
                    continue
                event_ids[value["eventId"]] += 1
                activity_of[value["eventId"]] = value["activityId"]
                arrived.setdefault(value["activityId"], now)
            if done_at is not None and not pending:
                missing = expected - set(event_ids)
                if not missing and time.monotonic() - done_at > 3:
                    break
                if time.monotonic() - done_at > args.drain:
                    break
            if sent_at == {} and not sender.is_alive() and not receive.poll():
                raise SystemExit(f"the load generator exited ({sender.exitcode})")
        sender.join(30)
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join(5)
        reader.close()
        for member in members.values():
            member.process.stop()
    load_end = os.getloadavg()
    report(args, sent_at, arrived, event_ids, activity_of, expected, members, load_start, load_end)
    return 0


def report(
    args: argparse.Namespace,
    sent_at: dict[str, float],
    arrived: dict[str, float],
    event_ids: Counter[str],
    activity_of: dict[str, str],
    expected: set[str],
    members: dict[str, Member],
    load_start: tuple[float, float, float],
    load_end: tuple[float, float, float],
) -> None:
    t0 = min(sent_at.values())
    latencies = [
        (sent - t0, arrived[guid] - sent) for guid, sent in sent_at.items() if guid in arrived
    ]
    per_second: dict[int, list[float]] = defaultdict(list)
    sent_per_second: Counter[int] = Counter(int(sent - t0) for sent in sent_at.values())
    for at, latency in latencies:
        per_second[int(at)].append(latency)
    events = sorted(
        (when - t0, f"{name} {what}")
        for name, member in members.items()
        for what, when in member.events.items()
        if name != "A" or what not in ("spawn", "ready")
    )
    first_event = min((at for at, _ in events), default=float("inf"))
    steady = [lat for at, lat in latencies if 2 <= at < first_event]
    steady_p99 = cut(steady, 99) if steady else float("nan")
    print(
        f"load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
        f"at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}",
        flush=True,
    )
    print(
        f"offered {args.rate:,.0f}/s for {args.seconds:.0f} s; {len(sent_at):,} sent, "
        f"{len(latencies):,} timed (with a membership); steady (2 s to the first event) "
        f"p50 {cut(steady, 50) * 1000:,.1f} ms, p99 {steady_p99 * 1000:,.1f} ms"
    )
    marks: dict[int, list[str]] = defaultdict(list)
    for at, what in events:
        marks[int(at)].append(what)
    print("second  sent  timed     p50 ms     p99 ms     max ms  events")
    for second in range(int(max(sent_per_second, default=0)) + 1):
        values = per_second.get(second, [])
        row = f"{second:>6} {sent_per_second[second]:>5} {len(values):>6}"
        if values:
            row += (
                f" {cut(values, 50) * 1000:>10,.1f} {cut(values, 99) * 1000:>10,.1f}"
                f" {max(values) * 1000:>10,.1f}"
            )
        else:
            row += f" {'-':>10} {'-':>10} {'-':>10}"
        print(row + ("  " + ", ".join(marks[second]) if marks[second] else ""))
    print(
        "events (seconds from the first send): worst latency of activities sent from "
        f"{STALL_BEFORE:.0f} s before to the next event (at most {STALL_AFTER:.0f} s after); "
        "seconds of sending in that span with p99 above twice the steady p99"
    )
    for n, (at, what) in enumerate(events):
        # Up to the next event that changes the group (a process's exit is not one: its
        # leave was at the signal), at most STALL_AFTER.
        later = [t for t, w in events[n + 1 :] if not w.endswith("exited") and t > at]
        until = min([at + STALL_AFTER, *later[:1]])
        near = [lat for sent, lat in latencies if at - STALL_BEFORE <= sent <= until]
        slow = [
            s
            for s in range(int(at), int(until) + 1)
            if per_second.get(s) and cut(per_second[s], 99) > 2 * steady_p99
        ]
        worst = max(near) * 1000 if near else float("nan")
        span = f"{len(slow)} s ({slow[0]}-{slow[-1]})" if slow else "0 s"
        print(f"  {at:>7.2f} s  {what:<12} worst {worst:>8,.1f} ms, slow seconds {span}")
    for name, member in members.items():
        line = f"  worker {name}: rebalances {member.rebalances[0]:.0f}"
        if member.rebalances[0]:
            line += f", {member.rebalances[1] / member.rebalances[0] * 1000:,.0f} ms on average"
        if "ready" in member.events and "spawn" in member.events:
            line += f"; spawn -> /ready {member.events['ready'] - member.events['spawn']:.2f} s"
        if "SIGTERM" in member.events and "exited" in member.events:
            line += f"; SIGTERM -> exit {member.events['exited'] - member.events['SIGTERM']:.2f} s"
        print(line)
    print("group pauses, from the workers' logs (trigger -> A's rebalance starts -> A resumes):")
    for what, start, ready in group_pauses(members):
        print(f"  {what:<10} {start:>6.2f} s -> {ready:>6.2f} s")
    got = set(event_ids)
    duplicates = sum(count - 1 for count in event_ids.values())
    lost = expected - got
    unexpected = got - expected
    print(
        f"memberships: {len(expected):,} expected, {len(got):,} distinct read, "
        f"{duplicates:,} duplicates (delivered again), {len(lost):,} lost, "
        f"{len(unexpected):,} unexpected",
        flush=True,
    )
    # Each duplicate counted at the group change nearest to its activity's send.
    changes = [(at, what) for at, what in events if not what.endswith(("exited", "ready"))]
    by_change: Counter[str] = Counter()
    for event_id, count in event_ids.items():
        sent = sent_at.get(activity_of.get(event_id, ""))
        if count > 1 and sent is not None and changes:
            by_change[min(changes, key=lambda c: abs(c[0] - (sent - t0)))[1]] += count - 1
    if by_change:
        print(
            "duplicates by the group change nearest to their activity's send: "
            + ", ".join(f"{what} {n:,}" for what, n in sorted(by_change.items())),
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="activities/s (1000)")
    parser.add_argument("--seconds", type=float, help="seconds of sending (50; 75 with --kill)")
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--join-at", type=float, default=20.0, help="B spawned (s, 20)")
    parser.add_argument("--leave-at", type=float, default=35.0, help="B sent SIGTERM (s, 35)")
    parser.add_argument("--kill", action="store_true", help="C joins, then is SIGKILLed")
    parser.add_argument("--kill-join", type=float, default=42.0, help="C spawned (s, 42)")
    parser.add_argument("--kill-at", type=float, default=55.0, help="C SIGKILLed (s, 55)")
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to wait for output after the last send"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STREAMS_X=VALUE",
        help="a worker setting for every worker of the run (repeatable)",
    )
    parser.add_argument("--harness", choices=list(HARNESSES), default="confluent")
    parser.add_argument("--broker", help="an existing broker's bootstrap (else a fresh one)")
    parser.add_argument("--redis-url", help="an existing Redis (else a fresh redis-server)")
    parser.add_argument("--logs", type=Path, metavar="DIR", help="keep the workers' logs")
    parser.add_argument(
        "--broker-warmup",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="first warm the broker with an unreported worker phase this long (30; 0: none)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs on the same broker (1)")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 75.0 if args.kill else 50.0
    with contextlib.ExitStack() as stack:
        logs = args.logs or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-rebalance-"))
        )
        bootstrap = args.broker or stack.enter_context(KafkaBroker()).bootstrap
        redis_url = args.redis_url or stack.enter_context(RedisServer()).url
        if args.broker_warmup > 0:
            # A fresh broker's JVM appends late in its first half minute (bench/stream.py).
            warm_broker(
                bootstrap,
                redis_url,
                logs,
                dict(item.split("=", 1) for item in args.set),
                Harness(args.harness),
                args.rate,
                args.broker_warmup,
            )
        for run_number in range(args.runs):
            if args.runs > 1:
                print(f"--- run {run_number + 1} of {args.runs}", flush=True)
            run(args, bootstrap, redis_url, logs)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
