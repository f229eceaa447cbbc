"""Attribute data types and the one coercion used for activities, constraints and fields.

Values are held in these Python types after coercion:

| dataType | held as |
| --- | --- |
| string, text, phone, link, email | `str` |
| integer | `int` |
| float, currency | `float` |
| boolean | `bool` |
| date | `int`: microseconds since the epoch at 00:00 UTC of that day |
| datetime | `int`: microseconds since the epoch, UTC |

Dates are integers so that windows, `in past` and comparisons are exact and cheap, and so
that state serialises to JSON without loss.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final

Value = str | int | float | bool

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US: Final = timedelta(microseconds=1)
US_PER_SECOND: Final = 1_000_000
US_PER_DAY: Final = 86_400 * US_PER_SECOND


class DataType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    FLOAT = "float"
    LINK = "link"
    EMAIL = "email"
    CURRENCY = "currency"
    DATE = "date"
    DATETIME = "datetime"
    PHONE = "phone"
    TEXT = "text"


TEXT_TYPES: Final = frozenset(
    {DataType.STRING, DataType.TEXT, DataType.PHONE, DataType.LINK, DataType.EMAIL}
)
NUMBER_TYPES: Final = frozenset({DataType.INTEGER, DataType.FLOAT, DataType.CURRENCY})
DATE_TYPES: Final = frozenset({DataType.DATE, DataType.DATETIME})


class CoercionError(ValueError):
    """A value does not coerce to a data type; the message says what was expected."""


_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]{1,19}")
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
"""Integers are 64-bit, as in Marketo's API and every JSON consumer of our events."""
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION_RE: Final = re.compile(r"\s*([0-9]+)\s*(minute|hour|day|week|month)s?\s*", re.IGNORECASE)
_DURATION_UNITS_US: Final = {
    "minute": 60 * US_PER_SECOND,
    "hour": 3600 * US_PER_SECOND,
    "day": US_PER_DAY,
    "week": 7 * US_PER_DAY,
    "month": 30 * US_PER_DAY,
}


def datetime_to_us(moment: datetime) -> int:
    delta = moment - EPOCH  # this form is twice as fast as `// ONE_US`
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
MIN_US: Final = (datetime.min - _NAIVE_EPOCH) // ONE_US
MAX_US: Final = (datetime.max - _NAIVE_EPOCH) // ONE_US
"""The UTC instants a date-time can hold (and be printed as)."""


