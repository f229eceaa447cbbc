"""Marketo's reads of activities back from the topic: Get Paging Token, Get Lead
Activities, Get Lead Changes, Get Deleted Leads.

The routes only translate. Query parameters are FastAPI's typed parameters, so the API
document describes them, but each is taken as text and parsed by `history_params` (so the
rules and Marketo's codes are that module's, never FastAPI's 422): a required parameter
left out is 701 like a blank one (the app's validation handler), a bad value 1001 or 1003.
The blocking reads run in the thread pool (`ActivityHistory` is thread-safe: each call
leases its own consumer), and a `HistoryError` becomes Marketo's envelope with its code
(608 when Kafka did not answer: the call may be retried). Marketo's `listId` has no
equivalent here (there are no static lists): it is refused (703) rather than ignored,
because ignoring it would widen the result.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from streams.api.envelope import NOT_ENABLED, ApiError, JsonResponse, request_id, success
from streams.api.history import ActivityHistory, Read
from streams.api.history_errors import HistoryError
from streams.api.history_params import parse_batch_size, parse_ids, parse_names, parse_since
from streams.api.schemas import ActivitiesPageResponse, PagingTokenResponse, result

T = TypeVar("T")

router = APIRouter(tags=["Activities"])


def _parsed(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except HistoryError as exc:
        raise ApiError(str(exc.code), exc.message) from None


# --- parameters, as dependencies ---------------------------------------------------------


def since_param(
    raw: Annotated[
        str, Query(alias="sinceDatetime", description="ISO 8601 date-time or date (UTC if bare)")
    ],
) -> datetime:
    return _parsed(lambda: parse_since(raw))


def token_param(
    raw: Annotated[
        str | None,
        Query(
            alias="nextPageToken",
            description="Required: from Get Paging Token, or the previous page's "
            "nextPageToken (left out or blank: 701)",
        ),
    ] = None,
) -> str:
    # Decoded by the read, which knows the topic, after the other parameters are checked
    # (so 701 for a missing token comes after their 1001/1003, as before).
    return raw or ""


def type_ids_param(
    raw: Annotated[
        str | None,
        Query(
            alias="activityTypeIds",
            description="Required: 1 to 10 type ids, comma-separated (left out: 1003)",
        ),
    ] = None,
) -> list[int]:
    return _parsed(lambda: parse_ids(raw, "activityTypeIds")) or []


def lead_ids_param(
    raw: Annotated[
        str | None,
        Query(alias="leadIds", description="At most 30 lead ids, comma-separated"),
    ] = None,
) -> list[int] | None:
    return _parsed(lambda: parse_ids(raw, "leadIds"))


def batch_size_param(
    raw: Annotated[
        str | None, Query(alias="batchSize", description="1 to 300 (default 300)")
    ] = None,
) -> int:
    return _parsed(lambda: parse_batch_size(raw))


def fields_param(
    raw: Annotated[
        str | None,
        Query(
            alias="fields",
            description="Required: lead field names, comma-separated (left out: 1003)",
        ),
    ] = None,
) -> list[str]:
    return parse_names(raw)  # none left is 1003, from the read


def no_lists(
    raw: Annotated[
        str | None,
        Query(alias="listId", description="Not supported (no static lists): refused with 703"),
    ] = None,
) -> None:
    if raw:
        raise ApiError(
            NOT_ENABLED,
            "The feature is not enabled: there are no static lists here, so listId is not "
            "supported; name the leads with leadIds (at most 30)",
        )


Since = Annotated[datetime, Depends(since_param)]
Token = Annotated[str, Depends(token_param)]
TypeIds = Annotated[list[int], Depends(type_ids_param)]
LeadIds = Annotated[list[int] | None, Depends(lead_ids_param)]
BatchSize = Annotated[int, Depends(batch_size_param)]
Fields = Annotated[list[str], Depends(fields_param)]
NoLists = Annotated[None, Depends(no_lists)]


# --- routes ------------------------------------------------------------------------------


async def _call(request: Request, read: Callable[[ActivityHistory], T]) -> T:
    history: ActivityHistory = request.app.state.history
    try:
        return await run_in_threadpool(read, history)
    except HistoryError as exc:
        raise ApiError(str(exc.code), exc.message) from None


def _page(request: Request, page: Read) -> Response:
    results, token, more = page
    return JsonResponse(
        success(request_id(request), results or None, nextPageToken=token, moreResult=more)
    )


@router.get(
    "/rest/v1/activities/pagingtoken.json",
    summary="Get Paging Token",
    description="The token that reads the activities written to the topic since "
    "sinceDatetime (ISO 8601; without an offset, UTC).",
    operation_id="getActivitiesPagingToken",
    responses=result(PagingTokenResponse),
)
async def paging_token(request: Request, since: Since) -> Response:
    token = await _call(request, lambda h: h.paging_token(since))
    return JsonResponse(success(request_id(request), None, nextPageToken=token))


@router.get(
    "/rest/v1/activities.json",
    summary="Get Lead Activities",
    description="Activities of 1 to 10 types (and optionally of at most 30 leads), 300 a "
    "page; `result` is left out of an empty page.",
    operation_id="getLeadActivities",
    responses=result(ActivitiesPageResponse),
)
async def lead_activities(
    request: Request,
    _: NoLists,
    token: Token,
    type_ids: TypeIds,
    lead_ids: LeadIds,
    batch_size: BatchSize,
) -> Response:
    page = await _call(request, lambda h: h.activities(token, type_ids, lead_ids, batch_size))
    return _page(request, page)


@router.get(
    "/rest/v1/activities/leadchanges.json",
    summary="Get Lead Changes",
    description="Change Data Value (13) and New Lead (12) activities that set one of "
    "`fields`, with only those fields' changes.",
    operation_id="getLeadChanges",
    responses=result(ActivitiesPageResponse),
)
async def lead_changes(
    request: Request,
    _: NoLists,
    token: Token,
    fields: Fields,
    lead_ids: LeadIds,
    batch_size: BatchSize,
) -> Response:
    page = await _call(request, lambda h: h.lead_changes(token, fields, lead_ids, batch_size))
    return _page(request, page)


@router.get(
    "/rest/v1/activities/deletedleads.json",
    summary="Get Deleted Leads",
    description="Delete Lead (37) activities.",
    operation_id="getDeletedLeads",
    responses=result(ActivitiesPageResponse),
)
async def deleted_leads(request: Request, token: Token, batch_size: BatchSize) -> Response:
    page = await _call(request, lambda h: h.deleted_leads(token, batch_size))
    return _page(request, page)
