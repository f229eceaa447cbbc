"""The evaluation semantics of campaigns.md, through small rules directories and the
`Processor` over a `MemoryStore` (the code the backtest and the workers share).

Every expectation below is worked out from the spec: the dates are chosen on either side of
the boundary each rule names.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.engine.compiler import Plan, load_plan
from streams.engine.datatypes import datetime_to_us
from streams.engine.events import EVENT_NAMESPACE, event_id
from streams.pipeline import BatchResult, Processor, Record
from streams.state.memory import MemoryStore

BASE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW_US = datetime_to_us(datetime(2027, 1, 1, tzinfo=UTC))
"""Processing time: fixed, a while after every activity date used here."""

ATTEND_TYPE = """\
id: 100001
apiName: attendConference
name: Attend Conference
triggerName: Attends Conference
filterName: Attended Conference
status: approved
primaryAttribute:
  apiName: conferenceName
  name: Conference Name
  dataType: string
attributes:
  - apiName: numberOfAttendees
    name: Number of Attendees
    dataType: integer
"""


def at(days: float = 0, seconds: float = 0) -> str:
    """BASE shifted, as an ISO date-time with `Z`."""
    moment = BASE + timedelta(days=days, seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


# --- activities ----------------------------------------------------------------------------


def attend(
    guid: str, lead: int, when: str, name: str = "KubeCon", attendees: int | None = None
) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": when,
        "activityTypeId": 100001,
        "primaryAttributeValue": name,
    }
    if attendees is not None:
        activity["attributes"] = [{"apiName": "numberOfAttendees", "value": attendees}]
    return activity


def visit(guid: str, lead: int, when: str, page: str = "/pricing") -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": when,
        "activityTypeId": 1,
        "primaryAttributeValue": page,
    }


def new_lead(guid: str, lead: int, when: str, **fields: str | None) -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": when,
        "activityTypeId": 12,
        "primaryAttributeValue": "Web",
        "fields": [{"name": k, "newValue": v} for k, v in fields.items()],
    }


def change(guid: str, lead: int, when: str, **fields: str | None) -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": when,
        "activityTypeId": 13,
        "fields": [{"name": k, "newValue": v} for k, v in fields.items()],
    }


def delete(guid: str, lead: int, when: str) -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": when,
        "activityTypeId": 37,
        "primaryAttributeValue": "Jane Doe",
    }


# --- rules and the harness -----------------------------------------------------------------


def write_rules(root: Path, *campaigns: str, types: Sequence[str] = (ATTEND_TYPE,)) -> Path:
    (root / "activity-types").mkdir(parents=True)
    (root / "campaigns").mkdir(parents=True)
    for index, text in enumerate(types):
        (root / "activity-types" / f"t{index}.yaml").write_text(text, encoding="utf-8")
    for index, text in enumerate(campaigns):
        (root / "campaigns" / f"c{index}.yaml").write_text(text, encoding="utf-8")
    return root


def campaign(
    id: int,
    trigger: str,
    filters: str = "",
    qualification: str = "every time",
    status: str = "active",
    name: str | None = None,
) -> str:
    """A campaign's YAML: `trigger` and `filters` are YAML blocks written at column 0."""
    text = (
        f"id: {id}\n"
        f"name: {json.dumps(name or f'Campaign {id}')}\n"
        f"status: {status}\n"
        f"qualification: {qualification}\n"
        "triggers:\n" + _indent(trigger, 2)
    )
    if filters:
        text += "filters:\n" + _indent(filters, 2)
    return text


def _indent(block: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in block.strip("\n").splitlines())


ON_PRICING = "- trigger: Visits Web Page\n  constraints:\n    - operator: is\n      value: /pricing"
ON_ANY_VISIT = "- trigger: Visits Web Page"
ON_ATTEND = "- trigger: Attends Conference"


class Harness:
    """A Processor over a MemoryStore; each `feed` is one batch, offsets run on."""

    def __init__(self, root: Path, **plan_kwargs: int) -> None:
        self.plan: Plan = load_plan(root, **plan_kwargs)
        self.store = MemoryStore()
        self.processor = Processor(self.plan, self.store)
        self.offset = 0
        self.records: list[Record] = []

    def feed(self, *activities: dict[str, Any] | bytes) -> BatchResult:
        batch = []
        for activity in activities:
            raw = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
            batch.append(Record(raw, "activities", 0, self.offset))
            self.offset += 1
        self.records += batch
        return self.redeliver(batch)

    def redeliver(self, batch: Sequence[Record]) -> BatchResult:
        return asyncio.run(self.processor.process(batch, NOW_US))


def fired(result: BatchResult) -> list[tuple[int, int, str]]:
    return [(e["campaignId"], e["leadId"], e["activityId"]) for e in result.events]


def run_all(root: Path, *activities: dict[str, Any]) -> list[tuple[int, int, str]]:
    """Each activity in its own batch; every event, in order."""
    harness = Harness(root)
    out: list[tuple[int, int, str]] = []
    for activity in activities:
        out += fired(harness.feed(activity))
    return out


