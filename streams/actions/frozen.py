"""The frozen rule of actions.md: once an active campaign uses an action, a new version of
the rules may change only that action's `description`, `url`, `timeout` and
`authentication`. Anything else (method, headers, query, payload, its name, or removing
it) would change calls of memberships already emitted, which the dispatcher may still be
making or redelivering: add a new action under a new name instead.

`refused_changes(old, new)` is pure: it compares two compiled rule sets and returns one
`Problem` per refused change, naming the campaigns that use the action. Hot reload and
`plan` (rulesops) call it; an empty list means the new version may go in.
"""

from __future__ import annotations

from typing import Final

from streams.actions.compiled import CompiledAction
from streams.engine.compiler import Plan
from streams.engine.problems import Problem

MAY_CHANGE: Final = frozenset({"description", "url", "timeout", "authentication"})
COMPARED: Final = ("method", "headers", "query", "payload")


def active_users(plan: Plan) -> dict[str, list[str]]:
    """Action name -> the active campaigns that use it, as `id (name)`, by id."""
    active = {c.id for campaigns in plan.by_type.values() for c in campaigns}
    names = {c.id: c.name for c in plan.campaigns}
    users: dict[str, list[str]] = {}
    for campaign_id in sorted(plan.actions.uses):
        if campaign_id not in active:
            continue
        for use in plan.actions.uses[campaign_id]:
            users.setdefault(use.action.name, []).append(f"{campaign_id} ({names[campaign_id]})")
    return users


def _shape(action: CompiledAction) -> dict[str, object]:
    dumped = action.definition.model_dump(mode="json", by_alias=True)
    return {member: dumped.get(member) for member in COMPARED}


def refused_changes(old: Plan, new: Plan) -> list[Problem]:
    problems: list[Problem] = []
    new_by_folded = {name.casefold(): a for name, a in new.actions.actions.items()}
    for name, campaigns in sorted(active_users(old).items()):
        before = old.actions.actions[name]
        used = (
            f"action {name} is used by active campaign{'s' if len(campaigns) > 1 else ''} "
            f"{', '.join(campaigns)}; add a new action under a new name to change more than "
            "description, url, timeout and authentication"
        )
        after = new_by_folded.get(name.casefold())
        if after is None:
            problems.append(Problem(before.path, None, f"cannot be removed: {used}"))
            continue
        if after.name != name:
            problems.append(Problem(after.path, "name", f"cannot change: {used}"))
        old_shape, new_shape = _shape(before), _shape(after)
        for member in COMPARED:
            if old_shape[member] != new_shape[member]:
                problems.append(Problem(after.path, member, f"cannot change: {used}"))
    return problems
