"""Coercion of JSON values to the dataTypes of activities.md, dates and durations.

Expected values are computed independently of the engine (calendar.timegm for instants),
so a wrong epoch, offset sign or unit would show.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.datatypes import (
    CoercionError,
    DataType,
    coerce,
    display_value,
    format_date_us,
    format_us,
    number_text,
    parse_date_us,
    parse_datetime_us,
    parse_duration_us,
    parse_moment_us,
)

US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def utc_us(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> int:
    """Microseconds since the epoch of a UTC wall-clock time, without the engine's helpers."""
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * US + us


TEXT_LIKE = [DataType.STRING, DataType.TEXT, DataType.PHONE, DataType.LINK]
FLOATS = [DataType.FLOAT, DataType.CURRENCY]


# --- text, phone, link ---------------------------------------------------------------------


@pytest.mark.parametrize("data_type", TEXT_LIKE)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PyCon", "PyCon"),
        ("", ""),
        ("  spaced  ", "  spaced  "),
        ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
        ("https://example.com/a?b=c", "https://example.com/a?b=c"),
        (42, "42"),
        (-7, "-7"),
        (0, "0"),
        (2.5, "2.5"),
        (-0.125, "-0.125"),
    ],
)
def test_text_types_accept_strings_and_numbers(data_type, raw, expected):
    result = coerce(data_type, raw)
    assert type(result) is str
    assert result == expected


@pytest.mark.parametrize("data_type", TEXT_LIKE)
@pytest.mark.parametrize("raw", [True, False, None, [], ["a"], {}, {"a": 1}])
def test_text_types_reject_other_json(data_type, raw):
    with pytest.raises(CoercionError):
        coerce(data_type, raw)


def test_number_text_is_the_decimal_text():
    assert number_text(3) == "3"
    assert number_text(3.0) == "3"
    assert number_text(2.5) == "2.5"
    assert number_text(-12) == "-12"


# --- email ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["a@b", "john.doe@example.com", "x+tag@sub.example.org"])
def test_email_accepts_one_at_between_two_parts(raw):
    assert coerce(DataType.EMAIL, raw) == raw


@pytest.mark.parametrize(
    "raw",
    ["", "example.com", "@example.com", "john@", "@", "a@b@c", "a@@b", 42, None, True, ["a@b"]],
)
def test_email_rejects_anything_else(raw):
    with pytest.raises(CoercionError):
        coerce(DataType.EMAIL, raw)


# --- integer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, 0),
        (5, 5),
        (-3, -3),
        (2**62, 2**62),
        ("42", 42),
        ("+7", 7),
        ("-12", -12),
        ("007", 7),
        ("0", 0),
    ],
)
def test_integer_accepts_integers_and_digit_strings(raw, expected):
    result = coerce(DataType.INTEGER, raw)
    assert type(result) is int
    assert result == expected


@pytest.mark.parametrize(
    "raw",
    [1.5, "1.5", "1e3", "abc", "", "+", "-", "0x10", "1 2", "12a", True, False, None, [1], {}],
)
def test_integer_rejects_non_integers(raw):
    with pytest.raises(CoercionError):
        coerce(DataType.INTEGER, raw)


# --- float, currency -----------------------------------------------------------------------


@pytest.mark.parametrize("data_type", FLOATS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1.0),
        (-4, -4.0),
        (2.5, 2.5),
        ("2.5", 2.5),
        ("7", 7.0),
        ("-1e3", -1000.0),
        ("0.01", 0.01),
        (".5", 0.5),
    ],
)
def test_float_types_accept_numbers_and_numeric_strings(data_type, raw, expected):
    result = coerce(data_type, raw)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize("data_type", FLOATS)
@pytest.mark.parametrize(
    "raw",
    ["abc", "", "1,5", "nan", "inf", "-Infinity", float("nan"), float("inf"), True, None, [], {}],
)
def test_float_types_reject_non_numbers(data_type, raw):
    with pytest.raises(CoercionError):
        coerce(data_type, raw)


# --- boolean -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
        ("tRuE", True),
    ],
)
def test_boolean_accepts_json_booleans_and_their_names(raw, expected):
    assert coerce(DataType.BOOLEAN, raw) is expected


@pytest.mark.parametrize("raw", [1, 0, "yes", "no", "t", "1", "", None, [], 1.0])
def test_boolean_rejects_anything_else(raw):
    with pytest.raises(CoercionError):
        coerce(DataType.BOOLEAN, raw)


