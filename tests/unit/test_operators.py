"""Constraint operators (campaigns.md, "Constraints and operators") and field filters.

The operator table of the spec is written out here on its own, not imported from the engine,
so that a missing or extra operator in the engine shows up.
"""

from __future__ import annotations

import calendar
import itertools

import pytest

from streams.engine.datatypes import DataType, coerce
from streams.engine.operators import OperatorError, build_field_predicate, build_predicate

US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def utc_us(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * US + us


T = utc_us(2026, 9, 26, 12, 0, 0)
"""The date of the activity under evaluation."""

TEXT = [DataType.STRING, DataType.TEXT, DataType.EMAIL, DataType.PHONE, DataType.LINK]
NUMBER = [DataType.INTEGER, DataType.FLOAT, DataType.CURRENCY]
DATES = [DataType.DATE, DataType.DATETIME]
ALL_TYPES = [*TEXT, *NUMBER, DataType.BOOLEAN, *DATES]

SPEC_OPERATORS = {
    **dict.fromkeys(
        TEXT,
        (
            "is",
            "is not",
            "contains",
            "not contains",
            "starts with",
            "ends with",
            "is empty",
            "is not empty",
        ),
    ),
    **dict.fromkeys(
        NUMBER,
        (
            "is",
            "is not",
            "greater than",
            "less than",
            "at least",
            "at most",
            "between",
            "is empty",
            "is not empty",
        ),
    ),
    DataType.BOOLEAN: ("is", "is empty", "is not empty"),
    **dict.fromkeys(
        DATES,
        (
            "is",
            "before",
            "after",
            "on or before",
            "on or after",
            "between",
            "in past",
            "is empty",
            "is not empty",
        ),
    ),
}
EVERY_OPERATOR = sorted({op for ops in SPEC_OPERATORS.values() for op in ops})
HOLD_ON_EMPTY = {"is empty", "is not", "not contains"}

# A valid value list for each (dataType, operator), and a present value of the dataType.
GOOD_VALUE = {
    **dict.fromkeys(TEXT, "lead@example.com"),
    **dict.fromkeys(NUMBER, 10),
    DataType.BOOLEAN: True,
    DataType.DATE: "2026-09-20",
    DataType.DATETIME: "2026-09-20T10:00:00Z",
}


def good_values(data_type: DataType, operator: str) -> list[object]:
    if operator in ("is empty", "is not empty"):
        return []
    if operator == "in past":
        return ["7 days"]
    if operator == "between":
        low = {
            **dict.fromkeys(TEXT, None),
            **dict.fromkeys(NUMBER, 1),
            DataType.DATE: "2026-09-01",
            DataType.DATETIME: "2026-09-01T00:00:00Z",
        }[data_type]
        return [low, GOOD_VALUE[data_type]]
    return [GOOD_VALUE[data_type]]


VALID_PAIRS = [(dt, op) for dt in ALL_TYPES for op in SPEC_OPERATORS[dt]]
INVALID_PAIRS = [
    (dt, op)
    for dt in ALL_TYPES
    for op in [*EVERY_OPERATOR, "equals", ""]
    if op not in SPEC_OPERATORS[dt]
]


def check(data_type, operator, values, raw_value, expected, t=T):
    predicate = build_predicate(data_type, operator, values)
    value = None if raw_value is None else coerce(data_type, raw_value)
    assert predicate(value, t) is expected


# --- which operators exist -------------------------------------------------------------------


@pytest.mark.parametrize(("data_type", "operator"), VALID_PAIRS)
def test_every_spec_operator_builds(data_type, operator):
    predicate = build_predicate(data_type, operator, good_values(data_type, operator))
    assert callable(predicate)


@pytest.mark.parametrize(("data_type", "operator"), INVALID_PAIRS)
def test_operator_not_of_the_data_type_is_refused(data_type, operator):
    values = ["7 days"] if operator == "in past" else [GOOD_VALUE[data_type]]
    if operator == "between":
        values = [GOOD_VALUE[data_type], GOOD_VALUE[data_type]]
    with pytest.raises(OperatorError):
        build_predicate(data_type, operator, values)


# --- empty values and arity ------------------------------------------------------------------


@pytest.mark.parametrize(("data_type", "operator"), VALID_PAIRS)
def test_empty_value_holds_only_for_is_empty_is_not_and_not_contains(data_type, operator):
    predicate = build_predicate(data_type, operator, good_values(data_type, operator))
    assert predicate(None, T) is (operator in HOLD_ON_EMPTY)


@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_is_empty_and_is_not_empty_on_a_present_value(data_type):
    value = coerce(data_type, GOOD_VALUE[data_type])
    assert build_predicate(data_type, "is empty", [])(value, T) is False
    assert build_predicate(data_type, "is not empty", [])(value, T) is True


@pytest.mark.parametrize("data_type", ALL_TYPES)
@pytest.mark.parametrize("operator", ["is empty", "is not empty"])
def test_is_empty_takes_no_value(data_type, operator):
    with pytest.raises(OperatorError):
        build_predicate(data_type, operator, [GOOD_VALUE[data_type]])


@pytest.mark.parametrize(
    ("data_type", "operator"),
    [(dt, op) for dt, op in VALID_PAIRS if op not in ("is empty", "is not empty")],
)
def test_every_other_operator_needs_a_value(data_type, operator):
    with pytest.raises(OperatorError):
        build_predicate(data_type, operator, [])


@pytest.mark.parametrize("data_type", [*NUMBER, *DATES])
@pytest.mark.parametrize("count", [1, 3])
def test_between_takes_exactly_two_values(data_type, count):
    values = good_values(data_type, "between")
    values = (values * 2)[:count]
    with pytest.raises(OperatorError):
        build_predicate(data_type, "between", values)


@pytest.mark.parametrize("data_type", DATES)
def test_in_past_takes_one_duration(data_type):
    with pytest.raises(OperatorError):
        build_predicate(data_type, "in past", ["7 days", "3 days"])


# --- values that do not coerce ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_type", "operator", "values"),
    [
        (DataType.STRING, "is", [True]),
        (DataType.STRING, "is", [None]),
        (DataType.TEXT, "contains", [["a"]]),
        (DataType.PHONE, "starts with", [{"a": 1}]),
        (DataType.EMAIL, "is", ["not-an-email"]),
        (DataType.EMAIL, "is not", ["a@b", "two@@at"]),
        (DataType.INTEGER, "is", ["abc"]),
        (DataType.INTEGER, "greater than", [1.5]),
        (DataType.INTEGER, "at least", [True]),
        (DataType.INTEGER, "between", [1, "ten"]),
        (DataType.FLOAT, "less than", ["abc"]),
        (DataType.FLOAT, "is", [None]),
        (DataType.CURRENCY, "at most", ["1,5"]),
        (DataType.BOOLEAN, "is", ["yes"]),
        (DataType.BOOLEAN, "is", [1]),
        (DataType.DATE, "is", ["2026-13-01"]),
        (DataType.DATE, "before", ["26/09/2026"]),
        (DataType.DATE, "after", ["2026-09-26T00:00:00Z"]),
        (DataType.DATETIME, "after", ["2026-09-26T00:00:00"]),
        (DataType.DATETIME, "on or before", ["2026-09-26"]),
        (DataType.DATETIME, "between", ["2026-09-01T00:00:00Z", "later"]),
        (DataType.DATE, "in past", ["0 days"]),
        (DataType.DATE, "in past", ["soon"]),
        (DataType.DATETIME, "in past", [7]),
        (DataType.DATETIME, "in past", ["7 years"]),
    ],
)
def test_values_that_do_not_coerce_are_refused(data_type, operator, values):
    with pytest.raises(OperatorError):
        build_predicate(data_type, operator, values)


