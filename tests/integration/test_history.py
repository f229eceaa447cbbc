"""streams.api.history against a real Apache Kafka broker: Marketo's paging over the
`activities` topic (paging tokens, Get Lead Activities, Get Lead Changes, Get Deleted Leads).

Each test writes to a fresh topic of 4 partitions, keyed by lead id as the applications do;
records that must be ordered or selected by time carry an explicit broker timestamp.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

from streams.api.history import ActivityHistory
from streams.api.history_errors import CANNOT_BE_BLANK, INVALID_DATA, INVALID_VALUE, HistoryError
from streams.api.paging_token import decode_token, encode_token
from streams.engine.catalog import Catalog
from streams.engine.compiler import load_plan
from streams.runtime.connections import ensure_topics

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "rules"
PARTITIONS = 4
T0_MS = 1_790_000_000_000  # 2026-09-21T...Z: a fixed origin for explicit timestamps
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_plan(RULES).catalog


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"history-{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_bootstrap, {name: PARTITIONS})
    return name


@pytest.fixture
def history(kafka_bootstrap: str, topic: str, catalog: Catalog) -> Iterator[ActivityHistory]:
    with ActivityHistory(kafka_bootstrap, topic, catalog) as reader:
        yield reader


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[dict[str, Any] | bytes],
    timestamps: Sequence[int | None] | None = None,
    partitions: Sequence[int | None] | None = None,
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for i, record in enumerate(records):
            value = record if isinstance(record, bytes) else orjson.dumps(record)
            lead = record.get("leadId", 0) if isinstance(record, dict) else 0
            producer.send(
                topic,
                key=str(lead).encode(),
                value=value,
                timestamp_ms=timestamps[i] if timestamps else None,
                partition=partitions[i] if partitions else None,
            )
        producer.flush(timeout=60)
    finally:
        producer.close()


def visit(i: int, lead: int, ts_ms: int, type_id: int = 1) -> dict[str, Any]:
    if type_id == 100001:
        return {
            "marketoGUID": f"g{i}",
            "leadId": lead,
            "activityDate": iso(ts_ms),
            "activityTypeId": 100001,
            "primaryAttributeValue": f"Conf {i}",
            "attributes": [
                {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00+02:00"},
                {"name": "Number of Attendees", "value": str(i)},
            ],
        }
    return {
        "marketoGUID": f"g{i}",
        "leadId": lead,
        "activityDate": iso(ts_ms),
        "activityTypeId": type_id,
        "primaryAttributeValue": f"page-{i}",
        "attributes": [{"apiName": "webpageUrl", "value": f"https://example.com/{i}"}]
        if type_id == 1
        else [],
    }


def page_all(
    history: ActivityHistory, token: str, batch_size: int = 300, **kwargs: Any
) -> tuple[list[list[dict[str, Any]]], str]:
    """Every page until moreResult is false; the last token."""
    pages: list[list[dict[str, Any]]] = []
    type_ids = kwargs.pop("type_ids", [1, 2, 100001])
    for _ in range(1000):
        results, token, more = history.activities(token, type_ids, batch_size=batch_size, **kwargs)
        pages.append(results)
        if not more:
            return pages, token
    raise AssertionError("moreResult never turned false")


def flat(pages: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for page in pages for r in page]


def stream(n: int) -> tuple[list[dict[str, Any] | bytes], list[int]]:
    """n activities of types 1, 2 and 100001 for 40 leads, with a few undecodable records
    in between; broker timestamps 1 ms apart (so activityDate order is timestamp order)."""
    records: list[dict[str, Any] | bytes] = []
    timestamps: list[int] = []
    for i in range(n):
        ts = T0_MS + i
        records.append(visit(i, 1 + i % 40, ts, (1, 2, 100001)[i % 3]))
        timestamps.append(ts)
        if i % 250 == 125:
            records.append(b"not json")
            timestamps.append(ts)
            records.append({"leadId": 5, "activityTypeId": 424242, "activityDate": iso(ts)})
            timestamps.append(ts)
    return records, timestamps


def test_paging_returns_every_record_once_in_a_stable_order(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    records, timestamps = stream(1_100)
    produce(kafka_bootstrap, topic, records, timestamps)
    start = history.paging_token(LONG_AGO)
    assert decode_token(start, topic) == [0] * PARTITIONS

    pages, end_token = page_all(history, start)
    results = flat(pages)
    guids = [r["marketoGUID"] for r in results]
    assert len(guids) == len(set(guids)) == 1_100
    assert set(guids) == {f"g{i}" for i in range(1_100)}
    assert all(len(page) == 300 for page in pages[:3])
    assert len(pages) in (4, 5)  # a last empty page when the tail is filtered out
    dates = [datetime.fromisoformat(r["activityDate"]) for r in results]
    assert dates == sorted(dates)  # merged by record timestamp across partitions

    # Stable: the same sequence again, whatever the page size.
    assert [r["marketoGUID"] for r in flat(page_all(history, start)[0])] == guids
    assert [r["marketoGUID"] for r in flat(page_all(history, start, batch_size=97)[0])] == guids

    # Marketo's shape.
    first = results[0]
    assert first == {
        "id": first["id"],
        "marketoGUID": "g0",
        "leadId": 1,
        "activityDate": iso(T0_MS),
        "activityTypeId": 1,
        "primaryAttributeValue": "page-0",
        "attributes": [{"name": "Webpage URL", "value": "https://example.com/0"}],
    }
    conference = next(r for r in results if r["activityTypeId"] == 100001)
    assert conference["primaryAttributeValue"] == "Conf 2"
    assert conference["attributes"] == [
        {"name": "Conference Date", "value": "2026-10-01T07:00:00Z"},
        {"name": "Number of Attendees", "value": 2},
    ]
    ids = [r["id"] for r in results]
    assert len(set(ids)) == len(ids) and all(0 < i < 2**53 for i in ids)

    # After the end: nothing more now, and the token still resumes there.
    results, token, more = history.activities(end_token, [1, 2, 100001])
    assert (results, more) == ([], False)
    assert token == end_token


def test_filters_by_type_and_lead(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    records, timestamps = stream(600)
    produce(kafka_bootstrap, topic, records, timestamps)
    start = history.paging_token(LONG_AGO)
    good = [r for r in records if isinstance(r, dict) and "marketoGUID" in r]

    only_forms = flat(page_all(history, start, type_ids=[2])[0])
    assert [r["marketoGUID"] for r in only_forms] == [
        r["marketoGUID"] for r in good if r["activityTypeId"] == 2
    ]
    leads = flat(page_all(history, start, batch_size=50, type_ids=[1, 100001], lead_ids=[3, 7])[0])
    assert {r["marketoGUID"] for r in leads} == {
        r["marketoGUID"]
        for r in good
        if r["activityTypeId"] in (1, 100001) and r["leadId"] in (3, 7)
    }
    assert leads and all(r["leadId"] in (3, 7) for r in leads)


def test_the_last_token_picks_up_records_written_later(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    produce(kafka_bootstrap, topic, [visit(i, 1 + i % 9, T0_MS + i) for i in range(40)])
    _, token = page_all(history, history.paging_token(LONG_AGO))
    later = range(40, 55)
    produce(
        kafka_bootstrap,
        topic,
        [visit(i, 1 + i % 9, T0_MS + i) for i in later],
        [T0_MS + i for i in later],
    )
    results, token, more = history.activities(token, [1])
    assert [r["marketoGUID"] for r in results] == [f"g{i}" for i in range(40, 55)]
    assert not more
    assert history.activities(token, [1]) == ([], token, False)


def test_since_datetime_matches_the_record_timestamp(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    # activityDate is always the same: only the broker timestamps differ.
    records = [visit(i, 1 + i % 13, T0_MS) for i in range(100)]
    produce(kafka_bootstrap, topic, records, [T0_MS + i * 1000 for i in range(100)])

    since = datetime.fromtimestamp(T0_MS / 1000, UTC) + timedelta(seconds=50, milliseconds=500)
    results = flat(page_all(history, history.paging_token(since), type_ids=[1])[0])
    assert sorted(int(r["marketoGUID"][1:]) for r in results) == list(range(51, 100))

    exact = datetime.fromtimestamp(T0_MS / 1000, UTC) + timedelta(seconds=50)
    results = flat(page_all(history, history.paging_token(exact), type_ids=[1])[0])
    assert len(results) == 50  # at or after

    future = history.paging_token(datetime(2100, 1, 1, tzinfo=UTC))
    assert history.activities(future, [1]) == ([], future, False)
    assert len(flat(page_all(history, history.paging_token(LONG_AGO), type_ids=[1])[0])) == 100


def test_lead_changes_only_with_the_listed_fields(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    records: list[dict[str, Any] | bytes] = [
        {
            "marketoGUID": "c1",
            "leadId": 1,
            "activityDate": iso(T0_MS),
            "activityTypeId": 13,
            "fields": [
                {"id": 47, "name": "country", "newValue": "France", "oldValue": "Spain"},
                {"name": "city", "newValue": "Paris", "oldValue": "Madrid"},
            ],
            "attributes": [{"name": "Reason", "value": "Form fill"}],
        },
        {
            "marketoGUID": "c2",
            "leadId": 2,
            "activityDate": iso(T0_MS + 1),
            "activityTypeId": 13,
            "fields": [{"name": "city", "newValue": "Lyon", "oldValue": None}],
        },
        {
            "marketoGUID": "n3",
            "leadId": 3,
            "activityDate": iso(T0_MS + 2),
            "activityTypeId": 12,
            "fields": [
                {"name": "Country", "newValue": "Chile"},
                {"name": "email", "newValue": "a@b"},
            ],
            "attributes": [{"apiName": "sourceType", "value": "Web form"}],
        },
        {
            "marketoGUID": "n4",
            "leadId": 4,
            "activityDate": iso(T0_MS + 3),
            "activityTypeId": 12,
        },
        visit(5, 1, T0_MS + 4),
    ]
    produce(kafka_bootstrap, topic, records, [T0_MS + i for i in range(len(records))])
    token = history.paging_token(LONG_AGO)

    results, _, more = history.lead_changes(token, ["COUNTRY"])
    assert not more
    assert results == [
        {
            "id": results[0]["id"],
            "marketoGUID": "c1",
            "leadId": 1,
            "activityDate": iso(T0_MS),
            "activityTypeId": 13,
            "fields": [{"id": 47, "name": "country", "newValue": "France", "oldValue": "Spain"}],
            "attributes": [{"name": "Reason", "value": "Form fill"}],
        },
        {
            "id": results[1]["id"],
            "marketoGUID": "n3",
            "leadId": 3,
            "activityDate": iso(T0_MS + 2),
            "activityTypeId": 12,
            "fields": [{"name": "Country", "newValue": "Chile", "oldValue": None}],
            "attributes": [{"name": "Source Type", "value": "Web form"}],
        },
    ]
    results, _, _ = history.lead_changes(token, ["city", "email"], lead_ids=[2, 3])
    assert [(r["marketoGUID"], [f["name"] for f in r["fields"]]) for r in results] == [
        ("c2", ["city"]),
        ("n3", ["email"]),
    ]
    # Get Lead Activities shows a single change's values as Marketo's attributes.
    activities, _, _ = history.activities(token, [13])
    assert activities[1]["primaryAttributeValue"] == "city"
    assert activities[1]["attributes"][:2] == [
        {"name": "New Value", "value": "Lyon"},
        {"name": "Old Value", "value": None},
    ]


def test_deleted_leads(kafka_bootstrap: str, topic: str, history: ActivityHistory) -> None:
    records: list[dict[str, Any] | bytes] = [visit(i, 10 + i, T0_MS + i) for i in range(30)]
    records += [
        {"marketoGUID": f"d{lead}", "leadId": lead, "activityDate": iso(T0_MS + 100 + lead),
         "activityTypeId": 37, "primaryAttributeValue": f"Lead {lead}"}
        for lead in (11, 15, 29)
    ]  # fmt: skip
    produce(kafka_bootstrap, topic, records, [T0_MS + i for i in range(len(records))])
    token = history.paging_token(LONG_AGO)
    pages: list[list[dict[str, Any]]] = []
    more = True
    while more:
        page, token, more = history.deleted_leads(token, batch_size=2)
        pages.append(page)
    results = flat(pages)
    assert [r["leadId"] for r in results] == [11, 15, 29]
    assert results[0] == {
        "id": results[0]["id"],
        "marketoGUID": "d11",
        "leadId": 11,
        "activityDate": iso(T0_MS + 111),
        "activityTypeId": 37,
        "primaryAttributeValueId": 11,
        "primaryAttributeValue": "Lead 11",
        "attributes": [],
    }


def _code(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(HistoryError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def test_invalid_tokens_and_arguments(history: ActivityHistory, topic: str) -> None:
    token = history.paging_token(LONG_AGO)
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    assert _code(history.activities, tampered, [1]) == INVALID_VALUE
    assert _code(history.activities, "garbage", [1]) == INVALID_VALUE
    assert _code(history.activities, encode_token("other-topic", [0] * 4), [1]) == INVALID_VALUE
    assert _code(history.activities, encode_token(topic, [0] * 9), [1]) == INVALID_VALUE
    assert _code(history.activities, "", [1]) == CANNOT_BE_BLANK
    assert _code(history.deleted_leads, tampered) == INVALID_VALUE
    assert _code(history.lead_changes, tampered, ["email"]) == INVALID_VALUE

    assert _code(history.activities, token, []) == INVALID_DATA
    assert _code(history.activities, token, list(range(1, 12))) == INVALID_DATA
    assert _code(history.activities, token, [999]) == INVALID_DATA  # no such type
    assert _code(history.activities, token, ["1"]) == INVALID_VALUE
    assert _code(history.activities, token, [1], list(range(1, 32))) == INVALID_DATA
    assert _code(history.activities, token, [1], [0]) == INVALID_VALUE
    assert _code(history.activities, token, [1], batch_size=0) == INVALID_DATA
    assert _code(history.activities, token, [1], batch_size=301) == INVALID_DATA
    assert _code(history.activities, token, [1], batch_size=True) == INVALID_VALUE
    assert _code(history.lead_changes, token, []) == INVALID_DATA
    assert _code(history.lead_changes, token, [" "]) == INVALID_DATA
    assert _code(history.lead_changes, token, ["email"], list(range(1, 32))) == INVALID_DATA
    assert _code(history.deleted_leads, token, 500) == INVALID_DATA

    # Limits are inclusive; a garbage-free call still works after all those errors.
    assert history.activities(token, list(history.catalog.types)[:10], list(range(1, 31)))[2] in (
        True,
        False,
    )
    assert history.activities(token, [1], batch_size=300) == ([], token, False)


def test_a_token_survives_the_topic_growing(
    kafka_bootstrap: str, topic: str, catalog: Catalog
) -> None:
    # A reader that keeps its partition count for an hour, as if the topic grew a moment
    # after it last asked: it must lose nothing either.
    stale = ActivityHistory(kafka_bootstrap, topic, catalog, metadata_max_age=3600)
    with stale:
        produce(kafka_bootstrap, topic, [visit(i, 1 + i, T0_MS + i) for i in range(20)])
        early = stale.paging_token(LONG_AGO)
        pages, token = page_all(stale, early, type_ids=[1])
        assert len(flat(pages)) == 20 and len(decode_token(token, topic)) == PARTITIONS

        with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
            admin.create_partitions({topic: 6})
        later = [visit(i, 1 + i, T0_MS + i) for i in range(20, 32)]
        produce(kafka_bootstrap, topic, later, partitions=[4, 5, 0] * 4)
        in_partition_0 = {r["marketoGUID"] for r in later[2::3]}

        results, token, more = stale.activities(token, [1])
        assert {r["marketoGUID"] for r in results} == in_partition_0
        assert not more and len(decode_token(token, topic)) == PARTITIONS

        # Another API process (or this one once its count is old): partitions 4 and 5,
        # which the 4-partition token does not know, are read from offset 0.
        with ActivityHistory(kafka_bootstrap, topic, catalog) as fresh:
            results, token, more = fresh.activities(token, [1])
            assert {r["marketoGUID"] for r in results} == {
                r["marketoGUID"] for r in later
            } - in_partition_0
            assert not more and len(decode_token(token, topic)) == 6
            everything = flat(page_all(fresh, early, type_ids=[1])[0])  # the first token
            assert len(everything) == 32

        # A 6-partition token makes the stale reader ask again instead of refusing it.
        assert stale.activities(token, [1]) == ([], token, False)


def test_a_token_below_the_retained_records_resumes_at_the_earliest(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    produce(
        kafka_bootstrap, topic, [visit(i, 1, T0_MS + i) for i in range(20)], partitions=[0] * 20
    )
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        admin.delete_records({TopicPartition(topic, 0): 12})
    results, token, more = history.activities(encode_token(topic, [0] * 4), [1])
    assert [r["marketoGUID"] for r in results] == [f"g{i}" for i in range(12, 20)]
    assert not more
    assert decode_token(token, topic) == [20, 0, 0, 0]


def test_concurrent_callers_share_the_reader(
    kafka_bootstrap: str, topic: str, history: ActivityHistory
) -> None:
    records, timestamps = stream(900)
    produce(kafka_bootstrap, topic, records, timestamps)
    start = history.paging_token(LONG_AGO)
    expected = [r["marketoGUID"] for r in flat(page_all(history, start)[0])]
    seen: list[list[str]] = []
    errors: list[BaseException] = []

    def run(batch_size: int) -> None:
        try:
            pages, _ = page_all(history, start, batch_size=batch_size)
            seen.append([r["marketoGUID"] for r in flat(pages)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(size,)) for size in (300, 211, 150, 300, 64, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert seen == [expected] * len(threads)