# --- history filters -----------------------------------------------------------------------

ATTENDED_KUBECON_30_DAYS = """\
items:
  - filter: Attended Conference
    constraints:
      - operator: is
        value: KubeCon
    window: 30 days
"""


@pytest.mark.parametrize(
    ("visit_after", "member"),
    [
        pytest.param(timedelta(days=30), True, id="exactly-T-minus-window"),
        pytest.param(timedelta(days=30, seconds=1), False, id="one-second-before-the-window"),
        pytest.param(timedelta(days=29, hours=23), True, id="inside"),
        pytest.param(timedelta(0), True, id="same-instant-as-T"),
        pytest.param(timedelta(seconds=-1), False, id="one-second-after-T"),
    ],
)
def test_history_window_bounds_are_inclusive(
    tmp_path: Path, visit_after: timedelta, member: bool
) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, ATTENDED_KUBECON_30_DAYS))
    seconds = visit_after.total_seconds()
    events = run_all(root, attend("a", 7, at(0)), visit("v", 7, at(seconds=seconds)))
    assert events == ([(1, 7, "v")] if member else [])


def test_history_constraints_select_the_activities_counted(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, ATTENDED_KUBECON_30_DAYS))
    events = run_all(
        root,
        attend("a1", 7, at(0), name="PyCon"),
        attend("a2", 8, at(0), name="kubecon"),  # `is` ignores case
        visit("v7", 7, at(1)),
        visit("v8", 8, at(1)),
    )
    assert events == [(1, 8, "v8")]


@pytest.mark.parametrize(("attendances", "member"), [(2, False), (3, True), (4, True)])
def test_history_min_times(tmp_path: Path, attendances: int, member: bool) -> None:
    filters = "items:\n  - filter: Attended Conference\n    window: 90 days\n    minTimes: 3\n"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    activities = [attend(f"a{i}", 7, at(i)) for i in range(attendances)]
    events = run_all(root, *activities, visit("v", 7, at(10)))
    assert events == ([(1, 7, "v")] if member else [])


def test_history_min_times_counts_only_inside_the_window(tmp_path: Path) -> None:
    filters = "items:\n  - filter: Attended Conference\n    window: 7 days\n    minTimes: 2\n"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    events = run_all(
        root,
        attend("a1", 7, at(0)),
        attend("a2", 7, at(5)),
        visit("v1", 7, at(8)),  # window [1, 8]: only a2
        visit("v2", 7, at(7)),  # window [0, 7]: a1 and a2
    )
    assert events == [(1, 7, "v2")]


@pytest.mark.parametrize(("attendances", "member"), [(0, True), (1, True), (2, False)])
def test_history_negate_holds_below_min_times(
    tmp_path: Path, attendances: int, member: bool
) -> None:
    filters = (
        "items:\n  - filter: Attended Conference\n    window: 30 days\n"
        "    minTimes: 2\n    negate: true\n"
    )
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    activities = [attend(f"a{i}", 7, at(i)) for i in range(attendances)]
    events = run_all(root, *activities, visit("v", 7, at(5)))
    assert events == ([(1, 7, "v")] if member else [])


def test_the_triggering_activity_is_in_its_own_history(tmp_path: Path) -> None:
    counts_itself = campaign(1, ON_ATTEND, "items:\n  - filter: Attended Conference\n")
    never = campaign(2, ON_ATTEND, "items:\n  - filter: Attended Conference\n    negate: true\n")
    second_time = campaign(
        3,
        ON_ATTEND,
        "items:\n  - filter: Attended Conference\n    window: 90 days\n    minTimes: 2\n",
    )
    root = write_rules(tmp_path, counts_itself, never, second_time)
    events = run_all(root, attend("a1", 7, at(0)), attend("a2", 7, at(10)))
    assert events == [(1, 7, "a1"), (1, 7, "a2"), (3, 7, "a2")]


def test_a_later_activity_with_an_earlier_date_does_not_change_a_decision_taken(
    tmp_path: Path,
) -> None:
    """Two KubeCons needed; the second processed is dated before the first: at its own T the
    first (dated after T) is outside `[T - window, T]`, and the first's decision (not a member)
    is never revisited."""
    filters = "items:\n  - filter: Attended Conference\n    window: 30 days\n    minTimes: 2\n"
    root = write_rules(tmp_path, campaign(1, ON_ATTEND, filters))
    harness = Harness(root)
    assert fired(harness.feed(attend("late", 7, at(20)))) == []
    assert fired(harness.feed(attend("early", 7, at(10)))) == []
    assert fired(harness.feed(attend("third", 7, at(25)))) == [(1, 7, "third")]


def test_a_later_activity_never_retracts_a_membership(tmp_path: Path) -> None:
    """Not having attended in 30 days made the visit a member; an attendance processed
    afterwards but dated before the visit changes nothing, and a redelivery of the visit
    re-emits the decision taken, not a new one."""
    filters = "items:\n  - filter: Attended Conference\n    window: 30 days\n    negate: true\n"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters, qualification="once"))
    harness = Harness(root)
    first = harness.feed(visit("v", 7, at(10)))
    assert fired(first) == [(1, 7, "v")]
    assert fired(harness.feed(attend("a", 7, at(5)))) == []
    again = harness.redeliver(harness.records[:1])
    assert again.events == first.events


