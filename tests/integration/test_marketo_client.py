"""An existing Marketo client, unchanged, against the API: `marketorestpython` (the widely
used Python client) talking over HTTP to `python -m streams api` on a real Kafka broker.

The library builds its base URL from a Munchkin id (`https://{munchkin}.mktorest.com`) and
keeps it in the client's `host` attribute, which every call reads: setting `host` after
construction is all it takes to point it here. Nothing is mocked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marketorestpython.client import MarketoClient
from marketorestpython.helper.exceptions import MarketoException

from streams.devstack.api import ApiProcess
from tests.integration.test_api import CLIENT, SECRET, api_settings, start_api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API's base URL; it writes to a topic of this module's own."""
    settings = api_settings(kafka_bootstrap)
    process: ApiProcess = start_api(settings, tmp_path_factory.mktemp("marketo") / "api.log")
    try:
        yield process.url
    finally:
        process.stop()


def marketo(url: str) -> Any:
    client = MarketoClient("123-ABC-456", client_id=CLIENT, client_secret=SECRET, max_retry_time=30)
    client.host = url  # instead of https://123-ABC-456.mktorest.com
    return client


def conference(lead: int, name: str, **attributes: Any) -> dict[str, Any]:
    return {
        "leadId": lead,
        "activityDate": "2026-09-26T06:56:35+07:00",
        "activityTypeId": 100001,
        "primaryAttributeValue": name,
        "attributes": [{"apiName": k, "value": v} for k, v in attributes.items()],
    }


def test_identity_types_and_describe_through_the_client(service: str) -> None:
    client = marketo(service)
    client.authenticate()
    assert client.token and client.token_type == "bearer"
    assert client.scope.startswith(CLIENT) and 0 < client.expires_in <= 3600

    types = {t["id"]: t for t in client.get_activity_types()}
    assert types[100001]["name"] == "Attend Conference"
    assert types[100001]["primaryAttribute"]["name"] == "Conference Name"
    assert {"Conference Date", "Number of Attendees"} <= {
        a["name"] for a in types[100001]["attributes"]
    }
    assert 13 in types and 37 in types  # standard types: Change Data Value, Delete Lead

    custom = {t["apiName"]: t for t in client.get_custom_activity_types()}
    assert {"attendConference", "depositCheque", "watchWebinar"} <= set(custom)
    (approved,) = client.describe_custom_activity_type("attendConference")
    assert approved["id"] == 100001 and approved["status"] == "approved with draft"
    (draft,) = client.describe_custom_activity_type("attendConference", draft="true")
    assert len(draft["attributes"]) > len(approved["attributes"])

    # The management calls are the library's too; the catalog is managed in git (603),
    # which the library raises as a MarketoException without retrying.
    with pytest.raises(MarketoException) as refused:
        client.approve_custom_activity_type("attendConference")
    assert refused.value.code == "603"


def test_add_in_batches_and_page_them_back_through_the_client(service: str) -> None:
    client = marketo(service)
    base = 5_000_000 + uuid.uuid4().int % 1_000_000
    leads = [base + i for i in range(10)]
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    first = [conference(leads[i % 10], f"Conf {i}", numberOfAttendees=i) for i in range(300)]
    second = [conference(leads[i % 10], f"Conf {i}") for i in range(300, 340)]
    second.insert(5, conference(base, "Bad", colour="red"))  # not an attribute: 1006
    change = {
        "leadId": base,
        "activityDate": "2026-09-27T10:00:00Z",
        "activityTypeId": 13,
        "fields": [{"name": "country", "newValue": "France", "oldValue": "Spain"}],
    }
    deletion = {"leadId": base + 1, "activityDate": "2026-09-28T10:00:00Z", "activityTypeId": 37}

    results = client.add_custom_activities(first)
    assert [r["status"] for r in results] == ["added"] * 300
    results2 = client.add_custom_activities([*second, change, deletion])
    statuses = [r["status"] for r in results2]
    assert statuses == ["added"] * 5 + ["skipped"] + ["added"] * 37
    assert results2[5]["errors"][0]["code"] == "1006"
    added = [r for r in results + results2 if r["status"] == "added"]
    conferences = {(r["id"], r["marketoGUID"]) for r in added[:340]}
    assert len(conferences) == 340

    token = client.get_paging_token(sinceDatetime=since)
    found = client.get_lead_activities(
        activityTypeIds=["100001"], nextPageToken=token, leadIds=",".join(map(str, leads))
    )
    assert len(found) == 340
    assert {(a["id"], a["marketoGUID"]) for a in found} == conferences
    assert {a["primaryAttributeValue"] for a in found} == {f"Conf {i}" for i in range(340)}

    pages = list(client.get_lead_activities_yield(activityTypeIds=["100001"], nextPageToken=token))
    assert [len(p) for p in pages] == [300, 40]  # 300 a page, as Marketo pages
    assert {(a["id"], a["marketoGUID"]) for p in pages for a in p} == conferences

    changes = client.get_lead_changes(fields=["Country"], nextPageToken=token)
    assert [(c["leadId"], c["marketoGUID"]) for c in changes] == [(base, added[340]["marketoGUID"])]
    assert changes[0]["fields"][0]["newValue"] == "France"
    deleted = client.get_deleted_leads(nextPageToken=token)
    assert [(d["leadId"], d["marketoGUID"]) for d in deleted] == [
        (base + 1, added[341]["marketoGUID"])
    ]


def test_a_wrong_secret_is_refused_through_the_client(service: str) -> None:
    """OAuth's 401 invalid_client: the library raises its `error_description`."""
    client = MarketoClient("123-ABC-456", client_id=CLIENT, client_secret="wrong")
    client.host = service
    with pytest.raises(Exception, match=r"^Bad client credentials$"):
        client.get_activity_types()
