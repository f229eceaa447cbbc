"""Activity records to `Activity` or `Rejection` (activities.md, "The record", "Rejected
records"), against a catalog built here from type definitions."""

from __future__ import annotations

import calendar
import json

import pytest

from streams.engine.activity import (
    INVALID_VALUE,
    MALFORMED,
    REJECTION_CODES,
    TYPE_NOT_APPROVED,
    UNKNOWN_ACTIVITY_TYPE,
    UNKNOWN_ATTRIBUTE,
    Activity,
    Decoder,
    Rejection,
)
from streams.engine.catalog import TypeFile, build_catalog
from streams.engine.datatypes import DataType
from streams.engine.definitions import ActivityTypeDef, AttributeDef, TypeDraftDef

US = 1_000_000


def utc_us(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * US + us


def attr(api_name: str, name: str, data_type: DataType = DataType.STRING) -> AttributeDef:
    return AttributeDef(apiName=api_name, name=name, dataType=data_type)


ATTEND_CONFERENCE = ActivityTypeDef(
    id=100001,
    apiName="attendConference",
    name="Attend Conference",
    description="Attend the conference",
    triggerName="Attends Conference",
    filterName="Attended Conference",
    status="approved",
    primaryAttribute=attr("conferenceName", "Conference Name"),
    attributes=[
        attr("conferenceDate", "Conference Date", DataType.DATETIME),
        attr("numberOfAttendees", "Number of Attendees", DataType.INTEGER),
        attr("ticketPrice", "Ticket Price", DataType.CURRENCY),
        attr("isSpeaker", "Is Speaker", DataType.BOOLEAN),
        attr("contactEmail", "Contact Email", DataType.EMAIL),
        attr("badgeDay", "Badge Day", DataType.DATE),
        attr("track", "Track", DataType.TEXT),
    ],
)
DEPOSIT_CHEQUE = ActivityTypeDef(
    id=100002,
    apiName="depositCheque",
    name="Deposit Cheque",
    triggerName="Deposits Cheque",
    filterName="Deposited Cheque",
    status="approved",
    primaryAttribute=attr("amountCents", "Amount Cents", DataType.INTEGER),
    attributes=[attr("branch", "Branch")],
)
WATCH_WEBINAR_DRAFT = ActivityTypeDef(
    id=100003,
    apiName="watchWebinar",
    name="Watch Webinar",
    triggerName="Watches Webinar",
    filterName="Watched Webinar",
    status="draft",
    primaryAttribute=attr("webinarName", "Webinar Name"),
    attributes=[attr("minutesWatched", "Minutes Watched", DataType.INTEGER)],
)
VISIT_BOOTH = ActivityTypeDef(
    id=100004,
    apiName="visitBooth",
    name="Visit Booth",
    triggerName="Visits Booth",
    filterName="Visited Booth",
    status="approved with draft",
    primaryAttribute=attr("boothName", "Booth Name"),
    attributes=[attr("hall", "Hall")],
    draft=TypeDraftDef(attributes=[attr("hall", "Hall"), attr("venue", "Venue")]),
)


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    files = [
        TypeFile(f"rules/activity-types/{d.apiName}.yaml", d)
        for d in (ATTEND_CONFERENCE, DEPOSIT_CHEQUE, WATCH_WEBINAR_DRAFT, VISIT_BOOTH)
    ]
    catalog, problems = build_catalog(files)
    assert problems == []
    return Decoder(catalog)


def conference(**changes: object) -> dict[str, object]:
    """The record of activities.md; `changes` replace members, None removes one."""
    record: dict[str, object] = {
        "marketoGUID": "102988",
        "leadId": 1001,
        "activityDate": "2026-09-26T06:56:35+07:00",
        "activityTypeId": 100001,
        "primaryAttributeValue": "PyCon",
        "attributes": [
            {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"},
            {"name": "Number of Attendees", "value": 1200},
        ],
    }
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def minimal(type_id: int, **members: object) -> dict[str, object]:
    return {
        "leadId": 7,
        "activityDate": "2026-09-26T10:00:00Z",
        "activityTypeId": type_id,
    } | members


def decode(decoder: Decoder, record: object, position: str = "activities/0/1"):
    raw = record if isinstance(record, bytes | str) else json.dumps(record).encode()
    return decoder.decode(raw, position)


def accepted(decoder: Decoder, record: object) -> Activity:
    result = decode(decoder, record)
    assert isinstance(result, Activity), result
    return result


def rejected(decoder: Decoder, record: object) -> Rejection:
    result = decode(decoder, record)
    assert isinstance(result, Rejection), result
    assert result.code in REJECTION_CODES
    assert result.message
    return result


# --- rejections ------------------------------------------------------------------------------

MALFORMED_RECORDS = [
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(
        b'{"leadId": 1, "activityDate": "2026-09-26T10:00:00Z", "activityTypeId": 1, '
        b'"primaryAttributeValue": "caf\xe9"}',
        id="latin1-inside-json",
    ),
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"leadId": 1', id="truncated"),
    pytest.param(b"[1, 2, 3]", id="json-array"),
    pytest.param(b"[" + json.dumps(conference()).encode() + b"]", id="record-in-array"),
    pytest.param(b"42", id="json-number"),
    pytest.param(b'"a string"', id="json-string"),
    pytest.param(b"null", id="json-null"),
    pytest.param(conference(leadId=None), id="missing-leadId"),
    pytest.param(conference(activityDate=None), id="missing-activityDate"),
    pytest.param(conference(activityTypeId=None), id="missing-activityTypeId"),
    pytest.param(conference(leadId=True), id="leadId-true"),
    pytest.param(conference(leadId=False), id="leadId-false"),
    pytest.param(conference(leadId=[1001]), id="leadId-list"),
    pytest.param(conference(leadId={"id": 1001}), id="leadId-object"),
    pytest.param(conference(activityDate=1790405795), id="activityDate-number"),
    pytest.param(conference(activityDate=["2026-09-26T06:56:35Z"]), id="activityDate-list"),
    pytest.param(conference(activityTypeId=True), id="activityTypeId-true"),
    pytest.param(conference(attributes={"conferenceDate": "x"}), id="attributes-object"),
    pytest.param(conference(attributes="conferenceDate"), id="attributes-string"),
    pytest.param(conference(attributes=5), id="attributes-number"),
    pytest.param(conference(attributes=[{"value": 1}]), id="attribute-without-name"),
    pytest.param(conference(attributes=[{"apiName": 5, "value": 1}]), id="attribute-name-number"),
    pytest.param(conference(attributes=[5]), id="attribute-not-object"),
    pytest.param(conference(attributes=[["track", "x"]]), id="attribute-list"),
    pytest.param(conference(primaryAttributeValue=None), id="custom-primary-missing"),
    pytest.param(minimal(13), id="type13-without-fields"),
    pytest.param(minimal(13, fields={"country": "France"}), id="type13-fields-object"),
    pytest.param(minimal(13, fields=[{"newValue": "France"}]), id="type13-field-without-name"),
    pytest.param(minimal(13, fields=["country"]), id="type13-field-not-object"),
]


@pytest.mark.parametrize("record", MALFORMED_RECORDS)
def test_malformed(decoder, record):
    assert rejected(decoder, record).code == MALFORMED


def test_leadId_null_counts_as_missing(decoder):
    record = json.dumps(conference()).replace('"leadId": 1001', '"leadId": null')
    assert rejected(decoder, record).code == MALFORMED


@pytest.mark.parametrize("type_id", [999, 5, 100099, 99999])
def test_unknown_activity_type(decoder, type_id):
    result = rejected(decoder, conference(activityTypeId=type_id))
    assert result.code == UNKNOWN_ACTIVITY_TYPE
    assert str(type_id) in result.message


@pytest.mark.parametrize(
    "record",
    [
        minimal(100003, primaryAttributeValue="Intro to Kafka"),
        minimal(
            100003,
            marketoGUID="w-1",
            primaryAttributeValue="Intro to Kafka",
            attributes=[{"apiName": "minutesWatched", "value": 42}],
        ),
        minimal(100003),
    ],
)
def test_type_not_approved(decoder, record):
    assert rejected(decoder, record).code == TYPE_NOT_APPROVED


@pytest.mark.parametrize(
    ("record", "named"),
    [
        (conference(attributes=[{"apiName": "colour", "value": "red"}]), "colour"),
        (conference(attributes=[{"name": "Conference Venue", "value": "Hall A"}]), "Venue"),
        (
            conference(
                attributes=[
                    {"apiName": "track", "value": "data"},
                    {"apiName": "webpageUrl", "value": "/x"},  # another type's attribute
                ]
            ),
            "webpageUrl",
        ),
        # a pending draft's attribute is not in force until approved
        (
            minimal(
                100004, primaryAttributeValue="B12", attributes=[{"apiName": "venue", "value": "x"}]
            ),
            "venue",
        ),
        (minimal(1, attributes=[{"apiName": "colour", "value": "red"}]), "colour"),
        (minimal(400, primaryAttributeValue="buy", attributes=[{"name": "Colour"}]), "Colour"),
    ],
)
def test_unknown_attribute(decoder, record, named):
    result = rejected(decoder, record)
    assert result.code == UNKNOWN_ATTRIBUTE
    assert named in result.message


INVALID_RECORDS = [
    pytest.param(conference(activityDate="yesterday"), id="date-junk"),
    pytest.param(conference(activityDate="2026-09-26T06:56:35"), id="date-no-offset"),
    pytest.param(conference(activityDate="2026-09-26"), id="date-bare"),
    pytest.param(conference(activityDate="2026-02-30T10:00:00Z"), id="date-impossible"),
    pytest.param(conference(activityDate=""), id="date-empty"),
    pytest.param(conference(leadId=0), id="leadId-0"),
    pytest.param(conference(leadId="0"), id="leadId-string-0"),
    pytest.param(conference(leadId="abc"), id="leadId-abc"),
    pytest.param(conference(leadId=-3), id="leadId-negative"),
    pytest.param(conference(leadId="-3"), id="leadId-negative-string"),
    pytest.param(conference(leadId=1.5), id="leadId-fraction"),
    pytest.param(conference(leadId="12 34"), id="leadId-spaces"),
    pytest.param(conference(leadId=""), id="leadId-empty-string"),
    pytest.param(minimal(100002, primaryAttributeValue="abc"), id="primary-int-abc"),
    pytest.param(minimal(100002, primaryAttributeValue=12.5), id="primary-int-fraction"),
    pytest.param(minimal(100002, primaryAttributeValue=True), id="primary-int-true"),
    pytest.param(conference(primaryAttributeValue=True), id="primary-string-true"),
    pytest.param(conference(primaryAttributeValue={"a": 1}), id="primary-string-object"),
    pytest.param(
        conference(attributes=[{"apiName": "numberOfAttendees", "value": "many"}]),
        id="attr-int-junk",
    ),
    pytest.param(
        conference(attributes=[{"name": "Number of Attendees", "value": 12.5}]),
        id="attr-int-fraction",
    ),
    pytest.param(
        conference(attributes=[{"apiName": "conferenceDate", "value": "2026-10-01T09:00:00"}]),
        id="attr-datetime-no-offset",
    ),
    pytest.param(
        conference(attributes=[{"apiName": "badgeDay", "value": "01/10/2026"}]),
        id="attr-date-junk",
    ),
    pytest.param(
        conference(attributes=[{"apiName": "isSpeaker", "value": "yes"}]), id="attr-bool-yes"
    ),
    pytest.param(
        conference(attributes=[{"apiName": "ticketPrice", "value": "cheap"}]), id="attr-currency"
    ),
    pytest.param(
        conference(attributes=[{"apiName": "contactEmail", "value": "nobody"}]), id="attr-email"
    ),
    pytest.param(conference(attributes=[{"apiName": "track", "value": True}]), id="attr-text-bool"),
    pytest.param(minimal(400, primaryAttributeValue="x" * 21), id="mobile-action-21-chars"),
    pytest.param(
        minimal(400, primaryAttributeValue="Purchased a red shirt today"), id="mobile-action-long"
    ),
    pytest.param(
        minimal(
            400,
            primaryAttributeValue="buy",
            attributes=[{"name": "Action Length", "value": "long"}],
        ),
        id="mobile-float-junk",
    ),
    pytest.param(
        minimal(2, attributes=[{"name": "Webpage ID", "value": "page-7"}]), id="standard-int-junk"
    ),
]


@pytest.mark.parametrize("record", INVALID_RECORDS)
def test_invalid_value(decoder, record):
    assert rejected(decoder, record).code == INVALID_VALUE


def test_rejection_message_names_the_attribute_and_type(decoder):
    result = rejected(decoder, conference(attributes=[{"apiName": "colour", "value": "red"}]))
    assert "colour" in result.message
    assert "100001" in result.message


# --- accepted records ------------------------------------------------------------------------


def test_the_spec_example(decoder):
    activity = accepted(decoder, conference())
    assert activity.id == "102988"
    assert activity.lead_id == 1001
    assert activity.type_id == 100001
    assert activity.ts == utc_us(2026, 9, 25, 23, 56, 35)
    assert activity.primary == "PyCon"
    assert activity.attributes == {
        "conferenceDate": utc_us(2026, 10, 1, 9),
        "numberOfAttendees": 1200,
    }
    assert activity.fields == []
    assert activity.position == "activities/0/1"


def test_str_and_bytes_decode_alike(decoder):
    text = json.dumps(conference())
    assert decoder.decode(text, "p") == decoder.decode(text.encode(), "p")


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-09-26T06:56:35Z", utc_us(2026, 9, 26, 6, 56, 35)),
        ("2026-09-26T06:56:35+0000", utc_us(2026, 9, 26, 6, 56, 35)),
        ("2026-09-26T06:56:35+0700", utc_us(2026, 9, 25, 23, 56, 35)),
        ("2026-09-26T06:56:35-03:00", utc_us(2026, 9, 26, 9, 56, 35)),
        ("2026-09-26T06:56:35.250Z", utc_us(2026, 9, 26, 6, 56, 35, 250000)),
    ],
)
def test_activity_date_normalised_to_utc(decoder, date, expected):
    assert accepted(decoder, conference(activityDate=date)).ts == expected