def test_history_without_window_counts_back_to_the_retention(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path, campaign(1, ON_PRICING, "items:\n  - filter: Attended Conference\n")
    )
    events = run_all(
        root,
        attend("a7", 7, at(0)),
        visit("v7", 7, at(89)),  # 89 days later: within the 90-day default retention
        attend("a8", 8, at(0)),
        visit("v8", 8, at(91)),  # 91 days later: beyond it
    )
    assert events == [(1, 7, "v7")]


def test_history_without_window_counts_everything_before_t_within_retention(
    tmp_path: Path,
) -> None:
    """`date(H) ≤ T` without a window: history dated after T does not count."""
    root = write_rules(
        tmp_path, campaign(1, ON_PRICING, "items:\n  - filter: Attended Conference\n")
    )
    events = run_all(root, attend("a", 7, at(5)), visit("v", 7, at(4)))
    assert events == []


def test_retention_is_at_least_the_longest_window(tmp_path: Path) -> None:
    """A 120-day window elsewhere in the rules keeps history 120 days: the windowless
    filter then counts back that far."""
    long_window = campaign(
        2,
        "- trigger: Visits Web Page\n  constraints:\n    - operator: is\n      value: /never",
        "items:\n  - filter: Attended Conference\n    window: 120 days\n",
    )
    root = write_rules(
        tmp_path,
        campaign(1, ON_PRICING, "items:\n  - filter: Attended Conference\n"),
        long_window,
    )
    events = run_all(root, attend("a", 7, at(0)), visit("v", 7, at(110)))
    assert events == [(1, 7, "v")]


def test_history_is_per_lead(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, ATTENDED_KUBECON_30_DAYS))
    assert run_all(root, attend("a", 8, at(0)), visit("v", 7, at(1))) == []


def test_a_campaign_sees_history_recorded_before_any_campaign_used_it(tmp_path: Path) -> None:
    """History of a type is kept whether or not a campaign filters on it today: the same
    stream under rules with the filter gives the member."""
    root = write_rules(tmp_path, campaign(1, ON_PRICING, ATTENDED_KUBECON_30_DAYS))
    harness = Harness(root)
    harness.feed(attend("a", 7, at(0)))
    # The state the first activity left is all the second one sees.
    assert fired(harness.feed(visit("v", 7, at(2)))) == [(1, 7, "v")]


# --- field filters -------------------------------------------------------------------------


def field_filter(field: str, operator: str, values: Sequence[object] = ()) -> str:
    text = f"items:\n  - field: {field}\n    operator: {operator}\n"
    if values:
        text += f"    values: {json.dumps(list(values))}\n"
    return text


def test_field_set_by_new_lead_and_changed_by_type_13(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, field_filter("country", "is", ["France"])))
    events = run_all(
        root,
        new_lead("n", 7, at(0), country="france"),  # `is` ignores case
        visit("v1", 7, at(1)),
        change("c", 7, at(2), country="Spain"),
        visit("v2", 7, at(3)),
        change("c2", 7, at(4), country="France", city="Lyon"),
        visit("v3", 7, at(5)),
    )
    assert events == [(1, 7, "v1"), (1, 7, "v3")]


def test_null_new_value_empties_a_field(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        campaign(1, ON_PRICING, field_filter("country", "is empty")),
        campaign(2, ON_PRICING, field_filter("country", "is not empty")),
    )
    events = run_all(
        root,
        visit("v0", 7, at(0)),  # never set: empty
        change("c1", 7, at(1), country="France"),
        visit("v1", 7, at(2)),
        change("c2", 7, at(3), country=None),
        visit("v2", 7, at(4)),
    )
    assert events == [(1, 7, "v0"), (2, 7, "v1"), (1, 7, "v2")]


def test_a_field_never_set_is_empty_for_every_operator(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        campaign(1, ON_PRICING, field_filter("country", "is not", ["France"])),
        campaign(2, ON_PRICING, field_filter("country", "not contains", ["Fr"])),
        campaign(3, ON_PRICING, field_filter("country", "is", ["France"])),
        campaign(4, ON_PRICING, field_filter("country", "contains", ["Fr"])),
        campaign(5, ON_PRICING, field_filter("score", "less than", [10])),
    )
    assert run_all(root, visit("v", 7, at(0))) == [(1, 7, "v"), (2, 7, "v")]


