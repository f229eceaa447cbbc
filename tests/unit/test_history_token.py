"""The paging token codec of streams.api.history: round trip, URL safety, and every altered
or foreign token refused with 1001 (701 when blank). Also the argument parsers the HTTP
layer uses, the activity number, and the page logic against a fake consumer."""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import TopicPartition

from streams.api.history import (
    CANNOT_BE_BLANK,
    INVALID_DATA,
    INVALID_VALUE,
    ActivityHistory,
    HistoryError,
    activity_number,
    decode_token,
    encode_token,
    parse_batch_size,
    parse_ids,
    parse_names,
    parse_since,
)
from streams.engine.catalog import build_catalog

offsets_st = st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=64)
topics_st = st.text(min_size=1, max_size=60)
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@given(topics_st, offsets_st)
def test_round_trip(topic: str, offsets: list[int]) -> None:
    token = encode_token(topic, offsets)
    assert URL_SAFE.fullmatch(token)
    assert decode_token(token, topic) == offsets


@given(topics_st, offsets_st, st.binary(min_size=1, max_size=64))
def test_round_trip_with_a_key(topic: str, offsets: list[int], key: bytes) -> None:
    token = encode_token(topic, offsets, key)
    assert decode_token(token, topic, key) == offsets


def _code(token: object, topic: str = "activities", key: bytes | None = None) -> int:
    with pytest.raises(HistoryError) as caught:
        if key is None:
            decode_token(token, topic)
        else:
            decode_token(token, topic, key)
    assert "nextPageToken" in caught.value.message
    return caught.value.code


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(offsets_st, st.data())
def test_any_changed_character_is_refused(offsets: list[int], data: st.DataObject) -> None:
    token = encode_token("activities", offsets)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    assert _code(tampered) == INVALID_VALUE


@given(offsets_st, st.data())
def test_truncated_or_extended_tokens_are_refused(offsets: list[int], data: st.DataObject) -> None:
    token = encode_token("activities", offsets)
    cut = data.draw(st.integers(1, len(token) - 1))
    assert _code(token[:cut]) == INVALID_VALUE
    extra = data.draw(st.text(ALPHABET, min_size=1, max_size=8))
    assert _code(token + extra) == INVALID_VALUE


@given(offsets_st, offsets_st)
def test_forged_offsets_need_the_key(offsets: list[int], forged: list[int]) -> None:
    key = b"a secret only the API knows"
    token = encode_token("activities", offsets, key)
    assert _code(encode_token("activities", forged), key=key) == INVALID_VALUE
    assert decode_token(token, "activities", key) == offsets


def test_a_token_of_another_topic_is_refused() -> None:
    token = encode_token("activities", [1, 2, 3])
    assert _code(token, topic="activities-eu") == INVALID_VALUE


def test_other_versions_are_refused() -> None:
    raw = bytearray(base64.urlsafe_b64decode(encode_token("activities", [5]) + "=="))
    raw[0] = 2
    token = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert _code(token) == INVALID_VALUE


@pytest.mark.parametrize(
    "garbage",
    ["x", "abc", "not a token", "????", "AAAA", "A" * 40, "%2F%2F", "YWJj=", "é", "a.b"],
)
def test_garbage_is_refused(garbage: str) -> None:
    assert _code(garbage) == INVALID_VALUE


@pytest.mark.parametrize("blank", [None, ""])
def test_blank_is_701(blank: str | None) -> None:
    assert _code(blank) == CANNOT_BE_BLANK


def test_not_a_string_is_refused() -> None:
    assert _code(12345) == INVALID_VALUE


def test_encode_refuses_impossible_offsets() -> None:
    with pytest.raises(ValueError):
        encode_token("activities", [-1])
    with pytest.raises(ValueError):
        encode_token("activities", [2**63])


def test_tokens_are_short() -> None:
    """Four partitions of a busy topic: a token well under a URL's comfortable length."""
    assert len(encode_token("activities", [10**9] * 4)) < 60


# --- parameters ----------------------------------------------------------------------------


