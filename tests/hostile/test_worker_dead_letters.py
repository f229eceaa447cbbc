"""Issue 7, item 1, against a real worker: a dead letter too large to send used to crash-loop
the worker and stop every partition. Now a letter copies at most 64 KiB of its record, and
a letter the broker still refuses (here: the dead-letter topic takes at most 100,000 bytes,
or the record's key alone is too large) is replaced by a minimal one naming the position."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from tests.hostile.conftest import RULES, HostileWorker, keyed, leads_in, sample_lines
from tests.integration.streaming import backtest

pytestmark = pytest.mark.integration


def test_poison_records_whose_dead_letters_are_too_large_stop_nothing(
    hostile_worker: HostileWorker,
) -> None:
    worker = hostile_worker
    normal = sample_lines(1_500, 40, seed=21, first_lead=100_000)
    invalid_bytes = b"\xff" * 500_000  # its full letter was ~1.3 MB; cut, still > 100,000
    huge_text = b"x" * 1_048_400  # the broker takes it; its letter is cut to 64 KiB
    big_key = b"k" * 200_000  # a bad record whose letter, keyed like it, cannot be sent
    third = len(normal) // 3
    records = [
        *keyed(normal[:third]),
        (b"unparsable", invalid_bytes),
        *keyed(normal[third : 2 * third]),
        (b"unparsable", huge_text),
        (big_key, b"not json"),
        *keyed(normal[2 * third :]),
    ]
    expected = backtest(RULES, [value for _, value in records])
    assert len(expected.events) > 50 and len(expected.rejected) > 3

    before = worker.processed()
    sent = worker.send(records)
    got = worker.events_of(leads_in(normal), len(expected.events))
    letters = worker.letters_of(sent, len(expected.rejected))
    worker.wait_processed(before + len(records))

    assert {e["eventId"] for e in got} == {e["eventId"] for e in expected.events}
    assert len(got) == len(expected.events), "nothing lost, nothing twice"
    assert Counter(d["error"]["code"] for d in letters) == Counter(
        d["error"]["code"] for d in expected.rejected
    )
    assert len(letters) == len(expected.rejected)
    by_position = {(d["partition"], d["offset"]): d for d in letters}
    at = dict(zip(sent.lines, sent.positions, strict=True))

    minimal = by_position[at[invalid_bytes]]
    assert minimal["error"]["code"] == "malformed"
    assert minimal["record"] == ""
    assert minimal["recordLength"] == 500_000
    assert minimal["recordSha256"] == hashlib.sha256(invalid_bytes).hexdigest()
    assert "deadLetterError" in minimal
    assert minimal["topic"] == worker.settings["STREAMS_TOPIC_ACTIVITIES"]

    cut = by_position[at[huge_text]]
    assert cut["recordTruncated"] is True and "deadLetterError" not in cut
    assert cut["recordLength"] == len(huge_text)
    assert cut["record"] == "x" * 65_536

    keyless = by_position[at[b"not json"]]
    assert "deadLetterError" in keyless and keyless["error"]["code"] == "malformed"

    assert worker.metric("streams_dead_letters_minimal_total") >= 2
    worker.assert_healthy()