# --- text ------------------------------------------------------------------------------------
# Values are addresses so that the same rows hold for email, whose values must coerce too.

TEXT_ROWS = [
    # operator, values, value, expected
    ("is", ["john.doe@example.com"], "John.Doe@Example.COM", True),
    ("is", ["john.doe@example.com"], "john.doe@example.co", False),
    ("is", ["john.doe@example.com"], "xjohn.doe@example.com", False),
    ("is", ["a@b.c", "JOHN.DOE@EXAMPLE.COM"], "john.doe@example.com", True),
    ("is", ["a@b.c", "d@e.f"], "john.doe@example.com", False),
    ("is not", ["john.doe@example.com"], "JOHN.DOE@example.com", False),
    ("is not", ["john.doe@example.com"], "jane.doe@example.com", True),
    ("is not", ["a@b.c", "John.Doe@example.com"], "john.doe@example.com", False),
    ("is not", ["a@b.c", "d@e.f"], "john.doe@example.com", True),
    ("contains", ["DOE@example.com"], "john.doe@example.com", True),
    ("contains", ["doe@example.org"], "john.doe@example.com", False),
    ("contains", ["x@y.z", "e@EXAMPLE"], "john.doe@example.com", True),
    ("contains", ["x@y.z", "q@r.s"], "john.doe@example.com", False),
    ("not contains", ["doe@example.com"], "John.DOE@example.com", False),
    ("not contains", ["x@y.z"], "john.doe@example.com", True),
    ("not contains", ["x@y.z", "DOE@EXAMPLE"], "john.doe@example.com", False),
    ("not contains", ["x@y.z", "q@r.s"], "john.doe@example.com", True),
    ("starts with", ["JOHN.doe@ex"], "john.doe@example.com", True),
    ("starts with", ["doe@example.com"], "john.doe@example.com", False),
    ("starts with", ["x@y", "john@x", "John.Doe@E"], "john.doe@example.com", True),
    ("starts with", ["x@y", "doe@e"], "john.doe@example.com", False),
    ("ends with", ["E@EXAMPLE.COM"], "john.doe@example.com", True),
    ("ends with", ["john@doe"], "john.doe@example.com", False),
    ("ends with", ["x@y", "doe@example.com"], "john.doe@example.com", True),
    ("ends with", ["x@y", "john.doe@example"], "john.doe@example.com", False),
    ("is empty", [], "john.doe@example.com", False),
    ("is not empty", [], "john.doe@example.com", True),
]