@pytest.mark.parametrize(
    ("value", "operator", "values", "member"),
    [
        pytest.param("75", "at least", [50], True, id="75>=50"),
        pytest.param("49.5", "at least", [50], False, id="49.5>=50"),
        pytest.param("50", "at least", [50], True, id="50>=50"),
        pytest.param("50", "greater than", [50], False, id="50>50"),
        pytest.param("1e2", "greater than", [99], True, id="1e2>99"),
        pytest.param("-3", "less than", [0], True, id="-3<0"),
        pytest.param("20", "between", [10, 20], True, id="between-upper-bound"),
        pytest.param("10", "between", [10, 20], True, id="between-lower-bound"),
        pytest.param("20.01", "between", [10, 20], False, id="between-above"),
        pytest.param("9", "at most", [10], True, id="9<=10"),
        pytest.param("lots", "at least", [0], False, id="not-a-number-fails"),
        pytest.param("lots", "at most", [100], False, id="not-a-number-fails-at-most"),
        pytest.param("100", "is", ["100"], True, id="text-is"),
        pytest.param("100.0", "is", ["100"], False, id="is-compares-text"),
    ],
)
def test_numeric_operators_parse_the_field(
    tmp_path: Path, value: str, operator: str, values: list[object], member: bool
) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, field_filter("score", operator, values)))
    events = run_all(root, change("c", 7, at(0), score=value), visit("v", 7, at(1)))
    assert events == ([(1, 7, "v")] if member else [])


@pytest.mark.parametrize(
    ("value", "operator", "values", "member"),
    [
        pytest.param(
            "2026-02-01T10:00:00Z", "before", ["2026-02-02T00:00:00Z"], True, id="before"
        ),
        pytest.param(
            "2026-02-02T01:00:00+02:00", "before", ["2026-02-02T00:00:00Z"], True,
            id="before-with-offset",
        ),
        pytest.param(
            "2026-02-02T00:00:00Z", "after", ["2026-02-02T00:00:00Z"], False, id="not-after-self"
        ),
        pytest.param(
            "2026-02-02T00:00:00Z", "on or after", ["2026-02-02T00:00:00Z"], True,
            id="on-or-after-self",
        ),
        pytest.param(
            "2026-02-10T00:00:00Z", "between", ["2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z"],
            True, id="between-inclusive",
        ),
        pytest.param("soon", "before", ["2026-02-02T00:00:00Z"], False, id="not-a-date-fails"),
        pytest.param("soon", "after", ["2026-02-02T00:00:00Z"], False, id="not-a-date-fails-2"),
    ],
)  # fmt: skip
def test_date_operators_parse_the_field(
    tmp_path: Path, value: str, operator: str, values: list[object], member: bool
) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, field_filter("renewal", operator, values)))
    events = run_all(root, change("c", 7, at(0), renewal=value), visit("v", 7, at(1)))
    assert events == ([(1, 7, "v")] if member else [])


@pytest.mark.parametrize(
    ("field_at", "member"),
    [
        pytest.param(-30, True, id="exactly-T-minus-30-days"),
        pytest.param(-31, False, id="before-the-duration"),
        pytest.param(0, True, id="at-T"),
        pytest.param(1, False, id="after-T"),
    ],
)
def test_in_past_on_a_field_is_measured_from_the_activity_date(
    tmp_path: Path, field_at: int, member: bool
) -> None:
    root = write_rules(
        tmp_path, campaign(1, ON_PRICING, field_filter("lastPurchase", "in past", ["30 days"]))
    )
    events = run_all(
        root,
        change("c", 7, at(0), lastPurchase=at(40 + field_at)),
        visit("v", 7, at(40)),
    )
    assert events == ([(1, 7, "v")] if member else [])


def test_a_field_filter_sees_the_change_that_triggered(tmp_path: Path) -> None:
    trigger = (
        "- trigger: Data Value Changes\n  constraints:\n    - operator: is\n      value: country"
    )
    root = write_rules(tmp_path, campaign(1, trigger, field_filter("country", "is", ["France"])))
    events = run_all(
        root,
        change("c1", 7, at(0), country="France"),
        change("c2", 7, at(1), country="Germany"),
        change("c3", 7, at(2), city="Paris"),  # no trigger: another field
        change("c4", 7, at(3), city="Lyon", country="France"),  # one of several fields
    )
    assert events == [(1, 7, "c1"), (1, 7, "c4")]


def test_fields_numbers_become_text(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, field_filter("score", "is", ["42"])))
    activity = change("c", 7, at(0))
    activity["fields"] = [{"name": "score", "newValue": 42}]
    assert run_all(root, activity, visit("v", 7, at(1))) == [(1, 7, "v")]


# --- logic ---------------------------------------------------------------------------------

THREE_FIELDS = """\
  - field: a
    operator: is
    value: "yes"
  - field: b
    operator: is
    value: "yes"
  - field: c
    operator: is
    value: "yes"
"""


