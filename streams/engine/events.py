"""Membership events as campaigns.md defines them."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Final

from streams.engine.catalog import ActivityType
from streams.engine.datatypes import Value, display_value, format_us

EVENT_NAMESPACE: Final = uuid.UUID("6f1c2a8e-3b7d-5c4e-9a10-2d8f4b6e1c37")


_NAMESPACE_SHA1: Final = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)
"""The hash of the namespace alone, copied for each id rather than hashed again."""
_VARIANT: Final = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))
"""The 17th hex digit of a UUID with its two top bits set to the RFC 4122 variant (10)."""


def event_id(campaign_id: int, lead_id: int, activity_id: str) -> str:
    """Deterministic in (campaign, lead, activity): a redelivery gets the same id, so a
    consumer can drop it. The value is `uuid.uuid5(EVENT_NAMESPACE, "c/l/a")`, built
    without the UUID object (tests/unit/test_evaluation.py compares the two): the SHA-1 of
    namespace and name, truncated to 128 bits, with the version (5) and variant digits set."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{campaign_id}/{lead_id}/{activity_id}".encode())
    h = digest.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def membership_event(
    campaign_id: int,
    campaign_name: str,
    lead_id: int,
    activity_id: str,
    activity_type_id: int,
    ts: int,
    trigger: str,
    rules_version: str,
    activity_date: str | None = None,
) -> dict[str, Any]:
    """`activity_date`: `format_us(ts)`, when the caller has it already (one activity that
    makes the lead a member of several campaigns formats its date once)."""
    return {
        "eventId": event_id(campaign_id, lead_id, activity_id),
        "campaignId": campaign_id,
        "campaignName": campaign_name,
        "leadId": lead_id,
        "activityId": activity_id,
        "activityTypeId": activity_type_id,
        "activityDate": format_us(ts) if activity_date is None else activity_date,
        "trigger": trigger,
        "rulesVersion": rules_version,
    }


def action_members(
    activity_type: ActivityType | None,
    primary: Value | list[str] | None,
    attributes: dict[str, Value],
    fields: dict[str, str],
    carries: tuple[str, ...],
) -> dict[str, Any]:
    """What the custom actions of a campaign need beyond the spec's members (campaigns.md:
    "Further members may be added"), added only to events of campaigns that list actions:
    the triggering activity's primary and secondary values, in the form their dataType
    gives JSON (dates as text), and the lead fields the actions name, as known when the
    lead became a member. An empty value is left out, so an action sees it as missing."""
    members: dict[str, Any] = {}
    if primary is not None and primary != "":
        members["activityPrimary"] = (
            display_value(activity_type.primary.data_type, primary)
            if activity_type is not None and not isinstance(primary, list)
            else primary
        )
    shown: dict[str, Any] = {}
    for key, value in attributes.items():
        spec = activity_type.by_key.get(key) if activity_type is not None else None
        shown[key] = display_value(spec.data_type, value) if spec is not None else value
    members["activityAttributes"] = shown
    members["leadFields"] = {name: fields[name] for name in carries if name in fields}
    return members
