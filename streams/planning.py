"""What a rules change would do: two rulesets backtested over the same history, compared.

`compare` is pure: it takes the two backtests' membership events and dead letters and the
two sets of definitions and says, per campaign, which leads gain and lose memberships (a lead
gains when the new rules give it a membership of a campaign the old ones did not), which
campaigns are added, removed or changed, and which types would now reject records that were
accepted. `PlanReport.exit_code` is the CI contract: 0 nothing changes, 1 memberships or
accepted records change.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from streams.engine.catalog import Catalog
from streams.engine.compiler import Plan
from streams.engine.loader import RuleFiles, canonical

EXAMPLES: Final = 5
"""Examples shown per list, by default."""


@dataclass(frozen=True)
class Side:
    """One ruleset's backtest of the history."""

    version: str
    files: RuleFiles
    catalog: Catalog
    events: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    plan: Plan


@dataclass(frozen=True)
class Example:
    lead_id: int
    memberships: int
    """How many memberships the side that has them gives the lead."""
    first: dict[str, Any]
    """The first membership event of that side, to show when and by which activity."""


@dataclass
class CampaignChange:
    id: int
    name: str
    gaining: list[Example] = field(default_factory=list)
    losing: list[Example] = field(default_factory=list)
    recounted: int = 0
    """Leads member on both sides, a different number of times (an `every time` campaign)."""
    old_memberships: int = 0
    new_memberships: int = 0

    @property
    def changes(self) -> bool:
        return bool(self.gaining or self.losing or self.recounted)


@dataclass(frozen=True)
class CampaignRef:
    id: int
    name: str
    path: str


@dataclass
class NewRejections:
    """Records of one activity type accepted by the old rules and rejected by the new."""

    type_id: int
    label: str
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    lines: list[int] = field(default_factory=list)


@dataclass
class PlanReport:
    old_version: str
    new_version: str
    added: list[CampaignRef]
    removed: list[CampaignRef]
    changed: list[CampaignRef]
    campaigns: list[CampaignChange]
    rejections: list[NewRejections]

    @property
    def memberships_change(self) -> bool:
        return any(c.changes for c in self.campaigns)

    @property
    def exit_code(self) -> int:
        return 1 if self.memberships_change or self.rejections else 0


def _by_membership(events: list[dict[str, Any]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    found: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        found[(event["campaignId"], event["leadId"])].append(event)
    return found


def _refs(files: RuleFiles) -> dict[int, tuple[CampaignRef, Any]]:
    return {
        c.definition.id: (
            CampaignRef(c.definition.id, c.definition.name, c.path),
            canonical(c.definition),
        )
        for c in files.campaigns
    }


def _type_of(letter: dict[str, Any]) -> int | None:
    try:
        record = orjson.loads(letter.get("record", ""))
    except orjson.JSONDecodeError:
        return None
    type_id = record.get("activityTypeId") if isinstance(record, dict) else None
    return type_id if isinstance(type_id, int) else None


def compare(old: Side, new: Side) -> PlanReport:
    old_refs, new_refs = _refs(old.files), _refs(new.files)
    added = [new_refs[i][0] for i in sorted(new_refs.keys() - old_refs.keys())]
    removed = [old_refs[i][0] for i in sorted(old_refs.keys() - new_refs.keys())]
    changed = [
        new_refs[i][0]
        for i in sorted(old_refs.keys() & new_refs.keys())
        if old_refs[i][1] != new_refs[i][1]
    ]

    before, after = _by_membership(old.events), _by_membership(new.events)
    names = {i: ref.name for i, (ref, _) in {**old_refs, **new_refs}.items()}
    campaigns: dict[int, CampaignChange] = {}

    def campaign(campaign_id: int) -> CampaignChange:
        if campaign_id not in campaigns:
            name = names.get(campaign_id, f"campaign {campaign_id}")
            campaigns[campaign_id] = CampaignChange(campaign_id, name)
        return campaigns[campaign_id]

    for (campaign_id, _lead), events in before.items():
        campaign(campaign_id).old_memberships += len(events)
    for (campaign_id, _lead), events in after.items():
        campaign(campaign_id).new_memberships += len(events)
    for key in sorted(before.keys() | after.keys()):
        campaign_id, lead_id = key
        old_events, new_events = before.get(key, []), after.get(key, [])
        change = campaign(campaign_id)
        if not old_events:
            change.gaining.append(Example(lead_id, len(new_events), new_events[0]))
        elif not new_events:
            change.losing.append(Example(lead_id, len(old_events), old_events[0]))
        elif len(old_events) != len(new_events):
            change.recounted += 1

    accepted_before = {letter["offset"] for letter in old.dead_letters}
    rejections: dict[int, NewRejections] = {}
    for letter in new.dead_letters:
        if letter["offset"] in accepted_before:
            continue  # rejected by both
        type_id = _type_of(letter)
        if type_id is None:
            continue  # not a record of a type: both decoders refuse it alike
        known = old.catalog.types.get(type_id)
        label = known.label if known is not None else f"{type_id}"
        entry = rejections.setdefault(type_id, NewRejections(type_id, label))
        entry.count += 1
        entry.reasons[f"{letter['error']['code']}: {letter['error']['message']}"] += 1
        entry.lines.append(int(letter["offset"]) + 1)
    return PlanReport(
        old.version,
        new.version,
        added,
        removed,
        changed,
        [campaigns[i] for i in sorted(campaigns)],
        [rejections[i] for i in sorted(rejections)],
    )