@pytest.mark.parametrize(
    ("logic", "values", "member"),
    [
        pytest.param("all", (1, 1, 1), True, id="all-true"),
        pytest.param("all", (1, 0, 1), False, id="all-one-false"),
        pytest.param("any", (0, 0, 1), True, id="any-one-true"),
        pytest.param("any", (0, 0, 0), False, id="any-none"),
        pytest.param("1 or 2 and 3", (1, 0, 0), True, id="and-binds-tighter-than-or"),
        pytest.param("(1 or 2) and 3", (1, 0, 0), False, id="parentheses"),
        pytest.param("not 1 and 2", (0, 0, 0), False, id="not-binds-tighter-than-and"),
        pytest.param("not (1 and 2)", (0, 0, 0), True, id="not-of-a-group"),
        pytest.param("1 AND NOT 3", (1, 0, 0), True, id="keywords-ignore-case"),
        pytest.param("not not 2", (0, 1, 0), True, id="double-not"),
        pytest.param('"3"', (0, 0, 1), True, id="one-item"),
    ],
)
def test_logic(tmp_path: Path, logic: str, values: tuple[int, int, int], member: bool) -> None:
    filters = f"logic: {logic}\nitems:\n{THREE_FIELDS}"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    fields = {name: ("yes" if v else "no") for name, v in zip("abc", values, strict=True)}
    events = run_all(root, new_lead("n", 7, at(0), **fields), visit("v", 7, at(1)))
    assert events == ([(1, 7, "v")] if member else [])


def test_logic_a_single_item_number_unquoted(tmp_path: Path) -> None:
    """Regression (ba7aa57): `logic: 2` is read by YAML as an integer and was refused."""
    filters = f"logic: 2\nitems:\n{THREE_FIELDS}"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    events = run_all(root, new_lead("n", 7, at(0), a="no", b="yes", c="no"), visit("v", 7, at(1)))
    assert events == [(1, 7, "v")]


def test_logic_defaults_to_all(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, f"items:\n{THREE_FIELDS}"))
    events = run_all(
        root,
        new_lead("n7", 7, at(0), a="yes", b="yes", c="no"),
        new_lead("n8", 8, at(0), a="yes", b="yes", c="yes"),
        visit("v7", 7, at(1)),
        visit("v8", 8, at(1)),
    )
    assert events == [(1, 8, "v8")]


def test_no_filters_the_trigger_alone_decides(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING))
    events = run_all(root, visit("v1", 7, at(0)), visit("v2", 7, at(1), page="/home"))
    assert events == [(1, 7, "v1")]


# --- qualification -------------------------------------------------------------------------


def test_qualification_once(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, qualification="once"))
    events = run_all(root, visit("v1", 7, at(0)), visit("v2", 7, at(100)), visit("v3", 8, at(100)))
    assert events == [(1, 7, "v1"), (1, 8, "v3")]


def test_qualification_defaults_to_once(tmp_path: Path) -> None:
    text = "id: 1\nname: Default\ntriggers:\n" + _indent(ON_PRICING, 2)
    root = write_rules(tmp_path, text)
    assert run_all(root, visit("v1", 7, at(0)), visit("v2", 7, at(1))) == [(1, 7, "v1")]


def test_qualification_every_time(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, qualification="every time"))
    events = run_all(root, visit("v1", 7, at(0)), visit("v2", 7, at(0)))
    assert events == [(1, 7, "v1"), (1, 7, "v2")]


def test_qualification_once_every_period_boundary(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, qualification="once every 7 days"))
    events = run_all(
        root,
        visit("v0", 7, at(0)),  # member
        visit("v1", 7, at(7, seconds=-1)),  # 1 s short of 7 days after v0
        visit("v2", 7, at(7)),  # exactly 7 days after v0: member
        visit("v3", 7, at(14, seconds=-1)),  # counted from v2 now
        visit("v4", 7, at(14)),
    )
    assert events == [(1, 7, "v0"), (1, 7, "v2"), (1, 7, "v4")]


def test_qualification_period_counts_from_the_member_activity_date(tmp_path: Path) -> None:
    """The period runs from the date of the activity that made the lead a member, not from a
    later non-member activity nor from processing time."""
    filters = field_filter("ok", "is", ["yes"])
    root = write_rules(
        tmp_path, campaign(1, ON_PRICING, filters, qualification="once every 2 hours")
    )
    events = run_all(
        root,
        new_lead("n", 7, at(0), ok="yes"),
        visit("v0", 7, at(1)),
        change("c", 7, at(1, seconds=60), ok="no"),
        visit("v1", 7, at(1, seconds=3600)),  # filter fails: not a member
        change("c2", 7, at(1, seconds=3700), ok="yes"),
        visit("v2", 7, at(1, seconds=7200)),  # exactly 2 h after v0
    )
    assert events == [(1, 7, "v0"), (1, 7, "v2")]


def test_a_failed_filter_does_not_use_up_once(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path, campaign(1, ON_PRICING, field_filter("ok", "is", ["yes"]), qualification="once")
    )
    events = run_all(
        root, visit("v1", 7, at(0)), change("c", 7, at(1), ok="yes"), visit("v2", 7, at(2))
    )
    assert events == [(1, 7, "v2")]


@pytest.mark.parametrize("qualification", ["once", "every time", "once every 1 days"])
def test_qualification_is_per_campaign_and_per_lead(tmp_path: Path, qualification: str) -> None:
    root = write_rules(
        tmp_path,
        campaign(1, ON_PRICING, qualification=qualification),
        campaign(2, ON_ANY_VISIT, qualification=qualification),
    )
    events = run_all(root, visit("v1", 7, at(0)), visit("v2", 8, at(0)))
    assert events == [(1, 7, "v1"), (2, 7, "v1"), (1, 8, "v2"), (2, 8, "v2")]


