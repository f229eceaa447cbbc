"""`POST /rest/v1/mobile/actions.json`: a batch of actions reported by a mobile app.

What a Marketo mobile SDK's `reportAction(name, metadata)` queues on the device while it is
offline and `reportAll()` flushes. The body:

    {"leadId": 1001,
     "device": {"platform": "iOS", "deviceType": "iPhone 15"},
     "actions": [{"clientId": "5f0c…", "name": "Bought Shirt",
                  "occurredAt": "2026-09-26T06:56:35+07:00",
                  "metadata": {"type": "Shopping", "details": "RedShirt",
                               "length": 20, "metric": 30}}]}

Each action becomes a Mobile App Action (type 400) activity of the lead: `name` is its
primary attribute (Action, at most 20 characters), the metadata's type, details, length and
metric and the device's platform and type its secondary attributes, `occurredAt` its
`activityDate` (when it happened on the device, which may be long before it arrives).

Its identity (`marketoGUID`) is derived from the lead and the action's `clientId` only, so a
batch sent again after a lost response writes records with the same identities, which the
workers drop as duplicates: nothing is added twice. A `clientId` must therefore be unique per
action and lead (a UUID made when the action is queued). Then each action goes the way of a
record of Add Custom Activities (`ingest`): decoded as a worker would, written, answered in
order once acknowledged.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from streams.api.envelope import (
    INVALID_DATA,
    INVALID_VALUE,
    MISSING_VALUE,
    ApiError,
    JsonResponse,
    request_id,
    success,
)
from streams.api.ingest import input_list, prepare, skipped, write
from streams.api.inputs import blank, json_object, read_json
from streams.api.schemas import MobileActionsRequest, MobileActionsResponse, body, result
from streams.engine.datatypes import INT64_MAX
from streams.engine.standard_types import MOBILE_APP_ACTION

MAX_CLIENT_ID: Final = 128
METADATA: Final = (
    ("type", "actionType"),
    ("details", "actionDetails"),
    ("length", "actionLength"),
    ("metric", "actionMetric"),
)
DEVICE: Final = (("platform", "platform"), ("deviceType", "deviceType"))


def action_guid(lead_id: int, client_id: str) -> str:
    """The identity of a mobile action: the same lead and clientId, the same activity."""
    digest = hashlib.sha256(f"{lead_id}\x00{client_id}".encode()).hexdigest()[:32]
    return f"m-{digest}"


def lead_id_of(raw: Any) -> int:
    if raw is None or raw == "":
        raise blank("leadId")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ApiError(INVALID_VALUE, "Invalid value for leadId. Required of type 'integer'")
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) < 1:
        raise ApiError(
            INVALID_VALUE, f"Invalid value '{text[:40]}' for leadId. Required of type 'integer'"
        )
    if int(text) > INT64_MAX:
        raise ApiError(INVALID_VALUE, "leadId is not a 64-bit integer")
    return int(text)


def _device(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    device = json_object(raw, "device")
    return [
        {"apiName": api_name, "value": device[key]}
        for key, api_name in DEVICE
        if device.get(key) is not None
    ]


def _record(lead_id: int, action: dict[str, Any], device: list[dict[str, Any]]) -> dict[str, Any]:
    """The activity record of one action (validated afterwards by the Decoder)."""
    metadata = action.get("metadata") or {}
    attributes = [
        {"apiName": api_name, "value": metadata[key]}
        for key, api_name in METADATA
        if metadata.get(key) is not None
    ]
    return {
        "leadId": lead_id,
        "activityDate": action.get("occurredAt"),
        "activityTypeId": MOBILE_APP_ACTION,
        "primaryAttributeValue": action.get("name"),
        "attributes": attributes + device,
    }


def _missing(member: str, why: str = "") -> dict[str, Any]:
    return skipped(MISSING_VALUE, f"Missing value for the required parameter '{member}'{why}")


def _check(action: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The action's clientId, and the answer that skips the action, if it is skipped."""
    if not isinstance(action, dict):
        return None, skipped(INVALID_DATA, "Invalid data: an action must be a JSON object")
    client_id = action.get("clientId")
    if client_id is None or client_id == "":
        why = " (an id unique per action, so that a re-sent batch adds nothing twice)"
        return None, _missing("clientId", why)
    if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID:
        return None, skipped(
            INVALID_VALUE,
            f"Invalid value for clientId. Required of type 'string' of at most "
            f"{MAX_CLIENT_ID} characters",
        )
    for member in ("name", "occurredAt"):
        if action.get(member) is None or action.get(member) == "":
            return client_id, _missing(member)
    if not isinstance(action.get("metadata"), dict | None):
        return client_id, skipped(INVALID_DATA, "Invalid data: metadata must be a JSON object")
    return client_id, None


router = APIRouter(tags=["Mobile"])


@router.post(
    "/rest/v1/mobile/actions.json",
    summary="Report mobile app actions",
    description="A batch of actions a mobile app reported (what `reportAction` queued and "
    "`reportAll` flushes), at most 300, for the lead `leadId`. Each becomes a Mobile App "
    "Action (type 400) activity whose marketoGUID derives from (leadId, clientId): a batch "
    "re-sent after a lost response adds nothing twice. One result per action, in order.",
    operation_id="reportMobileActions",
    openapi_extra=body(MobileActionsRequest),
    responses=result(MobileActionsResponse),
)
async def report_actions(request: Request) -> Response:
    payload = json_object(await read_json(request, max_depth=None))  # checked per action
    lead_id = lead_id_of(payload.get("leadId"))
    device = _device(payload.get("device"))
    actions = input_list(payload, "actions")
    checked = [_check(action) for action in actions]
    records = [
        _record(lead_id, action, device) if answer is None else None
        for action, (_, answer) in zip(actions, checked, strict=True)
    ]
    identities = [
        action_guid(lead_id, client_id) if client_id is not None and answer is None else None
        for client_id, answer in checked
    ]
    answers = [answer for _, answer in checked]
    pending = prepare(request.app.state.decoder, records, identities, answers, label="actions")
    results = await write(request.app.state.writer, pending)
    answered = [
        entry if client_id is None else {"clientId": client_id, **entry}
        for (client_id, _), entry in zip(checked, results, strict=True)
    ]
    return JsonResponse(success(request_id(request), answered))
