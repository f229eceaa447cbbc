"""Payload building: the engine puts on a membership event what its campaign's actions
need, and `build_request` turns (action, event) into exactly the request the template says,
or a `missing_value` naming the variable."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson

from streams.actions.compiled import ActionUse
from streams.actions.payload import CallRequest, MissingValue, build_request, idempotency_key
from streams.engine.compiler import Plan, load_plan
from streams.pipeline import Processor, Record
from streams.state.memory import MemoryStore
from tests.unit.actions_rules import action, campaign, rules_dir

TEMPLATE = {
    "event": "$event.id",
    "campaign": {"id": "$campaign.id", "name": "$campaign.name"},
    "lead": "$lead.id",
    "conference": "$activity.primary",
    "when": "$activity.date",
    "type": "$activity.typeId",
    "activity": "$activity.id",
    "attendees": "$activity.attributes.numberOfAttendees",
    "held": "$activity.attributes.conferenceDate?",
    "country": "$lead.fields.Country?",
    "tags": ["$lead.fields.city?", "fixed", "$$literal"],
    "rules": "$rulesVersion",
    "source": "streams",
    "nothing": None,
}


def plan_with(tmp_path: Path, **extra: Any) -> Plan:
    definition = action(
        url="https://crm.example.com/api/v2/",
        headers={"X-Campaign": "$campaign.id", "X-City": "$lead.fields.city?"},
        query={"tenant": "acme", "country": "$lead.fields.country?"},
        payload=TEMPLATE,
        **extra,
    )
    return load_plan(
        rules_dir(
            tmp_path,
            actions=[definition],
            campaigns=[
                campaign({"action": "notifyCrm", "path": "/leads/$lead.id/$activity.primary"})
            ],
        )
    )


def run(plan: Plan, *activities: dict[str, Any]) -> list[dict[str, Any]]:
    records = [
        Record(orjson.dumps(a), "activities", 0, offset) for offset, a in enumerate(activities)
    ]
    result = asyncio.run(Processor(plan, MemoryStore()).process(records, 1_900_000_000_000_000))
    assert not result.dead_letters, result.dead_letters
    return result.events


NEW_LEAD = {
    "marketoGUID": "n1",
    "leadId": 1001,
    "activityDate": "2026-09-20T10:00:00Z",
    "activityTypeId": 12,
    "primaryAttributeValue": "Web",
    "fields": [{"name": "Country", "newValue": "France"}, {"name": "email", "newValue": "x@y"}],
}
ATTEND = {
    "marketoGUID": "a1",
    "leadId": 1001,
    "activityDate": "2026-09-26T06:56:35+07:00",
    "activityTypeId": 100001,
    "primaryAttributeValue": "Py Con",
    "attributes": [{"apiName": "numberOfAttendees", "value": 150}],
}


def test_the_event_carries_what_the_actions_need_and_only_that(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    (event,) = run(plan, NEW_LEAD, ATTEND)
    assert event["activityPrimary"] == "Py Con"
    assert event["activityAttributes"] == {"numberOfAttendees": 150}
    assert event["leadFields"] == {"country": "France"}  # city is named but never set


def test_campaigns_without_actions_emit_the_spec_members_only(tmp_path: Path) -> None:
    plan = load_plan(rules_dir(tmp_path, actions=[action()], campaigns=[campaign()]))
    (event,) = run(plan, ATTEND)
    assert set(event) == {
        "eventId", "campaignId", "campaignName", "leadId", "activityId", "activityTypeId",
        "activityDate", "trigger", "rulesVersion",
    }  # fmt: skip


def test_a_redelivered_record_carries_the_same_members(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    store = MemoryStore()
    processor = Processor(plan, store)
    records = [
        Record(orjson.dumps(a), "activities", 0, o) for o, a in enumerate((NEW_LEAD, ATTEND))
    ]
    first = asyncio.run(processor.process(records, 1_900_000_000_000_000)).events
    again = asyncio.run(processor.process(records, 1_900_000_000_000_001)).events
    assert again == first


def test_the_request_is_the_template_filled_in(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    (event,) = run(plan, NEW_LEAD, ATTEND)
    request = build_request(plan.actions.uses[2001][0], event)
    assert isinstance(request, CallRequest)
    assert request.method == "POST"
    assert request.url == "https://crm.example.com/api/v2/leads/1001/Py%20Con"
    assert request.endpoint == "https://crm.example.com"
    assert request.headers == {"X-Campaign": "2001"}
    assert sorted(request.query) == [("country", "France"), ("tenant", "acme")]
    assert orjson.loads(request.body or b"") == {
        "event": event["eventId"],
        "campaign": {"id": 2001, "name": "Conference follow-up"},
        "lead": 1001,
        "conference": "Py Con",
        "when": "2026-09-25T23:56:35Z",
        "type": 100001,
        "activity": "a1",
        "attendees": 150,
        "country": "France",
        "tags": ["fixed", "$literal"],
        "rules": plan.rules_version,
        "source": "streams",
        "nothing": None,
    }
    assert request.idempotency_key == str(
        uuid.uuid5(
            uuid.UUID("2d3c7f0e-8b4a-5e61-9c2d-7a1b3e5f9d04"), f"{event['eventId']}/notifyCrm"
        )
    )
    assert request.idempotency_key == idempotency_key(event["eventId"], "notifyCrm")
    assert idempotency_key(event["eventId"], "other") != request.idempotency_key


def test_a_missing_required_value_names_the_variable(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    (event,) = run(plan, {**ATTEND, "attributes": []})
    assert build_request(plan.actions.uses[2001][0], event) == MissingValue(
        "$activity.attributes.numberOfAttendees"
    )


def test_an_event_without_the_members_is_a_missing_value_not_a_crash(tmp_path: Path) -> None:
    """A membership written before the campaign listed actions (or by another version)."""
    plan = plan_with(tmp_path)
    (event,) = run(plan, ATTEND)
    for member in ("activityPrimary", "activityAttributes", "leadFields"):
        del event[member]
    assert build_request(plan.actions.uses[2001][0], event) == MissingValue("$activity.primary")


def test_header_values_lose_control_characters_and_get_has_no_body(tmp_path: Path) -> None:
    plan = load_plan(
        rules_dir(
            tmp_path,
            actions=[action(method="GET", headers={"X-City": "$lead.fields.city"})],
            campaigns=[campaign({"action": "notifyCrm"})],
        )
    )
    use: ActionUse = plan.actions.uses[2001][0]
    event = {"eventId": "e", "campaignId": 2001, "leadId": 7, "leadFields": {"city": "Pa\r\nris"}}
    request = build_request(use, event)
    assert isinstance(request, CallRequest)
    assert request.headers == {"X-City": "Pa  ris"}
    assert request.body is None
    assert request.url == "https://crm.example.com/api"
