"""Activity records: bytes off the topic to an `Activity`, or a `Rejection` with its code.

This is the hot path, so it is written by hand on orjson rather than with pydantic. The
record's own shape is checked first (malformed: not UTF-8, not JSON, not an object, a
required member missing or of the wrong JSON type), then its type (unknown_activity_type,
type_not_approved), then its values (invalid_value) and attributes one by one, in order
(a malformed entry, unknown_attribute, invalid_value): the first problem found is the one
reported.

Every value a record controls is bounded here, the one decoder the API, `produce` and the
workers share, so that nothing unbounded reaches a lead's state: the record's size, the
length of every string (Marketo's limits: 255 characters for the primary value and string,
email, phone and link attributes, 65,535 for text), the identity, the number of attributes
and of field changes, field names and values, and an `activityDate` no further ahead of
the processing clock than the future horizon. A value over a bound is `invalid_value`.

Two paths give one answer. `Decoder.reference_decode` checks everything in the order above
and names the first problem; `Decoder.decode` first tries a fast path for the common shape
(bytes, integer ids, a known type, attributes by name with values of their own JSON type),
with per-type attribute tables built once per catalog. The fast path accepts a record only
when the reference would accept it with the same `Activity`; on anything else (a problem,
an unusual but valid form) it gives up and the reference decides, so every rejection and
its message come from the reference. tests/unit/test_decode_differential.py holds the two
to identical results on generated hostile records.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import orjson

from streams.engine.catalog import ActivityType, Catalog
from streams.engine.datatypes import (
    INT64_MAX,
    INT64_MIN,
    US_PER_DAY,
    CoercionError,
    DataType,
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
from streams.engine.typed_records import Limits, record_decoder

MALFORMED: Final = "malformed"
UNKNOWN_ACTIVITY_TYPE: Final = "unknown_activity_type"
TYPE_NOT_APPROVED: Final = "type_not_approved"
UNKNOWN_ATTRIBUTE: Final = "unknown_attribute"
INVALID_VALUE: Final = "invalid_value"
REJECTION_CODES: Final = (
    MALFORMED, UNKNOWN_ACTIVITY_TYPE, TYPE_NOT_APPROVED, UNKNOWN_ATTRIBUTE, INVALID_VALUE,
)  # fmt: skip

MAX_RECORD_BYTES: Final = 524_288
"""A record's size as UTF-8 JSON: room for a full text attribute even written as \\u escapes."""
MAX_STRING_CHARS: Final = 255
"""The primary value, and string, email, phone and link attributes (Marketo's limit)."""
MAX_TEXT_CHARS: Final = 65_535
"""Text attributes (Marketo's limit)."""
MAX_IDENTITY_CHARS: Final = 255
"""`marketoGUID` or `id`, as text."""
MAX_ATTRIBUTES: Final = 50
"""Entries in `attributes` (a type has at most 21 attributes: the primary and 20 more)."""
MAX_FIELD_CHANGES: Final = 100
"""Entries in `fields` (types 12 and 13)."""
MAX_FIELD_NAME_CHARS: Final = 255
MAX_FIELD_VALUE_CHARS: Final = 65_535
DEFAULT_FUTURE_HORIZON_US: Final = US_PER_DAY
"""How far ahead of the processing clock an `activityDate` may be."""
DEAD_LETTER_RECORD_MAX_BYTES: Final = 65_536
"""How much of a rejected record a dead letter copies (`dead_letter`)."""
DEAD_LETTER_MESSAGE_MAX_CHARS: Final = 1_000
"""The longest `error.message` a dead letter carries."""

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


def _max_chars(data_type: DataType) -> int:
    return MAX_TEXT_CHARS if data_type is DataType.TEXT else MAX_STRING_CHARS


def _too_long(what: str, value: str, limit: int) -> _Reject:
    return _Reject(INVALID_VALUE, f"{what} is {len(value)} characters long; at most {limit}")


def _field_text(raw: Any) -> str | None:
    if isinstance(raw, str):
        if len(raw) > MAX_FIELD_VALUE_CHARS:
            raise _too_long("a field's newValue", raw, MAX_FIELD_VALUE_CHARS)
        return raw
    if raw is None:
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return number_text(raw)
    raise _Reject(MALFORMED, f"a field value must be text, a number or null, not {raw!r}")


def _fields(raw: Any) -> list[FieldChange]:
    if not isinstance(raw, list):
        raise _Reject(MALFORMED, "fields must be a list of {name, newValue}")
    if len(raw) > MAX_FIELD_CHANGES:
        raise _Reject(INVALID_VALUE, f"fields has {len(raw)} entries; at most {MAX_FIELD_CHANGES}")
    changes: list[FieldChange] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _Reject(MALFORMED, f"fields[{index}] must be an object with a text name")
        if not entry["name"].strip():
            raise _Reject(INVALID_VALUE, f"fields[{index}].name must not be empty")
        if len(entry["name"]) > MAX_FIELD_NAME_CHARS:
            raise _too_long(f"fields[{index}].name", entry["name"], MAX_FIELD_NAME_CHARS)
        changes.append((entry["name"], _field_text(entry.get("newValue"))))
    return changes


