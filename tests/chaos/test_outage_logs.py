"""A broker outage in a worker's log: the state changes (trouble, still failing, recovered),
a few lines, not the clients' thousands of reconnect errors (kept at DEBUG)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from streams.devstack.kafka import KafkaBroker
from streams.devstack.redis import RedisServer
from streams.devstack.worker import WorkerProcess
from tests.chaos.test_restarts import RULES, started
from tests.integration.streaming import isolated_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE = 40.0
"""Seconds the broker is down: longer than one summary period (30 s)."""


def test_a_broker_outage_logs_its_state_changes_not_the_clients_noise(tmp_path: Path) -> None:
    broker = started(KafkaBroker())
    server = started(RedisServer())
    worker: WorkerProcess | None = None
    try:
        settings = isolated_settings(broker.bootstrap, server.url, RULES)
        worker = WorkerProcess(settings, tmp_path / "worker.log").start()
        worker.wait_ready(120)
        time.sleep(3)  # joined, fetching
        startup = worker.log_path.read_text(errors="replace")
        if "connection trouble" in startup:  # a first join may have retried: let it settle
            deadline = time.monotonic() + 30
            while "recovered after" not in startup and time.monotonic() < deadline:
                time.sleep(1)
                startup = worker.log_path.read_text(errors="replace")
        before = startup.count("\n")
        broker.stop()
        time.sleep(OUTAGE)
        broker.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.alive():
            lines = worker.log_path.read_text(errors="replace").splitlines()[before:]
            if any("Kafka clients: recovered after" in line for line in lines):
                break
            time.sleep(1)
        text = worker.log_path.read_text(errors="replace")
        state = f"worker alive: {worker.alive()}, exit {worker.proc and worker.proc.returncode}"
    finally:
        if worker is not None:
            worker.stop(grace=30)
        broker.close()
        server.close()
    during = text.splitlines()[before:]
    errors = [line for line in during if re.search(r"\b(ERROR|WARNING)\b", line)]
    print(f"\n{len(during)} log lines during the outage, {len(errors)} at WARNING or ERROR")
    assert any("Kafka clients: connection trouble" in line for line in during), text[-3000:]
    assert any("Kafka clients: still failing after" in line for line in during), text[-3000:]
    assert any("Kafka clients: recovered after" in line for line in during), (
        f"{state}\n{text[-3000:]}"
    )
    assert len(errors) <= 15, "\n".join(errors[:40])
    assert len(during) <= 60, "\n".join(during[:80])