def _raises(code: int, call: object, *args: object) -> None:
    assert callable(call)
    with pytest.raises(HistoryError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value.message


def test_parse_since() -> None:
    assert parse_since("2026-09-26T06:56:35+07:00") == datetime(
        2026, 9, 26, 6, 56, 35, tzinfo=timezone(timedelta(hours=7))
    )
    assert parse_since("2026-09-26T06:56:35Z") == datetime(2026, 9, 26, 6, 56, 35, tzinfo=UTC)
    assert parse_since("2026-09-26") == datetime(2026, 9, 26, tzinfo=UTC)
    assert parse_since(" 2026-09-26T00:00:00 ") == datetime(2026, 9, 26, tzinfo=UTC)
    _raises(CANNOT_BE_BLANK, parse_since, None)
    _raises(CANNOT_BE_BLANK, parse_since, " ")
    _raises(INVALID_VALUE, parse_since, "yesterday")


def test_parse_ids() -> None:
    assert parse_ids("1, 13,100001", "activityTypeIds") == [1, 13, 100001]
    assert parse_ids(None, "leadIds") is None
    assert parse_ids("", "leadIds") is None
    for bad in ("1,x", "0", "-3", "1,,2", "1.5", "99999999999999999999"):
        _raises(INVALID_VALUE, parse_ids, bad, "leadIds")


def test_parse_names_and_batch_size() -> None:
    assert parse_names("firstName, country,,") == ["firstName", "country"]
    assert parse_names(None) == []
    assert parse_batch_size(None) == 300
    assert parse_batch_size("25") == 25
    _raises(INVALID_DATA, parse_batch_size, "0")
    _raises(INVALID_DATA, parse_batch_size, "301")
    _raises(INVALID_VALUE, parse_batch_size, "ten")
    _raises(INVALID_VALUE, parse_batch_size, "+-5")
    _raises(INVALID_VALUE, parse_batch_size, "1e2")
    _raises(INVALID_DATA, parse_batch_size, "-5")


# --- the activity number -------------------------------------------------------------------


@given(st.text(min_size=1, max_size=80))
def test_activity_number_is_exact_in_json(identity: str) -> None:
    number = activity_number(identity)
    assert 0 < number < 2**53
    assert activity_number(identity) == number


def test_numeric_identities_are_their_own_number() -> None:
    assert activity_number("102988") == 102988
    assert activity_number("0102988") != 102988  # not canonical: hashed
    assert activity_number(str(2**52)) >= 2**52  # too large: hashed into the upper half
    assert activity_number("h-3f2a") >= 2**52


# --- the merge, against a fake consumer ------------------------------------------------------
# The page logic (k-way merge, next offsets when a page fills, gaps, end offsets that lie)
# without a broker; tests/integration/test_history.py runs it against Apache Kafka.


@dataclass(frozen=True)
class FakeRecord:
    offset: int
    timestamp: int
    value: bytes | None


class FakeConsumer:
    """Enough of KafkaConsumer for ActivityHistory: partitions with records at given
    offsets (gaps allowed), and end offsets that may claim more than there is."""

    def __init__(self, topic: str, logs: list[list[FakeRecord]], ends: list[int] | None = None):
        self.topic = topic
        self.logs = logs
        self.ends = ends or [(log[-1].offset + 1 if log else 0) for log in logs]
        self.assigned: list[TopicPartition] = []
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(len(self.logs)))

    def beginning_offsets(self, tps: list[TopicPartition], timeout_ms: int) -> dict[Any, int]:
        return dict.fromkeys(tps, 0)

    def end_offsets(self, tps: list[TopicPartition], timeout_ms: int) -> dict[Any, int]:
        return {tp: self.ends[tp.partition] for tp in tps}

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = list(tps)
        self.positions = {}
        self.paused = set()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp)

    def resume(self, tp: TopicPartition) -> None:
        self.paused.discard(tp)

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[FakeRecord]]:
        out: dict[Any, list[FakeRecord]] = {}
        for tp in self.assigned:  # a few records of each partition, as fetches return
            if tp in self.paused:
                continue
            batch = [r for r in self.logs[tp.partition] if r.offset >= self.positions[tp]][:7]
            if batch:
                out[tp] = batch
                self.positions[tp] = batch[-1].offset + 1
            if len(batch) < 7:  # the rest is control records (transaction markers)
                self.positions[tp] = max(self.positions[tp], self.ends[tp.partition])
        if not out:
            time.sleep(timeout_ms / 1000)
        return out

    def close(self, **kwargs: Any) -> None:
        pass


class FakeHistory(ActivityHistory):
    def __init__(self, consumer: FakeConsumer, **kwargs: Any) -> None:
        catalog, problems = build_catalog([])
        assert not problems
        super().__init__("fake:9092", consumer.topic, catalog, **kwargs)
        self.fake = consumer

    def _new_consumer(self) -> Any:
        return self.fake