class Decoder:
    """Decodes records against one catalog (the approved versions in force)."""

    def __init__(
        self, catalog: Catalog, future_horizon_us: int = DEFAULT_FUTURE_HORIZON_US
    ) -> None:
        self.catalog = catalog
        self.future_horizon_us = future_horizon_us
        self._typed = record_decoder(
            catalog.types, Limits(_max_chars, MAX_IDENTITY_CHARS, MAX_ATTRIBUTES)
        )
        self._typed_decode: Callable[[bytes], Any] = self._typed.decode
        """Bound once: no method lookup per record."""

    def decode(
        self, raw: bytes | str, position: str, now_us: int | None = None
    ) -> Activity | Rejection:
        """`now_us` is the processing clock the future horizon counts from; None skips
        that check (reading back records that were accepted when they were written).

        The same result as `reference_decode`, faster for the common shape."""
        if type(raw) is bytes and len(raw) <= MAX_RECORD_BYTES:
            try:
                record = self._typed_decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                record = None  # RecursionError: msgspec nests on the interpreter's stack
            if record is not None:
                try:
                    activity = self._fast(record, position, now_us)
                except (_Reject, CoercionError):
                    activity = None
                if activity is not None:
                    return activity
        return self.reference_decode(raw, position, now_us)

    def _fast(self, record: Any, position: str, now_us: int | None) -> Activity | None:
        """The activity of a record the types of `typed_records` let through, or None to
        leave it to the reference (what they do not express, found wrong or unusual here).
        A `_Reject` or `CoercionError` raised here means the same."""
        activity_type: ActivityType = record.activity_type
        type_id = activity_type.id
        identity: str | None = record.marketoGUID
        if identity is None:
            identity = record.id
        date_raw: str = record.activityDate
        ts = parse_datetime_us(date_raw)
        attributes: dict[str, Value] = {}
        entries: list[Any] = record.attributes
        for entry in entries:
            value = entry.value
            meta: tuple[str, Any, int, bool] = entry.meta
            convert = meta[1]
            if convert is not None:
                if meta[3] and value == date_raw:
                    value = ts  # the activity's own date, already parsed
                else:
                    value = convert(value)
                    if type(value) is str and len(value) > meta[2]:
                        return None
            attributes[meta[0]] = value
        if len(attributes) != len(entries):
            return None  # an attribute given twice
        fields: list[FieldChange] = []
        if type_id in (CHANGE_DATA_VALUE, NEW_LEAD):
            fields_raw = record.fields
            if fields_raw is not None:
                if not _flat_fields(fields_raw):
                    return None
                fields = _fields(fields_raw)
            elif type_id == CHANGE_DATA_VALUE:
                return None
        if now_us is not None and ts > now_us + self.future_horizon_us:
            return None
        primary = record.primaryAttributeValue
        if not record.plain_primary and not _orjson_scalar(primary):
            return None
        if primary is None or not record.plain_primary:
            primary = self._primary(activity_type, primary, fields)
        lead_id: int = record.leadId
        if identity is None:
            identity = _content_hash(lead_id, type_id, ts, primary, attributes, fields)
        return Activity(identity, lead_id, type_id, ts, primary, attributes, fields, position)

    def reference_decode(
        self, raw: bytes | str, position: str, now_us: int | None = None
    ) -> Activity | Rejection:
        """Every check in the order the module docstring gives, naming the first problem:
        the reference `decode` is held to, and the path of every record it doubts."""
        try:
            return self._decode(raw, position, now_us)
        except _Reject as reject:
            return reject.rejection

    def _decode(self, raw: bytes | str, position: str, now_us: int | None) -> Activity:
        size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
        if size > MAX_RECORD_BYTES:
            raise _Reject(
                INVALID_VALUE, f"the record is {size} bytes long; at most {MAX_RECORD_BYTES}"
            )
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
        elif identity is not None and len(identity) > MAX_IDENTITY_CHARS:
            raise _too_long("marketoGUID/id", identity, MAX_IDENTITY_CHARS)
        attributes_raw = get("attributes")
        if attributes_raw is not None and type(attributes_raw) is not list:
            raise _Reject(MALFORMED, "attributes must be a list")
        if attributes_raw is not None and len(attributes_raw) > MAX_ATTRIBUTES:
            raise _Reject(
                INVALID_VALUE,
                f"attributes has {len(attributes_raw)} entries; at most {MAX_ATTRIBUTES}",
            )

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
        if now_us is not None and ts > now_us + self.future_horizon_us:
            raise _Reject(
                INVALID_VALUE,
                f"activityDate {format_us(ts)} is more than {_duration(self.future_horizon_us)}"
                f" ahead of the processing clock ({format_us(now_us)})",
            )
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
        if type(value) is str and len(value) > _max_chars(spec.data_type):
            raise _too_long(
                f"primaryAttributeValue ({spec.name})", value, _max_chars(spec.data_type)
            )
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
                    f"attribute {key[:80]!r} is not defined on activity type {activity_type.label}",
                )
            value: Any = entry.get("value")  # any JSON: typed, mypyc would raise TypeError
            if value is None or value == "":
                coerced: Value | None = None  # an empty attribute is left out
            elif type(value) is spec.native and (type(value) is not int or value <= INT64_MAX):
                coerced = entry["value"]  # already the coerced value
            else:
                try:
                    coerced = spec.coerce(value)
                except CoercionError as exc:
                    raise _Reject(INVALID_VALUE, f"attribute {key!r}: {exc}") from None
            if type(coerced) is str and len(coerced) > _max_chars(spec.data_type):
                raise _too_long(f"attribute {key!r}", coerced, _max_chars(spec.data_type))
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


