"""Issue 7's leftover, against a real worker: an exception the engine itself raises on one
record (a defect, not bad input) made the worker exit 1 on that batch, and its restart
met the same record again: a crash loop. Now the record is an `engine_error` dead letter
and the worker goes on with the next records.

No valid record makes the real engine raise, and production code has no hook for it: the
worker here is started with a `sitecustomize.py` on its PYTHONPATH (written by the test)
that wraps `Engine.process` to raise on activities whose identity starts with `boom-`,
after the engine's own work on the state, so that the rollback has something to undo.
Then the same settings without the wrapper (the defect fixed) take the records sent again
from their dead letters, and accept them."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.devstack.worker import WorkerProcess
from tests.hostile.conftest import (
    RULES,
    HostileWorker,
    keyed,
    leads_in,
    running_worker,
    sample_lines,
)
from tests.integration.streaming import backtest, isolated_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SITECUSTOMIZE = '''
"""Test only (tests/hostile/test_worker_engine_errors.py): the engine raises on `boom-*`."""
from streams.engine.evaluator import Engine

_process = Engine.process


def process(self, state, activity, now_us):
    outcome = _process(self, state, activity, now_us)
    if activity.id.startswith("boom-"):
        raise ZeroDivisionError("division by zero")
    return outcome


Engine.process = process
'''


@pytest.fixture
def faulty_worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[HostileWorker]:
    patch = tmp_path / "patch"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(SITECUSTOMIZE)
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    settings["STREAMS_BATCH_SIZE"] = "200"
    # The engine's mypyc build, where one is built, cannot be patched: the pure one runs.
    settings["STREAMS_ENGINE"] = "pure"
    settings["PYTHONPATH"] = os.pathsep.join(
        [str(patch), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with running_worker(kafka_bootstrap, settings, tmp_path / "worker.log") as worker:
        yield worker


def test_a_record_the_engine_raises_on_is_a_dead_letter_and_the_worker_goes_on(
    faulty_worker: HostileWorker,
) -> None:
    worker = faulty_worker
    normal = sample_lines(1_200, 30, seed=33, first_lead=300_000)
    rejected = {d["offset"] for d in backtest(RULES, normal).rejected}
    accepted = [line for n, line in enumerate(normal) if n not in rejected]
    # Two copies of accepted records, on leads that have records before and after them,
    # made to raise by their identity.
    booms = []
    for n, line in enumerate((accepted[300], accepted[700])):
        activity = orjson.loads(line)
        activity["marketoGUID"] = f"boom-{n}"
        booms.append(orjson.dumps(activity))
    half = len(normal) // 2
    records = [*keyed(normal[:half]), *keyed(booms[:1]), *keyed(normal[half:]), *keyed(booms[1:])]
    records.extend(keyed(sample_lines(200, 30, seed=34, first_lead=300_000)))  # after them
    lines = [value for _, value in records]
    expected = backtest(RULES, [line for line in lines if line not in booms])
    assert len(expected.events) > 50

    before = worker.processed()
    sent = worker.send(records)
    got = worker.events_of(leads_in(lines), len(expected.events))
    letters = worker.letters_of(sent, len(expected.rejected) + 2)
    worker.wait_processed(before + len(records))

    assert {e["eventId"] for e in got} == expected.ids
    assert len(got) == len(expected.events), "nothing lost, nothing twice"
    codes = Counter(d["error"]["code"] for d in letters)
    assert codes == Counter(d["error"]["code"] for d in expected.rejected) + Counter(engine_error=2)
    at = dict(zip(sent.lines, sent.positions, strict=True))
    by_position = {(d["partition"], d["offset"]): d for d in letters}
    for boom in booms:
        letter = by_position[at[boom]]
        assert letter["error"] == {
            "code": "engine_error",
            "message": "ZeroDivisionError: division by zero",
        }
        assert letter["record"] == boom.decode()

    assert worker.metric('streams_dead_letters_total{code="engine_error"}') == 2
    log = worker.process.log_tail(100_000)
    for boom in booms:
        partition, offset = at[boom]
        position = f"{worker.settings['STREAMS_TOPIC_ACTIVITIES']}/{partition}/{offset}: "
        lead = orjson.loads(boom)["leadId"]
        assert log.count(f"{position}the engine (lead {lead}) raised") == 1, log
    worker.assert_healthy()

    # The defect fixed (the same settings, without the wrapper) and the records sent again
    # from their dead letters: evaluated afresh, not taken for duplicates of the marked
    # ones, with the events the backtest gives them at the end of the stream.
    worker.process.stop()
    settings = {
        k: v for k, v in worker.settings.items() if k not in ("PYTHONPATH", "STREAMS_ENGINE")
    }
    resent = [by_position[at[boom]]["record"].encode() for boom in booms]
    want = backtest(RULES, [*(line for line in lines if line not in booms), *resent])
    want_ids = {e["eventId"] for e in want.events if e["activityId"].startswith("boom-")}
    log_path = worker.process.log_path.with_name("fixed.log")
    with WorkerProcess(settings, log_path) as process:
        process.wait_ready()
        fixed = HostileWorker(settings, process, worker.memberships, worker.dead)
        again = fixed.send(keyed(resent))
        fixed.wait_processed(len(resent))
        assert want_ids, "the records sent again fire a campaign"

        def of_booms(values: list[dict[str, Any]]) -> set[str]:
            return {e["eventId"] for e in values if e["activityId"].startswith("boom-")}

        got = fixed.memberships.until(lambda v: len(of_booms(v)) >= len(want_ids), 60)
        assert of_booms(got) == want_ids
        assert fixed.metric('streams_activities_total{outcome="accepted"}') == len(resent)
        assert not fixed.letters_of(again, 1, timeout=5)
        fixed.assert_healthy()