def _record(guid: str, type_id: int, lead: int) -> bytes:
    return orjson.dumps(
        {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": "2026-09-26T06:56:35Z",
            "activityTypeId": type_id,
            "primaryAttributeValue": "x",
        }
    )


@st.composite
def logs_st(draw: st.DrawFn) -> list[list[FakeRecord]]:
    logs: list[list[FakeRecord]] = []
    for p in range(draw(st.integers(1, 5))):
        offset, log = 0, []
        for i in range(draw(st.integers(0, 40))):
            offset += draw(st.sampled_from([1, 1, 1, 2]))  # gaps: compaction, markers
            kind = draw(st.sampled_from(["visit", "form", "junk", "tombstone"]))
            value = {
                "visit": _record(f"{p}-{i}", 1, 1 + i % 3),
                "form": _record(f"{p}-{i}", 2, 1 + i % 3),
                "junk": b"{not json",
                "tombstone": None,
            }[kind]
            log.append(FakeRecord(offset, draw(st.integers(0, 20)), value))
        logs.append(log)
    return logs


def _page_all(history: ActivityHistory, batch_size: int, **kwargs: Any) -> list[str]:
    token = encode_token(history.topic, [])
    guids: list[str] = []
    for _ in range(10_000):
        results, token, more = history.activities(token, [1], batch_size=batch_size, **kwargs)
        guids += [r["marketoGUID"] for r in results]
        if not more:
            fake = history._new_consumer()
            assert decode_token(token, history.topic) == fake.ends  # consumed to the end
            return guids
    raise AssertionError("moreResult never turned false")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_matching_record_once_whatever_the_page_size(data: st.DataObject) -> None:
    logs = data.draw(logs_st())
    ends = [(log[-1].offset + 1 if log else 0) + data.draw(st.integers(0, 2)) for log in logs]
    history = FakeHistory(FakeConsumer("t", logs, ends))
    visits = [r.value for log in logs for r in log if r.value and b'"activityTypeId":1,' in r.value]
    reference = _page_all(history, 300)
    assert sorted(reference) == sorted(orjson.loads(v)["marketoGUID"] for v in visits)
    batch_size = data.draw(st.integers(1, 12))
    assert _page_all(history, batch_size) == reference  # same order in any page size
    lead = data.draw(st.integers(1, 3))
    assert _page_all(history, batch_size, lead_ids=[lead]) == [
        g for g in reference if int(g.split("-")[1]) % 3 + 1 == lead
    ]


def test_partitions_merge_by_timestamp_and_a_full_page_skips_nothing() -> None:
    logs = [
        [FakeRecord(0, 10, _record("a0", 1, 1)), FakeRecord(1, 30, _record("a1", 1, 1))],
        [FakeRecord(0, 20, _record("b0", 1, 2)), FakeRecord(1, 40, _record("b1", 1, 2))],
    ]
    history = FakeHistory(FakeConsumer("t", logs))
    results, token, more = history.activities(encode_token("t", []), [1], batch_size=3)
    assert [r["marketoGUID"] for r in results] == ["a0", "b0", "a1"]
    assert more and decode_token(token, "t") == [2, 1]  # b1 was read ahead, not consumed
    results, token, more = history.activities(token, [1], batch_size=3)
    assert [r["marketoGUID"] for r in results] == ["b1"]
    assert not more and decode_token(token, "t") == [2, 2]


def test_end_offsets_that_lie_do_not_hang_a_call() -> None:
    log = [FakeRecord(i, i, _record(f"r{i}", 1, 1)) for i in range(5)]
    consumer = FakeConsumer("t", [log], ends=[10])
    consumer.logs[0] = log  # offsets 5..9 never come
    history = FakeHistory(consumer, idle_timeout=0.2)

    def poll_without_end(timeout_ms: int, max_records: int) -> dict[Any, list[FakeRecord]]:
        tp = consumer.assigned[0]
        batch = [r for r in log if r.offset >= consumer.positions[tp]]
        if batch:
            consumer.positions[tp] = batch[-1].offset + 1
            return {tp: batch}
        time.sleep(timeout_ms / 1000)
        return {}

    consumer.poll = poll_without_end  # type: ignore[method-assign]
    began = time.monotonic()
    results, token, more = history.activities(encode_token("t", []), [1])
    assert time.monotonic() - began < 2
    assert [r["marketoGUID"] for r in results] == [f"r{i}" for i in range(5)]
    assert more and decode_token(token, "t") == [5]
