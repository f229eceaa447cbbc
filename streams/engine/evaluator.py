"""The evaluation of one activity against one lead's state: campaigns.md, step by step.

`Engine.process` is a pure function of (lead state, activity, processing time): it mutates
the state it is given and returns the events; no clock, no I/O. The backtest and the workers
call it the same way, so they emit the same events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from streams.engine.activity import Activity
from streams.engine.compiler import CompiledCampaign, CompiledTrigger, FilterContext, Plan
from streams.engine.datatypes import US_PER_DAY
from streams.engine.events import action_members, membership_event
from streams.engine.history_index import HistoryIndex
from streams.engine.leadstate import LeadState, SeenEntry
from streams.engine.standard_types import CHANGE_DATA_VALUE, DELETE_LEAD, NEW_LEAD

DEFAULT_DEDUP_HORIZON_US: Final = 7 * US_PER_DAY
_EXPIRE_EVERY: Final = 16
"""Expired identities are dropped when `seen` grows by this many: expiry only bounds memory
(a lookup checks the age itself), so it need not run on every activity."""


@dataclass(frozen=True, slots=True)
class Outcome:
    events: list[dict[str, Any]]
    duplicate: bool = False
    """The activity was seen before at another position: it changed nothing."""
    redelivered: bool = False
    """The same record was processed before: `events` are those it emitted then."""


_DUPLICATE: Final = Outcome([], duplicate=True)
_NOTHING: Final = Outcome([])
"""Shared by every activity that fires nothing (most): callers only read `events`."""
INDEX_FROM: Final = 64
"""History entries of one type from which a lead's history is indexed (bench/history.py)."""
_NONE_FIRED: Final[list[int]] = []
"""Shared by every `seen` entry that fired nothing; never mutated."""


Candidate = tuple[CompiledCampaign, tuple[CompiledTrigger, ...]]
TypeIndex = tuple[dict[str, tuple[Candidate, ...]], tuple[Candidate, ...]]
"""(candidates by case-folded primary value, candidates for any other value)."""


def _index(type_id: int, campaigns: Sequence[CompiledCampaign]) -> TypeIndex:
    """Which campaigns can fire for an activity of the type, by its primary value.

    A campaign whose every trigger on the type has an `is` on the text primary can only fire
    for those values; the others are candidates for any value. Each tuple keeps ascending
    campaign id, so skipping campaigns never changes the order of events."""
    every = tuple((c, c.triggers[type_id]) for c in campaigns)
    keys_of: dict[int, frozenset[str]] = {}
    for campaign, triggers in every:
        keys = [t.primary_keys for t in triggers]
        if all(k is not None for k in keys):
            keys_of[campaign.id] = frozenset().union(*(k for k in keys if k is not None))
    unindexed = tuple(c for c in every if c[0].id not in keys_of)
    values = set().union(*keys_of.values()) if keys_of else set()
    by_value = {
        value: tuple(c for c in every if c[0].id not in keys_of or value in keys_of[c[0].id])
        for value in values
    }
    return by_value, unindexed


