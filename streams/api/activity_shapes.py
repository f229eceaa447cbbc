"""Decoded activities in Marketo's shapes, as the reads return them: the integer `id` of a
`marketoGUID`, attributes by display name, lead field changes with their old values.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

from streams.engine.activity import Activity
from streams.engine.catalog import ActivityType
from streams.engine.datatypes import Value, display_value, format_us, number_text
from streams.engine.standard_types import DELETE_LEAD

_EXACT_ID_LIMIT: Final = 2**52
"""Numeric identities below this are their own `id`; others hash into [2**52, 2**53)."""


def activity_number(identity: str) -> int:
    """Marketo's integer `id` for an activity identity (`marketoGUID`): the number itself
    for a canonical decimal identity below 2**52, else a 52-bit hash of it plus 2**52, so
    the two kinds never collide and every id stays exact in JSON clients (< 2**53)."""
    if identity.isascii() and identity.isdigit() and len(identity) <= 16:
        number = int(identity)
        if 0 < number < _EXACT_ID_LIMIT and str(number) == identity:
            return number
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return _EXACT_ID_LIMIT + int.from_bytes(digest, "big") % _EXACT_ID_LIMIT


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return value


def _attributes(activity_type: ActivityType, values: dict[str, Value]) -> list[dict[str, Any]]:
    return [
        {"name": spec.name, "value": display_value(spec.data_type, values[spec.api_name])}
        for spec in activity_type.attributes
        if spec.api_name in values
    ]


def _raw_fields(record: dict[str, Any]) -> list[Any]:
    fields = record.get("fields")
    return fields if isinstance(fields, list) else []


def _field_entry(name: str, new_value: str | None, raw: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if isinstance(raw, dict):
        field_id = raw.get("id")
        if isinstance(field_id, int) and not isinstance(field_id, bool):
            entry["id"] = field_id
    old = raw.get("oldValue") if isinstance(raw, dict) else None
    if isinstance(old, bool):
        old = "true" if old else "false"
    elif isinstance(old, int | float):
        old = number_text(old)
    elif not isinstance(old, str):
        old = None
    entry.update(name=name, newValue=new_value, oldValue=old)
    return entry


def identity(activity: Activity) -> dict[str, Any]:
    """The members every read result starts with."""
    return {
        "id": activity_number(activity.id),
        "marketoGUID": activity.id,
        "leadId": activity.lead_id,
        "activityDate": format_us(activity.ts),
        "activityTypeId": activity.type_id,
    }


def activity_result(activity_type: ActivityType, activity: Activity, raw: bytes) -> dict[str, Any]:
    """A result of Get Lead Activities or Get Deleted Leads; `raw` is the record as on the
    topic (for the members the decoder does not keep: `primaryAttributeValueId`, old values)."""
    result = identity(activity)
    record = orjson.loads(raw)
    value_id = record.get("primaryAttributeValueId")
    if isinstance(value_id, int) and not isinstance(value_id, bool):
        result["primaryAttributeValueId"] = value_id
    elif activity.type_id == DELETE_LEAD:
        result["primaryAttributeValueId"] = activity.lead_id  # as Marketo: the lead's id
    primary = activity.primary
    attributes = _attributes(activity_type, activity.attributes)
    if isinstance(primary, list):  # Change Data Value: the changed fields' names
        result["primaryAttributeValue"] = ", ".join(primary)
        if len(activity.fields) == 1:
            raw_fields = _raw_fields(record)
            change = _field_entry(*activity.fields[0], raw_fields[0] if raw_fields else None)
            attributes[:0] = [
                {"name": "New Value", "value": change["newValue"]},
                {"name": "Old Value", "value": change["oldValue"]},
            ]
    elif primary is None:
        result["primaryAttributeValue"] = None
    else:
        result["primaryAttributeValue"] = _text(
            display_value(activity_type.primary.data_type, primary)
        )
    result["attributes"] = attributes
    return result


def lead_change_result(
    activity_type: ActivityType, activity: Activity, raw: bytes, wanted: set[str]
) -> dict[str, Any]:
    """A result of Get Lead Changes: only the changes of the `wanted` (case-folded) fields."""
    raw_fields = _raw_fields(orjson.loads(raw))
    changes = [
        _field_entry(name, new, raw_fields[i] if i < len(raw_fields) else None)
        for i, (name, new) in enumerate(activity.fields)
        if name.casefold() in wanted
    ]
    return {
        **identity(activity),
        "fields": changes,
        "attributes": _attributes(activity_type, activity.attributes),
    }