def format_us(us: int) -> str:
    """UTC ISO-8601 with a trailing `Z`, microseconds only when there are some.

    The same text as `reference_format_us`, built from a cache of day texts and tables of
    clock texts (content hashes format every activity's date)."""
    day, rest = divmod(us, US_PER_DAY)
    date_text = _DAY_TEXTS.get(day)
    if date_text is None:
        date_text = reference_format_us(day * US_PER_DAY)[:10]  # raises out of range
        if len(_DAY_TEXTS) >= _CACHE_ENTRIES:
            _DAY_TEXTS.clear()
        _DAY_TEXTS[day] = date_text
    seconds, micro = divmod(rest, US_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    clock = _CLOCK_TEXTS[minutes] + _TWO_DIGITS[second]
    if micro:
        return f"{date_text}T{clock}.{micro:06d}Z"
    return f"{date_text}T{clock}Z"


def reference_format_us(us: int) -> str:
    """`format_us` by the standard library: the reference its fast path is tested against."""
    return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat() + "Z"


_CACHE_ENTRIES: Final = 4096
"""Entries of each date cache below, emptied when full (a stream's dates cluster)."""
_DAY_TEXTS: Final[dict[int, str]] = {}
"""Days since the epoch -> `YYYY-MM-DD`."""
_TWO_DIGITS: Final = [f"{n:02d}" for n in range(60)]
_CLOCK_TEXTS: Final = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
"""Minute of the day -> `HH:MM:`."""


def format_date_us(us: int) -> str:
    return us_to_datetime(us).date().isoformat()


def parse_datetime_us(raw: str) -> int:
    """ISO-8601 date-time with an offset (`Z`, `+07:00`, `+0000`) to UTC microseconds.

    The common forms `YYYY-MM-DDTHH:MM:SSZ` and `...+00:00` are read from two tables: the
    hour `YYYY-MM-DDTHH` (cached once the standard library has accepted it) and the rest of
    the hour; anything else goes to `reference_parse_datetime_us`, which decides the value
    or the error."""
    hour = _HOUR_US.get(raw[:13])
    rest = _in_hour_us(raw) if _COMPILED else _IN_HOUR_US.get(raw[13:])
    if rest is not None:
        if hour is None:
            hour = _hour_us(raw[:13])
        if hour is not None:
            return hour + rest
    return reference_parse_datetime_us(raw)


def _hour_us(prefix: str) -> int | None:
    """`YYYY-MM-DDTHH` as UTC microseconds (then cached), or None when it is not in that
    form or not a valid date and hour: the caller leaves the whole text to the reference."""
    if not (
        len(prefix) == 13
        and prefix.isascii()
        and prefix[4] == "-"
        and prefix[7] == "-"
        and prefix[10] == "T"
        and (prefix[:4] + prefix[5:7] + prefix[8:10] + prefix[11:]).isdigit()
        and int(prefix[11:]) < 24
    ):
        return None
    try:
        us = reference_parse_datetime_us(prefix + ":00:00Z")
    except CoercionError:
        return None
    if len(_HOUR_US) >= _CACHE_ENTRIES:
        _HOUR_US.clear()
    _HOUR_US[prefix] = us
    return us


def _in_hour_us(raw: str) -> int | None:
    """`_IN_HOUR_US.get(raw[13:])` read off the characters: what the compiled build runs
    (a slice, its hash and a probe into a table of 7,200 texts cost it more than the
    digits; as Python the table is faster)."""
    size = len(raw)
    if size == 20:
        if raw[19] != "Z":
            return None
    elif size != 25 or raw[19:] != "+00:00":
        return None
    if raw[13] != ":" or raw[16] != ":":
        return None
    m1 = ord(raw[14]) - 48
    m2 = ord(raw[15]) - 48
    s1 = ord(raw[17]) - 48
    s2 = ord(raw[18]) - 48
    if not (0 <= m1 <= 5 and 0 <= m2 <= 9 and 0 <= s1 <= 5 and 0 <= s2 <= 9):
        return None
    return ((m1 * 10 + m2) * 60 + s1 * 10 + s2) * US_PER_SECOND


_COMPILED: Final = not (__file__ or "").endswith(".py")
"""Whether this module runs compiled (mypyc): `parse_datetime_us` then reads the minutes
and seconds with `_in_hour_us`, else from `_IN_HOUR_US`."""
_HOUR_US: Final[dict[str, int]] = {}
"""`YYYY-MM-DDTHH` -> UTC microseconds: the fast path of `parse_datetime_us`."""
_IN_HOUR_US: Final = {
    f":{m:02d}:{s:02d}{zone}": (m * 60 + s) * US_PER_SECOND
    for m in range(60)
    for s in range(60)
    for zone in ("Z", "+00:00")
}
"""`:MM:SSZ` and `:MM:SS+00:00` -> microseconds into the hour."""


def reference_parse_datetime_us(raw: str) -> int:
    """`parse_datetime_us` by the standard library: the reference its fast path is tested
    against, and the one that reads every form the fast path does not."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise CoercionError(f"{raw!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        raise CoercionError(f"{raw!r} has no UTC offset (add Z or +HH:MM)")
    us = datetime_to_us(moment)
    if not MIN_US <= us <= MAX_US:
        raise CoercionError(f"{raw!r} falls outside the years 1 to 9999 in UTC")
    return us


def parse_date_us(raw: str) -> int:
    if not _DATE_RE.fullmatch(raw):
        raise CoercionError(f"{raw!r} is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise CoercionError(f"{raw!r} is not a valid date") from None
    return (day.toordinal() - date(1970, 1, 1).toordinal()) * US_PER_DAY


def parse_moment_us(raw: str) -> int:
    """A date-time with an offset, or a bare date taken as 00:00 UTC (lead fields, whose
    values are free text, hold either)."""
    if _DATE_RE.fullmatch(raw):
        return parse_date_us(raw)
    return parse_datetime_us(raw)


def parse_duration_us(raw: object) -> int:
    """`N minutes|hours|days|weeks|months` (singular allowed, a month is 30 days), N ≥ 1."""
    if not isinstance(raw, str):
        raise CoercionError(f"{raw!r} is not a duration such as '30 days'")
    match = _DURATION_RE.fullmatch(raw)
    if match is None or int(match.group(1)) < 1:
        raise CoercionError(
            f"{raw!r} is not a duration: N minutes, hours, days, weeks or months, N ≥ 1"
        )
    return int(match.group(1)) * _DURATION_UNITS_US[match.group(2).lower()]


def number_text(raw: int | float) -> str:
    """The decimal text of a number: 3 for 3 and 3.0, 2.5 for 2.5."""
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e16:
        return str(int(raw))
    return str(raw)


_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""Plain decimal notation: no `1_000`, no digits of other scripts, no `nan` or `inf`."""


def parse_number(raw: str) -> float:
    if not _NUMBER_RE.fullmatch(raw):
        raise CoercionError(f"{_short(raw)} is not a number")
    try:
        number = float(raw)
    except ValueError:
        raise CoercionError(f"{_short(raw)} is not a number") from None
    if not math.isfinite(number):
        raise CoercionError(f"{raw!r} is not a finite number")
    return number


def _text(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return number_text(raw)
    raise CoercionError(f"{raw!r} is not text")


def _email(raw: object) -> str:
    if not isinstance(raw, str):
        raise CoercionError(f"{raw!r} is not an email address")
    local, at, domain = raw.partition("@")
    if not at or not local or not domain or "@" in domain:
        raise CoercionError(f"{raw!r} is not an email address (one @ between two parts)")
    return raw


def _integer(raw: object) -> int:
    if isinstance(raw, bool):
        raise CoercionError(f"{raw!r} is not an integer")
    if isinstance(raw, str) and _INTEGER_RE.fullmatch(raw.strip()):
        raw = int(raw)
    if isinstance(raw, int):
        if not INT64_MIN <= raw <= INT64_MAX:
            raise CoercionError(f"{_short(raw)} is out of the 64-bit integer range")
        return raw
    if isinstance(raw, float) and raw.is_integer() and abs(raw) > INT64_MAX:
        # A JSON integer beyond 64 bits arrives as a float (orjson): not `1e+23`.
        raise CoercionError(f"an integer beyond the 64-bit range (at most {INT64_MAX})")
    raise CoercionError(f"{_short(raw)} is not an integer")


def _short(raw: object) -> str:
    """A value for a message, cut short: a 5,000-digit number makes a useless message (and
    Python refuses to print an int of more than 4,300 digits)."""
    if isinstance(raw, int) and raw.bit_length() > 128:
        return f"an integer of about {int(raw.bit_length() * 0.30103)} digits"
    text = repr(raw)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _float(raw: object) -> float:
    if isinstance(raw, bool):
        raise CoercionError(f"{raw!r} is not a number")
    if isinstance(raw, int):
        try:
            return float(raw)
        except OverflowError:
            raise CoercionError(f"{_short(raw)} is too large for a float") from None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise CoercionError(f"{raw!r} is not a finite number")
        return raw
    if isinstance(raw, str):
        return parse_number(raw.strip())
    raise CoercionError(f"{raw!r} is not a number")


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    raise CoercionError(f"{raw!r} is not a boolean (true or false)")


def _date(raw: object) -> int:
    if not isinstance(raw, str):
        raise CoercionError(f"{raw!r} is not a date (YYYY-MM-DD)")
    return parse_date_us(raw)


def _datetime(raw: object) -> int:
    if not isinstance(raw, str):
        raise CoercionError(f"{raw!r} is not a date-time")
    return parse_datetime_us(raw)


COERCERS: Final[dict[DataType, Callable[[object], Value]]] = {
    DataType.STRING: _text,
    DataType.TEXT: _text,
    DataType.PHONE: _text,
    DataType.LINK: _text,
    DataType.EMAIL: _email,
    DataType.INTEGER: _integer,
    DataType.FLOAT: _float,
    DataType.CURRENCY: _float,
    DataType.BOOLEAN: _boolean,
    DataType.DATE: _date,
    DataType.DATETIME: _datetime,
}


def coerce(data_type: DataType, raw: object) -> Value:
    """The value of `raw` as `data_type`, or CoercionError."""
    return COERCERS[data_type](raw)


def display_value(data_type: DataType, value: Value) -> str | int | float | bool:
    """A coerced value back in the form a person wrote it (for messages and explanations)."""
    if data_type is DataType.DATE and isinstance(value, int):
        return format_date_us(value)
    if data_type is DataType.DATETIME and isinstance(value, int):
        return format_us(value)
    return value
