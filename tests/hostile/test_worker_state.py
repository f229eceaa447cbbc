"""Issue 7, item 2, against a real worker: corrupt or foreign Redis state for one lead used
to crash-loop the worker. Now the key is quarantined (renamed, counted, logged once), the
lead goes on from an empty state, and every record, its own included, is processed."""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson
import pytest
import redis

from streams.state.codec import FORMAT_VERSION, decode_state
from tests.hostile.conftest import RULES, HostileWorker, keyed, leads_in, sample_lines
from tests.integration.streaming import backtest

pytestmark = pytest.mark.integration

CORRUPTIONS: list[Callable[[redis.Redis, bytes], object]] = [
    lambda r, key: r.hset(key, mapping={"state": b"junk", "ver": b"3"}),
    lambda r, key: r.set(key, b"a string where a hash belongs"),
    lambda r, key: r.rpush(key, b"a", b"list"),
    lambda r, key: r.hset(key, mapping={"state": b'{"v": 999, "x": 1}', "ver": b"1"}),
    lambda r, key: r.hset(key, mapping={"state": b'{"h": {}}', "ver": b"not a number"}),
]


def test_corrupt_state_of_some_leads_is_quarantined_and_nothing_stops(
    hostile_worker: HostileWorker,
) -> None:
    worker = hostile_worker
    app_id = worker.settings["STREAMS_APP_ID"]
    lines = sample_lines(1_500, 40, seed=22, first_lead=200_000)
    leads = leads_in(lines)
    victims = sorted(leads)[: len(CORRUPTIONS)]
    admin = redis.Redis.from_url(worker.settings["STREAMS_REDIS_URL"])
    try:
        for lead, corrupt in zip(victims, CORRUPTIONS, strict=True):
            corrupt(admin, f"{app_id}:lead:{{{lead}}}".encode())
        expected = backtest(RULES, lines)  # the victims start afresh: as if they had no state
        assert {e["leadId"] for e in expected.events} >= set(victims[:3])
        before = worker.metric("streams_state_quarantined_total")

        done = worker.processed()
        sent = worker.send(keyed(lines))
        got = worker.events_of(leads, len(expected.events))
        letters = worker.letters_of(sent, len(expected.rejected))
        worker.wait_processed(done + len(lines))

        assert {e["eventId"] for e in got} == {e["eventId"] for e in expected.events}
        assert len(got) == len(expected.events), "nothing lost, nothing twice"
        assert len(letters) == len(expected.rejected)
        assert worker.metric("streams_state_quarantined_total") - before == len(victims)
        log = worker.process.log_tail(100_000)
        for lead in victims:
            key = f"{app_id}:lead:{{{lead}}}"
            assert len(re.findall(rf"lead {lead}: state at {re.escape(key)} ", log)) == 1, log
            moved = list(admin.scan_iter(match=f"{app_id}:quarantine:{{{lead}}}:*"))
            assert len(moved) == 1, "moved aside once, kept for inspection"
            state = decode_state(admin.hget(key, "state"))  # saved afresh, readable
            assert orjson.loads(admin.hget(key, "state"))["v"] == FORMAT_VERSION
            assert set(state.history) | set(state.seen), lead
        worker.assert_healthy()
    finally:
        admin.close()
