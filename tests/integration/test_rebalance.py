"""Rebalances under load on the real broker: a graceful join and leave of a second worker
sends no membership twice (streams/runtime/revocation.py: the batches in flight are
delivered, acked and committed before the partitions are given up)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from streams.devstack.worker import WorkerProcess
from streams.samples import sample_activities
from tests.integration.streaming import (
    TopicReader,
    backtest,
    isolated_settings,
    lead_key,
    per_lead,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
RATE = 800.0
"""Activities per second: batches are always in flight when the group rebalances."""


def send_paced(
    bootstrap: str,
    topic: str,
    lines: list[bytes],
    stop: threading.Event,
    sent: list[int | Exception],
) -> None:
    """`lines` at RATE per second until `stop` is set; `sent` gets how many were sent, or
    the error that stopped the sending."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    started = time.monotonic()
    count = 0
    try:
        for n, line in enumerate(lines):
            if stop.is_set():
                break
            wait = started + n / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            producer.send(topic, key=lead_key(line), value=line)
            count += 1
        producer.flush(timeout=60)
    except Exception as exc:  # reported by the test
        sent.append(exc)
    finally:
        producer.close()
    sent.append(count)


def test_a_graceful_join_and_leave_under_load_send_no_membership_twice(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """Worker A under paced load; B joins (A's partitions are revoked, half come back),
    then B is sent SIGTERM (its partitions go back to A). Before, each revocation left the
    batches being delivered unacked and their new owner sent their memberships again
    (22 and 4 in two runs of this test on that code); now every membership arrives exactly
    once, none lost, each lead's in order."""
    lines = [orjson.dumps(a) for a in sample_activities(int(RATE * 120), 400, seed=21)]
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    stop = threading.Event()
    sent: list[int | Exception] = []
    sender = threading.Thread(
        target=send_paced,
        args=(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines, stop, sent),
    )
    with WorkerProcess(settings, tmp_path / "a.log") as a:
        a.wait_ready(90)
        sender.start()
        try:
            memberships.until(lambda v: len(v) > 200, 60, a.alive)
            with WorkerProcess(settings, tmp_path / "b.log") as b:
                b.wait_ready(90)
                memberships.until(lambda v: False, 3, b.alive)  # both under load
                assert sender.is_alive(), f"the load ended before B left: {sent}"
                b.stop(grace=30)
                assert "deliveries in flight waited for" in (tmp_path / "b.log").read_text()
            memberships.until(lambda v: False, 2, a.alive)  # A alone again, under load
            assert sender.is_alive(), f"the load ended before B left: {sent}"
            stop.set()
            sender.join(60)
            assert len(sent) == 1 and isinstance(sent[0], int), f"the sender failed: {sent}"
            expected = backtest(RULES, lines[: sent[0]])
            got = memberships.until(
                lambda v: {e["eventId"] for e in v} >= expected.ids, 180, a.alive
            )
        finally:
            stop.set()
            sender.join(30)
            memberships.close()
        a_log = a.log_tail(40)
    counts = Counter(e["eventId"] for e in got)
    assert set(counts) == expected.ids, a_log
    assert per_lead(got) == per_lead(expected.events)
    twice = {event_id: n for event_id, n in counts.items() if n > 1}
    assert not twice, f"{sum(twice.values()) - len(twice)} memberships sent again: {a_log}"
