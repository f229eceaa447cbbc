"""Batch sizes never change the output: a generated stream cut into batches of random sizes
gives exactly the events (full JSON, in order) and the dead letters of one pass in one batch;
and a crash that replays uncommitted batches re-emits the same events, nothing else.

The catalog is small (two custom types and a draft) and the campaigns use every kind of rule:
history filters with windows, minTimes and negate, field filters, logic expressions and the
three qualification rules. The stream runs over a handful of leads with dates in random order,
duplicates, Delete Lead, field changes and invalid lines.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.engine.compiler import Plan, load_plan
from streams.engine.datatypes import datetime_to_us
from streams.pipeline import BatchResult, Processor, Record
from streams.state.memory import MemoryStore

NOW_US = datetime_to_us(datetime(2026, 12, 1, tzinfo=UTC))
BASE = datetime(2026, 3, 1, tzinfo=UTC)
PARIS_SUMMER = timezone(timedelta(hours=2))

TYPES = {
    "attend.yaml": """\
id: 100001
apiName: attendConference
name: Attend Conference
triggerName: Attends Conference
filterName: Attended Conference
status: approved
primaryAttribute:
  apiName: conferenceName
  name: Conference Name
attributes:
  - apiName: numberOfAttendees
    name: Number of Attendees
    dataType: integer
  - apiName: conferenceDate
    name: Conference Date
    dataType: datetime
""",
    "deposit.yaml": """\
id: 100002
apiName: depositCheque
name: Deposit Cheque
triggerName: Deposits Cheque
filterName: Deposited Cheque
status: approved
primaryAttribute:
  apiName: bankName
  name: Bank Name
attributes:
  - apiName: amount
    name: Amount
    dataType: currency
  - apiName: mobile
    name: Mobile
    dataType: boolean
""",
    "webinar.yaml": """\
id: 100003
apiName: watchWebinar
name: Watch Webinar
triggerName: Watches Webinar
filterName: Watched Webinar
status: draft
primaryAttribute:
  apiName: webinarName
  name: Webinar Name
""",
}

CAMPAIGNS = {
    "kubecon-regulars.yaml": """\
id: 10
name: KubeCon regulars
qualification: once
triggers:
  - trigger: Attends Conference
    constraints:
      - operator: is
        values: [KubeCon, PyCon]
filters:
  items:
    - filter: Attended Conference
      constraints:
        - operator: is
          value: KubeCon
      window: 30 days
      minTimes: 2
""",
    "french-depositors.yaml": """\
id: 20
name: French depositors not browsing
qualification: once every 5 days
triggers:
  - trigger: Deposits Cheque
    constraints:
      - attribute: amount
        operator: at least
        value: 100
filters:
  logic: 1 and not 2
  items:
    - field: country
      operator: is
      value: France
    - filter: Visited Web Page
      window: 3 days
""",
    "country-or-score.yaml": """\
id: 30
name: Country or score changed
qualification: every time
triggers:
  - trigger: Data Value Changes
    constraints:
      - operator: is
        values: [country, score]
filters:
  logic: any
  items:
    - field: country
      operator: is
      values: [France, Spain]
    - field: score
      operator: at least
      value: 50
""",
    "quiet-or-regular.yaml": """\
id: 5
name: Quiet attendees or regular mobile depositors
qualification: every time
triggers:
  - trigger: Attends Conference
  - trigger: Deposits Cheque
    constraints:
      - attribute: Mobile
        operator: is
        value: true
filters:
  logic: (1 or 2) and not 3
  items:
    - filter: Attended Conference
      window: 10 days
      minTimes: 3
      negate: true
    - filter: Deposited Cheque
      window: 2 weeks
      minTimes: 2
    - field: score
      operator: between
      values: [0, 9]
""",
    "inactive.yaml": """\
id: 40
name: Inactive
status: inactive
qualification: every time
triggers:
  - trigger: Visits Web Page
""",
    "pricing-depositors.yaml": """\
id: 50
name: Pricing visitors who deposited
qualification: once every 2 days
triggers:
  - trigger: Visits Web Page
    constraints:
      - operator: contains
        value: pricing
filters:
  items:
    - filter: Deposited Cheque
""",
    "new-with-country.yaml": """\
id: 60
name: New leads with a country
triggers:
  - trigger: Person is Created
filters:
  items:
    - field: country
      operator: is not empty
