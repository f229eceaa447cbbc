"""A worker's `/ready` (streams/runtime/readiness.py) on the real broker: 200 only once the
worker has joined its group and holds its assignment, and no flapping when another worker
joins or leaves the group."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from streams.devstack.worker import WorkerProcess
from tests.integration.streaming import PARTITIONS, isolated_settings

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "rules"
WAITING = {"group join", "rebalance", "warm-up"}
_ASSIGNED_RE = re.compile(r"^streams_assigned_partitions ([0-9.e+]+)$", re.M)


def probe(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    """(status, body) of the worker's /ready; (0, {}) while its web server is not up."""
    url = f"http://127.0.0.1:{worker.web_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def assigned_gauge(worker: WorkerProcess) -> int | None:
    found = _ASSIGNED_RE.search(worker.metrics())
    return int(float(found.group(1))) if found else None


def group_assignment(bootstrap: str, group: str) -> tuple[str, dict[str, list[int]]]:
    """The group's state on the broker and each member's assigned partitions."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])[group]
    except KafkaError as exc:  # e.g. no coordinator yet: the group was never joined
        return f"unknown: {type(exc).__name__}", {}
    finally:
        admin.close()
    members = {
        member["member_id"]: sorted(
            p
            for topic in (member.get("member_assignment") or {}).get("assigned_partitions", [])
            for p in topic["partitions"]
        )
        for member in described.get("members", [])
    }
    return str(described.get("group_state")), members


def first_ready(worker: WorkerProcess, timeout: float) -> list[tuple[int, dict[str, Any]]]:
    """Probe /ready every 10 ms until it answers 200; every answer seen, the 200 last."""
    seen: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        status, body = probe(worker)
        if status:
            seen.append((status, body))
        if status == 200:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"not ready within {timeout} s: {seen[-3:]}\n{worker.log_tail()}")


def test_ready_answers_only_once_the_group_is_joined_and_the_partitions_assigned(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """At the first 200 the broker already has the worker in a stable group holding every
    partition, and the worker's own gauge says so; before it, each 503 says what it waits
    for. (Before readiness followed the group, `/ready` answered 200 as the agent started,
    about 0.1 s before the group was joined: the broker then had no member.)"""
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        seen = first_ready(worker, 90)
        state, members = group_assignment(kafka_bootstrap, settings["STREAMS_APP_ID"])
        gauge = assigned_gauge(worker)
        body = seen[-1][1]
    assert state == "Stable" and list(members.values()) == [list(range(PARTITIONS))], (
        state,
        members,
        seen[-3:],
    )
    assert body == {"ready": True, "rebalancing": False, "partitions": list(range(PARTITIONS))}
    assert gauge == PARTITIONS
    not_ready = [b for s, b in seen if s != 200]
    assert not_ready, "no 503 before the first 200: the probe never saw the worker waiting"
    for answer in not_ready:
        assert answer["ready"] is False and answer["waiting"] in WAITING, answer


def test_a_ready_worker_stays_ready_while_another_joins_and_leaves_the_group(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """A second worker of the same group rebalances the first (its partitions revoked and
    half of them given back); the first's probe must not fail meanwhile (readiness probes
    would take every member out of service at each rebalance). Its gauge follows its
    assignment: all partitions, then half, then all again once the second left (SIGTERM,
    a graceful leave), sooner than the session timeout."""
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    with WorkerProcess(settings, tmp_path / "first.log") as first:
        first_ready(first, 90)
        failures: list[tuple[int, dict[str, Any]]] = []
        gauges: list[int | None] = []

        def watch_until(done: Any, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while not done():
                assert time.monotonic() < deadline, (gauges[-5:], first.log_tail())
                assert first.alive(), first.log_tail()
                status, body = probe(first)
                if status not in (0, 200):  # 0: no answer within 2 s (a loaded machine)
                    failures.append((status, body))
                gauges.append(assigned_gauge(first))
                time.sleep(0.02)

        with WorkerProcess(settings, tmp_path / "second.log") as second:
            watch_until(lambda: probe(second)[0] == 200, 90)
            assert assigned_gauge(second) == PARTITIONS // 2, second.log_tail()
            watch_until(lambda: gauges[-1] == PARTITIONS // 2, 60)
            os.killpg(second.pid, signal.SIGTERM)
            left = time.monotonic()
            watch_until(lambda: gauges[-1] == PARTITIONS, 60)
            taken_back = time.monotonic() - left
    assert failures == [], failures[:5]
    assert PARTITIONS // 2 in gauges and gauges[-1] == PARTITIONS
    # A graceful stop leaves the group (LeaveGroup): the first worker takes the partitions
    # back at its next heartbeat, not after the session timeout a silent exit would cost.
    session = float(settings["STREAMS_SESSION_TIMEOUT"])
    assert taken_back < session, (taken_back, session)
