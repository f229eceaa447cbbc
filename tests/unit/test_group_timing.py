"""The group timing of the worker and the dispatcher (STREAMS_SESSION_TIMEOUT,
STREAMS_HEARTBEAT_INTERVAL) as the settings check it and as Faust gets it
(streams/runtime/faust_app.py, `service_options`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.engine.compiler import load_plan
from streams.runtime.faust_app import service_options
from streams.runtime.worker import build_app
from streams.settings import DispatcherSettings, GroupMemberSettings, WorkerSettings

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.mark.parametrize("kind", [WorkerSettings, DispatcherSettings])
def test_the_heartbeat_is_at_most_a_third_of_the_session_timeout(
    kind: type[GroupMemberSettings],
) -> None:
    assert kind(rules_dir=RULES, session_timeout=3, heartbeat_interval=1).heartbeat_interval == 1
    with pytest.raises(
        ValidationError, match=r"STREAMS_HEARTBEAT_INTERVAL .* STREAMS_SESSION_TIMEOUT"
    ):
        kind(rules_dir=RULES, session_timeout=6, heartbeat_interval=2.5)
    with pytest.raises(ValidationError, match="STREAMS_HEARTBEAT_INTERVAL"):
        kind(rules_dir=RULES, session_timeout=1.5)  # the default second is too long for it


def test_faust_gets_the_workers_heartbeat_and_session_timeout(tmp_path: Path) -> None:
    settings = WorkerSettings(
        rules_dir=RULES, broker="localhost:1", session_timeout=9, heartbeat_interval=0.5
    )
    app = build_app(settings, load_plan(RULES), tmp_path)
    assert app.conf.broker_heartbeat_interval == 0.5
    assert app.conf.broker_session_timeout == 9
    # Without a heartbeat given: a second, bounded by the session timeout.
    assert service_options("h", 1, 10)["broker_heartbeat_interval"] == 1.0
    assert service_options("h", 1, 1.5)["broker_heartbeat_interval"] == 0.5
