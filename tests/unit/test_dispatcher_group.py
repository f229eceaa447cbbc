"""The dispatcher's consumer group, as its Faust app gets it: its session timeout and
heartbeat (STREAMS_SESSION_TIMEOUT, STREAMS_HEARTBEAT_INTERVAL, checked as the worker's:
tests/unit/test_group_timing.py), and a consumer that commits acked offsets before a
revocation (streams/runtime/revocation.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.actions.dispatcher import Stopping, build_app
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
    """Once the memberships under way ended (`Stopping.ended`, bounded by the consumer)."""
    settings = DispatcherSettings(rules_dir=RULES, broker="localhost:1")
    stopping = Stopping(1.0)
    app = build_app(settings, load_plan(RULES), Secrets(), tmp_path, stopping)
    assert type(app.consumer) is RevocationCommitStreamConsumer
    assert app.consumer.settlers == [stopping.ended]


def test_stopping_ended_waits_for_every_membership_under_way() -> None:
    async def main() -> None:
        stopping = Stopping(1.0)
        release = asyncio.Event()
        for _ in range(2):
            task = asyncio.ensure_future(release.wait())
            stopping.running.add(task)  # type: ignore[arg-type]
            task.add_done_callback(stopping.running.discard)
        waiting = asyncio.ensure_future(stopping.ended())
        await asyncio.sleep(0.02)
        assert not waiting.done()
        release.set()
        await asyncio.wait_for(waiting, 1)
        assert not stopping.running
        await asyncio.wait_for(stopping.ended(), 1)  # nothing under way: at once

    asyncio.run(main())