# --- triggers ------------------------------------------------------------------------------


def test_several_matching_triggers_give_one_event(tmp_path: Path) -> None:
    triggers = (
        "- trigger: Visits Web Page\n  constraints:\n    - operator: is\n      value: /pricing\n"
        "- trigger: Visits Web Page\n  constraints:\n    - operator: starts with\n"
        "      value: /pri\n"
        "- trigger: Visits Web Page\n"
        "- trigger: Attends Conference\n"
    )
    root = write_rules(tmp_path, campaign(1, triggers))
    events = run_all(root, visit("v", 7, at(0)), attend("a", 7, at(1)))
    assert events == [(1, 7, "v"), (1, 7, "a")]


def test_trigger_constraints_all_hold(tmp_path: Path) -> None:
    trigger = (
        "- trigger: Attends Conference\n  constraints:\n    - operator: is\n"
        "      values: [KubeCon, PyCon]\n    - attribute: Number of Attendees\n"
        "      operator: at least\n      value: 1000\n"
    )
    root = write_rules(tmp_path, campaign(1, trigger))
    events = run_all(
        root,
        attend("a1", 7, at(0), "pycon", attendees=1000),
        attend("a2", 7, at(0), "PyCon", attendees=999),
        attend("a3", 7, at(0), "DjangoCon", attendees=5000),
        attend("a4", 7, at(0), "KubeCon"),  # no attendee count: empty, `at least` fails
    )
    assert events == [(1, 7, "a1")]


def test_events_of_one_activity_in_ascending_campaign_id(tmp_path: Path) -> None:
    # Files c0, c1, c2 hold ids 30, 5, 12: neither file order nor write order is id order.
    root = write_rules(
        tmp_path, campaign(30, ON_ANY_VISIT), campaign(5, ON_PRICING), campaign(12, ON_ANY_VISIT)
    )
    assert [e[0] for e in run_all(root, visit("v", 7, at(0)))] == [5, 12, 30]


def test_inactive_campaigns_never_emit(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        campaign(1, ON_ANY_VISIT, status="inactive"),
        campaign(2, ON_ATTEND, "items:\n  - filter: Visited Web Page\n", status="inactive"),
        campaign(3, ON_ATTEND),
    )
    events = run_all(root, visit("v", 7, at(0)), attend("a", 7, at(1)))
    assert events == [(3, 7, "a")]


def test_the_event_carries_what_the_spec_lists(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(2001, ON_ATTEND, name="Conference follow-up"))
    harness = Harness(root)
    activity = attend("102988", 1001, "2026-09-26T06:56:35+07:00")
    (event,) = harness.feed(activity).events
    assert event["campaignId"] == 2001
    assert event["campaignName"] == "Conference follow-up"
    assert event["leadId"] == 1001
    assert event["activityId"] == "102988"
    assert event["activityTypeId"] == 100001
    assert event["activityDate"] == "2026-09-25T23:56:35Z"
    assert event["trigger"] == "Attends Conference"
    assert event["rulesVersion"] == harness.plan.rules_version
    assert isinstance(event["eventId"], str) and event["eventId"]


# --- Delete Lead ---------------------------------------------------------------------------


def test_delete_lead_erases_history(tmp_path: Path) -> None:
    filters = "items:\n  - filter: Attended Conference\n    minTimes: 2\n"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    events = run_all(
        root,
        attend("a1", 7, at(0)),
        attend("a2", 7, at(1)),
        delete("d", 7, at(2)),
        attend("a3", 7, at(3)),
        visit("v1", 7, at(4)),  # one attendance since the deletion
        attend("a4", 7, at(5)),
        visit("v2", 7, at(6)),
    )
    assert events == [(1, 7, "v2")]


def test_delete_lead_erases_fields(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING, field_filter("country", "is", ["France"])))
    events = run_all(
        root,
        new_lead("n", 7, at(0), country="France"),
        delete("d", 7, at(1)),
        visit("v", 7, at(2)),
    )
    assert events == []


def test_delete_lead_erases_memberships(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        campaign(1, ON_PRICING, qualification="once"),
        campaign(2, ON_PRICING, qualification="once every 30 days"),
    )
    events = run_all(
        root,
        visit("v1", 7, at(0)),
        visit("v2", 7, at(1)),
        delete("d", 7, at(2)),
        visit("v3", 7, at(3)),
    )
    assert events == [(1, 7, "v1"), (2, 7, "v1"), (1, 7, "v3"), (2, 7, "v3")]


def test_delete_lead_touches_only_its_lead(tmp_path: Path) -> None:
    filters = field_filter("country", "is", ["France"])
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    events = run_all(
        root,
        new_lead("n7", 7, at(0), country="France"),
        new_lead("n8", 8, at(0), country="France"),
        delete("d", 8, at(1)),
        visit("v7", 7, at(2)),
        visit("v8", 8, at(2)),
    )
    assert events == [(1, 7, "v7")]