# --- date ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1970-01-01", 0),
        ("2026-09-26", utc_us(2026, 9, 26)),
        ("2024-02-29", utc_us(2024, 2, 29)),
        ("1969-12-31", -DAY),
    ],
)
def test_date_is_midnight_utc_in_microseconds(raw, expected):
    result = coerce(DataType.DATE, raw)
    assert type(result) is int
    assert result == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2026-9-26",
        "2026-02-30",
        "2025-02-29",
        "2026-13-01",
        "26-09-2026",
        "2026/09/26",
        "2026-09-26T00:00:00Z",
        "20260926",
        "",
        20260926,
        None,
    ],
)
def test_date_rejects_other_forms(raw):
    with pytest.raises(CoercionError):
        coerce(DataType.DATE, raw)


# --- datetime ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-09-26T06:56:35Z", utc_us(2026, 9, 26, 6, 56, 35)),
        ("2026-09-26T06:56:35+07:00", utc_us(2026, 9, 25, 23, 56, 35)),
        ("2026-09-26T06:56:35+0000", utc_us(2026, 9, 26, 6, 56, 35)),
        ("2026-09-26T06:56:35+0700", utc_us(2026, 9, 25, 23, 56, 35)),
        ("2026-09-26T06:56:35-05:30", utc_us(2026, 9, 26, 12, 26, 35)),
        ("2026-09-26T06:56:35+00:00", utc_us(2026, 9, 26, 6, 56, 35)),
        ("2026-09-26T06:56:35.123456Z", utc_us(2026, 9, 26, 6, 56, 35, 123456)),
        ("2026-09-26T06:56:35.5+01:00", utc_us(2026, 9, 26, 5, 56, 35, 500000)),
        ("2026-01-01T00:30:00+01:00", utc_us(2025, 12, 31, 23, 30)),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_datetime_normalises_to_utc_microseconds(raw, expected):
    assert coerce(DataType.DATETIME, raw) == expected
    assert parse_datetime_us(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2026-09-26T06:56:35",  # no offset
        "2026-09-26T06:56:35.123",  # no offset
        "2026-09-26",  # a bare date has no offset either
        "yesterday",
        "2026-09-26T25:00:00Z",
        "",
        1790405795,
        None,
        True,
    ],
)
def test_datetime_rejects_missing_offsets_and_junk(raw):
    with pytest.raises(CoercionError):
        coerce(DataType.DATETIME, raw)


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_datetime_outside_the_utc_range_is_rejected(raw):
    """An instant that UTC cannot write (year 0 or 10000) cannot be normalised to UTC."""
    with pytest.raises(CoercionError):
        coerce(DataType.DATETIME, raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0001-01-01T00:00:00Z", utc_us(1, 1, 1)),
        ("0001-01-01T00:30:00-01:00", utc_us(1, 1, 1, 1, 30)),
        ("9999-12-31T23:59:59.999999Z", utc_us(9999, 12, 31, 23, 59, 59, 999999)),
    ],
)
def test_datetime_at_the_edges_of_the_utc_range(raw, expected):
    assert coerce(DataType.DATETIME, raw) == expected
    assert parse_datetime_us(format_us(expected)) == expected


def test_same_instant_in_different_offsets_is_the_same_value():
    forms = [
        "2026-09-25T23:56:35Z",
        "2026-09-26T06:56:35+07:00",
        "2026-09-26T06:56:35+0700",
        "2026-09-25T18:56:35-05:00",
        "2026-09-25T23:56:35+0000",
    ]
    assert len({parse_datetime_us(f) for f in forms}) == 1