@pytest.mark.parametrize(
    "attributes",
    [
        [{"apiName": "numberOfAttendees", "value": 1200}, {"apiName": "track", "value": "data"}],
        [{"name": "Number of Attendees", "value": 1200}, {"name": "Track", "value": "data"}],
        [{"apiName": "numberOfAttendees", "value": "1200"}, {"name": "Track", "value": "data"}],
    ],
)
def test_attributes_by_api_name_or_display_name(decoder, attributes):
    activity = accepted(decoder, conference(attributes=attributes))
    assert activity.attributes == {"numberOfAttendees": 1200, "track": "data"}


def test_every_data_type_is_coerced(decoder):
    activity = accepted(
        decoder,
        conference(
            attributes=[
                {"apiName": "conferenceDate", "value": "2026-10-01T11:00:00+02:00"},
                {"apiName": "numberOfAttendees", "value": "-12"},
                {"apiName": "ticketPrice", "value": "19.99"},
                {"apiName": "isSpeaker", "value": "TRUE"},
                {"apiName": "contactEmail", "value": "ada@example.com"},
                {"apiName": "badgeDay", "value": "2026-10-02"},
                {"apiName": "track", "value": 42},
            ]
        ),
    )
    assert activity.attributes == {
        "conferenceDate": utc_us(2026, 10, 1, 9),
        "numberOfAttendees": -12,
        "ticketPrice": 19.99,
        "isSpeaker": True,
        "contactEmail": "ada@example.com",
        "badgeDay": utc_us(2026, 10, 2),
        "track": "42",
    }


