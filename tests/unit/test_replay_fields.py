"""A redelivered activity re-emits byte-identical events, lead fields included.

spec/README.md: the same eventIds whatever the restarts or redeliveries; actions.md:
`$lead.fields.<name>` is the field as known when the lead became a member. The chaos suite
found events of campaigns with actions re-emitted with the fields known at replay time,
which include changes made by later activities of the same saved but uncommitted batch."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from streams.engine.compiler import load_plan
from streams.engine.leadstate import LeadState
from streams.pipeline import BatchResult, Processor, Record
from streams.state.codec import decode_state, encode_state
from tests.unit.actions_rules import action, campaign, rules_dir
from tests.unit.test_history_index import JournalStore

NOW_US = 1_900_000_000_000_000


def _change(guid: str, when: str, country: str) -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": 1001,
        "activityDate": when,
        "activityTypeId": 13,
        "primaryAttributeValue": "Country",
        "fields": [{"name": "Country", "newValue": country}],
    }


ATTEND = {
    "marketoGUID": "a1",
    "leadId": 1001,
    "activityDate": "2026-09-26T10:00:00Z",
    "activityTypeId": 100001,
    "primaryAttributeValue": "Py Con",
    "attributes": [{"apiName": "numberOfAttendees", "value": 150}],
}


class CodecStore:
    """Keeps each lead as the stored bytes, as the Redis store does: the redelivery reads
    what `encode_state` wrote, not the live objects."""

    def __init__(self) -> None:
        self.leads: dict[int, bytes] = {}

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        return {
            lead: decode_state(self.leads[lead]) if lead in self.leads else LeadState()
            for lead in lead_ids
        }

    async def save(self, states: Mapping[int, LeadState]) -> None:
        self.leads.update((lead, encode_state(state)) for lead, state in states.items())


def _processor(tmp_path: Path, payload: dict[str, Any]) -> Processor:
    plan = load_plan(
        rules_dir(
            tmp_path,
            actions=[action(payload=payload)],
            campaigns=[campaign({"action": "notifyCrm"})],
        )
    )
    return Processor(plan, CodecStore())


def _process(processor: Processor, records: list[Record]) -> BatchResult:
    result = asyncio.run(processor.process(records, NOW_US))
    assert not result.dead_letters, result.dead_letters
    return result


def _records(*activities: dict[str, Any]) -> list[Record]:
    return [Record(orjson.dumps(a), "activities", 0, n) for n, a in enumerate(activities)]


def test_a_redelivered_activity_re_emits_the_fields_it_carried_first(tmp_path: Path) -> None:
    """One batch: France is set, A fires a campaign carrying `country`, then B (same lead,
    same batch) changes it to Spain. The batch is saved and redelivered (a crash before the
    commit): A's event must come out byte for byte as the first time."""
    processor = _processor(tmp_path, {"country": "$lead.fields.country?"})
    batch = _records(
        _change("c1", "2026-09-26T09:00:00Z", "France"),
        ATTEND,
        _change("c2", "2026-09-26T11:00:00Z", "Spain"),
    )
    first = _process(processor, batch)
    (event,) = first.events
    assert event["leadFields"] == {"country": "France"}
    again = _process(processor, batch)
    assert [orjson.dumps(e) for e in again.events] == [orjson.dumps(e) for e in first.events]
    alone = _process(processor, batch[1:2])  # A alone, once more
    assert [orjson.dumps(e) for e in alone.events] == [orjson.dumps(e) for e in first.events]


def test_a_field_unknown_when_the_lead_became_a_member_stays_unknown(tmp_path: Path) -> None:
    processor = _processor(tmp_path, {"country": "$lead.fields.country?"})
    batch = _records(ATTEND, _change("c2", "2026-09-26T11:00:00Z", "Spain"))
    first = _process(processor, batch)
    assert first.events[0]["leadFields"] == {}
    assert _process(processor, batch).events == first.events


def test_campaigns_carrying_no_fields_keep_seen_entries_as_before(tmp_path: Path) -> None:
    """No state growth for campaigns whose actions name no lead field."""
    processor = _processor(tmp_path, {"conference": "$activity.primary"})
    batch = _records(_change("c1", "2026-09-26T09:00:00Z", "France"), ATTEND)
    first = _process(processor, batch)
    assert first.events[0]["leadFields"] == {}
    (state,) = asyncio.run(processor.store.load([1001])).values()
    assert all(len(entry) == 3 for entry in state.seen.values())
    assert _process(processor, batch).events == first.events


def test_an_entry_stored_before_carried_fields_replays_the_fields_known_now(
    tmp_path: Path,
) -> None:
    """A `seen` entry of format 2 has no snapshot: the replay reads the lead's fields (the
    README says so); the eventId is the same."""
    processor = _processor(tmp_path, {"country": "$lead.fields.country?"})
    batch = _records(
        _change("c1", "2026-09-26T09:00:00Z", "France"),
        ATTEND,
        _change("c2", "2026-09-26T11:00:00Z", "Spain"),
    )
    (first,) = _process(processor, batch).events
    store = processor.store
    assert isinstance(store, CodecStore)
    stored = orjson.loads(store.leads[1001])
    assert stored["s"]["a1"][3] == {"country": "France"}
    stored["s"] = {k: v[:3] for k, v in stored["s"].items()}
    store.leads[1001] = orjson.dumps(stored | {"v": 2})
    (again,) = _process(processor, batch).events
    assert again["leadFields"] == {"country": "Spain"}
    assert again["eventId"] == first["eventId"]


def test_carried_fields_travel_in_a_journal_delta(tmp_path: Path) -> None:
    """Redis's layout (snapshot plus journal): the batch that fires the campaign is saved
    as a delta, whose `seen` entries keep their carried fields, and replays from it."""
    processor = _processor(tmp_path, {"country": "$lead.fields.country?"})
    store = processor.store = JournalStore()
    setup = [_change(f"c{n}", "2026-09-26T09:00:00Z", "France") for n in range(30)]
    _process(processor, _records(*setup))
    batch = [
        Record(orjson.dumps(a), "activities", 0, 100 + n)
        for n, a in enumerate([ATTEND, _change("c99", "2026-09-26T11:00:00Z", "Spain")])
    ]
    first = _process(processor, batch)
    assert store.deltas == 1, "the batch was saved as a delta"
    assert first.events[0]["leadFields"] == {"country": "France"}
    again = _process(processor, batch)
    assert [orjson.dumps(e) for e in again.events] == [orjson.dumps(e) for e in first.events]
