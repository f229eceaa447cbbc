"""Marketo's reads of activities back from the topic: Get Paging Token, Get Lead
Activities, Get Lead Changes, Get Deleted Leads.

The routes only translate: query parameters are parsed by `streams.api.history`'s own
helpers (so the rules and the codes are the module's), the blocking reads run in the thread
pool (`ActivityHistory` is thread-safe: each call leases its own consumer), and a
`HistoryError` becomes Marketo's envelope with its code (608 when Kafka did not answer: the
call may be retried). Marketo's `listId` has no equivalent here (there are no static lists):
it is refused (703) rather than ignored, because ignoring it would widen the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from streams.api.envelope import NOT_ENABLED, ApiError, JsonResponse, request_id, success
from streams.api.history import (
    ActivityHistory,
    HistoryError,
    parse_batch_size,
    parse_ids,
    parse_names,
    parse_since,
)
from streams.api.schemas import ActivitiesPageResponse, PagingTokenResponse, query, result

T = TypeVar("T")

TOKEN: Final = (
    "nextPageToken",
    "From Get Paging Token, or the previous page's nextPageToken",
    True,
    {"type": "string"},
)
LEAD_IDS: Final = ("leadIds", "At most 30 lead ids, comma-separated", False, {"type": "string"})
BATCH_SIZE: Final = ("batchSize", "1 to 300 (default 300)", False, {"type": "string"})

router = APIRouter(tags=["Activities"])


async def _call(request: Request, read: Callable[[ActivityHistory], T]) -> T:
    history: ActivityHistory = request.app.state.history
    try:
        return await run_in_threadpool(read, history)
    except HistoryError as exc:
        raise ApiError(str(exc.code), exc.message) from None


def _no_lists(request: Request) -> None:
    if request.query_params.get("listId"):
        raise ApiError(
            NOT_ENABLED,
            "The feature is not enabled: there are no static lists here, so listId is not "
            "supported; name the leads with leadIds (at most 30)",
        )


def _page(request: Request, page: tuple[list[dict[str, Any]], str, bool]) -> Response:
    results, token, more = page
    return JsonResponse(
        success(request_id(request), results or None, nextPageToken=token, moreResult=more)
    )


def _parsed(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except HistoryError as exc:
        raise ApiError(str(exc.code), exc.message) from None


@router.get(
    "/rest/v1/activities/pagingtoken.json",
    summary="Get Paging Token",
    description="The token that reads the activities written to the topic since "
    "sinceDatetime (ISO 8601; without an offset, UTC).",
    operation_id="getActivitiesPagingToken",
    openapi_extra=query(("sinceDatetime", "ISO 8601 date-time or date", True, {"type": "string"})),
    responses=result(PagingTokenResponse),
)
async def paging_token(request: Request) -> Response:
    since = _parsed(lambda: parse_since(request.query_params.get("sinceDatetime")))
    token = await _call(request, lambda h: h.paging_token(since))
    return JsonResponse(success(request_id(request), None, nextPageToken=token))


@router.get(
    "/rest/v1/activities.json",
    summary="Get Lead Activities",
    description="Activities of 1 to 10 types (and optionally of at most 30 leads), 300 a "
    "page; `result` is left out of an empty page.",
    operation_id="getLeadActivities",
    openapi_extra=query(
        TOKEN,
        ("activityTypeIds", "1 to 10 type ids, comma-separated", True, {"type": "string"}),
        LEAD_IDS,
        BATCH_SIZE,
    ),
    responses=result(ActivitiesPageResponse),
)
async def lead_activities(request: Request) -> Response:
    _no_lists(request)
    params = request.query_params
    token = params.get("nextPageToken") or ""
    type_ids = _parsed(lambda: parse_ids(params.get("activityTypeIds"), "activityTypeIds"))
    lead_ids = _parsed(lambda: parse_ids(params.get("leadIds"), "leadIds"))
    batch_size = _parsed(lambda: parse_batch_size(params.get("batchSize")))
    page = await _call(request, lambda h: h.activities(token, type_ids or [], lead_ids, batch_size))
    return _page(request, page)


@router.get(
    "/rest/v1/activities/leadchanges.json",
    summary="Get Lead Changes",
    description="Change Data Value (13) and New Lead (12) activities that set one of "
    "`fields`, with only those fields' changes.",
    operation_id="getLeadChanges",
    openapi_extra=query(
        TOKEN,
        ("fields", "Lead field names, comma-separated", True, {"type": "string"}),
        LEAD_IDS,
        BATCH_SIZE,
    ),
    responses=result(ActivitiesPageResponse),
)
async def lead_changes(request: Request) -> Response:
    _no_lists(request)
    params = request.query_params
    token = params.get("nextPageToken") or ""
    fields = parse_names(params.get("fields"))
    lead_ids = _parsed(lambda: parse_ids(params.get("leadIds"), "leadIds"))
    batch_size = _parsed(lambda: parse_batch_size(params.get("batchSize")))
    page = await _call(request, lambda h: h.lead_changes(token, fields, lead_ids, batch_size))
    return _page(request, page)


@router.get(
    "/rest/v1/activities/deletedleads.json",
    summary="Get Deleted Leads",
    description="Delete Lead (37) activities.",
    operation_id="getDeletedLeads",
    openapi_extra=query(TOKEN, BATCH_SIZE),
    responses=result(ActivitiesPageResponse),
)
async def deleted_leads(request: Request) -> Response:
    params = request.query_params
    token = params.get("nextPageToken") or ""
    batch_size = _parsed(lambda: parse_batch_size(params.get("batchSize")))
    page = await _call(request, lambda h: h.deleted_leads(token, batch_size))
    return _page(request, page)