def test_attributes_left_out_or_null_are_empty(decoder):
    assert accepted(decoder, conference(attributes=None)).attributes == {}
    assert accepted(decoder, conference(attributes=[])).attributes == {}
    activity = accepted(
        decoder,
        conference(
            attributes=[
                {"apiName": "track", "value": None},
                {"apiName": "numberOfAttendees"},
                {"apiName": "isSpeaker", "value": False},
            ]
        ),
    )
    assert activity.attributes == {"isSpeaker": False}


@pytest.mark.parametrize(("lead", "expected"), [(1001, 1001), ("1001", 1001), ("42", 42), (1, 1)])
def test_lead_id_integer_or_digit_string(decoder, lead, expected):
    assert accepted(decoder, conference(leadId=lead)).lead_id == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(2026, "2026"), (-5, "-5"), (2.5, "2.5"), ("PyCon", "PyCon")],
)
def test_numbers_become_text_for_string_attributes(decoder, raw, expected):
    assert accepted(decoder, conference(primaryAttributeValue=raw)).primary == expected
    standard = accepted(
        decoder,
        minimal(1, primaryAttributeValue=raw, attributes=[{"name": "Webpage URL", "value": raw}]),
    )
    assert standard.primary == expected
    assert standard.attributes == {"webpageUrl": expected}