_ORJSON_INTS: Final = range(INT64_MIN, 2**64)
"""The integers orjson reads as integers; beyond them it reads a float (or refuses)."""


def _orjson_scalar(value: Any) -> bool:
    """Whether a value msgspec read as `Any` is what orjson reads from the same text: not a
    list or object (whose depth and members msgspec checks differently) and no integer
    orjson would read as a float."""
    if type(value) is int:
        return value in _ORJSON_INTS
    return type(value) is not list and type(value) is not dict


def _flat_fields(raw: Any) -> bool:
    """Whether `fields` as msgspec read it (`Any`) is what orjson reads: a list of objects
    whose members are all `_orjson_scalar` (anything else is the reference's to judge)."""
    if type(raw) is not list:
        return False
    for entry in raw:
        if type(entry) is not dict:
            return False
        for value in entry.values():
            if not _orjson_scalar(value):
                return False
    return True


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
    ordered = sorted(attributes.items()) if attributes else []
    canonical = orjson.dumps([lead_id, type_id, format_us(ts), primary, ordered, fields])
    return "h-" + hashlib.sha256(canonical).hexdigest()[:32]


def _duration(us: int) -> str:
    """`US_PER_DAY` -> "1 day"; other spans in hours or seconds, for messages."""
    for unit, size in (("day", US_PER_DAY), ("hour", 3_600_000_000), ("second", 1_000_000)):
        if us % size == 0:
            count = us // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{us} µs"


def dead_letter(
    raw: bytes | str,
    rejection: Rejection,
    topic: str,
    partition: int,
    offset: int,
    record_max_bytes: int = DEAD_LETTER_RECORD_MAX_BYTES,
) -> dict[str, Any]:
    """The dead-letter record of activities.md; undecodable bytes also travel as base64.

    Bounded, so that it always fits in a Kafka message: at most `record_max_bytes` of the
    original are copied; a longer record is cut there and the letter says so with
    `recordTruncated`, `recordLength` (bytes) and `recordSha256` (of the whole original,
    hex). The message is cut at `DEAD_LETTER_MESSAGE_MAX_CHARS`."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    record: dict[str, Any] = {
        "error": {
            "code": rejection.code,
            "message": rejection.message[:DEAD_LETTER_MESSAGE_MAX_CHARS],
        },
    }
    kept = data[:record_max_bytes]
    if isinstance(raw, str) and len(kept) == len(data):
        record["record"] = raw
    else:
        try:
            record["record"] = kept.decode("utf-8")
        except UnicodeDecodeError as bad:
            if len(kept) < len(data) and bad.start >= len(kept) - 3:
                # Only the cut split a character: the text is fine up to it.
                record["record"] = kept[: bad.start].decode("utf-8", errors="replace")
            else:
                record["record"] = kept.decode("utf-8", errors="replace")
                record["recordBase64"] = base64.b64encode(kept).decode("ascii")
    if len(kept) < len(data):
        record.update(_original(data))
    record.update(topic=topic, partition=partition, offset=offset)
    return record


def _original(data: bytes) -> dict[str, Any]:
    return {
        "recordTruncated": True,
        "recordLength": len(data),
        "recordSha256": hashlib.sha256(data).hexdigest(),
    }


def minimal_dead_letter(
    raw: bytes | str,
    rejection: Rejection,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
) -> dict[str, Any]:
    """The dead letter sent when the full one (`dead_letter`) could not be: the position,
    the error, the original's length and hash, and why the full letter was not sent
    (`deadLetterError`). It is a few hundred bytes, whatever the record."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    return {
        "error": {"code": rejection.code, "message": rejection.message[:200]},
        "record": "",
        **_original(data),
        "deadLetterError": reason[:500],
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }
