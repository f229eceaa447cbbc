"""The catalog as msgspec types: the decoder's fast path reads a record in one C call.

One Struct per approved type, tagged by `activityTypeId`, and per type one Struct per
secondary attribute, tagged by `apiName`, whose `value` has the attribute's JSON type and
limits (`Meta`): a record of the common shape comes out of `msgspec.json.Decoder.decode`
with its ids, identity, primary value and attribute values already checked. The types say
less than the rules: whatever they let through, the decoder still checks in Python what
they do not express (dates, the duplicates of an attribute, fields), and whatever they
refuse goes to the reference decoder, which names the problem. So a type here may be
stricter than the rules (an empty identity, an attribute given by display name, a `null`
value, an id written as text all take the reference path), never laxer.

msgspec's JSON reader is as strict as orjson's on what it reads into a value (not UTF-8,
lone surrogates, NaN, trailing bytes), but not on what it skips: it passes over unknown
members without checking their UTF-8 or whether their numbers overflow a double, which
orjson refuses. So no member is skipped: the Structs forbid unknown members, and name the
few a producer adds that the decoder ignores (`primaryAttributeValueId`; `name` beside an
attribute's `apiName`) with types orjson agrees on; a record with any other member takes
the reference path. Where a Struct reads `Any` (`fields`, a primary value that is not
plain text), msgspec keeps an integer beyond 64 bits that orjson reads as a float (or
refuses as infinite) and nests as deep as the interpreter's recursion limit, so the decoder
gives up on such values itself (`streams.engine.activity`). The Structs are never laxer
than the reference; tests/unit/test_decode_differential.py holds the two paths to one
answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Union

import msgspec

from streams.engine.catalog import ActivityType, AttributeSpec
from streams.engine.datatypes import INT64_MAX, INT64_MIN, DataType, Value
from streams.engine.standard_types import CHANGE_DATA_VALUE, MOBILE_APP_ACTION, NEW_LEAD

_INT64: Final[Any] = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
_NATIVE_TEXT: Final = frozenset({DataType.STRING, DataType.TEXT, DataType.PHONE, DataType.LINK})
"""Text types whose JSON string is the value as it is (email is checked by `coerce`)."""


class Limits:
    """The decoder's bounds the types carry (`streams.engine.activity` defines them)."""

    __slots__ = ("attributes", "identity_chars", "max_chars")

    def __init__(
        self, max_chars: Callable[[DataType], int], identity_chars: int, attributes: int
    ) -> None:
        self.max_chars = max_chars
        """The longest text value of an attribute (or primary value) of a data type."""
        self.identity_chars = identity_chars
        self.attributes = attributes


def _value_type(
    spec: AttributeSpec, limits: Limits
) -> tuple[Any, Callable[[object], Value] | None]:
    """The msgspec type of an attribute's `value`, and the conversion still due in Python
    (None: the decoded value is the attribute's value)."""
    data_type = spec.data_type
    if data_type in _NATIVE_TEXT:
        limit = limits.max_chars(data_type)
        return Annotated[str, msgspec.Meta(min_length=1, max_length=limit)], None
    if data_type is DataType.INTEGER:
        return _INT64, None
    if data_type in (DataType.FLOAT, DataType.CURRENCY):
        return float, None  # a JSON integer becomes a float, as `coerce` makes it
    if data_type is DataType.BOOLEAN:
        return bool, None
    return Annotated[str, msgspec.Meta(min_length=1)], spec.coerce  # email, date, datetime


def _attribute_struct(type_id: int, spec: AttributeSpec, limits: Limits) -> Any:
    value_type, convert = _value_type(spec, limits)
    return msgspec.defstruct(
        f"Attribute{type_id}_{spec.api_name}",
        [("value", value_type), ("name", str | None, None)],
        tag_field="apiName",
        forbid_unknown_fields=True,
        tag=spec.api_name,
        # What the decoder needs of the attribute, read as one class attribute: (apiName,
        # the conversion still due or None, the longest text, whether a date-time: a
        # value equal to the record's activityDate is that date, parsed once).
        namespace={
            "meta": (
                spec.api_name,
                convert,
                limits.max_chars(spec.data_type),
                spec.data_type is DataType.DATETIME,
            )
        },
    )


def _plain_primary(activity_type: ActivityType) -> bool:
    """Whether a non-empty JSON string within the limit is the primary value as it is."""
    return activity_type.primary.data_type in _NATIVE_TEXT and activity_type.id not in (
        CHANGE_DATA_VALUE,
        MOBILE_APP_ACTION,
    )


def _record_struct(activity_type: ActivityType, limits: Limits) -> Any:
    identity_limit = limits.identity_chars
    identity = Annotated[str, msgspec.Meta(min_length=1, max_length=identity_limit)] | None
    primary: Any = Any
    plain = _plain_primary(activity_type)
    if plain:
        limit = limits.max_chars(activity_type.primary.data_type)
        primary = Annotated[str, msgspec.Meta(min_length=1, max_length=limit)] | None
    entries = [
        _attribute_struct(activity_type.id, spec, limits)
        for spec in activity_type.attributes
        if activity_type.by_key.get(spec.api_name) is spec
    ]  # an apiName that is another attribute's display name means that one (`by_key`)
    entry: Any = Union[tuple(entries)] if entries else Any  # noqa: UP007
    attributes_limit = limits.attributes if entries else 0
    fields: list[Any] = [
        ("leadId", Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]),
        ("activityDate", str),
        ("marketoGUID", identity, None),
        ("id", identity, None),
        ("primaryAttributeValue", primary, None),
        ("attributes", Annotated[list[entry], msgspec.Meta(max_length=attributes_limit)], []),
        ("primaryAttributeValueId", _INT64 | None, None),
    ]
    if activity_type.id in (CHANGE_DATA_VALUE, NEW_LEAD):
        fields.append(("fields", Any, None))
    return msgspec.defstruct(
        f"Record{activity_type.id}",
        fields,
        tag_field="activityTypeId",
        tag=activity_type.id,
        forbid_unknown_fields=True,
        namespace={"activity_type": activity_type, "plain_primary": plain},
    )


def record_decoder(types: dict[int, ActivityType], limits: Limits) -> msgspec.json.Decoder[Any]:
    """Bytes -> the Struct of the record's type; `msgspec.DecodeError` (its subclass
    `ValidationError` included) or `UnicodeDecodeError` for anything the types refuse."""
    structs = [_record_struct(t, limits) for t in types.values()]
    return msgspec.json.Decoder(Union[tuple(structs)])  # noqa: UP007