def test_primary_coerced_to_its_data_type(decoder):
    assert accepted(decoder, minimal(100002, primaryAttributeValue="12500")).primary == 12500
    assert accepted(decoder, minimal(100002, primaryAttributeValue=-7)).primary == -7


def test_approved_version_of_a_type_with_a_draft_is_in_force(decoder):
    activity = accepted(
        decoder,
        minimal(100004, primaryAttributeValue="B12", attributes=[{"name": "Hall", "value": "A"}]),
    )
    assert activity.primary == "B12"
    assert activity.attributes == {"hall": "A"}


def test_primary_attribute_value_id_is_allowed(decoder):
    activity = accepted(decoder, conference(primaryAttributeValueId=77))
    assert activity.primary == "PyCon"


# --- standard types ----------------------------------------------------------------------------


@pytest.mark.parametrize("type_id", [1, 2, 3, 12, 37])
def test_standard_types_accept_a_missing_primary(decoder, type_id):
    activity = accepted(decoder, minimal(type_id))
    assert activity.type_id == type_id
    assert activity.primary is None
    assert activity.attributes == {}


def test_standard_type_attributes(decoder):
    activity = accepted(
        decoder,
        minimal(
            2,
            primaryAttributeValue="Contact Us",
            attributes=[
                {"name": "Webpage ID", "value": "17"},
                {"apiName": "formFields", "value": "a=1&b=2"},
            ],
        ),
    )
    assert activity.primary == "Contact Us"
    assert activity.attributes == {"webpageId": 17, "formFields": "a=1&b=2"}


