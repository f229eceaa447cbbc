"""From validated definitions to an evaluation plan: campaigns indexed by activity type,
constraints turned into predicates once, filter logic into short-circuiting closures.

Every semantic rule of campaigns.md is checked here, while compiling, so that `validate` and
the engine cannot disagree about what a rule means.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from streams.actions.compiled import ActionPlan
from streams.actions.validation import compile_actions
from streams.engine import rule_forms
from streams.engine.catalog import (
    DEFAULT_MAX_CUSTOM_TYPES,
    ActivityType,
    Catalog,
    TypeFile,
    build_catalog,
)
from streams.engine.datatypes import TEXT_TYPES, US_PER_DAY, CoercionError, Value, parse_duration_us
from streams.engine.definitions import ActivityTypeDef, ConstraintDef, FilterItemDef
from streams.engine.history_index import (
    HistoryFilter,
    HistoryIndex,
    HistoryMatcher,
    Stab,
    depends_on_t,
    in_past_spans,
    matchers_by_type,
)
from streams.engine.leadstate import LeadState
from streams.engine.loader import CampaignFile, RuleFiles, read_rules
from streams.engine.logic import (
    And,
    Item,
    LogicError,
    Node,
    Not,
    chain_operands,
    compile_logic,
    logic_source,
    parse_logic,
)
from streams.engine.operators import (
    FIELD_OPERATORS,
    TEXT_IS_TEMPLATE,
    Condition,
    OperatorError,
    Predicate,
    bind,
    condition,
    condition_predicate,
    field_condition,
    generate,
    operators_for,
)
from streams.engine.problems import Problem, RulesError
from streams.engine.standard_types import CHANGE_DATA_VALUE

DEFAULT_RETENTION_US: Final = 90 * US_PER_DAY
PRIMARY: Final = ""
"""The attribute key of the primary attribute in compiled checks."""

NATIVE_FORMS: bool = rule_forms.compiled()
"""Whether triggers and filters compile to `rule_forms` objects (True when that module is
compiled by mypyc) or to functions generated with `exec` (the faster form when the engine
runs as Python): the same decisions either way. Read when rules are compiled."""

_EVERY_RE: Final = re.compile(r"once every\s+(.+)", re.IGNORECASE)

Check = tuple[str, Condition, bool]
"""(apiName or PRIMARY, condition, any-of-a-list: type 13's primary holds for any field)."""

Matcher = Callable[[Any, dict[str, Value], int], bool]
"""`(primary, attributes, T) -> every constraint holds`."""

FilterTest = Callable[[LeadState, int, HistoryIndex | None], bool]
"""`(state, T, index) -> the filters hold`: a `FilterContext`'s members as arguments."""


@dataclass(frozen=True, slots=True)
class FilterContext:
    """What filters see: the lead's state after the activity was applied, its date, and the
    lead's history index (None: history filters scan, as the reference evaluator does)."""

    state: LeadState
    ts: int
    index: HistoryIndex | None = None


class HistorySlots:
    """Gives each distinct (type, constraints) of the history filters one index slot, so
    that filters differing only in window, minTimes or negation share their counts."""

    def __init__(self) -> None:
        self.matchers: list[HistoryMatcher] = []
        self._by_key: dict[object, HistoryMatcher] = {}

    def slot(
        self,
        type_id: int,
        checks: tuple[Check, ...],
        match: Matcher,
        stab: Stab | None = None,
    ) -> HistoryMatcher:
        """`stab`: the shape of an interval slot (`checks` the filter's other checks)."""
        key: object = (
            type_id,
            tuple((k, c.template, c.constants, c.parse, a) for k, c, a in checks),
            None if stab is None else (stab.spans, stab.window_us),
        )
        try:
            found = self._by_key.get(key)
        except TypeError:  # a constant that is not hashable: a slot of its own
            found, key = None, object()
        if found is None:
            found = self._by_key[key] = HistoryMatcher(len(self.matchers), type_id, match, stab)
            self.matchers.append(found)
        return found


def build_matcher(checks: Sequence[Check]) -> Matcher:
    """One generated function for all of a trigger's (or a history filter's) constraints:
    each reads its attribute into `v` and returns False at the first that fails (with
    `NATIVE_FORMS`, `rule_forms.Checks.match`, which does the same)."""
    if NATIVE_FORMS:
        return native_checks(checks).match
    namespace: dict[str, Any] = {}
    body: list[str] = []
    for index, (key, cond, any_of) in enumerate(checks):
        expression = bind(cond, f"c{index}", namespace)
        if key == PRIMARY:
            source = "p"
        else:
            namespace[f"k{index}"] = key
            source = f"a.get(k{index})"
        if any_of:
            body += [
                f"vs = {source}",
                "if vs:",
                "    for v in vs:",
                f"        if {expression}: break",
                "    else:",
                "        return False",
                f"elif not ((lambda v: {expression})(None)):",
                "    return False",
            ]
        else:
            body += [f"v = {source}", f"if not ({expression}): return False"]
    body.append("return True")
    matcher: Matcher = generate("match", "p, a, t", body, namespace)
    return matcher


@dataclass(frozen=True)
class CompiledTrigger:
    name: str
    type_id: int
    match: Matcher
    primary_keys: frozenset[str] | None = None
    """When the trigger has an `is` constraint on a text primary attribute: the case-folded
    values it accepts, so the engine can skip it for any other primary value."""
    checks: tuple[Check, ...] = ()
    """The constraints `match` was built from, for `explain` (not used when evaluating)."""
    texts: tuple[str, ...] = ()
    """Each constraint as written (`amount greater than 10000`), for `explain`."""
    checks_native: rule_forms.Checks | None = None
    """With `NATIVE_FORMS`: the object whose `match` is `match`, which compiled code calls
    directly (no call through a Python callable)."""


@dataclass(frozen=True)
class HistoryLeaf:
    """A history filter: `evaluate` is the engine's own leaf; `count` is what it counts,
    which `evaluate` calls, so `explain` shows the very numbers the decision came from."""

    text: str
    type_id: int
    window_us: int | None
    min_times: int
    negate: bool
    checks: tuple[Check, ...]
    texts: tuple[str, ...]
    count: Callable[[FilterContext, int], tuple[int, int]]
    """`(ctx, stop) -> (matching entries counted, stopping at stop; low bound of the window)`."""
    evaluate: Callable[[FilterContext], bool]
    test: FilterTest
    """`evaluate` on the context's members (`HistoryFilter.test`): the engine's own."""
    history: HistoryFilter | None = None
    """`evaluate` itself (for the `rule_forms` tree)."""


@dataclass(frozen=True)
class FieldLeaf:
    """A field filter: `evaluate` is the engine's own leaf over `ctx.state.fields[key]`."""

    text: str
    key: str
    evaluate: Callable[[FilterContext], bool]
    predicate: Predicate
    """`(field text or None, T) -> bool`: `evaluate` is it on `ctx.state.fields.get(key)`."""
    condition: Condition | None = None
    """What `predicate` was generated from (for the `rule_forms` tree)."""


Leaf = HistoryLeaf | FieldLeaf


def filter_test(
    tree: Node, leaves: Sequence[Leaf], filters: Callable[[FilterContext], bool]
) -> FilterTest:
    """One generated function for a campaign's filters: the logic as one expression
    (`logic_source`), a history leaf a call of `HistoryFilter.test`, a field leaf its
    predicate on the field, so evaluating costs a call per leaf reached and no context
    object. An expression too deep for Python's parser (thousands of `not`s) falls back
    to `filters` on a context, which decides alike. With `NATIVE_FORMS`, the tree of
    `rule_forms` nodes instead (`native_tree`)."""
    if NATIVE_FORMS:
        native = native_tree(tree, leaves)
        if native is not None:
            return native.test
    namespace: dict[str, Any] = {}
    sources: list[str] = []
    for index, leaf in enumerate(leaves):
        if isinstance(leaf, HistoryLeaf):
            namespace[f"h{index}"] = leaf.test
            sources.append(f"h{index}(s, t, x)")
        else:
            namespace[f"f{index}"] = leaf.predicate
            namespace[f"k{index}"] = leaf.key
            sources.append(f"f{index}(s.fields.get(k{index}), t)")
    try:
        test: FilterTest = generate(
            "test", "s, t, x", [f"return {logic_source(tree, sources)}"], namespace
        )
    except (SyntaxError, RecursionError, MemoryError):
        return lambda state, ts, index: filters(FilterContext(state, ts, index))
    return test


def native_checks(checks: Sequence[Check]) -> rule_forms.Checks:
    """The constraints as a `rule_forms.Checks`, which decides as `build_matcher`'s
    generated function."""
    return rule_forms.Checks(
        [rule_forms.Check(k == PRIMARY, k, native_cond(c), a) for k, c, a in checks]
    )


def native_cond(cond: Condition) -> rule_forms.Cond:
    """The `rule_forms` class deciding `cond` (its generated predicate for a template
    `rule_forms` does not list)."""
    return rule_forms.compiled_cond(cond, condition_predicate)


def native_tree(tree: Node, leaves: Sequence[Leaf]) -> rule_forms.Node | None:
    """The filter logic as `rule_forms` nodes: a chain of one operator is one node over its
    operands, left to right, so it short-circuits as `logic_source`'s expression does.
    None when a leaf lacks what its node needs."""
    if isinstance(tree, Item):
        leaf = leaves[tree.number - 1]
        if isinstance(leaf, HistoryLeaf):
            return None if leaf.history is None else rule_forms.HistoryNode(leaf.history)
        if leaf.condition is None:
            return None
        return rule_forms.FieldNode(leaf.key, native_cond(leaf.condition))
    if isinstance(tree, Not):
        operand = native_tree(tree.operand, leaves)
        return None if operand is None else rule_forms.NotNode(operand)
    operands: list[rule_forms.Node] = []
    for current in chain_operands(tree):
        operand = native_tree(current, leaves)
        if operand is None:
            return None
        operands.append(operand)
    return rule_forms.AllNode(operands) if type(tree) is And else rule_forms.AnyNode(operands)


def primary_keys(checks: Sequence[Check]) -> frozenset[str] | None:
    """The values an `is` constraint on the text primary allows (their intersection when
    there are several); None when no such constraint narrows the trigger."""
    keys: frozenset[str] | None = None
    for key, cond, any_of in checks:
        if key == PRIMARY and not any_of and cond.template == TEXT_IS_TEMPLATE:
            values = cond.constants[0]
            keys = values if keys is None else keys & values
    return keys


Qualification = Literal["once", "every time", "period"]


@dataclass(frozen=True)
class CompiledCampaign:
    id: int
    name: str
    path: str
    qualification: Qualification
    period_us: int
    """For `once every D`: D in microseconds."""
    triggers: dict[int, tuple[CompiledTrigger, ...]]
    """Triggers by the activity type they listen to."""
    filters: Callable[[FilterContext], bool] | None
    test: FilterTest | None
    """`filters` as one generated function of (state, T, index), the leaves inlined: what
    the engine calls (`filter_test`); `filters` stays for `explain`."""
    matchers: tuple[HistoryMatcher, ...] = ()
    """The index slots its history filters count with."""
    leaves: tuple[Leaf, ...] = ()
    """The filter items in order, whose `evaluate`s `filters` combines, for `explain`."""
    logic: str = "all"
    carries: tuple[str, ...] | None = None
    """When the campaign lists actions: the lead fields (case-folded) its membership events
    carry, with the triggering activity's values (`events.action_members`); else None."""
    test_native: rule_forms.Node | None = None
    """With `NATIVE_FORMS`: the tree whose `test` is `test`, called directly."""

    def qualifies(self, state: LeadState, ts: int) -> bool:
        if self.qualification == "every time":
            return True
        last = state.runs.get(self.id)
        if last is None:
            return True
        return self.qualification == "period" and ts - last >= self.period_us


@dataclass(frozen=True)
class Plan:
    catalog: Catalog
    campaigns: tuple[CompiledCampaign, ...]
    by_type: dict[int, tuple[CompiledCampaign, ...]]
    """Active campaigns with a trigger on the type, in ascending id."""
    rules_version: str
    retention_us: int
    """How long history is kept: the setting, or the longest window if that is longer."""
    recorded_types: frozenset[int] = field(default_factory=frozenset)
    """Types whose activities go into history (those that have a filter)."""
    history_matchers: dict[int, tuple[HistoryMatcher, ...]] = field(default_factory=dict)
    """The index slots of the active campaigns' history filters, by type."""
    history_slots: int = 0
    """How many slots the compiler gave out (inactive campaigns' included)."""

    def history_index(self, state: LeadState) -> HistoryIndex:
        """A fresh index of the state's history for this plan."""
        return HistoryIndex(self, self.history_matchers, self.history_slots, state.history)

    actions: ActionPlan = field(default_factory=ActionPlan)
    """Custom actions, endpoint limits and which campaign uses which (actions.md)."""


@dataclass
class _Compiler:
    catalog: Catalog
    path: str
    problems: list[Problem]
    slots: HistorySlots = field(default_factory=HistorySlots)
    used: list[HistoryMatcher] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.path, where, message))

    def constraint(
        self, activity_type: ActivityType, constraint: ConstraintDef, where: str
    ) -> Check | None:
        spec = activity_type.resolve(constraint.attribute)
        if spec is None:
            names = ", ".join(
                [activity_type.primary.api_name] + [a.api_name for a in activity_type.attributes]
            )
            self.problem(
                f"{where}.attribute",
                f"{constraint.attribute!r} is not an attribute of activity type "
                f"{activity_type.label}; its attributes are: {names}",
            )
            return None
        try:
            cond = condition(spec.data_type, constraint.operator, constraint.value_list)
        except OperatorError as exc:
            member = (
                "operator"
                if constraint.operator not in operators_for(spec.data_type)
                else ("values" if constraint.values is not None else "value")
            )
            self.problem(f"{where}.{member}", str(exc))
            return None
        is_primary = spec is activity_type.primary
        any_of = is_primary and activity_type.id == CHANGE_DATA_VALUE
        return (PRIMARY if is_primary else spec.api_name, cond, any_of)

    def constraints(
        self, activity_type: ActivityType, constraints: Sequence[ConstraintDef], where: str
    ) -> tuple[Check, ...] | None:
        checks = [
            self.constraint(activity_type, c, f"{where}.constraints[{i}]")
            for i, c in enumerate(constraints)
        ]
        if any(c is None for c in checks):
            return None
        return tuple(c for c in checks if c is not None)

    def history_filter(
        self, item: FilterItemDef, where: str, retention: list[int]
    ) -> HistoryLeaf | None:
        assert item.filter is not None
        activity_type = self.catalog.filter(item.filter)
        if activity_type is None:
            self.problem(
                f"{where}.filter", self.catalog.unknown_name_message("filter", item.filter)
            )
            return None
        checks = self.constraints(activity_type, item.constraints or [], where)
        window_us: int | None = None
        if item.window is not None:
            try:
                window_us = parse_duration_us(item.window)
            except CoercionError as exc:
                self.problem(f"{where}.window", str(exc))
                return None
            retention.append(window_us)
        if checks is None:
            return None
        match = build_matcher(checks)
        matcher = None
        if not depends_on_t(c for _, c, _ in checks):
            matcher = self.slots.slot(activity_type.id, checks, match)
        else:
            bound = in_past_spans(checks)
            if bound is not None:  # each entry the interval of T counting it: `intervals`
                static, spans = bound
                stab = Stab(spans, window_us, retention)
                matcher = self.slots.slot(activity_type.id, static, build_matcher(static), stab)
        if matcher is not None:
            self.used.append(matcher)
        evaluate = HistoryFilter(
            activity_type.id,
            match,
            window_us,
            item.minTimes or 1,
            bool(item.negate),
            retention,
            matcher,
        )
        return HistoryLeaf(
            _item_text(item),
            activity_type.id,
            window_us,
            item.minTimes or 1,
            bool(item.negate),
            checks,
            _constraint_texts(item.constraints or []),
            evaluate.count,
            evaluate,
            evaluate.test,
            evaluate,
        )

    def field_filter(self, item: FilterItemDef, where: str) -> FieldLeaf | None:
        assert item.field is not None and item.operator is not None
        if not item.field.strip():
            self.problem(f"{where}.field", "must name a lead field")
            return None
        try:
            field_cond = field_condition(item.operator, item.value_list)
        except OperatorError as exc:
            member = (
                "operator"
                if item.operator not in FIELD_OPERATORS
                else ("values" if item.values is not None else "value")
            )
            self.problem(f"{where}.{member}", str(exc))
            return None
        predicate = condition_predicate(field_cond)
        key = item.field.casefold()
        return FieldLeaf(
            f"{item.field} {item.operator} {_values_text(item.value_list)}".rstrip(),
            key,
            lambda ctx: predicate(ctx.state.fields.get(key), ctx.ts),
            predicate,
            field_cond,
        )