# --- duplicates and redeliveries -----------------------------------------------------------


def test_a_duplicate_changes_nothing_and_is_counted(tmp_path: Path) -> None:
    filters = "items:\n  - filter: Attended Conference\n    minTimes: 2\n"
    root = write_rules(tmp_path, campaign(1, ON_ATTEND), campaign(2, ON_PRICING, filters))
    harness = Harness(root)
    first = harness.feed(attend("a", 7, at(0)))
    assert fired(first) == [(1, 7, "a")]
    again = harness.feed(attend("a", 7, at(0)))  # the same identity on another line
    assert again.events == []
    assert (again.duplicates, again.accepted, again.redelivered) == (1, 0, 0)
    # It did not count in the history: two attendances are needed, one was recorded.
    assert fired(harness.feed(visit("v", 7, at(1)))) == []


def test_a_duplicate_is_known_by_identity_not_content(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_ATTEND))
    harness = Harness(root)
    harness.feed(attend("a", 7, at(0)))
    changed = harness.feed(attend("a", 7, at(3), name="PyCon"))  # same identity, new content
    assert (changed.events, changed.duplicates) == ([], 1)


def test_within_one_batch_the_second_copy_is_the_duplicate(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_ATTEND))
    result = Harness(root).feed(attend("a", 7, at(0)), attend("a", 7, at(0)))
    assert fired(result) == [(1, 7, "a")]
    assert (result.accepted, result.duplicates) == (1, 1)


def test_identity_without_guid_is_the_canonical_content(tmp_path: Path) -> None:
    """No marketoGUID nor id: the same lead, type, UTC date, primary and attributes (by
    apiName, in any order) are the same activity, whatever the spelling."""
    root = write_rules(tmp_path, campaign(1, ON_ATTEND))
    first = {
        "leadId": 7,
        "activityDate": "2026-03-01T09:00:00Z",
        "activityTypeId": 100001,
        "primaryAttributeValue": "KubeCon",
        "attributes": [{"apiName": "numberOfAttendees", "value": 1200}],
    }
    same = {
        "attributes": [{"name": "Number of Attendees", "value": "1200"}],
        "primaryAttributeValue": "KubeCon",
        "activityTypeId": 100001,
        "activityDate": "2026-03-01T11:00:00+02:00",
        "leadId": "7",
    }
    other = dict(first, activityDate="2026-03-01T09:00:01Z")
    harness = Harness(root)
    (event,) = harness.feed(first).events
    again = harness.feed(same)
    assert (again.events, again.duplicates) == ([], 1)
    result = harness.feed(other)
    assert len(result.events) == 1 and result.duplicates == 0
    assert result.events[0]["activityId"] != event["activityId"]


def test_a_redelivery_re_emits_the_same_events(tmp_path: Path) -> None:
    filters = "items:\n  - filter: Attended Conference\n    minTimes: 2\n"
    root = write_rules(
        tmp_path,
        campaign(1, ON_ATTEND, qualification="once"),
        campaign(2, ON_ATTEND, filters, qualification="once"),
    )
    harness = Harness(root)
    harness.feed(attend("a1", 7, at(0)))
    first = harness.feed(attend("a2", 7, at(1)), attend("a3", 8, at(1)))
    assert fired(first) == [(2, 7, "a2"), (1, 8, "a3")]
    # The batch is read again at the same positions (a crash before the commit).
    again = harness.redeliver(harness.records[1:3])
    assert again.events == first.events
    assert (again.redelivered, again.accepted, again.duplicates) == (2, 0, 0)
    # Nothing was applied twice: a third attendance of lead 8 is its second one.
    assert fired(harness.feed(attend("a4", 8, at(2)))) == [(2, 8, "a4")]


def test_a_redelivered_activity_that_emitted_nothing_emits_nothing(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_PRICING))
    harness = Harness(root)
    harness.feed(visit("v", 7, at(0), page="/home"))
    again = harness.redeliver(harness.records)
    assert again.events == []
    assert again.redelivered == 1


def test_a_rejected_record_reaches_no_state(tmp_path: Path) -> None:
    filters = "items:\n  - filter: Attended Conference\n    minTimes: 2\n"
    root = write_rules(tmp_path, campaign(1, ON_PRICING, filters))
    bad_attribute = attend("bad", 7, at(0))
    bad_attribute["attributes"] = [{"apiName": "colour", "value": "red"}]
    bad_value = attend("bad2", 7, at(0), attendees=1)
    bad_value["attributes"][0]["value"] = "many"
    harness = Harness(root)
    result = harness.feed(attend("a", 7, at(0)), bad_attribute, bad_value, b"{not json")
    codes = [d["error"]["code"] for d in result.dead_letters]
    assert codes == ["unknown_attribute", "invalid_value", "malformed"]
    assert [d["offset"] for d in result.dead_letters] == [1, 2, 3]
    assert fired(harness.feed(visit("v", 7, at(1)))) == []


# --- eventId and rulesVersion --------------------------------------------------------------