def test_mobile_action_name_of_nineteen_characters(decoder):
    name = "x" * 19
    activity = accepted(
        decoder,
        minimal(
            400,
            primaryAttributeValue=name,
            attributes=[
                {"name": "Action Length", "value": 3},
                {"apiName": "actionMetric", "value": "2.5"},
            ],
        ),
    )
    assert activity.primary == name
    assert activity.attributes == {"actionLength": 3.0, "actionMetric": 2.5}


def test_mobile_action_names_have_fewer_than_twenty_characters(decoder):
    """The mobile SDK's rule: fewer than 20, not at most 20."""
    rejection = rejected(decoder, minimal(400, primaryAttributeValue="x" * 20))
    assert rejection.code == INVALID_VALUE and "fewer than 20" in rejection.message


@pytest.mark.parametrize("name", [None, ""])
def test_a_mobile_action_without_a_name_is_rejected(decoder, name):
    record = minimal(400) if name is None else minimal(400, primaryAttributeValue=name)
    rejection = rejected(decoder, record)
    assert rejection.code == INVALID_VALUE and "needs a name" in rejection.message


def test_one_attribute_given_twice_with_different_values_is_rejected(decoder):
    """By apiName and by display name: the last one used to win silently."""
    record = conference(
        attributes=[
            {"apiName": "numberOfAttendees", "value": 1200},
            {"name": "Number of Attendees", "value": 12},
        ]
    )
    rejection = rejected(decoder, record)
    assert rejection.code == INVALID_VALUE
    assert "'numberOfAttendees' is given twice" in rejection.message
    same = conference(
        attributes=[
            {"apiName": "numberOfAttendees", "value": 1200},
            {"name": "Number of Attendees", "value": "1200"},
        ]
    )
    assert accepted(decoder, same).attributes["numberOfAttendees"] == 1200