@pytest.mark.parametrize("data_type", TEXT)
@pytest.mark.parametrize(("operator", "values", "value", "expected"), TEXT_ROWS)
def test_text_operators(data_type, operator, values, value, expected):
    check(data_type, operator, values, value, expected)


@pytest.mark.parametrize("data_type", [DataType.STRING, DataType.TEXT, DataType.PHONE])
@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("is", ["PyCon"], "pycon", True),
        ("is", ["PyCon"], "PyCon 2026", False),
        ("is", ["Straße"], "STRASSE", True),  # case folding, not just lower()
        ("is", [42], "42", True),  # number values are their decimal text
        ("is", [2.5], "2.5", True),
        ("contains", ["con"], "PYCON", True),
        ("contains", [33], "+33 1 23", True),
        ("starts with", ["py"], "PyCon", True),
        ("ends with", ["CON"], "PyCon", True),
        ("ends with", ["py"], "PyCon", False),
        ("is not", ["PyCon", "EuroPython"], "europython", False),
        ("is not", ["PyCon", "EuroPython"], "DjangoCon", True),
    ],
)
def test_text_operators_on_plain_text(data_type, operator, values, value, expected):
    check(data_type, operator, values, value, expected)


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("contains", ["example.com"], "John@Example.com", True),
        ("contains", ["example.org"], "john@example.com", False),
        ("not contains", ["spam.com", "junk"], "john@example.com", True),
        ("not contains", ["EXAMPLE"], "john@example.com", False),
        ("starts with", ["john"], "John.Doe@example.com", True),
        ("starts with", ["doe"], "John.Doe@example.com", False),
        ("ends with", ["@example.com", "@example.org"], "john@EXAMPLE.org", True),
        ("ends with", ["@example.com"], "john@example.co.uk", False),
    ],
)
def test_email_substring_operators_take_fragments(operator, values, value, expected):
    """A fragment of an address (a domain, say) is not an address but is a fine value for
    the substring operators; `is`/`is not` still need whole addresses."""
    check(DataType.EMAIL, operator, values, value, expected)