def test_event_id_is_deterministic_in_campaign_lead_and_activity(tmp_path: Path) -> None:
    root = write_rules(tmp_path / "a", campaign(1, ON_ANY_VISIT), campaign(2, ON_ANY_VISIT))
    stream = [visit("v1", 7, at(0)), visit("v2", 7, at(1)), visit("v1", 8, at(0))]

    first = Harness(root)
    ids_first = [e["eventId"] for e in first.feed(*stream).events]
    second = Harness(root)
    ids_second = [e["eventId"] for a in stream for e in second.feed(a).events]
    assert ids_first == ids_second
    # (campaign, lead, activity) all differ pairwise here: so do the event ids.
    assert len(set(ids_first)) == len(ids_first) == 6


@given(
    st.integers(min_value=1, max_value=2**63),
    st.integers(min_value=1, max_value=2**63),
    st.text(min_size=1, max_size=80),
)
def test_event_id_is_the_uuid5_of_campaign_lead_and_activity(
    campaign_id: int, lead_id: int, activity_id: str
) -> None:
    """`event_id` builds the UUID by hand (it is on the hot path): it must be the very
    `uuid5` the spec names, version and variant digits included."""
    name = f"{campaign_id}/{lead_id}/{activity_id}"
    assert event_id(campaign_id, lead_id, activity_id) == str(uuid.uuid5(EVENT_NAMESPACE, name))


def test_event_id_does_not_depend_on_the_rest_of_the_rules_or_the_record(
    tmp_path: Path,
) -> None:
    """Renaming the campaign and adding another changes `rulesVersion`; a different date for
    the same identity changes the record. Neither is an input of `eventId`."""
    one = write_rules(tmp_path / "one", campaign(1, ON_ANY_VISIT, name="Before"))
    two = write_rules(
        tmp_path / "two",
        campaign(1, ON_ANY_VISIT, name="After"),
        campaign(3, ON_ANY_VISIT),
    )
    (before,) = Harness(one).feed(visit("v", 7, at(0))).events
    after = Harness(two).feed(visit("v", 7, at(5), page="/other")).events
    assert before["rulesVersion"] != after[0]["rulesVersion"]
    assert after[0]["campaignId"] == 1
    assert after[0]["eventId"] == before["eventId"]


FORMATTED_A = """\
id: 1
name: Regulars
status: active
qualification: once every 7 days
triggers:
  - trigger: Attends Conference
    constraints:
      - operator: is
        values: [KubeCon, PyCon]
filters:
  logic: 1 and not 2
  items:
    - filter: Attended Conference
      window: 90 days
      minTimes: 2
    - field: country
      operator: is
      values: [Spain]
"""

FORMATTED_B = """\
# The same campaign, written differently: comments, key order, quoting, flow style.
filters:
    items:
    -   minTimes: 2          # twice
        window: "90 days"
        filter: 'Attended Conference'
    -   {field: country, operator: is, values: ["Spain"]}
    logic: "1 and not 2"
triggers: [{trigger: Attends Conference, constraints: [{values: [KubeCon, PyCon], operator: is}]}]
qualification: "once every 7 days"
status: active
name: "Regulars"
id: 1
"""


def test_rules_version_ignores_comments_and_formatting(tmp_path: Path) -> None:
    one = write_rules(tmp_path / "one", FORMATTED_A)
    two = write_rules(tmp_path / "two", FORMATTED_B)
    type_b = "# a comment\n" + ATTEND_TYPE.replace("dataType: string", "dataType: 'string'")
    three = write_rules(tmp_path / "three", FORMATTED_B, types=[type_b])
    versions = {load_plan(root).rules_version for root in (one, two, three)}
    assert len(versions) == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("minTimes: 2", "minTimes: 3", id="minTimes"),
        pytest.param("window: 90 days", "window: 60 days", id="window"),
        pytest.param("values: [Spain]", "values: [France]", id="field-value"),
        pytest.param("status: active", "status: inactive", id="status"),
        pytest.param("1 and not 2", "1 and 2", id="logic"),
        pytest.param("once every 7 days", "once", id="qualification"),
    ],
)
def test_rules_version_changes_with_a_semantic_change(tmp_path: Path, old: str, new: str) -> None:
    assert old in FORMATTED_A
    one = write_rules(tmp_path / "one", FORMATTED_A)
    two = write_rules(tmp_path / "two", FORMATTED_A.replace(old, new))
    assert load_plan(one).rules_version != load_plan(two).rules_version


def test_rules_version_changes_with_the_catalog(tmp_path: Path) -> None:
    one = write_rules(tmp_path / "one", FORMATTED_A)
    type_b = ATTEND_TYPE + "  - apiName: city\n    name: City\n"
    two = write_rules(tmp_path / "two", FORMATTED_A, types=[type_b])
    assert load_plan(one).rules_version != load_plan(two).rules_version


def test_events_carry_the_rules_version_in_force(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(1, ON_ANY_VISIT))
    harness = Harness(root)
    (event,) = harness.feed(visit("v", 7, at(0))).events
    assert event["rulesVersion"] == harness.plan.rules_version == load_plan(root).rules_version
