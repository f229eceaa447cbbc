"""`GET /rest/v1/streams/explain.json?leadId=&campaignId=`: the `explain` trace of a lead's
live state, as JSON, for an authenticated client (the gate checks the token).

The same trace as `python -m streams explain` without a history file: the lead's state is
read from the workers' Redis (`STREAMS_API_EXPLAIN_REDIS_URL`, key prefix
`STREAMS_API_EXPLAIN_APP_ID`) and the campaign of the rules in force is evaluated as of
now: qualification, each filter and the logic (no activity, so no trigger). Unset Redis:
703; an unknown campaign or a lead without state: 610; Redis unreachable: 608.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from streams.api.envelope import (
    NOT_ENABLED,
    NOT_FOUND,
    TEMPORARILY_UNAVAILABLE,
    ApiError,
    JsonResponse,
    request_id,
    success,
)
from streams.api.inputs import invalid, required_text
from streams.api.schemas import query
from streams.engine.compiler import Plan
from streams.engine.datatypes import datetime_to_us
from streams.engine.trace import live_trace
from streams.state.redis_client import redis_client
from streams.state.redis_store import RedisStore

log = logging.getLogger(__name__)
router = APIRouter(tags=["Rules operations"])
MAX_ID: Final = 2**63 - 1


def _id(request: Request, name: str) -> int:
    text = required_text(request.query_params, name, 20)
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise invalid(name, text, "a positive 64-bit integer")
    return int(text)


@router.get(
    "/rest/v1/streams/explain.json",
    summary="Explain a lead and a campaign",
    description="The evaluation trace of the campaign over the lead's live state (its "
    "qualification, each filter and the logic, as of now), as `explain` prints it.",
    operation_id="explainLeadCampaign",
    openapi_extra=query(
        ("leadId", "the lead", True, {"type": "string"}),
        ("campaignId", "the campaign", True, {"type": "string"}),
    ),
)
async def explain(request: Request) -> Response:
    settings = request.app.state.settings
    if settings.api_explain_redis_url is None:
        raise ApiError(
            NOT_ENABLED,
            "API disabled: explain reads the workers' Redis; set STREAMS_API_EXPLAIN_REDIS_URL",
        )
    lead_id, campaign_id = _id(request, "leadId"), _id(request, "campaignId")
    plan: Plan = request.app.state.plan
    campaign = next((c for c in plan.campaigns if c.id == campaign_id), None)
    if campaign is None:
        raise ApiError(NOT_FOUND, f"Requested resource not found: no campaign {campaign_id}")
    client = redis_client(
        settings.api_explain_redis_url, cluster=settings.api_explain_redis_cluster
    )
    try:
        store = RedisStore(client, settings.api_explain_app_id, ttl_ms=0)
        state = (await store.load([lead_id]))[lead_id]
    except (RedisError, OSError) as exc:
        # The address and the client's words are the operator's, not the caller's.
        log.warning("explain: Redis: %s: %s", type(exc).__name__, exc)
        raise ApiError(
            TEMPORARILY_UNAVAILABLE, "Temporarily unavailable: Redis did not answer"
        ) from None
    finally:
        await client.aclose()
    if state.is_empty():
        raise ApiError(NOT_FOUND, f"Requested resource not found: no state for lead {lead_id}")
    now = datetime_to_us(datetime.now(UTC))
    trace = {"leadId": lead_id, "campaignId": campaign_id, **live_trace(campaign, state, now)}
    return JsonResponse(success(request_id(request), [trace]))