# --- numbers ---------------------------------------------------------------------------------

NUMBER_ROWS = [
    ("is", [10], 10, True),
    ("is", [10], 11, False),
    ("is", ["10"], 10, True),
    ("is", [1, 10, 100], 10, True),
    ("is", [1, 100], 10, False),
    ("is not", [10], 10, False),
    ("is not", [10], 11, True),
    ("is not", [1, 10], 10, False),
    ("is not", [1, 2], 10, True),
    ("greater than", [10], 11, True),
    ("greater than", [10], 10, False),
    ("greater than", [10], 9, False),
    ("greater than", [-5], 0, True),
    ("less than", [10], 9, True),
    ("less than", [10], 10, False),
    ("less than", [10], 11, False),
    ("at least", [10], 10, True),
    ("at least", [10], 11, True),
    ("at least", [10], 9, False),
    ("at most", [10], 10, True),
    ("at most", [10], 9, True),
    ("at most", [10], 11, False),
    ("between", [5, 10], 5, True),
    ("between", [5, 10], 10, True),
    ("between", [5, 10], 7, True),
    ("between", [5, 10], 4, False),
    ("between", [5, 10], 11, False),
    ("between", ["-3", "3"], 0, True),
    ("is empty", [], 0, False),
    ("is not empty", [], 0, True),
]


@pytest.mark.parametrize("data_type", NUMBER)
@pytest.mark.parametrize(("operator", "values", "value", "expected"), NUMBER_ROWS)
def test_number_operators(data_type, operator, values, value, expected):
    check(data_type, operator, values, value, expected)


@pytest.mark.parametrize("data_type", [DataType.FLOAT, DataType.CURRENCY])
@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("is", [19.99], "19.99", True),
        ("is", ["19.99"], 19.99, True),
        ("is", [1], 1.0, True),
        ("greater than", [0.5], 0.5000001, True),
        ("at most", [0.5], 0.5000001, False),
        ("between", [0.5, 1.5], 1.5, True),
        ("between", [0.5, 1.5], 1.5000001, False),
        ("between", [0.5, 1.5], 0.4999999, False),
        ("less than", ["1e3"], 999.5, True),
    ],
)
def test_float_operators_on_fractions(data_type, operator, values, value, expected):
    check(data_type, operator, values, value, expected)


# --- boolean ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    [
        ([True], True, True),
        ([True], False, False),
        ([False], False, True),
        ([False], True, False),
        (["true"], True, True),
        (["FALSE"], False, True),
        ([True, False], True, True),
        ([True, False], False, True),
    ],
)
def test_boolean_is(values, value, expected):
    check(DataType.BOOLEAN, "is", values, value, expected)


# --- dates -----------------------------------------------------------------------------------

DATE_ROWS = [
    ("is", ["2026-09-26"], "2026-09-26", True),
    ("is", ["2026-09-26"], "2026-09-27", False),
    ("is", ["2026-01-01", "2026-09-26"], "2026-09-26", True),
    ("before", ["2026-09-26"], "2026-09-25", True),
    ("before", ["2026-09-26"], "2026-09-26", False),
    ("before", ["2026-09-26"], "2026-09-27", False),
    ("after", ["2026-09-26"], "2026-09-27", True),
    ("after", ["2026-09-26"], "2026-09-26", False),
    ("after", ["2026-09-26"], "2026-09-25", False),
    ("on or before", ["2026-09-26"], "2026-09-26", True),
    ("on or before", ["2026-09-26"], "2026-09-25", True),
    ("on or before", ["2026-09-26"], "2026-09-27", False),
    ("on or after", ["2026-09-26"], "2026-09-26", True),
    ("on or after", ["2026-09-26"], "2026-09-27", True),
    ("on or after", ["2026-09-26"], "2026-09-25", False),
    ("between", ["2026-09-01", "2026-09-30"], "2026-09-01", True),
    ("between", ["2026-09-01", "2026-09-30"], "2026-09-30", True),
    ("between", ["2026-09-01", "2026-09-30"], "2026-09-15", True),
    ("between", ["2026-09-01", "2026-09-30"], "2026-08-31", False),
    ("between", ["2026-09-01", "2026-09-30"], "2026-10-01", False),
]


