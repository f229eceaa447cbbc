"""A realistic, deterministic stream of activities for the sample `rules/` directory: what
the demo feeds the workers and the backtest, and what `python -m streams sample` prints.

Leads are created (type 12) with fields, then browse, fill out forms, attend conferences,
deposit cheques and buy in the mobile app over a few months; a few change country, a few
are deleted, some records are sent twice (a producer retry) and a few are bad (a draft
type, an unknown attribute, a date without an offset), so every path shows up.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

COUNTRIES = ["France", "France", "Spain", "Germany", "United States", "Japan"]
SEGMENTS = ["Retail", "Retail", "Business", "Private Banking"]
STAGES = ["Lead", "MQL", "SQL", "Customer"]
PAGES = ["/", "/pricing", "/plans/enterprise", "/blog/kafka", "/careers/engineering", "/docs"]
CONFERENCES = [("PyCon", 3000), ("EuroPython", 1200), ("KubeCon", 12000), ("Local Meetup", 40)]
BANKS = ["Banque Populaire", "Santander", "Deutsche Bank", "Chase"]
WEBFORMS = ["Contact Us", "Webinar Registration", "Conference Feedback", "Newsletter"]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _activity(rng: random.Random, lead: int, when: datetime, serial: int) -> dict[str, Any]:
    date = _iso(when)
    roll = rng.random()
    guid = f"s{serial}"
    if roll < 0.25:
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 1,
            "primaryAttributeValue": rng.choice(PAGES),
            "attributes": [{"name": "Referrer URL", "value": "https://search.example"}],
        }
    if roll < 0.35:
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 2,
            "primaryAttributeValue": rng.choice(WEBFORMS),
            "attributes": [{"name": "Webpage ID", "value": rng.randrange(1, 40)}],
        }
    if roll < 0.40:
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 3,
            "primaryAttributeValue": rng.choice(
                ["https://shop.example/pricing", "https://shop.example/plans"]
            ),
        }
    if roll < 0.55:
        name, size = rng.choice(CONFERENCES)
        held = when - timedelta(days=rng.randrange(0, 45))
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 100001,
            "primaryAttributeValue": name,
            "attributes": [
                {"apiName": "conferenceDate", "value": _iso(held)},
                {"name": "Number of Attendees", "value": size},
            ],
        }
    if roll < 0.72:
        amount = round(rng.choice([rng.uniform(20, 900), rng.uniform(5_000, 40_000)]), 2)
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 100002,
            "primaryAttributeValue": rng.choice(BANKS),
            "attributes": [
                {"apiName": "amount", "value": amount},
                {"apiName": "chequeCount", "value": rng.randrange(1, 4)},
                {"apiName": "exchangeRate", "value": 1.0},
                {"apiName": "mobileDeposit", "value": rng.random() < 0.6},
                {"apiName": "valueDate", "value": when.date().isoformat()},
                {"apiName": "customerEmail", "value": f"lead{lead}@mail.example"},
                {"apiName": "receiptUrl", "value": f"https://bank.example/r/{serial}"},
            ],
        }
    if roll < 0.90:
        action = "Refund" if rng.random() < 0.15 else "Bought Shirt"
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 400,
            "primaryAttributeValue": action,
            "attributes": [
                {"name": "Action Type", "value": "Support" if action == "Refund" else "Shopping"},
                {"name": "Action Details", "value": rng.choice(["RedShirt", "BlueShirt"])},
                {"name": "Action Metric", "value": rng.choice([0, 25, 30, 45])},
                {"name": "Platform", "value": rng.choice(["iOS", "Android"])},
            ],
        }
    if roll < 0.97:
        return {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": 13,
            "fields": [{"name": "country", "newValue": rng.choice(COUNTRIES)}],
            "attributes": [{"name": "Reason", "value": "Profile update"}],
        }
    return {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": date,
        "activityTypeId": 2,
        "primaryAttributeValue": "Conference Feedback",
    }


def _bad(rng: random.Random, lead: int, when: datetime, serial: int) -> dict[str, Any]:
    kind = rng.randrange(3)
    if kind == 0:  # a draft type: type_not_approved
        return {
            "marketoGUID": f"s{serial}",
            "leadId": lead,
            "activityDate": _iso(when),
            "activityTypeId": 100003,
            "primaryAttributeValue": "Intro to Kafka",
        }
    if kind == 1:  # unknown_attribute
        return {
            "marketoGUID": f"s{serial}",
            "leadId": lead,
            "activityDate": _iso(when),
            "activityTypeId": 100001,
            "primaryAttributeValue": "PyCon",
            "attributes": [{"apiName": "colour", "value": "red"}],
        }
    return {
        "marketoGUID": f"s{serial}",
        "leadId": lead,  # invalid_value: no offset
        "activityDate": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "activityTypeId": 1,
        "primaryAttributeValue": "/",
    }


SAMPLE_START: Final = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
"""Where `sample_activities` starts its leads' clocks unless told otherwise."""


def sample_activities(
    count: int, leads: int = 200, seed: int = 1, start: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """`count` activities over `leads` leads, in processing order; the same arguments give
    the same stream."""
    if count < 0 or leads < 1:
        raise ValueError(f"count must be 0 or more ({count}) and leads 1 or more ({leads})")
    rng = random.Random(seed)
    begin = start or SAMPLE_START
    clocks: dict[int, datetime] = {}
    last: dict[str, Any] | None = None
    for serial in range(count):
        lead = 1000 + rng.randrange(leads)
        if lead not in clocks:
            clocks[lead] = begin + timedelta(hours=rng.randrange(0, 24 * 30))
            fields = [
                {"name": "country", "newValue": rng.choice(COUNTRIES)},
                {"name": "segment", "newValue": rng.choice(SEGMENTS)},
                {"name": "lifecycleStage", "newValue": rng.choice(STAGES)},
                {"name": "annualRevenue", "newValue": str(rng.randrange(10, 500) * 1000)},
                {"name": "accountOpened", "newValue": f"{rng.randrange(2012, 2026)}-03-01"},
            ]
            last = {
                "marketoGUID": f"s{serial}",
                "leadId": lead,
                "activityDate": _iso(clocks[lead]),
                "activityTypeId": 12,
                "primaryAttributeValue": "Website",
                "attributes": [
                    {"name": "Source Type", "value": rng.choice(["Webinar", "Web form"])},
                    {"name": "Form Name", "value": "Sign up"},
                ],
                "fields": fields,
            }
            yield last
            continue
        clocks[lead] += timedelta(hours=rng.randrange(1, 24 * 6))
        roll = rng.random()
        if roll < 0.02 and last is not None:
            yield last  # a producer's retry: the same record again, a duplicate
        elif roll < 0.03:
            yield _bad(rng, lead, clocks[lead], serial)
        elif roll < 0.035:
            yield {
                "marketoGUID": f"s{serial}",
                "leadId": lead,
                "activityDate": _iso(clocks[lead]),
                "activityTypeId": 37,
            }
            del clocks[lead]
        else:
            last = _activity(rng, lead, clocks[lead], serial)
            yield last
