"""A worker's `/ready` (streams/runtime/readiness.py) on the real broker: 200 only once the
worker has joined its group and holds its assignment, and no flapping when another worker
joins or leaves the group, and 503 "stop" once it is told to stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from streams.devstack.worker import WorkerProcess
from tests.integration.readiness import (
    assert_first_ready_holds_every_partition,
    assert_stays_ready_while_another_joins_and_leaves,
    assigned_gauge,
    first_ready,
    group_assignment,
    probe,
)
from tests.integration.streaming import isolated_settings

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "rules"


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
        group = group_assignment(kafka_bootstrap, settings["STREAMS_APP_ID"])
        gauge = assigned_gauge(worker)
    assert_first_ready_holds_every_partition(seen, group, gauge)


def test_a_ready_worker_stays_ready_while_another_joins_and_leaves_the_group(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """A second worker of the same group rebalances the first (its partitions revoked and
    half of them given back); the first's probe must not fail meanwhile (readiness probes
    would take every member out of service at each rebalance). Its gauge follows its
    assignment: all partitions, then half, then all again once the second left (SIGTERM,
    a graceful leave), sooner than the session timeout."""
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    # A graceful stop leaves the group (LeaveGroup): the first worker takes the partitions
    # back at its next heartbeat, not after the session timeout a silent exit would cost.
    assert_stays_ready_while_another_joins_and_leaves(
        lambda name: WorkerProcess(settings, tmp_path / f"{name}.log"),
        float(settings["STREAMS_SESSION_TIMEOUT"]),
    )


def test_a_stopping_worker_answers_stop_until_its_web_server_closes(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """From the SIGTERM on, while the worker leaves its group and stops, `/ready` answers
    503 "stop" (never 200 again) until its web server closes: nothing new is routed to a
    worker on its way out."""
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        first_ready(worker, 90)
        os.killpg(worker.pid, signal.SIGTERM)
        answers: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.alive():
            answer = probe(worker)
            if answer[0] == 0 and answers:
                break  # the web server closed
            if answer[0]:
                answers.append(answer)
            time.sleep(0.005)
    stopping = [a for a in answers if a[0] != 200]
    assert stopping, answers[-3:]
    assert set(map(str, stopping)) == {str((503, {"ready": False, "waiting": "stop"}))}, stopping
    assert answers[answers.index(stopping[0]) :] == stopping, answers