@pytest.mark.parametrize(("operator", "values", "value", "expected"), DATE_ROWS)
def test_date_operators(operator, values, value, expected):
    check(DataType.DATE, operator, values, value, expected)


@pytest.mark.parametrize(("operator", "values", "value", "expected"), DATE_ROWS)
def test_datetime_operators_at_midnight(operator, values, value, expected):
    as_datetime = [f"{v}T00:00:00Z" for v in values]
    check(DataType.DATETIME, operator, as_datetime, f"{value}T00:00:00Z", expected)


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("is", ["2026-09-26T10:00:00+02:00"], "2026-09-26T08:00:00Z", True),
        ("is", ["2026-09-26T10:00:00Z"], "2026-09-26T10:00:00.000001Z", False),
        ("before", ["2026-09-26T10:00:00Z"], "2026-09-26T09:59:59.999999Z", True),
        ("before", ["2026-09-26T10:00:00Z"], "2026-09-26T12:00:00+02:00", False),
        ("after", ["2026-09-26T10:00:00Z"], "2026-09-26T10:00:00.000001Z", True),
        ("after", ["2026-09-26T10:00:00+0100"], "2026-09-26T09:30:00Z", True),
        ("on or before", ["2026-09-26T10:00:00Z"], "2026-09-26T11:00:00+01:00", True),
        ("on or after", ["2026-09-26T10:00:00Z"], "2026-09-26T09:59:59.999999Z", False),
        ("between", ["2026-09-26T10:00:00Z", "2026-09-26T11:00:00Z"], "2026-09-26T11:00:00Z", True),
        (
            "between",
            ["2026-09-26T10:00:00Z", "2026-09-26T11:00:00Z"],
            "2026-09-26T11:00:00.000001Z",
            False,
        ),
        (
            "between",
            ["2026-09-26T10:00:00Z", "2026-09-26T11:00:00Z"],
            "2026-09-26T09:59:59.999999Z",
            False,
        ),
    ],
)
def test_datetime_operators_to_the_microsecond(operator, values, value, expected):
    check(DataType.DATETIME, operator, values, value, expected)


IN_PAST_DURATIONS = [
    ("30 minutes", 30 * MINUTE),
    ("2 hours", 2 * HOUR),
    ("7 days", 7 * DAY),
    ("1 week", 7 * DAY),
    ("1 month", 30 * DAY),
]


@pytest.mark.parametrize(("duration", "length"), IN_PAST_DURATIONS)
@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        # value = T - length + offset
        (0, True),  # the start of the window is included
        (-1, False),  # one microsecond before it is not
        (1, True),
    ],
)
def test_in_past_window_start(duration, length, offset, expected):
    predicate = build_predicate(DataType.DATETIME, "in past", [duration])
    assert predicate(T - length + offset, T) is expected


@pytest.mark.parametrize(("duration", "length"), IN_PAST_DURATIONS)
@pytest.mark.parametrize(("offset", "expected"), [(0, True), (-1, True), (1, False)])
def test_in_past_window_end(duration, length, offset, expected):
    """The window ends at T, included; a value after T is not in the past."""
    predicate = build_predicate(DataType.DATETIME, "in past", [duration])
    assert predicate(T + offset, T) is expected


def test_in_past_uses_the_date_it_is_given():
    predicate = build_predicate(DataType.DATETIME, "in past", ["1 day"])
    value = utc_us(2026, 1, 1)
    assert predicate(value, utc_us(2026, 1, 1, 12)) is True
    assert predicate(value, utc_us(2026, 1, 2, 0, 0, 0, 1)) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-09-26", True),  # midnight of T's day, within 7 days
        ("2026-09-19", False),  # midnight 7 days before T's day: 12 hours too early
        ("2026-09-20", True),
        ("2026-09-27", False),  # after T
    ],
)
def test_in_past_on_dates(value, expected):
    check(DataType.DATE, "in past", ["7 days"], value, expected)


