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
from streams.engine.bounds import forget
from streams.engine.compiler import CompiledCampaign, CompiledTrigger, Plan
from streams.engine.datatypes import US_PER_DAY, format_us
from streams.engine.events import action_members, membership_event
from streams.engine.history_index import HistoryIndex
from streams.engine.leadstate import HistoryEntry, LeadState, SeenEntry
from streams.engine.standard_types import DELETE_LEAD, FIELD_TYPES

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


def _any_before(entries: list[HistoryEntry], horizon: int) -> bool:
    """Whether an entry is dated before `horizon` (a loop, not `min(map(...))`: the
    compiled build runs it without an iterator object or a call per entry)."""
    for entry in entries:
        date: int = entry[0]
        if date < horizon:
            return True
    return False


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
        self._recorded = plan.recorded_types
        self._retention_us = plan.retention_us
        self._now_us = -1
        self._now: object = -1
        """`_now_us` as one object, which every `seen` entry of the same clock shares (the
        compiled build would otherwise make an int object per entry)."""

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

        history_index = self._apply(state, activity)
        events: list[dict[str, Any]] | None = None  # made when a campaign fires (few do)
        fired: list[int] | None = None
        carried: dict[str, str] | None = None
        indexed = False  # whether `history_index` is known (it is after a recorded type)
        date: str | None = None
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
                checks = trigger.checks_native
                if checks is not None:  # a direct call of compiled code (`rule_forms`)
                    if checks.match(primary, attributes, ts):
                        break
                elif trigger.match(primary, attributes, ts):
                    break
            else:
                continue
            if campaign.qualification != "every time":
                last = runs.get(campaign.id)
                if last is not None and (
                    campaign.qualification == "once" or ts - last < campaign.period_us
                ):
                    continue
            test = campaign.test
            if test is not None:
                if not indexed and history_index is None:
                    history_index = self._index(state)
                indexed = True
                tree = campaign.test_native
                if tree is not None:
                    if not tree.test(state, ts, history_index):
                        continue
                elif not test(state, ts, history_index):
                    continue
            runs[campaign.id] = ts
            if fired is None:
                fired = []
                events = []
            fired.append(campaign.id)
            if date is None:
                date = format_us(ts)
            event = self._event(campaign, activity, trigger.name, state.fields, date)
            if campaign.carries:
                carried = {} if carried is None else carried
                carried.update(event["leadFields"])
            assert events is not None
            events.append(event)

        if now_us != self._now_us:
            self._now_us = now_us
            self._now = now_us
        now = self._now
        seen_map = state.seen
        if seen is not None:
            del seen_map[activity.id]  # re-inserted last: `seen` stays in processing order
        if carried is None:
            seen_map[activity.id] = [now, activity.position, fired or _NONE_FIRED]
        else:  # what `_replay` carries again: the fields as they are now
            seen_map[activity.id] = [now, activity.position, fired or [], carried]
        if len(seen_map) % _EXPIRE_EVERY == 0:
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

    def _apply(self, state: LeadState, activity: Activity) -> HistoryIndex | None:
        """Step 2; returns the lead's history index when the activity's type is recorded
        (`_index`, then perhaps built: the history reached `index_from`), else None (the
        caller asks `_index` if it needs it)."""
        type_id = activity.type_id
        if type_id == DELETE_LEAD:
            state.erase()
            return None
        ts = activity.ts
        max_ts = state.max_ts
        if max_ts is None or ts > max_ts:
            state.max_ts = max_ts = ts
        index: HistoryIndex | None = None
        if type_id in self._recorded:
            history = state.history
            entries = history.get(type_id)
            if entries is None:
                entries = history[type_id] = []
            horizon = max_ts - self._retention_us
            index = self._index(state)
            if index is None and self.index_from is not None and len(entries) >= self.index_from:
                index = state.index = self.plan.history_index(state)
            entry = [ts, activity.primary, activity.attributes]
            entries.append(entry)
            if index is not None:
                index.add(type_id, ts, activity.primary, activity.attributes)
                if index.dates[type_id][0] < horizon:
                    forget(state, type_id, index.prune(type_id, horizon, entries), entry)
            # The reference's update: entries are in processing order, not date order (late
            # mobile actions): look at all of them, so what is kept depends on the dates.
            elif _any_before(entries, horizon):
                forget(state, type_id, [e for e in entries if e[0] < horizon], entry)
                entries[:] = [e for e in entries if e[0] >= horizon]
        if type_id in FIELD_TYPES:
            fields = state.fields
            for name, value in activity.fields:
                key = name.casefold()
                if not value:  # null or "": the field is emptied
                    fields.pop(key, None)
                else:
                    fields[key] = value
        return index

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
        date: str | None = None,
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
            date,
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
