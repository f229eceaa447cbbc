"""From a membership event to the request of one action: pure, no clock, no I/O.

`build_request(use, event)` fills the action's template with the event's values (the
spec's members plus `activityPrimary`, `activityAttributes` and `leadFields`, which the
engine adds to events of campaigns that list actions): the method, the URL with the
campaign's path (each variable segment percent-encoded), the headers and query
parameters, the JSON body. An optional variable without a value leaves its member, list
element, header or query parameter out; a required one makes the result a `MissingValue`
naming it, which the dispatcher turns into a dead letter. The `Idempotency-Key` is a
UUID 5 of (eventId, action name): a redelivered membership makes the same calls.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson

from streams.actions.compiled import ActionUse, Part
from streams.actions.variables import ATTRIBUTES, FIELDS, PRIMARY, SIMPLE, Variable

KEY_NAMESPACE: Final = uuid.UUID("2d3c7f0e-8b4a-5e61-9c2d-7a1b3e5f9d04")
_ABSENT: Final = object()
_CONTROL: Final = {i: " " for i in (*range(32), 127) if i != 9}
"""Control characters (a lead field with a new line, say) become spaces in headers."""


def idempotency_key(event_id: str, action: str) -> str:
    return str(uuid.uuid5(KEY_NAMESPACE, f"{event_id}/{action}"))


@dataclass(frozen=True, slots=True)
class CallRequest:
    action: str
    endpoint: str
    method: str
    url: str
    headers: dict[str, str]
    query: list[tuple[str, str]]
    body: bytes | None
    idempotency_key: str
    event_id: str
    campaign_id: int
    lead_id: int


@dataclass(frozen=True, slots=True)
class MissingValue:
    variable: str
    """As written, `$lead.fields.country`."""


class _Missing(Exception):
    def __init__(self, variable: Variable) -> None:
        self.variable = variable


def value_of(variable: Variable, event: dict[str, Any]) -> Any:
    """The variable's value in the event, or `_ABSENT`; empty text counts as absent."""
    name = variable.name
    member = SIMPLE.get(name)
    if member is not None:
        value = event.get(member, _ABSENT)
    elif name == PRIMARY:
        value = event.get("activityPrimary", _ABSENT)
    elif name.startswith(ATTRIBUTES):
        attributes = event.get("activityAttributes")
        value = attributes.get(variable.key, _ABSENT) if isinstance(attributes, dict) else _ABSENT
    elif name.startswith(FIELDS):
        fields = event.get("leadFields")
        key = variable.key.casefold()
        value = fields.get(key, _ABSENT) if isinstance(fields, dict) else _ABSENT
    else:  # pragma: no cover - parse_value knows no other variable
        value = _ABSENT
    return _ABSENT if value is None or value == "" else value


def _render(node: Any, event: dict[str, Any]) -> Any:
    if isinstance(node, Variable):
        value = value_of(node, event)
        if value is _ABSENT and not node.optional:
            raise _Missing(node)
        return value
    if isinstance(node, dict):
        out = {}
        for key, child in node.items():
            value = _render(child, event)
            if value is not _ABSENT:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (_render(child, event) for child in node) if v is not _ABSENT]
    return node


def as_text(value: Any) -> str:
    """A value in a header, a query parameter or a path segment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _text(part: Part, event: dict[str, Any]) -> str | None:
    if isinstance(part, str):
        return part
    value = _render(part, event)
    return None if value is _ABSENT else as_text(value)


def build_request(use: ActionUse, event: dict[str, Any]) -> CallRequest | MissingValue:
    action = use.action
    try:
        url = action.url.rstrip("/") if use.path else action.url
        for segment in use.path:
            text = _text(segment, event)  # a literal segment is valid as it is (validation)
            url += "/" + (quote(text or "", safe="") if isinstance(segment, Variable) else segment)
        headers: dict[str, str] = {}
        for name, header in action.headers:
            text = _text(header, event)
            if text is not None:
                headers[name] = text.translate(_CONTROL)
        query = []
        for name, parameter in action.query:
            text = _text(parameter, event)
            if text is not None:
                query.append((name, text))
        body = None
        if action.method != "GET":
            rendered = _render(action.payload, event)
            body = orjson.dumps(None if rendered is _ABSENT else rendered)
    except _Missing as missing:
        return MissingValue(f"${missing.variable.name}")
    event_id = str(event["eventId"])
    return CallRequest(
        action=action.name,
        endpoint=action.endpoint,
        method=action.method,
        url=url,
        headers=headers,
        query=query,
        body=body,
        idempotency_key=idempotency_key(event_id, action.name),
        event_id=event_id,
        campaign_id=int(event["campaignId"]),
        lead_id=int(event["leadId"]),
    )
