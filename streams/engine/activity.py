"""Activity records: bytes off the topic to an `Activity`, or a `Rejection` with its code.

This is the hot path, so it is written by hand on orjson rather than with pydantic. The
record's own shape is checked first (malformed: not UTF-8, not JSON, not an object, a
required member missing or of the wrong JSON type), then its type (unknown_activity_type,
type_not_approved), then its values (invalid_value) and attributes one by one, in order
(a malformed entry, unknown_attribute, invalid_value): the first problem found is the one
reported.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from streams.engine.catalog import ActivityType, Catalog
from streams.engine.datatypes import (
    INT64_MAX,
    CoercionError,
    Value,
    format_us,
    number_text,
    parse_datetime_us,
)
from streams.engine.standard_types import (
    CHANGE_DATA_VALUE,
    MOBILE_ACTION_NAME_MAX,
    MOBILE_APP_ACTION,
    NEW_LEAD,
)

MALFORMED: Final = "malformed"
UNKNOWN_ACTIVITY_TYPE: Final = "unknown_activity_type"
TYPE_NOT_APPROVED: Final = "type_not_approved"
UNKNOWN_ATTRIBUTE: Final = "unknown_attribute"
INVALID_VALUE: Final = "invalid_value"
REJECTION_CODES: Final = (
    MALFORMED, UNKNOWN_ACTIVITY_TYPE, TYPE_NOT_APPROVED, UNKNOWN_ATTRIBUTE, INVALID_VALUE,
)  # fmt: skip

FieldChange = tuple[str, str | None]
"""A lead field set by types 12 and 13: (name as given, new value as text, None empties)."""


@dataclass(slots=True)
class Activity:
    id: str
    """The identity: `marketoGUID`, else `id`, else a hash of the canonical content."""
    lead_id: int
    type_id: int
    ts: int
    """`activityDate` in UTC microseconds."""
    primary: Value | list[str] | None
    """The primary attribute's value; for type 13, the list of the changed fields' names."""
    attributes: dict[str, Value]
    """Secondary attributes by apiName; an empty one is left out."""
    fields: list[FieldChange]
    position: str
    """Where the record was read (`topic/partition/offset`): a record read again at the same
    position is a redelivery, at another position a duplicate."""


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str


class _Reject(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.rejection = Rejection(code, message)


def _positive_int(raw: Any, member: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str | float):
        raise _Reject(MALFORMED, f"{member} must be an integer, not {type(raw).__name__}")
    if isinstance(raw, str):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
            raise _Reject(INVALID_VALUE, f"{member} {raw[:40]!r} is not a positive integer")
        raw = int(raw)
    if isinstance(raw, float) and raw.is_integer() and abs(raw) > INT64_MAX:
        # orjson reads an integer beyond 64 bits as a float: its digits are gone, so say
        # what is wrong rather than show `1e+23`.
        raise _Reject(INVALID_VALUE, f"{member} is an integer beyond {INT64_MAX} (64 bits)")
    if isinstance(raw, float) or not 1 <= raw <= INT64_MAX:
        raise _Reject(INVALID_VALUE, f"{member} {str(raw)[:40]} is not a positive 64-bit integer")
    return int(raw)


def _field_text(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return number_text(raw)
    raise _Reject(MALFORMED, f"a field value must be text, a number or null, not {raw!r}")


def _fields(raw: Any) -> list[FieldChange]:
    if not isinstance(raw, list):
        raise _Reject(MALFORMED, "fields must be a list of {name, newValue}")
    changes: list[FieldChange] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _Reject(MALFORMED, f"fields[{index}] must be an object with a text name")
        if not entry["name"].strip():
            raise _Reject(INVALID_VALUE, f"fields[{index}].name must not be empty")
        changes.append((entry["name"], _field_text(entry.get("newValue"))))
    return changes


class Decoder:
    """Decodes records against one catalog (the approved versions in force)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def decode(self, raw: bytes | str, position: str) -> Activity | Rejection:
        try:
            return self._decode(raw, position)
        except _Reject as reject:
            return reject.rejection

    def _decode(self, raw: bytes | str, position: str) -> Activity:
        try:
            obj = orjson.loads(raw)  # validates UTF-8 too
        except orjson.JSONDecodeError as exc:
            if isinstance(raw, bytes):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as bad:
                    raise _Reject(
                        MALFORMED, f"not UTF-8: {bad.reason} at byte {bad.start}"
                    ) from None
            raise _Reject(MALFORMED, f"not JSON: {exc}") from None
        if type(obj) is not dict:
            raise _Reject(MALFORMED, f"not a JSON object but {type(obj).__name__}")
        get = obj.get
        lead_raw = get("leadId")
        date_raw = get("activityDate")
        type_raw = get("activityTypeId")
        if lead_raw is None or date_raw is None or type_raw is None:
            for member in ("leadId", "activityDate", "activityTypeId"):
                if get(member) is None:
                    raise _Reject(MALFORMED, f"required member {member!r} is missing")
        if type(date_raw) is not str:
            raise _Reject(MALFORMED, "activityDate must be a string")
        type_id = (
            type_raw
            if type(type_raw) is int and 0 < type_raw <= INT64_MAX
            else _positive_int(type_raw, "activityTypeId")
        )
        lead_id = (
            lead_raw
            if type(lead_raw) is int and 0 < lead_raw <= INT64_MAX
            else _positive_int(lead_raw, "leadId")
        )
        identity = get("marketoGUID")
        if identity is None or identity == "":
            identity = get("id")
            if identity == "":
                identity = None  # an empty identity is none: the content hash stands in
        if identity is not None and type(identity) is not str:
            if type(identity) is not int:
                raise _Reject(MALFORMED, "marketoGUID/id must be a string or an integer")
            identity = str(identity)
        attributes_raw = get("attributes")
        if attributes_raw is not None and type(attributes_raw) is not list:
            raise _Reject(MALFORMED, "attributes must be a list")

        activity_type = self.catalog.types.get(type_id)
        if activity_type is None:
            if type_id in self.catalog.drafts:
                draft = self.catalog.drafts[type_id].definition
                raise _Reject(
                    TYPE_NOT_APPROVED,
                    f"activity type {type_id} ({draft.apiName}) is a draft, not approved",
                )
            raise _Reject(UNKNOWN_ACTIVITY_TYPE, f"activity type {type_id} does not exist")

        fields: list[FieldChange] = []
        if type_id == CHANGE_DATA_VALUE:
            if get("fields") is None:
                raise _Reject(MALFORMED, "required member 'fields' is missing (type 13)")
            fields = _fields(obj["fields"])
        elif type_id == NEW_LEAD and get("fields") is not None:
            fields = _fields(obj["fields"])

        attributes = self._attributes(activity_type, attributes_raw) if attributes_raw else {}
        try:
            ts = parse_datetime_us(date_raw)
        except CoercionError as exc:
            raise _Reject(INVALID_VALUE, f"activityDate: {exc}") from None
        primary = self._primary(activity_type, get("primaryAttributeValue"), fields)
        if identity is None:
            identity = _content_hash(lead_id, type_id, ts, primary, attributes, fields)
        return Activity(identity, lead_id, type_id, ts, primary, attributes, fields, position)

    def _primary(
        self, activity_type: ActivityType, raw: Any, fields: list[FieldChange]
    ) -> Value | list[str] | None:
        if activity_type.id == CHANGE_DATA_VALUE:
            return [name for name, _ in fields]
        if activity_type.id == MOBILE_APP_ACTION and (raw is None or raw == ""):
            raise _Reject(INVALID_VALUE, "a mobile action needs a name (primaryAttributeValue)")
        if raw is None or (raw == "" and activity_type.standard):
            if activity_type.standard:
                return None
            raise _Reject(
                MALFORMED,
                f"required member 'primaryAttributeValue' is missing "
                f"(activity type {activity_type.label})",
            )
        spec = activity_type.primary
        try:
            value = spec.coerce(raw)
        except CoercionError as exc:
            raise _Reject(INVALID_VALUE, f"primaryAttributeValue ({spec.name}): {exc}") from None
        if value == "" and not activity_type.standard:
            raise _Reject(INVALID_VALUE, f"primaryAttributeValue ({spec.name}) is empty")
        if (
            activity_type.id == MOBILE_APP_ACTION
            and isinstance(value, str)
            and len(value) > MOBILE_ACTION_NAME_MAX
        ):
            raise _Reject(
                INVALID_VALUE,
                f"primaryAttributeValue (Action) is {len(value)} characters long; "
                f"a mobile action name has fewer than {MOBILE_ACTION_NAME_MAX + 1} "
                "(the mobile SDK's rule)",
            )
        return value

    @staticmethod
    def _attributes(activity_type: ActivityType, raw: list[Any]) -> dict[str, Value]:
        attributes: dict[str, Value] = {}
        given: dict[str, str] = {}
        """The key each attribute was given by: the same one twice must agree."""
        by_key = activity_type.by_key
        for index, entry in enumerate(raw):
            if type(entry) is not dict:
                raise _Reject(MALFORMED, f"attributes[{index}] is not an object")
            key = entry.get("apiName")
            if key is None:
                key = entry.get("name")
            if type(key) is not str:
                raise _Reject(MALFORMED, f"attributes[{index}] has no apiName or name")
            spec = by_key.get(key)
            if spec is None:
                raise _Reject(
                    UNKNOWN_ATTRIBUTE,
                    f"attribute {key!r} is not defined on activity type {activity_type.label}",
                )
            value = entry.get("value")
            if value is None or value == "":
                coerced: Value | None = None  # an empty attribute is left out
            elif type(value) is spec.native and (type(value) is not int or value <= INT64_MAX):
                coerced = entry["value"]  # already the coerced value
            else:
                try:
                    coerced = spec.coerce(value)
                except CoercionError as exc:
                    raise _Reject(INVALID_VALUE, f"attribute {key!r}: {exc}") from None
            first = given.get(spec.api_name)
            if first is None:
                given[spec.api_name] = key
            elif attributes.get(spec.api_name) != coerced:
                raise _Reject(
                    INVALID_VALUE,
                    f"attribute {spec.api_name!r} is given twice (as {first!r} and {key!r}) "
                    "with different values",
                )
            if coerced is not None:
                attributes[spec.api_name] = coerced
        return attributes


def _content_hash(
    lead_id: int,
    type_id: int,
    ts: int,
    primary: Value | list[str] | None,
    attributes: dict[str, Value],
    fields: list[FieldChange],
) -> str:
    """The identity of a record without `marketoGUID` or `id`: its canonical content, so a
    producer's retry is the same activity. Field changes count as content too (two changes
    of different fields at the same instant are two activities)."""
    canonical = orjson.dumps(
        [lead_id, type_id, format_us(ts), primary, sorted(attributes.items()), fields]
    )
    return "h-" + hashlib.sha256(canonical).hexdigest()[:32]


def dead_letter(
    raw: bytes | str, rejection: Rejection, topic: str, partition: int, offset: int
) -> dict[str, Any]:
    """The dead-letter record of activities.md; undecodable bytes also travel as base64."""
    record: dict[str, Any] = {
        "error": {"code": rejection.code, "message": rejection.message},
    }
    if isinstance(raw, bytes):
        try:
            record["record"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["record"] = raw.decode("utf-8", errors="replace")
            record["recordBase64"] = base64.b64encode(raw).decode("ascii")
    else:
        record["record"] = raw
    record.update(topic=topic, partition=partition, offset=offset)
    return record