def test_in_past_on_date_window_start_at_midnight():
    midnight = utc_us(2026, 9, 26)
    predicate = build_predicate(DataType.DATE, "in past", ["7 days"])
    assert predicate(coerce(DataType.DATE, "2026-09-19"), midnight) is True
    assert predicate(coerce(DataType.DATE, "2026-09-18"), midnight) is False


# --- field filters ---------------------------------------------------------------------------

FIELD_OPERATORS = [
    "is",
    "is not",
    "contains",
    "not contains",
    "starts with",
    "ends with",
    "is empty",
    "is not empty",
    "greater than",
    "less than",
    "at least",
    "at most",
    "between",
    "before",
    "after",
    "on or before",
    "on or after",
    "in past",
]


def field_values(operator: str) -> list[object]:
    if operator in ("is empty", "is not empty"):
        return []
    if operator in ("greater than", "less than", "at least", "at most"):
        return [10]
    if operator == "between":
        return [1, 10]
    if operator in ("before", "after", "on or before", "on or after"):
        return ["2026-09-26"]
    if operator == "in past":
        return ["7 days"]
    return ["France"]


def field(operator, values, value, t=T):
    return build_field_predicate(operator, values)(value, t)


@pytest.mark.parametrize("operator", FIELD_OPERATORS)
def test_field_never_set_is_empty(operator):
    assert field(operator, field_values(operator), None) is (operator in HOLD_ON_EMPTY)


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("is", ["France", "Spain"], "france", True),
        ("is", ["France", "Spain"], "Italy", False),
        ("is", [42], "42", True),
        ("is", [10], "10.0", False),  # text comparison, as it is
        ("is not", ["France", "Spain"], "SPAIN", False),
        ("is not", ["France", "Spain"], "Italy", True),
        ("contains", ["ran"], "FRANCE", True),
        ("contains", ["x", "pai"], "Spain", True),
        ("contains", ["x", "y"], "Spain", False),
        ("not contains", ["ran"], "France", False),
        ("not contains", ["x", "y"], "France", True),
        ("starts with", ["fr"], "France", True),
        ("starts with", ["an"], "France", False),
        ("ends with", ["NCE"], "France", True),
        ("ends with", ["fr"], "France", False),
        ("is empty", [], "France", False),
        ("is not empty", [], "France", True),
    ],
)
def test_field_text_operators(operator, values, value, expected):
    assert field(operator, values, value) is expected


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("greater than", [10], "11", True),
        ("greater than", [10], "10", False),
        ("greater than", [10], "9.5", False),
        ("greater than", ["10"], "10.5", True),
        ("greater than", [10], " 12 ", True),
        ("greater than", [10], "1e2", True),
        ("greater than", [10], "9", False),  # numeric, not text, order ("9" > "10" as text)
        ("less than", [10], "9", True),
        ("less than", [10], "10", False),
        ("less than", [1e3], "999.5", True),
        ("at least", [10], "10.0", True),
        ("at least", [10], "9.99", False),
        ("at most", [10], "10", True),
        ("at most", [10], "10.01", False),
        ("between", [1, 5], "1", True),
        ("between", [1, 5], "5", True),
        ("between", [1, 5], "5.1", False),
        ("between", ["1", "5"], "0.9", False),
        ("between", [1.5, 2.5], "2", True),
    ],
)
def test_field_numeric_operators_parse_the_field(operator, values, value, expected):
    assert field(operator, values, value) is expected


@pytest.mark.parametrize("operator", ["greater than", "less than", "at least", "at most"])
@pytest.mark.parametrize("value", ["abc", "", "ten", "10 apples", "nan", "2026-09-26"])
def test_field_numeric_operators_fail_when_the_field_is_not_a_number(operator, value):
    assert field(operator, [10], value) is False


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("before", ["2026-09-26"], "2026-09-25T23:59:59Z", True),
        ("before", ["2026-09-26"], "2026-09-26", False),
        ("before", ["2026-09-26"], "2026-09-26T01:00:00+02:00", True),  # 25th 23:00 UTC
        ("after", ["2026-09-26T00:00:00+02:00"], "2026-09-25T23:00:00Z", True),
        ("after", ["2026-09-26"], "2026-09-26", False),
        ("after", ["2026-09-26"], "2026-09-27", True),
        ("on or before", ["2026-09-26T00:00:00Z"], "2026-09-26", True),
        ("on or before", ["2026-09-26"], "2026-09-26T00:00:00.000001Z", False),
        ("on or after", ["2026-09-26"], "2026-09-26", True),
        ("on or after", ["2026-09-26"], "2026-09-25", False),
        ("in past", ["7 days"], "2026-09-20", True),
        ("in past", ["7 days"], "2026-09-19T12:00:00Z", True),
        ("in past", ["7 days"], "2026-09-19T11:59:59Z", False),
        ("in past", ["7 days"], "2026-09-26T12:00:00Z", True),
        ("in past", ["7 days"], "2026-09-26T12:00:01Z", False),
    ],
)
def test_field_date_operators_parse_the_field(operator, values, value, expected):
    assert field(operator, values, value) is expected


@pytest.mark.parametrize("operator", ["before", "after", "on or before", "on or after", "in past"])
@pytest.mark.parametrize("value", ["soon", "", "26/09/2026", "2026-09-26T10:00:00", "12"])
def test_field_date_operators_fail_when_the_field_is_not_a_date(operator, value):
    values = ["7 days"] if operator == "in past" else ["2026-09-26"]
    assert field(operator, values, value) is False


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    [
        (["2026-09-01", "2026-09-30"], "2026-09-15", True),
        (["2026-09-01", "2026-09-30"], "2026-09-30", True),
        (["2026-09-01", "2026-09-30"], "2026-09-30T00:00:01Z", False),
        (["2026-09-01", "2026-09-30"], "2026-08-31T23:59:59Z", False),
        (["2026-09-01T00:00:00Z", "2026-09-01T12:00:00Z"], "2026-09-01T13:00:00+02:00", True),
        (["2026-09-01", "2026-09-30"], "15", False),  # a number is not a date
        ([1, 30], "2026-09-15", False),  # a date is not a number
        ([1, 30], "15", True),
    ],
)
def test_field_between_is_numeric_or_a_date_range(values, value, expected):
    assert field("between", values, value) is expected


@pytest.mark.parametrize(
    ("operator", "values"),
    [
        ("equals", ["x"]),
        ("is", []),
        ("contains", []),
        ("is empty", ["x"]),
        ("is not empty", ["x"]),
        ("greater than", []),
        ("greater than", ["ten"]),
        ("at most", [True]),
        ("less than", [None]),
        ("between", [1]),
        ("between", [1, 2, 3]),
        ("between", ["1", "2026-09-01"]),
        ("between", ["soon", "later"]),
        ("before", ["soon"]),
        ("after", [20260926]),
        ("on or after", ["2026-09-26T10:00:00"]),
        ("in past", ["0 days"]),
        ("in past", ["7 days", "8 days"]),
    ],
)
def test_field_filters_refuse_bad_operators_and_values(operator, values):
    with pytest.raises(OperatorError):
        build_field_predicate(operator, values)


def test_spec_tables_cover_each_type():
    """A guard on the tables above: every dataType of activities.md has its operators."""
    assert set(SPEC_OPERATORS) == set(DataType)
    assert (
        len(list(itertools.chain.from_iterable(SPEC_OPERATORS.values())))
        == 5 * 8 + 3 * 9 + 3 + 2 * 9
    )


# --- out-of-range values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_type", "values"),
    [
        (DataType.FLOAT, [10**400]),
        (DataType.CURRENCY, [1, 10**400]),
        (DataType.INTEGER, ["1" * 5000]),
        (DataType.INTEGER, [2**63]),
    ],
    ids=["float-10^400", "currency-10^400", "integer-5000-digits", "integer-2^63"],
)
def test_overflowing_values_are_operator_errors(data_type, values):
    operator = "between" if len(values) == 2 else "is"
    with pytest.raises(OperatorError):
        build_predicate(data_type, operator, values)