class Engine:
    """History filters scan the lead's history, as campaigns.md words them, until one type of
    the lead's history reaches `index_from` entries; from then on the lead keeps a
    `HistoryIndex` (state.index), so that an activity costs the same whatever the length of
    its history (a short scan is cheaper than keeping an index up to date).
    `index_from=None` is the reference evaluator, which always scans; the two must emit the
    same events and leave the same states (tests/unit/test_history_index.py)."""

    def __init__(
        self,
        plan: Plan,
        dedup_horizon_us: int = DEFAULT_DEDUP_HORIZON_US,
        *,
        index_from: int | None = INDEX_FROM,
    ) -> None:
        self.plan = plan
        self.dedup_horizon_us = dedup_horizon_us
        self.index_from = index_from
        self._campaigns = {c.id: c for c in plan.campaigns}
        self._by_type = {
            type_id: _index(type_id, campaigns) for type_id, campaigns in plan.by_type.items()
        }

    def process(self, state: LeadState, activity: Activity, now_us: int) -> Outcome:
        """1. a known identity: a duplicate (nothing) or a redelivery (the same events);
        2. apply the activity to the state (history, fields, or erasure);
        3. each active campaign with a trigger on the type, in ascending id: triggers, then
           qualification and filters; a member gets one event and its run is recorded;
        4. remember the identity with the campaigns it fired and, when some of them carry
           lead fields (campaigns with actions), the fields they carried, so a redelivery
           re-emits the same events byte for byte.
        `CompiledCampaign.qualifies` states the qualification rule the loop inlines."""
        seen = state.seen.get(activity.id)
        if seen is not None and now_us - seen[0] <= self.dedup_horizon_us:
            if seen[1] != activity.position:
                return _DUPLICATE
            return Outcome(self._replay(activity, seen, state), redelivered=True)

        self._apply(state, activity)
        events: list[dict[str, Any]] = []
        fired: list[int] = []
        carried: dict[str, str] | None = None
        context: FilterContext | None = None
        primary, attributes, ts = activity.primary, activity.attributes, activity.ts
        runs = state.runs
        index = self._by_type.get(activity.type_id)
        if index is None:
            candidates: tuple[Candidate, ...] = ()
        elif type(primary) is str:
            candidates = index[0].get(primary.casefold(), index[1])
        else:  # empty, or not text: no `is` on a text primary can hold
            candidates = index[1]
        for campaign, triggers in candidates:
            # Inlined on purpose: this loop runs for every campaign listening to the type.
            for trigger in triggers:
                if trigger.match(primary, attributes, ts):
                    break
            else:
                continue
            if campaign.qualification != "every time":
                last = runs.get(campaign.id)
                if last is not None and (
                    campaign.qualification == "once" or ts - last < campaign.period_us
                ):
                    continue
            if campaign.filters is not None:
                if context is None:
                    context = FilterContext(state, ts, self._index(state))
                if not campaign.filters(context):
                    continue
            runs[campaign.id] = ts
            fired.append(campaign.id)
            event = self._event(campaign, activity, trigger.name, state.fields)
            if campaign.carries:
                carried = {} if carried is None else carried
                carried.update(event["leadFields"])
            events.append(event)

        if seen is not None:
            del state.seen[activity.id]  # re-inserted last: `seen` stays in processing order
        entry = [now_us, activity.position, fired or _NONE_FIRED]
        if carried is not None:
            entry.append(carried)  # what `_replay` carries again: the fields as they are now
        state.seen[activity.id] = entry
        if len(state.seen) % _EXPIRE_EVERY == 0:
            self._expire_seen(state, now_us)
        return Outcome(events) if events else _NOTHING

    def apply(self, state: LeadState, activity: Activity) -> None:
        """Step 2 of `process` alone (for `explain`: the state filters see)."""
        self._apply(state, activity)

    def _index(self, state: LeadState) -> HistoryIndex | None:
        """The state's history index for this plan (rebuilt if it was built for another);
        None when the lead has none (its history is short) or for the reference."""
        index: HistoryIndex | None = state.index
        if index is None or self.index_from is None:
            return None
        if index.plan is not self.plan:
            index = state.index = self.plan.history_index(state)
        return index

    def _apply(self, state: LeadState, activity: Activity) -> None:
        type_id = activity.type_id
        if type_id == DELETE_LEAD:
            state.erase()
            return
        ts = activity.ts
        if state.max_ts is None or ts > state.max_ts:
            state.max_ts = ts
        if type_id in self.plan.recorded_types:
            index = self._index(state)
            entries = state.history.setdefault(type_id, [])
            if index is None and self.index_from is not None and len(entries) >= self.index_from:
                index = state.index = self.plan.history_index(state)
            if index is not None:
                entries.append([ts, activity.primary, activity.attributes])
                index.add(type_id, ts, activity.primary, activity.attributes)
                horizon = state.max_ts - self.plan.retention_us
                if index.dates[type_id][0] < horizon:
                    index.prune(type_id, horizon, entries)
            else:
                self._apply_scanning(state, type_id, activity)
        if type_id in (NEW_LEAD, CHANGE_DATA_VALUE):
            for name, value in activity.fields:
                key = name.casefold()
                if not value:  # null or "": the field is emptied
                    state.fields.pop(key, None)
                else:
                    state.fields[key] = value

    def _apply_scanning(self, state: LeadState, type_id: int, activity: Activity) -> None:
        """The reference's history update: append, then drop what the retention excludes."""
        assert state.max_ts is not None
        entries = state.history.setdefault(type_id, [])
        entries.append([activity.ts, activity.primary, activity.attributes])
        horizon = state.max_ts - self.plan.retention_us
        # Entries are in processing order, not date order (late mobile actions): look at all
        # of them, so what is kept depends on the dates alone.
        if any(e[0] < horizon for e in entries):
            entries[:] = [e for e in entries if e[0] >= horizon]

    @staticmethod
    def _matching_trigger(campaign: CompiledCampaign, activity: Activity) -> str | None:
        for trigger in campaign.triggers[activity.type_id]:
            if trigger.match(activity.primary, activity.attributes, activity.ts):
                return trigger.name
        return None

    def _event(
        self,
        campaign: CompiledCampaign,
        activity: Activity,
        trigger: str,
        fields: dict[str, str],
    ) -> dict[str, Any]:
        event = membership_event(
            campaign.id,
            campaign.name,
            activity.lead_id,
            activity.id,
            activity.type_id,
            activity.ts,
            trigger,
            self.plan.rules_version,
        )
        if campaign.carries is not None:
            event.update(self._action_members(campaign.carries, activity, fields))
        return event

    def _action_members(
        self, carries: tuple[str, ...], activity: Activity, fields: dict[str, str]
    ) -> dict[str, Any]:
        return action_members(
            self.plan.catalog.types.get(activity.type_id),
            activity.primary,
            activity.attributes,
            fields,
            carries,
        )

    def _replay(
        self, activity: Activity, seen: SeenEntry, state: LeadState
    ) -> list[dict[str, Any]]:
        """The events a redelivered record emitted the first time (same `eventId`s). The
        lead fields that campaigns with actions carry come from the `seen` entry's snapshot
        (the fields as known when the lead became a member), not from the lead's fields now,
        which later activities of the same saved batch may have changed. An entry without a
        snapshot (no firing campaign carried a field, or stored before snapshots existed)
        reads the fields now."""
        fields: dict[str, str] = seen[3] if len(seen) > 3 else state.fields
        events = []
        for campaign_id in seen[2]:
            campaign = self._campaigns.get(campaign_id)
            name = campaign.name if campaign is not None else ""
            trigger = (
                self._matching_trigger(campaign, activity)
                if campaign is not None and activity.type_id in campaign.triggers
                else None
            )
            event = membership_event(
                campaign_id,
                name,
                activity.lead_id,
                activity.id,
                activity.type_id,
                activity.ts,
                trigger or "",
                self.plan.rules_version,
            )
            if campaign is not None and campaign.carries is not None:
                event.update(self._action_members(campaign.carries, activity, fields))
            events.append(event)
        return events

    def _expire_seen(self, state: LeadState, now_us: int) -> None:
        """Forget identities older than the horizon; `seen` is in processing order, so only
        its head needs looking at."""
        limit = now_us - self.dedup_horizon_us
        seen = state.seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest][0] >= limit:
                break
            del seen[oldest]
