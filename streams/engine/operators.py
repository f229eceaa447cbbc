"""Constraint operators, compiled once into Python expressions over constants.

An operator on its values becomes a `Condition`: an expression over `v` (the attribute's
coerced value, None when empty) and `t` (the date T of the activity under evaluation, for
`in past`), whose constants are bound by name (`{0}`, `{1}`, ... in the template), never
written into the source, so no rule text ever becomes code. The compiler joins a trigger's
conditions into one generated function, which costs one call per trigger instead of one per
constraint; `build_predicate` makes a function of a single condition (the tests use it).

Text compares ignoring case, so text values are case-folded once here, not per activity.
Empty: an attribute left out, null, or an empty text. On an empty value `is empty`,
`is not` and `not contains` hold and every other operator fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streams.engine.datatypes import (
    DATE_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    CoercionError,
    DataType,
    Value,
    coerce,
    parse_duration_us,
    parse_moment_us,
    parse_number,
)

Predicate = Callable[[Any, int], bool]

TEXT_OPERATORS: Final = (
    "is", "is not", "contains", "not contains", "starts with", "ends with",
    "is empty", "is not empty",
)  # fmt: skip
NUMBER_OPERATORS: Final = (
    "is", "is not", "greater than", "less than", "at least", "at most", "between",
    "is empty", "is not empty",
)  # fmt: skip
BOOLEAN_OPERATORS: Final = ("is", "is empty", "is not empty")
DATE_OPERATORS: Final = (
    "is", "before", "after", "on or before", "on or after", "between", "in past",
    "is empty", "is not empty",
)  # fmt: skip
NO_VALUE_OPERATORS: Final = frozenset({"is empty", "is not empty"})
SUBSTRING_OPERATORS: Final = frozenset({"contains", "not contains", "starts with", "ends with"})

FIELD_NUMERIC_OPERATORS: Final = ("greater than", "less than", "at least", "at most")
FIELD_DATE_OPERATORS: Final = ("before", "after", "on or before", "on or after", "in past")
FIELD_OPERATORS: Final = (
    *TEXT_OPERATORS, *FIELD_NUMERIC_OPERATORS, "between", *FIELD_DATE_OPERATORS,
)  # fmt: skip

TEXT_IS_TEMPLATE: Final = "v is not None and v.casefold() in {0}"
"""`is` on text: the compiler recognises it to index triggers by their primary value."""
IN_PAST_TEMPLATE: Final = "v is not None and t - {0} <= v <= t"
"""`in past`: the history index recognises it to count a filter's entries by the attribute
(`history_index.in_past_spans`)."""

_COMPARISONS: Final = {
    "greater than": ">", "after": ">",
    "less than": "<", "before": "<",
    "at least": ">=", "on or after": ">=",
    "at most": "<=", "on or before": "<=",
}  # fmt: skip


class OperatorError(ValueError):
    """An operator that does not fit, or values of the wrong number or type."""


@dataclass(frozen=True, slots=True)
class Condition:
    """`template.format(*names)` is a Python expression over `v` and `t`, `names[i]` being
    bound to `constants[i]`. `parse` (for lead fields, which are text) turns the raw value
    into the compared one first, None when it does not parse."""

    template: str
    constants: tuple[Any, ...] = ()
    parse: Callable[[str], float | int] | None = None


def operators_for(data_type: DataType) -> tuple[str, ...]:
    if data_type in TEXT_TYPES:
        return TEXT_OPERATORS
    if data_type in NUMBER_TYPES:
        return NUMBER_OPERATORS
    if data_type in DATE_TYPES:
        return DATE_OPERATORS
    return BOOLEAN_OPERATORS


def _check_arity(operator: str, values: Sequence[object]) -> None:
    if operator in NO_VALUE_OPERATORS:
        if values:
            raise OperatorError(f"{operator!r} takes no value")
    elif operator == "between":
        if len(values) != 2:
            raise OperatorError(f"'between' takes exactly two values, not {len(values)}")
    elif operator == "in past":
        if len(values) != 1:
            raise OperatorError(f"'in past' takes exactly one duration, not {len(values)}")
    elif not values:
        raise OperatorError(f"{operator!r} takes at least one value")


def _empty(operator: str) -> Condition | None:
    if operator == "is empty":
        return Condition("v is None")
    if operator == "is not empty":
        return Condition("v is not None")
    return None


def _text(operator: str, values: list[str]) -> Condition:
    folded = tuple(v.casefold() for v in values)
    if operator == "is":
        return Condition(TEXT_IS_TEMPLATE, (frozenset(folded),))
    if operator == "is not":
        return Condition("v is None or v.casefold() not in {0}", (frozenset(folded),))
    if operator in ("contains", "not contains"):
        if len(folded) == 1:
            test = "{0} in v.casefold()"
            constants: tuple[Any, ...] = (folded[0],)
        else:
            test = "any(x in v.casefold() for x in {0})"
            constants = (folded,)
        if operator == "contains":
            return Condition(f"v is not None and {test}", constants)
        return Condition(f"v is None or not ({test})", constants)
    if operator == "starts with":
        return Condition("v is not None and v.casefold().startswith({0})", (folded,))
    if operator == "ends with":
        return Condition("v is not None and v.casefold().endswith({0})", (folded,))
    raise OperatorError(f"{operator!r} is not a text operator")


def _ordered(operator: str, values: Sequence[Any]) -> Condition:
    """Numbers and dates (held as microseconds) compare alike."""
    if operator == "is":
        return Condition("v is not None and v in {0}", (frozenset(values),))
    if operator == "is not":
        return Condition("v is None or v not in {0}", (frozenset(values),))
    if operator == "between":
        return Condition("v is not None and {0} <= v <= {1}", (min(values), max(values)))
    comparison = _COMPARISONS.get(operator)
    if comparison is None:
        raise OperatorError(f"{operator!r} is not an operator on ordered values")
    return Condition(f"v is not None and v {comparison} {{0}}", (values[0],))


def _in_past(raw: object) -> Condition:
    """`[T - duration, T]`, both ends included; dates are integer microseconds."""
    try:
        duration = parse_duration_us(raw)
    except CoercionError as exc:
        raise OperatorError(str(exc)) from None
    return Condition(IN_PAST_TEMPLATE, (duration,))


def condition(data_type: DataType, operator: str, raw_values: Sequence[object]) -> Condition:
    """The condition of a constraint on an attribute of `data_type`; OperatorError says why
    the constraint is not valid (and `validate` prints it)."""
    allowed = operators_for(data_type)
    if operator not in allowed:
        raise OperatorError(
            f"{operator!r} is not an operator for dataType {data_type}; "
            f"use one of: {', '.join(allowed)}"
        )
    _check_arity(operator, raw_values)
    empty = _empty(operator)
    if empty is not None:
        return empty
    if operator == "in past":
        return _in_past(raw_values[0])
    # A fragment of an email address is not an email address: substring operators take text.
    value_type = DataType.STRING if operator in SUBSTRING_OPERATORS else data_type
    try:
        values: list[Value] = [coerce(value_type, raw) for raw in raw_values]
    except CoercionError as exc:
        raise OperatorError(f"{exc} (dataType {data_type})") from None
    if data_type in TEXT_TYPES:
        return _text(operator, [str(v) for v in values])
    if data_type is DataType.BOOLEAN:
        return Condition("v is not None and v in {0}", (frozenset(values),))
    return _ordered(operator, values)


def _field_values(
    parse: Callable[[str], float | int], raw_values: Sequence[object], kind: str
) -> list[float | int]:
    out: list[float | int] = []
    for raw in raw_values:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise OperatorError(f"{raw!r} is not a {kind}")
        try:
            out.append(parse(str(raw)))
        except CoercionError as exc:
            raise OperatorError(str(exc)) from None
    return out


def field_condition(operator: str, raw_values: Sequence[object]) -> Condition:
    """The condition of a field filter. Fields are text; numeric operators parse the field as
    a number and date operators as a date-time (or a bare date, 00:00 UTC), failing when it
    does not parse; `between` is numeric when both values are numbers, else a date range."""
    if operator not in FIELD_OPERATORS:
        raise OperatorError(
            f"{operator!r} is not an operator for a field; use one of: {', '.join(FIELD_OPERATORS)}"
        )
    _check_arity(operator, raw_values)
    empty = _empty(operator)
    if empty is not None:
        return empty
    if operator in TEXT_OPERATORS:
        # Fields are text: a YAML `true` compares as "true", as a field set to true does.
        values = [
            ("true" if raw else "false") if isinstance(raw, bool) else raw for raw in raw_values
        ]
        try:
            texts = [str(coerce(DataType.STRING, raw)) for raw in values]
        except CoercionError as exc:
            raise OperatorError(str(exc)) from None
        return _text(operator, texts)
    if operator == "in past":
        inner = _in_past(raw_values[0])
        return Condition(inner.template, inner.constants, parse_moment_us)
    if operator in FIELD_NUMERIC_OPERATORS or operator == "between":
        try:
            numbers = _field_values(parse_number, raw_values, "number")
        except OperatorError:
            if operator != "between":
                raise
        else:
            inner = _ordered(operator, numbers)
            return Condition(inner.template, inner.constants, parse_number)
    moments = _field_values(parse_moment_us, raw_values, "date-time")
    inner = _ordered(operator, moments)
    return Condition(inner.template, inner.constants, parse_moment_us)


def parsed(parse: Callable[[str], float | int], value: Any) -> float | int | None:
    """A text field read as a number or a date; None (and so the condition fails) when it
    does not parse."""
    if value is None:
        return None
    try:
        return parse(str(value).strip())
    except CoercionError:
        return None


def generate(
    name: str, arguments: str, body: list[str], namespace: dict[str, Any]
) -> Callable[..., Any]:
    """Compile `def name(arguments): body` with `namespace` as its globals."""
    source = f"def {name}({arguments}):\n" + "".join(f"    {line}\n" for line in body)
    scope: dict[str, Any] = {"__builtins__": {"any": any, "len": len}, "_parsed": parsed}
    scope.update(namespace)
    exec(compile(source, f"<rules:{name}>", "exec"), scope)
    function: Callable[..., Any] = scope[name]
    return function


def bind(cond: Condition, prefix: str, namespace: dict[str, Any]) -> str:
    """The condition's expression with its constants bound in `namespace` under unique
    names starting with `prefix`; a parsing condition parses `v` first."""
    names = []
    for index, constant in enumerate(cond.constants):
        names.append(f"{prefix}_{index}")
        namespace[names[-1]] = constant
    expression = cond.template.format(*names)
    if cond.parse is not None:
        namespace[f"{prefix}_parse"] = cond.parse
        expression = f"(lambda v: {expression})(_parsed({prefix}_parse, v))"
    return expression


def condition_predicate(cond: Condition) -> Predicate:
    """The condition as one generated function `(v, T) -> bool`."""
    namespace: dict[str, Any] = {}
    expression = bind(cond, "c", namespace)
    predicate: Predicate = generate("predicate", "v, t", [f"return {expression}"], namespace)
    return predicate


def build_predicate(data_type: DataType, operator: str, raw_values: Sequence[object]) -> Predicate:
    """A function `(value, T) -> bool` for one constraint (the compiler joins several)."""
    return condition_predicate(condition(data_type, operator, raw_values))


def build_field_predicate(operator: str, raw_values: Sequence[object]) -> Predicate:
    """A function `(field text, T) -> bool` for one field filter."""
    return condition_predicate(field_condition(operator, raw_values))
