"""The dispatcher's consumer group, as its Faust app gets it: its session timeout and
heartbeat (STREAMS_SESSION_TIMEOUT, STREAMS_HEARTBEAT_INTERVAL, checked as the worker's:
tests/unit/test_group_timing.py), and a consumer that commits acked offsets before a
revocation (streams/runtime/revocation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.actions.dispatcher import build_app
from streams.actions.secrets import Secrets
from streams.engine.compiler import load_plan
from streams.runtime.revocation import RevocationCommitStreamConsumer
from streams.settings import DispatcherSettings

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.mark.parametrize(("session", "heartbeat"), [(10.0, None), (6.0, 2.0), (1.5, 0.5)])
def test_faust_gets_the_dispatchers_session_timeout_and_heartbeat(
    tmp_path: Path, session: float, heartbeat: float | None
) -> None:
    given = {} if heartbeat is None else {"heartbeat_interval": heartbeat}
    settings = DispatcherSettings(
        rules_dir=RULES, broker="localhost:1", session_timeout=session, **given
    )
    heartbeat = 1.0 if heartbeat is None else heartbeat  # the default
    app = build_app(settings, load_plan(RULES), Secrets(), tmp_path)
    assert app.conf.broker_session_timeout == session
    assert app.conf.broker_heartbeat_interval == heartbeat


def test_the_dispatcher_commits_its_acked_offsets_before_a_revocation(tmp_path: Path) -> None:
    settings = DispatcherSettings(rules_dir=RULES, broker="localhost:1")
    app = build_app(settings, load_plan(RULES), Secrets(), tmp_path)
    assert type(app.consumer) is RevocationCommitStreamConsumer
