"""The decoder's fast path against its reference: the same `Activity` or the same `Rejection`
for every record (streams/engine/activity.py, "Two paths give one answer").

`Decoder.reference_decode` is the decoder as it was before the fast path (every check in
order, on orjson); `Decoder.decode` tries msgspec typed records first. Records are generated
hostile: members missing, doubled or of the wrong JSON type, values at and over every bound,
odd date-times, unicode, nesting, attributes by apiName and by display name, bytes that are
not UTF-8 or not JSON. Results are compared by `repr` as well as `==`, so that 1, 1.0 and
True or a different attribute order count as differences. The date-time fast paths are held
to the standard library in the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.engine import datatypes
from streams.engine.activity import (
    MAX_ATTRIBUTES,
    MAX_FIELD_CHANGES,
    MAX_IDENTITY_CHARS,
    MAX_STRING_CHARS,
    MAX_TEXT_CHARS,
    Activity,
    Decoder,
    Rejection,
)
from streams.engine.catalog import TypeFile, build_catalog
from streams.engine.datatypes import (
    INT64_MAX,
    INT64_MIN,
    MAX_US,
    MIN_US,
    CoercionError,
    DataType,
    format_us,
    parse_datetime_us,
    reference_format_us,
    reference_parse_datetime_us,
)
from streams.engine.definitions import ActivityTypeDef, AttributeDef
from tests.unit.test_decode import (
    ATTEND_CONFERENCE,
    DEPOSIT_CHEQUE,
    VISIT_BOOTH,
    WATCH_WEBINAR_DRAFT,
    conference,
)

NOW_US = 1_800_000_000_000_000
"""2027-01-15: the processing clock of the horizon check."""


def _attr(api_name: str, name: str, data_type: DataType = DataType.STRING) -> AttributeDef:
    return AttributeDef(apiName=api_name, name=name, dataType=data_type)


CROSSED_NAMES = ActivityTypeDef(
    id=100005,
    apiName="crossedNames",
    name="Crossed Names",
    triggerName="Crosses Names",
    filterName="Crossed Names Before",
    status="approved",
    primaryAttribute=_attr("note", "Note", DataType.TEXT),
    attributes=[
        # "beta" is the display name of alpha and the apiName of the other: by_key says alpha.
        _attr("alpha", "beta"),
        _attr("beta", "Gamma", DataType.INTEGER),
        _attr("body", "Body", DataType.TEXT),
        _attr("web", "Web", DataType.LINK),
        _attr("ratio", "Ratio", DataType.FLOAT),
        _attr("phone", "Phone", DataType.PHONE),
    ],
)
DEFINITIONS = (ATTEND_CONFERENCE, DEPOSIT_CHEQUE, WATCH_WEBINAR_DRAFT, VISIT_BOOTH, CROSSED_NAMES)


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    files = [TypeFile(f"rules/activity-types/{d.apiName}.yaml", d) for d in DEFINITIONS]
    catalog, problems = build_catalog(files)
    assert problems == []
    return Decoder(catalog)


# --- values ----------------------------------------------------------------------------------

BOUNDARY_INTS = [0, 1, -1, INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 2**64 - 1, 2**64]
BOUNDARY_INTS += [10**30, -(10**30), 100001, 100002, 100003, 100004, 100005, 1, 12, 13, 400]


def _text_of(length: int) -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "é", "😀", " ", "\u0000"]).map(lambda c: c * length)


def _lengths(*limits: int) -> st.SearchStrategy[str]:
    return st.sampled_from([n + d for n in limits for d in (-1, 0, 1) if n + d >= 0]).flatmap(
        _text_of
    )


def _datetime_texts() -> st.SearchStrategy[str]:
    """Date-times in the common forms, in odd but valid forms, and broken ones."""
    moments = st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-23, minutes=-59))]
        ),
    )

    def formats(moment: datetime) -> st.SearchStrategy[str]:
        iso = moment.isoformat()
        naive = moment.replace(tzinfo=None).isoformat()
        return st.sampled_from(
            [
                iso,
                iso.replace("+00:00", "Z"),
                iso.replace("+00:00", "-00:00"),
                iso.replace("+00:00", "z"),
                iso.replace("T", " "),
                naive,
                naive + "Z",
                naive[:19] + "Z",
                naive[:19] + ".5Z",
                naive[:19] + ".123Z",
                naive[:19] + ".1234567Z",
                naive[:19] + "+0000",
                naive[:19] + "+00",
                naive[:16] + "Z",
                naive[:10],
            ]
        )

    odd = st.sampled_from(
        [
            "2026-02-29T10:00:00Z",
            "2024-02-29T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-04-30T24:00:00Z",
            "2026-04-30T23:60:00Z",
            "2026-04-30T23:59:60Z",
            "2026-04-30T23:59:59+24:00",
            "2026-04-30T23:59:59+23:59",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-00:01",
            "2026-04-30T１0:00:00Z",
            "２026-04-30T10:00:00Z",
            "2026-04-30T10:00:00 Z",
            "2026-W18-4T10:00:00Z",
            "20260430T100000Z",
            "2026-04-30T10:00:00.000000Z",
            "2026-04-30T10:00:00,5Z",
            "2026-04-30T10:0:00Z",
            "2026-04-30T+1:00:00Z",
            "2026-04-30T10:+1:00Z",
            "2026-04-30T10:00:00+00:00:00",
            "",
            "Z",
        ]
    )
    return st.one_of(moments.flatmap(formats), odd, st.text(max_size=30))


def _recent_datetime_texts() -> st.SearchStrategy[str]:
    """Date-times of the last decades in the forms producers write."""
    moments = st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2026, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
    )
    return moments.map(
        lambda m: m.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    ) | moments.map(lambda m: m.isoformat())


def _values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(BOUNDARY_INTS),
        st.integers(),
        st.floats(allow_nan=False),
        st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e16, 1e300, float(INT64_MAX), float(2**64)]),
        st.text(max_size=20),
        st.sampled_from(["", " ", "true", "False", "12", " 12 ", "1.5", "1e3", "a@b", "@b"]),
        st.sampled_from(["a@b@c", "2026-04-30", "2026-4-30", "nan", "inf", "1_000", "٣"]),
        _datetime_texts(),
        _lengths(MAX_STRING_CHARS, 19),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


ATTRIBUTE_KEYS = sorted(
    {a.apiName for d in DEFINITIONS for a in d.attributes}
    | {a.name for d in DEFINITIONS for a in d.attributes}
    | {"webpage", "Webpage", "actionType", "Action Type", "Action Length", "unknown", ""}
)
TYPES = {d.id: d for d in DEFINITIONS}


def _good_value(data_type: DataType) -> st.SearchStrategy[Any]:
    """A value the reference accepts for the type, mostly (limits at the boundary)."""
    text = st.one_of(st.text(min_size=1, max_size=12), _lengths(MAX_STRING_CHARS))
    return {
        DataType.STRING: text,
        DataType.PHONE: text,
        DataType.LINK: text,
        DataType.TEXT: st.one_of(st.text(min_size=1, max_size=12), _lengths(MAX_TEXT_CHARS)),
        DataType.EMAIL: st.sampled_from(["a@example.com", "é@x", "a@b@c", "@x"]),
        DataType.INTEGER: st.one_of(
            st.integers(INT64_MIN, INT64_MAX), st.sampled_from(BOUNDARY_INTS)
        ),
        DataType.FLOAT: st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()),
        DataType.CURRENCY: st.one_of(
            st.floats(allow_nan=False, allow_infinity=False), st.integers()
        ),
        DataType.BOOLEAN: st.booleans(),
        DataType.DATE: st.one_of(st.dates().map(lambda d: d.isoformat()), st.just("2026-02-30")),
        DataType.DATETIME: _datetime_texts(),
    }[data_type]


@st.composite
def _attribute(draw: st.DrawFn, type_id: int, wild: bool) -> Any:
    definition = TYPES.get(type_id)
    if definition is None or not definition.attributes or (wild and draw(st.booleans())):
        return draw(_wild_attribute())
    spec = draw(st.sampled_from(definition.attributes))
    key = spec.name if draw(st.integers(0, 4)) == 0 else spec.apiName
    value = draw(_values()) if wild and draw(st.booleans()) else draw(_good_value(spec.dataType))
    entry = {"apiName": key, "value": value}
    if key == spec.name:
        entry = {"name": key, "value": value}
    return entry


@st.composite
def _wild_attribute(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.one_of(st.integers(), st.text(max_size=3), st.lists(st.none())))
    entry: dict[str, Any] = {}
    key = draw(st.sampled_from(ATTRIBUTE_KEYS))
    by = draw(st.sampled_from(["apiName", "name", "both", "none", "wrong"]))
    if by in ("apiName", "both"):
        entry["apiName"] = key
    if by in ("name", "both"):
        entry["name"] = draw(st.sampled_from(ATTRIBUTE_KEYS))
    if by == "wrong":
        entry["apiName"] = draw(st.one_of(st.integers(), st.none(), st.lists(st.none())))
    if draw(st.integers(0, 9)) > 0:
        entry["value"] = draw(_values())
    if draw(st.integers(0, 9)) == 0:
        entry["extra"] = draw(_values())
    return entry


APPROVED_IDS = [1, 2, 3, 12, 13, 400, 100001, 100002, 100004, 100005]
TYPE_IDS = [*APPROVED_IDS, 37, 100003, 100006, 0, -1]


@st.composite
def records(draw: st.DrawFn) -> bytes | str:
    """A record as bytes (or text), built member by member so that a member can be doubled:
    a third of them of the common shape, the others with more and more hostile members."""
    wildness = draw(st.sampled_from([0, 0, 2, 10, 30]))
    """Percent of members missing, doubled or replaced by any value."""
    type_id = draw(st.sampled_from(TYPE_IDS if wildness else APPROVED_IDS))
    items: list[tuple[str, Any]] = []

    def member(name: str, typical: st.SearchStrategy[Any], missing: int = 0) -> None:
        roll = draw(st.integers(0, 99))
        if roll < missing + wildness // 2:
            return
        if roll < missing + wildness:
            items.append((name, draw(_values())))
        else:
            items.append((name, draw(typical)))
        if draw(st.integers(0, 99)) < wildness // 3:
            items.append((name, draw(st.one_of(typical, _values()))))  # a doubled member

    identity = st.one_of(
        st.text(max_size=12), st.integers(), st.just(""), _lengths(MAX_IDENTITY_CHARS)
    )
    good = wildness == 0
    if good:
        identity = st.text(min_size=1, max_size=12)
    member("marketoGUID", identity, missing=30)
    member("id", identity, missing=60)
    member(
        "leadId",
        st.integers(1, INT64_MAX)
        if good
        else st.one_of(st.integers(1, 10**6), st.sampled_from(BOUNDARY_INTS), st.just("12")),
    )
    member("activityDate", _recent_datetime_texts() if good else _datetime_texts())
    member(
        "activityTypeId",
        st.just(type_id)
        if good
        else st.one_of(st.just(type_id), st.sampled_from([str(type_id), float(type_id)])),
    )
    definition = TYPES.get(type_id)
    primary = (
        _good_value(definition.primaryAttribute.dataType)
        if good and definition is not None
        else st.text(min_size=1, max_size=19)
        if good
        else st.one_of(
            st.text(min_size=1, max_size=25),
            st.integers(),
            _lengths(MAX_STRING_CHARS, MAX_TEXT_CHARS, 19),
            st.sampled_from(["", "Bought Shirt", "A" * 19, "A" * 20]),
        )
    )
    member("primaryAttributeValue", primary, missing=10)
    many = draw(st.integers(0, 19)) == 0
    attributes = st.lists(
        _attribute(type_id, wildness > 0),
        min_size=MAX_ATTRIBUTES - 1 if many else 0,
        max_size=MAX_ATTRIBUTES + 1 if many else 7,
    )
    member("attributes", attributes, missing=20)
    field = st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(["country", "", " "]), st.text(max_size=5))},
        optional={"newValue": _values()},
    )
    fields = st.lists(
        st.one_of(field, _values()) if wildness else field,
        max_size=MAX_FIELD_CHANGES + 1 if many else 3,
    )
    member("fields", fields, missing=0 if type_id == 13 else 60)
    if draw(st.integers(0, 9)) == 0:
        items.append((draw(st.text(max_size=8)), draw(_values())))  # an unknown member
    if draw(st.integers(0, 9)) == 0:
        items.append(("primaryAttributeValueId", draw(_values())))  # one the decoder ignores
    ascii_only = draw(st.booleans())  # \u escapes, or UTF-8 as it is
    body = (
        "{"
        + ",".join(
            f"{json.dumps(k, ensure_ascii=ascii_only)}:{json.dumps(v, ensure_ascii=ascii_only)}"
            for k, v in items
        )
        + "}"
    )
    form = draw(st.integers(0, 39))
    if form == 0:
        return body  # text, not bytes
    raw = body.encode("utf-8", "surrogatepass")
    if form == 1:
        return raw[: draw(st.integers(0, len(raw)))]  # cut short
    if form == 2:
        at = draw(st.integers(0, len(raw)))
        return (
            raw[:at] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\x00", b" "])) + raw[at:]
        )
    if form == 3:
        return b"[" + raw + b"]"
    return raw


_COMMON = json.dumps(conference()).encode()
_CHANGE = (
    b'{"leadId":7,"activityDate":"2026-01-01T00:00:00Z","activityTypeId":13,'
    b'"fields":[{"name":"country","newValue":"de"}]}'
)


def same(fast: Activity | Rejection, reference: Activity | Rejection) -> None:
    assert fast == reference
    assert repr(fast) == repr(reference)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=records(), horizon=st.booleans())
@example(raw=json.dumps(conference()).encode(), horizon=True)
@example(
    raw=b'{"leadId":1,"activityDate":"2026-01-01T00:00:00Z","activityTypeId":100005,'
    b'"primaryAttributeValue":"n","attributes":[{"apiName":"beta","value":5}]}',
    horizon=True,
)
@example(raw=_COMMON[:-1] + b',"x":"\xff"}', horizon=True)  # msgspec skips, unchecked
@example(raw=_COMMON[:-1] + b',"\xed\xa0\x80":1}', horizon=True)  # an encoded surrogate
@example(raw=_COMMON[:-1] + b',"x":1e400}', horizon=True)  # orjson: infinity
@example(raw=_COMMON[:-1] + b',"x":"\\ud800"}', horizon=True)  # a lone surrogate
@example(raw=_COMMON[:-1] + b',"x":NaN}', horizon=True)
@example(raw=_COMMON[:-1] + b',"primaryAttributeValueId":1' + b"0" * 400 + b"}", horizon=True)
@example(raw=_COMMON[:-1] + b',"x":' + b"[" * 1100 + b"]" * 1100 + b"}", horizon=True)
@example(raw=_COMMON[:-1] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}", horizon=True)
@example(raw=_COMMON[:-1] + b"} ", horizon=True)
@example(raw=_COMMON + b"}", horizon=True)
@example(raw=b"\xef\xbb\xbf" + _COMMON, horizon=True)
@example(raw=_CHANGE.replace(b'"de"', b"1" + b"0" * 30), horizon=True)  # a float to orjson
@example(raw=_CHANGE.replace(b'"de"', b"1" + b"0" * 400), horizon=True)  # infinite
@example(raw=_CHANGE.replace(b'"de"', b"18446744073709551615"), horizon=True)
@example(raw=_CHANGE.replace(b'"de"', b"18446744073709551616"), horizon=True)
@example(raw=_CHANGE.replace(b'"de"', b"-9223372036854775809"), horizon=True)
@example(
    raw=_CHANGE.replace(b'"de"', b'"de","oldValue":' + b"[" * 1100 + b"]" * 1100), horizon=True
)
@example(raw=_CHANGE.replace(b'"de"', b'"de","oldValue":"fr"'), horizon=True)
@example(
    raw=_CHANGE.replace(b'"country","newValue":"de"', b'"country","name":"city"'), horizon=True
)
def test_fast_path_gives_the_reference_result(decoder: Decoder, raw: bytes | str, horizon: bool):
    now_us = NOW_US if horizon else None
    same(decoder.decode(raw, "t/0/1", now_us), decoder.reference_decode(raw, "t/0/1", now_us))


def test_the_common_shape_takes_the_fast_path(decoder: Decoder):
    """Guards the point of the fast path: a record of the common shape passes the typed
    records and the fast checks (so a change that sends everything to the reference, still
    correct, fails here). It calls the two steps of `decode` rather than counting calls to
    `reference_decode`, whose attribute a compiled `Decoder` does not let a test replace."""
    record = conference(
        attributes=[
            {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"},
            {"apiName": "numberOfAttendees", "value": 1200},
            {"apiName": "ticketPrice", "value": 12},
            {"apiName": "isSpeaker", "value": True},
            {"apiName": "contactEmail", "value": "a@example.com"},
            {"apiName": "badgeDay", "value": "2026-10-01"},
            {"apiName": "track", "value": "x" * MAX_TEXT_CHARS},
        ],
        primaryAttributeValueId=17,
    )
    raw = json.dumps(record).encode()
    fast = decoder._fast(decoder._typed.decode(raw), "t/0/1", NOW_US)
    assert isinstance(fast, Activity)
    same(fast, decoder.reference_decode(raw, "t/0/1", NOW_US))
    same(decoder.decode(raw, "t/0/1", NOW_US), fast)
    with pytest.raises(msgspec.ValidationError):  # a problem is the reference's to name
        decoder._typed.decode(json.dumps(conference(leadId=0)).encode())


# --- date-times ------------------------------------------------------------------------------


def _parsed(parse: Any, raw: str) -> int | str:
    try:
        return int(parse(raw))
    except CoercionError as exc:
        return f"error: {exc}"


@settings(max_examples=3000, deadline=None)
@given(raw=_datetime_texts())
def test_parse_datetime_us_is_the_standard_library(raw: str):
    assert _parsed(parse_datetime_us, raw) == _parsed(reference_parse_datetime_us, raw)
    assert _parsed(parse_datetime_us, raw) == _parsed(reference_parse_datetime_us, raw)  # cached


@settings(max_examples=3000, deadline=None)
@given(raw=_datetime_texts() | st.text(max_size=30))
def test_minutes_read_off_the_text_are_the_table_s(raw: str):
    """`_in_hour_us` (the compiled build's) against `_IN_HOUR_US` (the table), both run
    here whatever the engine."""
    assert datatypes._in_hour_us(raw) == datatypes._IN_HOUR_US.get(raw[13:])


def test_every_text_of_the_table_is_read_off_alike():
    for rest, us in datatypes._IN_HOUR_US.items():
        for prefix in ("2026-01-02T03", "x" * 13):
            assert datatypes._in_hour_us(prefix + rest) == us
            assert datatypes._in_hour_us(prefix + rest[:-1] + "z") is None


def _formatted(us: int) -> str:
    try:
        return format_us(us)
    except OverflowError:
        return "overflow"


def _reference_formatted(us: int) -> str:
    try:
        return reference_format_us(us)
    except OverflowError:
        return "overflow"


@settings(max_examples=3000, deadline=None)
@given(
    us=st.one_of(
        st.integers(MIN_US, MAX_US),
        st.integers(MIN_US - 10**12, MIN_US + 10**12),
        st.integers(MAX_US - 10**12, MAX_US + 10**12),
        st.integers(-(10**12), 10**12),
        st.integers(NOW_US - 10**14, NOW_US + 10**14).map(lambda us: us - us % 1_000_000),
    )
)
def test_format_us_is_the_standard_library(us: int):
    assert _formatted(us) == _reference_formatted(us)
