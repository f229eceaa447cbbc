"""`POST /rest/v1/activities/external.json`: Marketo's Add Custom Activities.

The body is `{"input": [record, ...]}`, at most 300 records, each the spec's activity record
(activities.md). The answer has one entry per input record, in input order:
`{"id", "marketoGUID", "status": "added"}` or `{"status": "skipped", "errors": [{"code",
"message"}]}`.

For each call:

1. a record nested over `inputs.MAX_DEPTH` levels is skipped (1003), alone; every other
   record is decoded by the engine's `Decoder` against the catalog the API started
   with, exactly as a worker would decode it; a rejection is answered `skipped` with the
   engine's code and message (`unknown_attribute` as Marketo's 1006, `invalid_value` 1001,
   missing members 1002, the others 1003);
2. an accepted record gets its identity: its `marketoGUID` (or `id`) when it has one, else
   the engine's content hash, so that a client that resends the same record gets the same
   `marketoGUID` and the workers drop the copy as a duplicate. A record whose identity
   already appeared earlier in the same call is skipped (1036) and not written twice;
3. the accepted records are written, keyed by lead id, with the identity set as
   `marketoGUID`, and the call waits for the brokers' acknowledgement (acks=all) of each;
4. only then it answers: `added` for an acknowledged record, `skipped` (1049) for one that
   was not, which the client may resend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from streams.api.activity_shapes import activity_number
from streams.api.envelope import (
    DUPLICATE_IN_INPUT,
    FAILED_TO_CREATE,
    FIELD_NOT_FOUND,
    INVALID_DATA,
    INVALID_VALUE,
    MISSING_VALUE,
    ApiError,
    JsonResponse,
    error_entry,
    request_id,
    success,
)
from streams.api.inputs import MAX_DEPTH, blank, json_object, read_json, too_deep
from streams.api.schemas import (
    AddCustomActivitiesRequest,
    AddCustomActivitiesResponse,
    body,
    result,
)
from streams.api.writer import Outgoing, Writer
from streams.engine.activity import (
    INVALID_VALUE as ENGINE_INVALID_VALUE,
)
from streams.engine.activity import (
    MALFORMED,
    UNKNOWN_ATTRIBUTE,
    Activity,
    Decoder,
    Rejection,
)

MAX_RECORDS: Final = 300
MAX_ATTRIBUTES_BYTES: Final = 65_536
"""Marketo's limit on one record's attributes array (its 1049 'Failed to Create Activity')."""


def marketo_code(rejection: Rejection) -> str:
    """The Marketo record-level code that says the most about an engine rejection."""
    if rejection.code == UNKNOWN_ATTRIBUTE:
        return FIELD_NOT_FOUND
    if rejection.code == ENGINE_INVALID_VALUE:
        return INVALID_VALUE
    if rejection.code == MALFORMED and rejection.message.startswith("required member"):
        return MISSING_VALUE
    return INVALID_DATA


def skipped(code: str, message: str) -> dict[str, Any]:
    return {"status": "skipped", "errors": [error_entry(code, message)]}


@dataclass
class Pending:
    """One input record on its way: either its answer is known (skipped) or it waits for
    its write."""

    answer: dict[str, Any] | None = None
    outgoing: Outgoing | None = None
    guid: str | None = None


def prepare(
    decoder: Decoder,
    records: Sequence[Any],
    identities: Sequence[str | None] | None = None,
    answered: Sequence[dict[str, Any] | None] | None = None,
    label: str = "input",
) -> list[Pending]:
    """Decode each record as a worker would. `identities`, when given, replaces the
    identity of the record at the same index (the mobile endpoint's per-action GUIDs);
    `answered` gives the answer of records already refused by the caller."""
    pending: list[Pending] = []
    first_index: dict[str, int] = {}
    now_us = time.time_ns() // 1000  # the clock activityDate's future horizon counts from
    for index, record in enumerate(records):
        known = answered[index] if answered is not None else None
        if known is not None:
            pending.append(Pending(known))
            continue
        if too_deep(record):
            pending.append(
                Pending(
                    skipped(
                        INVALID_DATA,
                        f"Invalid data: {label}[{index}] nests arrays and objects over "
                        f"{MAX_DEPTH} levels",
                    )
                )
            )
            continue
        if isinstance(record, dict):
            attributes = record.get("attributes")
            if attributes is not None:
                size = len(orjson.dumps(attributes))
                if size > MAX_ATTRIBUTES_BYTES:
                    pending.append(
                        Pending(
                            skipped(
                                FAILED_TO_CREATE,
                                f"Failed to create activity: its attributes are {size} bytes "
                                f"of JSON; at most {MAX_ATTRIBUTES_BYTES}",
                            )
                        )
                    )
                    continue
        decoded = decoder.decode(orjson.dumps(record), f"api/{label}/{index}", now_us)
        if isinstance(decoded, Rejection):
            pending.append(
                Pending(skipped(marketo_code(decoded), f"{decoded.code}: {decoded.message}"))
            )
            continue
        assert isinstance(decoded, Activity)
        guid = decoded.id
        if identities is not None and identities[index] is not None:
            guid = str(identities[index])
        if guid in first_index:
            pending.append(
                Pending(
                    skipped(
                        DUPLICATE_IN_INPUT,
                        f"Duplicate object found in input: the same activity (marketoGUID "
                        f"{guid}) as {label}[{first_index[guid]}], which is written once",
                    )
                )
            )
            continue
        first_index[guid] = index
        value = orjson.dumps({**record, "marketoGUID": guid})
        pending.append(Pending(None, Outgoing(str(decoded.lead_id).encode(), value), guid))
    return pending


async def write(writer: Writer, pending: list[Pending]) -> list[dict[str, Any]]:
    """Write what waits, then every record's answer, in input order."""
    waiting = [p for p in pending if p.outgoing is not None]
    outcomes = await writer.write([p.outgoing for p in waiting if p.outgoing is not None])
    for item, failure in zip(waiting, outcomes, strict=True):
        assert item.guid is not None
        if failure is None:
            item.answer = {"id": activity_number(item.guid), "marketoGUID": item.guid}
            item.answer["status"] = "added"
        else:
            item.answer = skipped(FAILED_TO_CREATE, f"Failed to create activity: {failure}")
    return [p.answer for p in pending if p.answer is not None]


def input_list(body: dict[str, Any], member: str) -> list[Any]:
    records = body.get(member)
    if records is None:
        raise blank(member)
    if not isinstance(records, list):
        raise ApiError(INVALID_DATA, f"Invalid data: {member} must be a list of records")
    if not records:
        raise blank(member)
    if len(records) > MAX_RECORDS:
        raise ApiError(
            INVALID_DATA,
            f"Invalid data: {member} has {len(records)} records; at most {MAX_RECORDS} a call",
        )
    return records


router = APIRouter(tags=["Activities"])


@router.post(
    "/rest/v1/activities/external.json",
    summary="Add Custom Activities",
    description="At most 300 records a call, each validated as the workers validate it; "
    "one result per input record, in order. `added` is answered only once Kafka "
    "acknowledged the record (acks=all). The same record sent again gets the same "
    "`marketoGUID`, which the workers deduplicate.",
    operation_id="addCustomActivities",
    openapi_extra=body(AddCustomActivitiesRequest),
    responses=result(AddCustomActivitiesResponse),
)
async def add_custom_activities(request: Request) -> Response:
    body = json_object(await read_json(request, max_depth=None))  # checked per record
    records = input_list(body, "input")
    state = request.app.state
    pending = prepare(state.decoder, records)
    results = await write(state.writer, pending)
    return JsonResponse(success(request_id(request), results))
