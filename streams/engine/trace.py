"""Why a lead did or did not join a campaign: the evaluation trace of one activity.

`explain` is a pure function of (plan, lead state, activity, campaign): it applies the
activity to a copy of the state with the engine's own `Engine.apply`, then asks the
campaign's compiled pieces, the very ones `Engine.process` runs, for each result: every
trigger's generated matcher (`CompiledTrigger.match`), each of its constraints through the
same generated code (`build_matcher` of that one check), each filter's leaf
(`HistoryLeaf.evaluate`, whose `count` is what it counts; `FieldLeaf.evaluate`), the logic
(`CompiledCampaign.filters`) and the qualification rule (`CompiledCampaign.qualifies`).
Nothing here decides on its own, so the trace cannot drift from the engine; a faster
evaluator keeps it as long as the compiled campaign keeps these members.

The decision follows the engine's order: a trigger must match, then the qualification
rule must allow the lead, then the filters must hold.
"""

from __future__ import annotations

import copy
from typing import Any

from streams.engine.activity import Activity
from streams.engine.compiler import (
    PRIMARY,
    CompiledCampaign,
    FieldLeaf,
    FilterContext,
    HistoryLeaf,
    Plan,
    build_matcher,
)
from streams.engine.datatypes import DataType, format_us
from streams.engine.evaluator import Engine
from streams.engine.leadstate import LeadState
from streams.engine.logic import And, Item, Node, Not, parse_logic


def _shown(plan: Plan, activity: Activity, key: str, value: Any) -> Any:
    """A value as a reader writes it: dates as dates, not microseconds."""
    activity_type = plan.catalog.types.get(activity.type_id)
    spec = activity_type.resolve(key or None) if activity_type is not None else None
    if spec is None or not isinstance(value, int) or isinstance(value, bool):
        return value
    if spec.data_type == DataType.DATETIME:
        return format_us(value)
    if spec.data_type == DataType.DATE:
        return format_us(value)[:10]
    return value


def _trigger_traces(
    plan: Plan, campaign: CompiledCampaign, activity: Activity
) -> tuple[bool, list[Any]]:
    primary, attributes, ts = activity.primary, activity.attributes, activity.ts
    traces = []
    matched = False
    for trigger in campaign.triggers.get(activity.type_id, ()):
        result = trigger.match(primary, attributes, ts)
        matched = matched or result
        constraints = []
        for check, text in zip(trigger.checks, trigger.texts, strict=True):
            value = primary if check[0] == PRIMARY else attributes.get(check[0])
            constraints.append(
                {
                    "constraint": text,
                    "value": _shown(plan, activity, check[0], value),
                    "result": build_matcher((check,))(primary, attributes, ts),
                }
            )
        traces.append({"trigger": trigger.name, "result": result, "constraints": constraints})
    return matched, traces


def qualification(campaign: CompiledCampaign, state: LeadState, ts: int) -> dict[str, Any]:
    """The rule, whether it lets the lead in at `ts`, and why (the engine's `qualifies`)."""
    last = state.runs.get(campaign.id)
    rule = campaign.qualification
    shown = "once every " + _duration(campaign.period_us) if rule == "period" else rule
    eligible = campaign.qualifies(state, ts)
    if last is None:
        reason = "first time: the lead was never a member"
    elif rule == "every time":
        reason = f"every time: a member again (last since {format_us(last)})"
    elif rule == "once":
        reason = f"already a member since {format_us(last)}: once only"
    elif eligible:
        again = format_us(last + campaign.period_us)
        reason = f"member since {format_us(last)}; eligible again since {again}"
    else:
        reason = (
            f"member since {format_us(last)}; next eligible {format_us(last + campaign.period_us)}"
        )
    return {"rule": shown, "eligible": eligible, "reason": reason}


def _duration(us: int) -> str:
    days, rest = divmod(us, 86_400_000_000)
    return f"{days} days" if not rest else f"{us / 3_600_000_000:g} hours"


def _render(node: Node, values: list[bool]) -> str:
    if isinstance(node, Item):
        return f"{node.number}={str(values[node.number - 1]).lower()}"
    if isinstance(node, Not):
        return f"not {_render(node.operand, values)}"
    word = "and" if isinstance(node, And) else "or"
    return f"({_render(node.left, values)} {word} {_render(node.right, values)})"


def filter_traces(campaign: CompiledCampaign, state: LeadState, ts: int) -> dict[str, Any]:
    """Each filter item and the logic, at date `ts` over `state`."""
    if campaign.filters is None:
        return {"logic": campaign.logic, "items": [], "result": True}
    context = FilterContext(state, ts)
    items: list[dict[str, Any]] = []
    values: list[bool] = []
    for number, leaf in enumerate(campaign.leaves, start=1):
        result = leaf.evaluate(context)
        values.append(result)
        if isinstance(leaf, HistoryLeaf):
            count, low = leaf.count(context, 1 << 62)
            items.append(
                {
                    "item": number,
                    "filter": leaf.text,
                    "window": [format_us(low), format_us(ts)],
                    "count": count,
                    "minTimes": leaf.min_times,
                    "negate": leaf.negate,
                    "constraints": list(leaf.texts),
                    "result": result,
                }
            )
        else:
            assert isinstance(leaf, FieldLeaf)
            items.append(
                {
                    "item": number,
                    "field": leaf.text,
                    "value": state.fields.get(leaf.key),
                    "result": result,
                }
            )
    tree = parse_logic(campaign.logic, len(campaign.leaves))
    return {
        "logic": campaign.logic,
        "items": items,
        "expression": _render(tree, values),
        "result": campaign.filters(context),
    }


def explain(
    plan: Plan, state: LeadState, activity: Activity, campaign: CompiledCampaign
) -> dict[str, Any]:
    """The trace of `activity` for `campaign`, the lead being in `state` before it (which is
    not changed). JSON-ready."""
    after = copy.deepcopy(state)
    Engine(plan).apply(after, activity)
    triggered, triggers = _trigger_traces(plan, campaign, activity)
    qualifies = qualification(campaign, after, activity.ts)
    filters = filter_traces(campaign, after, activity.ts)
    active = campaign.id in {c.id for c in plan.by_type.get(activity.type_id, ())}
    if not active:
        decision = "not a member: the campaign is inactive"
    elif not triggered:
        decision = "not a member: no trigger matched"
    elif not qualifies["eligible"]:
        decision = f"not a member: {qualifies['reason']}"
    elif not filters["result"]:
        decision = "not a member: the filters do not hold"
    else:
        decision = "member"
    return {
        "activity": {
            "id": activity.id,
            "activityTypeId": activity.type_id,
            "activityDate": format_us(activity.ts),
            "primaryAttributeValue": activity.primary,
            "attributes": {k: _shown(plan, activity, k, v) for k, v in activity.attributes.items()},
            "position": activity.position,
        },
        "triggers": triggers,
        "qualification": qualifies,
        "filters": filters,
        "member": decision == "member",
        "decision": decision,
    }


def live_trace(campaign: CompiledCampaign, state: LeadState, now_us: int) -> dict[str, Any]:
    """A lead's state as of `now_us`, without an activity: the qualification and filters
    (`explain` without a history file, and the API's explain call)."""
    return {
        "asOf": format_us(now_us),
        "fields": state.fields,
        "history": {str(k): len(v) for k, v in state.history.items()},
        "qualification": qualification(campaign, state, now_us),
        "filters": filter_traces(campaign, state, now_us),
    }
