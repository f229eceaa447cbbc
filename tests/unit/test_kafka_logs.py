"""The clients' warnings and errors become DEBUG records and three kinds of state line."""

from __future__ import annotations

import logging
import time

import pytest

from streams.runtime.kafka_logs import ClientLogHandler, Trouble


def test_noise_is_summed_up_and_the_recovery_logged(caplog: pytest.LogCaptureFixture) -> None:
    trouble = Trouble(summary_every=0.2, quiet=0.3)
    client = logging.getLogger("aiokafka.test-noise")
    handler = ClientLogHandler(trouble)
    client.addHandler(handler)
    client.propagate = False
    try:
        with caplog.at_level(logging.INFO):
            for round_ in range(2):  # two outages: the watcher serves both
                for _ in range(50):
                    client.error("Unable connect to node with id 1")
                    time.sleep(0.01)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and (
                    sum("recovered after" in r.message for r in caplog.records) <= round_
                ):
                    time.sleep(0.05)
    finally:
        client.removeHandler(handler)
    ours = [r for r in caplog.records if r.name == "streams.kafka"]
    messages = [r.message for r in ours]
    assert sum("connection trouble (Unable connect" in m for m in messages) == 2, messages
    assert sum("still failing after" in m for m in messages) >= 2, messages
    assert sum("recovered after" in m and "(50 errors" in m for m in messages) == 2, messages
    assert all(r.levelno == logging.WARNING for r in ours)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no ERROR is left"