def test_a_lead_id_beyond_64_bits_is_not_shown_as_a_float(decoder):
    raw = (
        b'{"leadId": 99999999999999999999999, "activityDate": "2026-09-26T10:00:00Z", '
        b'"activityTypeId": 2}'
    )
    rejection = rejected(decoder, raw)
    assert rejection.code == INVALID_VALUE
    assert "e+" not in rejection.message and "9223372036854775807" in rejection.message
    attribute = conference(attributes=[{"apiName": "numberOfAttendees", "value": 0}])
    raw = json.dumps(attribute).replace('"value": 0', '"value": 99999999999999999999999')
    rejection = rejected(decoder, raw.encode())
    assert "e+" not in rejection.message and "64-bit range" in rejection.message


def test_change_data_value_fields(decoder):
    activity = accepted(
        decoder,
        minimal(
            13,
            primaryAttributeValue="ignored",
            fields=[
                {"name": "country", "newValue": "France", "oldValue": "Spain"},
                {"name": "City", "newValue": None, "oldValue": "Madrid"},
                {"name": "score", "newValue": 42},
            ],
        ),
    )
    assert activity.primary == ["country", "City", "score"]
    assert activity.fields == [("country", "France"), ("City", None), ("score", "42")]


def test_change_data_value_needs_named_fields(decoder):
    result = rejected(decoder, minimal(13, fields=[{"name": "", "newValue": "x"}]))
    assert result.code in (MALFORMED, INVALID_VALUE)


def test_new_lead_fields_are_optional(decoder):
    assert accepted(decoder, minimal(12, primaryAttributeValue="Web form")).fields == []
    activity = accepted(
        decoder,
        minimal(
            12, primaryAttributeValue="Web form", fields=[{"name": "email", "newValue": "a@b"}]
        ),
    )
    assert activity.fields == [("email", "a@b")]
    assert activity.primary == "Web form"


# --- identity --------------------------------------------------------------------------------


def no_id(**changes: object) -> dict[str, object]:
    return conference(marketoGUID=None, **changes)


def test_identity_from_marketo_guid_then_id(decoder):
    assert accepted(decoder, conference(marketoGUID="g-1", id=5)).id == "g-1"
    assert accepted(decoder, conference(marketoGUID=None, id=5)).id == "5"
    assert accepted(decoder, conference(marketoGUID=None, id="abc")).id == "abc"
    assert accepted(decoder, conference(marketoGUID=123)).id == "123"


def test_identity_without_guid_or_id_is_a_content_hash(decoder):
    first = accepted(decoder, no_id())
    again = decoder.decode(json.dumps(no_id()).encode(), "activities/5/99")
    assert isinstance(again, Activity)
    assert first.id == again.id  # a producer's retry, read at another position
    assert first.id not in ("", "102988")
    guid = accepted(decoder, conference())
    assert guid.id != first.id