@settings(max_examples=150, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    style=st.sampled_from(["colon", "compact"]),
)
def test_datetime_property_any_offset(moment, offset_minutes, style):
    """A wall-clock time at any offset is the UTC instant wall-clock minus offset."""
    offset = timedelta(minutes=offset_minutes)
    text = moment.replace(tzinfo=timezone(offset)).isoformat()
    if style == "compact":  # +HH:MM -> +HHMM
        text = text[:-3] + text[-2:]
    wall = utc_us(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    expected = wall + moment.microsecond - offset_minutes * MINUTE
    assert parse_datetime_us(text) == expected
    # format_us renders that instant in UTC, and reads back to the same value
    rendered = format_us(expected)
    assert rendered.endswith("Z")
    assert parse_datetime_us(rendered) == expected


# --- lead-field moments ----------------------------------------------------------------------


def test_parse_moment_takes_a_bare_date_as_midnight_utc():
    assert parse_moment_us("2026-09-26") == utc_us(2026, 9, 26)
    assert parse_moment_us("2026-09-26T10:00:00+02:00") == utc_us(2026, 9, 26, 8)
    with pytest.raises(CoercionError):
        parse_moment_us("2026-09-26T10:00:00")
    with pytest.raises(CoercionError):
        parse_moment_us("soon")


def test_parse_date_us_matches_coerce():
    assert parse_date_us("2000-03-01") == utc_us(2000, 3, 1)


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1 minute", MINUTE),
        ("5 minutes", 5 * MINUTE),
        ("1 hour", HOUR),
        ("36 hours", 36 * HOUR),
        ("1 day", DAY),
        ("30 days", 30 * DAY),
        ("1 week", 7 * DAY),
        ("2 weeks", 14 * DAY),
        ("1 month", 30 * DAY),
        ("3 months", 90 * DAY),
        ("12 months", 360 * DAY),
        ("30 DAYS", 30 * DAY),
        ("7 Days", 7 * DAY),
        ("  7 days  ", 7 * DAY),
    ],
)
def test_durations(raw, expected):
    assert parse_duration_us(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0 days",
        "0 minutes",
        "00 weeks",
        "-1 days",
        "1.5 days",
        "days",
        "30",
        "",
        "30 years",
        "30 seconds",
        "2 mins",
        "thirty days",
        "30 days ago",
        "30 days 2 hours",
        30,
        None,
        ["30 days"],
    ],
)
def test_durations_reject_zero_and_junk(raw):
    with pytest.raises(CoercionError):
        parse_duration_us(raw)


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("us", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (utc_us(2026, 9, 25, 23, 56, 35), "2026-09-25T23:56:35Z"),
        (utc_us(2026, 9, 25, 23, 56, 35, 1), "2026-09-25T23:56:35.000001Z"),
        (utc_us(2026, 9, 25, 23, 56, 35, 120000), "2026-09-25T23:56:35.120000Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
    ],
)
def test_format_us(us, expected):
    assert format_us(us) == expected


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=utc_us(1, 1, 1), max_value=utc_us(9999, 12, 31, 23, 59, 59, 999999)))
def test_format_us_round_trips(us):
    text = format_us(us)
    assert text.endswith("Z")
    assert datetime.fromisoformat(text) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=us
    )
    assert parse_datetime_us(text) == us


def test_format_us_pads_years_below_1000():
    us = parse_datetime_us("0999-12-31T00:00:00Z")
    assert format_us(us) == "0999-12-31T00:00:00Z"


def test_display_value_gives_back_the_written_forms():
    assert display_value(DataType.DATE, utc_us(2026, 9, 26)) == "2026-09-26"
    assert display_value(DataType.DATETIME, utc_us(2026, 9, 26, 1)) == "2026-09-26T01:00:00Z"
    assert display_value(DataType.INTEGER, 5) == 5
    assert format_date_us(utc_us(2026, 9, 26, 23, 59)) == "2026-09-26"


# --- out-of-range numbers --------------------------------------------------------------------


@pytest.mark.parametrize("data_type", FLOATS)
@pytest.mark.parametrize("raw", [10**400, -(10**400)], ids=["10^400", "-10^400"])
def test_float_of_a_huge_integer_is_a_coercion_error(data_type, raw):
    with pytest.raises(CoercionError):
        coerce(data_type, raw)


@pytest.mark.parametrize("raw", [2**63 - 1, -(2**63), str(2**63 - 1), str(-(2**63))])
def test_integer_accepts_the_64_bit_range(raw):
    assert coerce(DataType.INTEGER, raw) == int(raw)


@pytest.mark.parametrize(
    "raw",
    [2**63, -(2**63) - 1, str(2**63), "9" * 30, "-" + "9" * 25, "1" * 5000],
    ids=["2^63", "-2^63-1", "str-2^63", "30-digits", "minus-25-digits", "5000-digits"],
)
def test_integer_beyond_64_bits_is_a_coercion_error(raw):
    """Not a bare ValueError (Python's limit on int() of long strings) nor an overflow later
    (orjson cannot write integers beyond 64 bits)."""
    with pytest.raises(CoercionError):
        coerce(DataType.INTEGER, raw)


# --- bugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data_type", [DataType.INTEGER, DataType.FLOAT])
def test_a_5000_digit_python_int_is_a_coercion_error(data_type):
    with pytest.raises(CoercionError):
        coerce(data_type, 10**5000)
