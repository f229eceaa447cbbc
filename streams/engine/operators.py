"""Constraint operators, turned into ready predicates once at compile time.

A predicate takes the attribute's coerced value (None when the activity does not carry it)
and the date T of the activity under evaluation (for `in past`), and answers. Text compares
ignoring case, so text values are case-folded once here, not per activity.

Empty: an attribute left out, null, or (for text types) the empty string. On an empty value
`is empty`, `is not` and `not contains` hold and every other operator fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

Predicate = Callable[[Value | None, int], bool]

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

FIELD_NUMERIC_OPERATORS: Final = ("greater than", "less than", "at least", "at most")
FIELD_DATE_OPERATORS: Final = ("before", "after", "on or before", "on or after", "in past")
FIELD_OPERATORS: Final = (*TEXT_OPERATORS, *FIELD_NUMERIC_OPERATORS, "between",
                          *FIELD_DATE_OPERATORS)  # fmt: skip


def operators_for(data_type: DataType) -> tuple[str, ...]:
    if data_type in TEXT_TYPES:
        return TEXT_OPERATORS
    if data_type in NUMBER_TYPES:
        return NUMBER_OPERATORS
    if data_type in DATE_TYPES:
        return DATE_OPERATORS
    return BOOLEAN_OPERATORS


class OperatorError(ValueError):
    """An operator that does not fit, or values of the wrong number or type."""


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


def _empty_predicate(operator: str) -> Predicate | None:
    if operator == "is empty":
        return lambda v, t: v is None
    if operator == "is not empty":
        return lambda v, t: v is not None
    return None


def _text(operator: str, values: list[str]) -> Predicate:
    folded = tuple(v.casefold() for v in values)
    as_set = frozenset(folded)
    if operator == "is":
        return lambda v, t: v is not None and str(v).casefold() in as_set
    if operator == "is not":
        return lambda v, t: v is None or str(v).casefold() not in as_set
    if operator == "contains":
        return lambda v, t: v is not None and any(x in str(v).casefold() for x in folded)
    if operator == "not contains":
        return lambda v, t: v is None or not any(x in str(v).casefold() for x in folded)
    if operator == "starts with":
        return lambda v, t: v is not None and str(v).casefold().startswith(folded)
    if operator == "ends with":
        return lambda v, t: v is not None and str(v).casefold().endswith(folded)
    raise OperatorError(f"{operator!r} is not a text operator")


def _ordered(operator: str, values: Sequence[Any]) -> Predicate:
    """Operators on numbers and on dates (held as microseconds): the same comparisons.
    `values` are of one kind, already checked, hence `Any`."""
    first = values[0]
    if operator == "is":
        as_set = frozenset(values)
        return lambda v, t: v is not None and v in as_set
    if operator == "is not":
        as_set = frozenset(values)
        return lambda v, t: v is None or v not in as_set
    if operator in ("greater than", "after"):
        return lambda v, t: v is not None and v > first
    if operator in ("less than", "before"):
        return lambda v, t: v is not None and v < first
    if operator in ("at least", "on or after"):
        return lambda v, t: v is not None and v >= first
    if operator in ("at most", "on or before"):
        return lambda v, t: v is not None and v <= first
    if operator == "between":
        low, high = min(values), max(values)
        return lambda v, t: v is not None and low <= v <= high
    raise OperatorError(f"{operator!r} is not an operator on ordered values")


def _in_past(duration_us: int) -> Predicate:
    """Dates are held as integer microseconds: `[T - duration, T]`, both ends included."""

    def predicate(value: Value | None, t: int) -> bool:
        return isinstance(value, int) and t - duration_us <= value <= t

    return predicate


def build_predicate(data_type: DataType, operator: str, raw_values: Sequence[object]) -> Predicate:
    """The predicate of a constraint on an attribute of `data_type`; OperatorError says why
    the constraint is not valid (and `validate` prints it)."""
    allowed = operators_for(data_type)
    if operator not in allowed:
        raise OperatorError(
            f"{operator!r} is not an operator for dataType {data_type}; "
            f"use one of: {', '.join(allowed)}"
        )
    _check_arity(operator, raw_values)
    empty = _empty_predicate(operator)
    if empty is not None:
        return empty
    if operator == "in past":
        try:
            return _in_past(parse_duration_us(raw_values[0]))
        except CoercionError as exc:
            raise OperatorError(str(exc)) from None
    try:
        values = [coerce(data_type, raw) for raw in raw_values]
    except CoercionError as exc:
        raise OperatorError(f"{exc} (dataType {data_type})") from None
    if data_type in TEXT_TYPES:
        return _text(operator, [str(v) for v in values])
    if data_type is DataType.BOOLEAN:
        as_set = frozenset(values)
        return lambda v, t: v is not None and v in as_set
    return _ordered(operator, values)


def _parsed(parse: Callable[[str], float | int], inner: Predicate) -> Predicate:
    """Apply `inner` to a text field parsed by `parse`; a value that does not parse fails."""

    def predicate(value: Value | None, t: int) -> bool:
        if value is None:
            return False
        try:
            parsed = parse(str(value).strip())
        except CoercionError:
            return False
        return inner(parsed, t)

    return predicate


def _field_values(
    parse: Callable[[str], float | int], raw_values: Sequence[object], kind: str
) -> list[float] | list[int]:
    out = []
    for raw in raw_values:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise OperatorError(f"{raw!r} is not a {kind}")
        try:
            out.append(parse(str(raw)))
        except CoercionError as exc:
            raise OperatorError(str(exc)) from None
    return out


def build_field_predicate(operator: str, raw_values: Sequence[object]) -> Predicate:
    """The predicate of a field filter. Fields are text; numeric operators parse the field as
    a number and date operators as a date-time (or a bare date, 00:00 UTC); `between` is
    numeric when both values are numbers and a date range when both are dates."""
    if operator not in FIELD_OPERATORS:
        raise OperatorError(
            f"{operator!r} is not an operator for a field; use one of: {', '.join(FIELD_OPERATORS)}"
        )
    _check_arity(operator, raw_values)
    empty = _empty_predicate(operator)
    if empty is not None:
        return empty
    if operator in TEXT_OPERATORS:
        try:
            texts = [str(coerce(DataType.STRING, raw)) for raw in raw_values]
        except CoercionError as exc:
            raise OperatorError(str(exc)) from None
        return _text(operator, texts)
    if operator == "in past":
        try:
            return _parsed(parse_moment_us, _in_past(parse_duration_us(raw_values[0])))
        except CoercionError as exc:
            raise OperatorError(str(exc)) from None
    if operator in FIELD_NUMERIC_OPERATORS or operator == "between":
        try:
            numbers = _field_values(parse_number, raw_values, "number")
        except OperatorError:
            if operator != "between":
                raise
        else:
            return _parsed(parse_number, _ordered(operator, numbers))
    moments = _field_values(parse_moment_us, raw_values, "date-time")
    return _parsed(parse_moment_us, _ordered(operator, moments))