@pytest.mark.parametrize(
    "variant",
    [
        # attribute order
        {
            "attributes": [
                {"name": "Number of Attendees", "value": 1200},
                {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"},
            ]
        },
        # attribute named by display name instead of apiName, values in other JSON forms
        {
            "attributes": [
                {"name": "Conference Date", "value": "2026-10-01T11:00:00+02:00"},
                {"apiName": "numberOfAttendees", "value": "1200"},
            ]
        },
        # the same instant at another offset, the lead id as a digit string
        {"activityDate": "2026-09-25T23:56:35Z", "leadId": "1001"},
        # an empty attribute is the same as one left out
        {
            "attributes": [
                {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"},
                {"name": "Number of Attendees", "value": 1200},
                {"apiName": "track", "value": None},
            ]
        },
    ],
)
def test_same_content_same_hash(decoder, variant):
    assert accepted(decoder, no_id(**variant)).id == accepted(decoder, no_id()).id


@pytest.mark.parametrize(
    "variant",
    [
        {"leadId": 1002},
        {"activityDate": "2026-09-26T06:56:36+07:00"},
        {"activityDate": "2026-09-26T06:56:35.000001+07:00"},
        {"primaryAttributeValue": "EuroPython"},
        {"attributes": [{"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"}]},
        {
            "attributes": [
                {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"},
                {"name": "Number of Attendees", "value": 1201},
            ]
        },
        {
            "attributes": [
                {"apiName": "conferenceDate", "value": "2026-10-01T09:00:00Z"},
                {"name": "Number of Attendees", "value": 1200},
                {"apiName": "track", "value": "data"},
            ]
        },
    ],
)
def test_different_content_different_hash(decoder, variant):
    assert accepted(decoder, no_id(**variant)).id != accepted(decoder, no_id()).id


def test_hash_distinguishes_types_and_changed_fields(decoder):
    base = {"leadId": 9, "activityDate": "2026-09-26T10:00:00Z"}
    visit = accepted(decoder, base | {"activityTypeId": 1, "primaryAttributeValue": "/a"})
    click = accepted(decoder, base | {"activityTypeId": 3, "primaryAttributeValue": "/a"})
    assert visit.id != click.id
    change = {"activityTypeId": 13}
    country = accepted(decoder, base | change | {"fields": [{"name": "country", "newValue": "FR"}]})
    city = accepted(decoder, base | change | {"fields": [{"name": "city", "newValue": "FR"}]})
    assert country.id != city.id  # the primary (changed field names) differs


# --- out-of-range integers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(no_id(leadId="1" * 30), id="leadId-30-digits"),
        pytest.param(no_id(leadId="1" * 5000), id="leadId-5000-digits"),
        pytest.param(
            no_id(attributes=[{"apiName": "numberOfAttendees", "value": "9" * 30}]),
            id="attr-30-digits",
        ),
        pytest.param(minimal(100002, primaryAttributeValue="-" + "9" * 25), id="primary-25-digits"),
        pytest.param(
            conference(attributes=[{"apiName": "numberOfAttendees", "value": "9" * 5000}]),
            id="attr-5000-digits",
        ),
    ],
)
def test_integers_beyond_64_bits_are_invalid_values(decoder, record):
    """Not an exception out of the decoder (int() of a long string, orjson writing the
    content hash): a rejection like any other."""
    assert rejected(decoder, record).code == INVALID_VALUE


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_activity_date_outside_utc_range_is_invalid(decoder, date):
    """Not an OverflowError out of the content hash: a rejection."""
    assert rejected(decoder, no_id(activityDate=date)).code == INVALID_VALUE


# --- bugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            b'{"leadId": 9223372036854775808, "activityDate": "2026-09-26T10:00:00Z", '
            b'"activityTypeId": 2}',
            id="leadId-2^63",
        ),
        pytest.param(
            b'{"leadId": 18446744073709551615, "activityDate": "2026-09-26T10:00:00Z", '
            b'"activityTypeId": 2}',
            id="leadId-2^64-1",
        ),
        pytest.param(
            b'{"leadId": 1, "activityDate": "2026-09-26T10:00:00Z", "activityTypeId": 2, '
            b'"attributes": [{"apiName": "webpageId", "value": 9223372036854775808}]}',
            id="attr-2^63",
        ),
    ],
)
def test_json_integers_beyond_int64_are_invalid_like_their_strings(decoder, record):
    assert rejected(decoder, record).code == INVALID_VALUE


# --- limits (README "Poison inputs and limits") ---------------------------------------------


def attribute(api_name: str, value: object) -> dict[str, object]:
    return {"apiName": api_name, "value": value}


AT_THE_LIMIT = [
    pytest.param(conference(primaryAttributeValue="p" * 255), id="primary-255"),
    pytest.param(conference(attributes=[attribute("track", "t" * 65_535)]), id="text-65535"),
    pytest.param(conference(attributes=[attribute("track", "é" * 65_535)]), id="text-65535-2b"),
    pytest.param(
        minimal(100002, primaryAttributeValue=1, attributes=[attribute("branch", "b" * 255)]),
        id="string-attribute-255",
    ),
    pytest.param(conference(marketoGUID="g" * 255), id="guid-255"),
    pytest.param(conference(marketoGUID=None, id="i" * 255), id="id-255"),
    pytest.param(
        conference(attributes=[attribute("numberOfAttendees", 7)] * 50),
        id="50-attributes",
    ),
    pytest.param(
        minimal(13, fields=[{"name": f"f{n}", "newValue": "v"} for n in range(100)]),
        id="100-field-changes",
    ),
    pytest.param(
        minimal(13, fields=[{"name": "n" * 255, "newValue": "v" * 65_535}]),
        id="field-name-255-value-65535",
    ),
]


@pytest.mark.parametrize("record", AT_THE_LIMIT)
def test_values_at_the_limits_are_accepted(decoder, record):
    accepted(decoder, record)