def _values_text(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _constraint_texts(constraints: Sequence[ConstraintDef]) -> tuple[str, ...]:
    return tuple(
        f"{c.attribute or '(primary)'} {c.operator} {_values_text(c.value_list)}".rstrip()
        for c in constraints
    )


def _item_text(item: FilterItemDef) -> str:
    text = f"{'not ' if item.negate else ''}{item.filter}"
    if item.window is not None:
        text += f" in past {item.window}"
    return text + f", at least {item.minTimes or 1} time{'s' if (item.minTimes or 1) > 1 else ''}"


def _qualification(raw: str) -> tuple[Qualification, int] | str:
    text = raw.strip().lower()
    if text in ("once", "every time"):
        return ("once" if text == "once" else "every time"), 0
    match = _EVERY_RE.fullmatch(text)
    if match is None:
        return (
            f"{raw!r}: use once, every time, or once every N days (minutes, hours, weeks, months)"
        )
    try:
        return "period", parse_duration_us(match.group(1))
    except CoercionError as exc:
        return str(exc)


def compile_campaign(
    catalog: Catalog,
    campaign_file: CampaignFile,
    problems: list[Problem],
    retention: list[int],
    slots: HistorySlots | None = None,
) -> CompiledCampaign | None:
    definition = campaign_file.definition
    compiler = _Compiler(catalog, campaign_file.path, problems, slots or HistorySlots())
    before = len(problems)
    qualification = _qualification(definition.qualification)
    if isinstance(qualification, str):
        compiler.problem("qualification", qualification)
    if not definition.name.strip():
        compiler.problem("name", "must not be empty")

    triggers: dict[int, list[CompiledTrigger]] = {}
    for index, trigger in enumerate(definition.triggers):
        where = f"triggers[{index}]"
        activity_type = catalog.trigger(trigger.trigger)
        if activity_type is None:
            compiler.problem(
                f"{where}.trigger", catalog.unknown_name_message("trigger", trigger.trigger)
            )
            continue
        checks = compiler.constraints(activity_type, trigger.constraints, where)
        if checks is not None:
            assert activity_type.trigger_name is not None
            native = native_checks(checks) if NATIVE_FORMS else None
            triggers.setdefault(activity_type.id, []).append(
                CompiledTrigger(
                    activity_type.trigger_name,
                    activity_type.id,
                    build_matcher(checks) if native is None else native.match,
                    primary_keys(checks) if activity_type.primary.data_type in TEXT_TYPES else None,
                    checks,
                    _constraint_texts(trigger.constraints),
                    native,
                )
            )

    filters: Callable[[FilterContext], bool] | None = None
    test: FilterTest | None = None
    tree_native: rule_forms.Node | None = None
    leaves: list[Leaf] = []
    if definition.filters is not None and (
        definition.filters.items or definition.filters.logic.strip().lower() != "all"
    ):
        for index, item in enumerate(definition.filters.items):
            where = f"filters.items[{index}]"
            leaf = (
                compiler.history_filter(item, where, retention)
                if item.filter is not None
                else compiler.field_filter(item, where)
            )
            if leaf is not None:
                leaves.append(leaf)
        try:
            tree = parse_logic(definition.filters.logic, len(definition.filters.items))
        except LogicError as exc:
            compiler.problem("filters.logic", f"{definition.filters.logic!r}: {exc}")
        else:
            if len(leaves) == len(definition.filters.items):
                filters = compile_logic(tree, [leaf.evaluate for leaf in leaves])
                tree_native = native_tree(tree, leaves) if NATIVE_FORMS else None
                if tree_native is not None:
                    test = tree_native.test
                else:
                    test = filter_test(tree, leaves, filters)

    if len(problems) > before or isinstance(qualification, str):
        return None
    kind, period = qualification
    return CompiledCampaign(
        id=definition.id,
        name=definition.name,
        path=campaign_file.path,
        qualification=kind,
        period_us=period,
        triggers={k: tuple(v) for k, v in triggers.items()},
        filters=filters,
        test=test,
        matchers=tuple(dict.fromkeys(compiler.used)),
        leaves=tuple(leaves),
        logic=definition.filters.logic if definition.filters is not None else "all",
        test_native=tree_native,
    )


FROZEN_WHEN_USED: Final = ("apiName", "name", "triggerName", "filterName", "primaryAttribute")
"""What an approved type used by a campaign keeps: its draft may not change these."""


def frozen_changes(type_def: ActivityTypeDef) -> list[str]:
    """The members of `FROZEN_WHEN_USED` that the type's draft would change (none without a
    draft). The one statement of the rule: the compiler and the catalog operations ask it."""
    if type_def.draft is None:
        return []
    pending = type_def.pending()
    return [m for m in FROZEN_WHEN_USED if getattr(pending, m) != getattr(type_def, m)]


def _check_used_types(
    type_files: Sequence[TypeFile],
    catalog: Catalog,
    campaigns: Sequence[CampaignFile],
    problems: list[Problem],
) -> None:
    """A type approved and used by a campaign keeps its names and primary attribute."""
    users: dict[int, str] = {}
    for campaign in campaigns:
        definition = campaign.definition
        names = [(catalog.trigger, t.trigger) for t in definition.triggers]
        if definition.filters is not None:
            names += [(catalog.filter, i.filter) for i in definition.filters.items if i.filter]
        for lookup, name in names:
            found = lookup(name)
            if found is not None:
                users.setdefault(found.id, campaign.path)
    for type_file in type_files:
        type_def = type_file.definition
        if type_def.id not in users:
            continue
        for member in frozen_changes(type_def):
            problems.append(
                Problem(
                    type_file.path,
                    f"draft.{member}",
                    f"cannot change: the type is approved and used by {users[type_def.id]}",
                )
            )


def compile_rules(
    files: RuleFiles,
    retention_us: int = DEFAULT_RETENTION_US,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> tuple[Plan | None, list[Problem]]:
    catalog, problems = build_catalog(files.types, max_custom_types)
    _check_used_types(files.types, catalog, files.campaigns, problems)
    # One mutable cell shared by the history filters: the retention is known only once every
    # window has been seen, and filters without a window count back that far.
    retention = [retention_us]
    slots = HistorySlots()
    compiled: list[CompiledCampaign] = []
    ids: dict[int, str] = {}
    names: dict[str, str] = {}
    for campaign_file in sorted(files.campaigns, key=lambda c: c.path):
        definition = campaign_file.definition
        other = ids.setdefault(definition.id, campaign_file.path)
        if other != campaign_file.path:
            problems.append(
                Problem(campaign_file.path, "id", f"{definition.id} is also the id of {other}")
            )
        other = names.setdefault(definition.name.casefold(), campaign_file.path)
        if other != campaign_file.path:
            problems.append(
                Problem(
                    campaign_file.path, "name", f"{definition.name!r} is also the name of {other}"
                )
            )
        campaign = compile_campaign(catalog, campaign_file, problems, retention, slots)
        if campaign is not None:
            compiled.append(campaign)
    actions = compile_actions(files.actions, files.endpoints, files.campaigns, catalog, problems)
    if problems:
        return None, problems
    retention[0] = max(retention)
    del retention[1:]
    compiled = [
        replace(c, carries=actions.carries[c.id]) if c.id in actions.carries else c
        for c in sorted(compiled, key=lambda c: c.id)
    ]
    active = {c.definition.id for c in files.campaigns if c.definition.status == "active"}
    by_type: dict[int, list[CompiledCampaign]] = {}
    used: dict[HistoryMatcher, None] = {}
    for campaign in compiled:
        if campaign.id in active:
            for type_id in campaign.triggers:
                by_type.setdefault(type_id, []).append(campaign)
            used.update(dict.fromkeys(campaign.matchers))
    recorded = frozenset(t.id for t in catalog.types.values() if t.filter_name)
    plan = Plan(
        catalog=catalog,
        campaigns=tuple(compiled),
        by_type={k: tuple(v) for k, v in by_type.items()},
        rules_version=files.version,
        retention_us=retention[0],
        recorded_types=recorded,
        history_matchers=matchers_by_type(list(used)),
        history_slots=len(slots.matchers),
        actions=actions,
    )
    return plan, []


def load_plan(
    rules_dir: Path,
    retention_us: int = DEFAULT_RETENTION_US,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Plan:
    """Read, validate and compile a rules directory; RulesError lists every problem."""
    files, problems = read_rules(rules_dir)
    plan, more = compile_rules(files, retention_us, max_custom_types)
    problems += more
    if problems or plan is None:
        raise RulesError(sorted(set(problems), key=lambda p: (p.file, p.field or "")))
    return plan
