"""Membership events as campaigns.md defines them."""

from __future__ import annotations

import uuid
from typing import Any, Final

from streams.engine.datatypes import format_us

EVENT_NAMESPACE: Final = uuid.UUID("6f1c2a8e-3b7d-5c4e-9a10-2d8f4b6e1c37")


def event_id(campaign_id: int, lead_id: int, activity_id: str) -> str:
    """Deterministic in (campaign, lead, activity): a redelivery gets the same id, so a
    consumer can drop it."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{campaign_id}/{lead_id}/{activity_id}"))


def membership_event(
    campaign_id: int,
    campaign_name: str,
    lead_id: int,
    activity_id: str,
    activity_type_id: int,
    ts: int,
    trigger: str,
    rules_version: str,
) -> dict[str, Any]:
    return {
        "eventId": event_id(campaign_id, lead_id, activity_id),
        "campaignId": campaign_id,
        "campaignName": campaign_name,
        "leadId": lead_id,
        "activityId": activity_id,
        "activityTypeId": activity_type_id,
        "activityDate": format_us(ts),
        "trigger": trigger,
        "rulesVersion": rules_version,
    }