OVER_THE_LIMIT = [
    pytest.param(
        conference(primaryAttributeValue="p" * 256), "primaryAttributeValue", id="primary-256"
    ),
    pytest.param(
        conference(primaryAttributeValue="p" * 100_000), "100000 characters", id="primary-100k"
    ),
    pytest.param(
        conference(attributes=[attribute("track", "t" * 65_536)]), "'track'", id="text-65536"
    ),
    pytest.param(
        conference(attributes=[attribute("contactEmail", "a" * 250 + "@b.example")]),
        "'contactEmail'",
        id="email-over-255",
    ),
    pytest.param(
        minimal(100002, primaryAttributeValue=1, attributes=[attribute("branch", "b" * 256)]),
        "'branch'",
        id="string-attribute-256",
    ),
    pytest.param(
        minimal(1, primaryAttributeValue="https://x.example/" + "p" * 300),
        "Webpage",
        id="std-primary",
    ),
    pytest.param(conference(marketoGUID="g" * 256), "marketoGUID/id", id="guid-256"),
    pytest.param(conference(marketoGUID=None, id="i" * 256), "marketoGUID/id", id="id-256"),
    pytest.param(
        conference(attributes=[attribute("numberOfAttendees", 7)] * 51),
        "51 entries",
        id="51-attributes",
    ),
    pytest.param(
        minimal(13, fields=[{"name": f"f{n}", "newValue": "v"} for n in range(101)]),
        "101 entries",
        id="101-field-changes",
    ),
    pytest.param(
        minimal(13, fields=[{"name": "n" * 256, "newValue": "v"}]),
        "fields[0].name",
        id="field-name-256",
    ),
    pytest.param(
        minimal(12, fields=[{"name": "note", "newValue": "v" * 65_536}]),
        "newValue",
        id="field-value-65536",
    ),
    pytest.param(
        conference(attributes=[attribute("track", "t" * 60_000)] * 9),
        "bytes long",
        id="record-size",
    ),
]


@pytest.mark.parametrize(("record", "named"), OVER_THE_LIMIT)
def test_values_over_the_limits_are_invalid_values(decoder, record, named):
    rejection = rejected(decoder, record)
    assert rejection.code == INVALID_VALUE, rejection
    assert named in rejection.message
    assert len(rejection.message) < 300, "the message does not copy the value"


def test_an_unknown_attribute_name_is_cut_in_the_message(decoder):
    rejection = rejected(decoder, conference(attributes=[attribute("x" * 100_000, 1)]))
    assert rejection.code == UNKNOWN_ATTRIBUTE
    assert len(rejection.message) < 200


NOW = utc_us(2026, 9, 26, 12)


@pytest.mark.parametrize(
    ("date", "ok"),
    [
        ("2026-09-27T12:00:00Z", True),  # exactly one day ahead
        ("2026-09-27T13:59:59+02:00", True),
        ("2026-09-27T12:00:00.000001Z", False),
        ("2026-10-01T00:00:00Z", False),
        ("9999-12-31T23:59:59Z", False),
        ("1970-01-01T00:00:00Z", True),  # the past is history, not an outlier
    ],
)
def test_dates_beyond_the_future_horizon_are_invalid_values(decoder, date, ok):
    raw = json.dumps(conference(activityDate=date)).encode()
    result = decoder.decode(raw, "activities/0/1", NOW)
    if ok:
        assert isinstance(result, Activity), result
    else:
        assert isinstance(result, Rejection)
        assert result.code == INVALID_VALUE
        assert (
            "more than 1 day ahead of the processing clock (2026-09-26T12:00:00" in result.message
        )
    assert isinstance(decoder.decode(raw, "activities/0/1"), Activity), "no clock, no horizon"


def test_the_future_horizon_is_the_decoders(decoder):
    hourly = Decoder(decoder.catalog, 3_600 * US)
    raw = json.dumps(conference(activityDate="2026-09-26T13:00:01Z")).encode()
    rejection = hourly.decode(raw, "p", NOW)
    assert isinstance(rejection, Rejection)
    assert "more than 1 hour ahead" in rejection.message
    assert isinstance(decoder.decode(raw, "p", NOW), Activity)