""",
}


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("rules")
    for folder, files in (("activity-types", TYPES), ("campaigns", CAMPAIGNS)):
        (root / folder).mkdir()
        for name, text in files.items():
            (root / folder / name).write_text(text, encoding="utf-8")
    return load_plan(Path(root))


# --- the generated stream ------------------------------------------------------------------

leads = st.integers(1, 4)


@st.composite
def dates(draw: st.DrawFn) -> str:
    moment = BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 45)))
    if draw(st.booleans()):
        return moment.isoformat().replace("+00:00", "Z")
    return moment.astimezone(PARIS_SUMMER).isoformat()  # the same instant, another offset


def _base(lead: int, date: str, type_id: int) -> dict[str, Any]:
    return {"leadId": lead, "activityDate": date, "activityTypeId": type_id}


@st.composite
def attendances(draw: st.DrawFn) -> dict[str, Any]:
    activity = _base(draw(leads), draw(dates()), 100001)
    activity["primaryAttributeValue"] = draw(
        st.sampled_from(["KubeCon", "kubecon", "PyCon", "DjangoCon"])
    )
    if draw(st.booleans()):
        activity["attributes"] = [
            {"apiName": "numberOfAttendees", "value": draw(st.integers(0, 20_000))}
        ]
    return activity


@st.composite
def deposits(draw: st.DrawFn) -> dict[str, Any]:
    activity = _base(draw(leads), draw(dates()), 100002)
    activity["primaryAttributeValue"] = draw(st.sampled_from(["BNP", "Santander"]))
    attributes = [{"name": "Amount", "value": draw(st.sampled_from([20, 99.99, 100, 250.5]))}]
    if draw(st.booleans()):
        attributes.append({"apiName": "mobile", "value": draw(st.booleans())})
    activity["attributes"] = draw(st.permutations(attributes))
    return activity


@st.composite
def visits(draw: st.DrawFn) -> dict[str, Any]:
    activity = _base(draw(leads), draw(dates()), 1)
    activity["primaryAttributeValue"] = draw(st.sampled_from(["/pricing", "/home", "/Pricing/eu"]))
    return activity


FIELD_VALUES = {
    "country": st.sampled_from(["France", "Spain", "Germany", None]),
    "score": st.sampled_from(["5", "60", "abc", "9.5", None]),
}


@st.composite
def field_changes(draw: st.DrawFn) -> dict[str, Any]:
    type_id = draw(st.sampled_from([12, 13, 13]))
    activity = _base(draw(leads), draw(dates()), type_id)
    names = draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=2))
    activity["fields"] = [
        {"name": name, "newValue": draw(FIELD_VALUES[name])} for name in dict.fromkeys(names)
    ]
    if type_id == 12:
        activity["primaryAttributeValue"] = "Web"
    return activity


@st.composite
def deletions(draw: st.DrawFn) -> dict[str, Any]:
    return _base(draw(leads), draw(dates()), 37)


@st.composite
def invalid_lines(draw: st.DrawFn) -> bytes:
    lead, date = draw(leads), draw(dates())
    choices: list[Any] = [
        b"not json",
        b"[1, 2]",
        {"leadId": lead, "activityTypeId": 1},  # no date
        dict(_base(lead, date, 100003), primaryAttributeValue="Intro"),  # a draft type
        dict(_base(lead, date, 555), primaryAttributeValue="x"),  # an unknown type
        dict(
            _base(lead, date, 100001),
            primaryAttributeValue="KubeCon",
            attributes=[{"apiName": "colour", "value": "red"}],
        ),
        dict(
            _base(lead, date, 100002),
            primaryAttributeValue="BNP",
            attributes=[{"apiName": "amount", "value": "lots"}],
        ),
        dict(_base(lead, "2026-03-05T10:00:00", 1), primaryAttributeValue="/home"),  # no offset
    ]
    chosen = draw(st.sampled_from(choices))
    return chosen if isinstance(chosen, bytes) else json.dumps(chosen).encode()


activities = st.one_of(
    attendances(), attendances(), deposits(), visits(), field_changes(), deletions()
)


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """The lines of a stream: new activities (with or without a marketoGUID), exact copies
    of earlier lines, earlier identities with new content, and invalid lines."""
    lines: list[bytes] = []
    guids: list[str] = []
    for index in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["new"] * 6 + ["copy", "same-guid", "invalid"]))
        if kind == "copy" and lines:
            lines.append(lines[draw(st.integers(0, len(lines) - 1))])
        elif kind == "invalid":
            lines.append(draw(invalid_lines()))
        else:
            activity = draw(activities)
            if kind == "same-guid" and guids:
                activity["marketoGUID"] = draw(st.sampled_from(guids))
            elif draw(st.integers(0, 3)):  # mostly with a guid, sometimes by content
                activity["marketoGUID"] = f"g{index}"
                guids.append(activity["marketoGUID"])
            lines.append(json.dumps(activity).encode())
    return lines


def to_records(lines: Sequence[bytes]) -> list[Record]:
    return [Record(line, "activities", 3, offset) for offset, line in enumerate(lines)]


def cut(records: Sequence[Record], sizes: Sequence[int]) -> list[list[Record]]:
    batches, start = [], 0
    for size in sizes:
        if start >= len(records):
            break
        batches.append(list(records[start : start + size]))
        start += size
    if start < len(records):
        batches.append(list(records[start:]))
    return batches


def process(processor: Processor, batch: Sequence[Record]) -> BatchResult:
    return asyncio.run(processor.process(batch, NOW_US))


def one_pass(plan: Plan, records: Sequence[Record]) -> BatchResult:
    return process(Processor(plan, MemoryStore()), records)


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(lines=streams(), sizes=st.lists(st.integers(1, 8), max_size=20))
def test_batch_sizes_do_not_change_events_or_dead_letters(
    plan: Plan, lines: list[bytes], sizes: list[int]
) -> None:
    records = to_records(lines)
    whole = one_pass(plan, records)

    processor = Processor(plan, MemoryStore())
    events: list[dict[str, Any]] = []
    letters: list[dict[str, Any]] = []
    accepted = duplicates = 0
    for batch in cut(records, sizes):
        result = process(processor, batch)
        events += result.events
        letters += result.dead_letters
        accepted += result.accepted
        duplicates += result.duplicates

    assert events == whole.events
    assert letters == whole.dead_letters
    assert (accepted, duplicates) == (whole.accepted, whole.duplicates)
    assert accepted + duplicates + len(letters) == len(records)


@PROPERTY
@given(
    lines=streams(),
    sizes=st.lists(st.integers(1, 8), max_size=20),
    steps=st.lists(
        st.tuples(st.sampled_from(["commit", "wait", "crash"]), st.integers(1, 8)), max_size=20
    ),
)
def test_replaying_uncommitted_batches_re_emits_the_same_events(
    plan: Plan, lines: list[bytes], sizes: list[int], steps: list[tuple[str, int]]
) -> None:
    """After each batch the offsets are committed, or not yet, or the worker crashes: then
    every record since the last commit is read again (in batches of another size) and
    processing goes on. Every event emitted is one of the one-pass events, byte for byte, and
    dropping repeated eventIds leaves exactly the one-pass events, in order."""
    records = to_records(lines)
    whole = one_pass(plan, records)
    by_id = {event["eventId"]: event for event in whole.events}
    assert len(by_id) == len(whole.events), "eventIds are unique in one pass"

    processor = Processor(plan, MemoryStore())
    emitted: list[dict[str, Any]] = []
    letters: list[dict[str, Any]] = []
    committed = position = 0
    decisions = iter(steps)
    for batch in cut(records, sizes):
        result = process(processor, batch)
        emitted += result.events
        letters += result.dead_letters
        position += len(batch)
        step, replay_size = next(decisions, ("commit", 1))
        if step == "crash":
            for again in cut(records[committed:position], [replay_size] * len(records)):
                result = process(processor, again)
                assert result.accepted == 0, "a replayed record is never accepted twice"
                emitted += result.events
                letters += result.dead_letters
        if step != "wait":
            committed = position

    for event in emitted:
        assert by_id.get(event["eventId"]) == event
    first_seen: dict[str, dict[str, Any]] = {}
    for event in emitted:
        first_seen.setdefault(event["eventId"], event)
    assert list(first_seen.values()) == whole.events
    # A replayed invalid line is rejected again, with the same dead letter.
    canonical = {json.dumps(d, sort_keys=True) for d in letters}
    assert canonical == {json.dumps(d, sort_keys=True) for d in whole.dead_letters}
