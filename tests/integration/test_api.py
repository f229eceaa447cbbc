"""The HTTP API as clients meet it: `python -m streams api` as a child process on a real
Apache Kafka broker, called over HTTP (httpx), its writes read back from the topic, and one
end-to-end run through a real worker and Redis. No mocks.

Most tests share one API process (its own topic, generous limits); the tests of a setting
(token lifetime, rate and concurrency limits, catalog writes) start one of their own.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.devstack.api import ApiProcess
from streams.devstack.worker import WorkerProcess
from streams.engine.compiler import load_plan
from streams.runtime.connections import ensure_topics
from tests.integration.streaming import TopicReader, isolated_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
PARTITIONS = 4
CLIENT, SECRET = "crm-sync", "s3cret-Xq9-never-logged"
OTHER, OTHER_SECRET = "mobile-gw", "an0ther-secret-also-hidden"
EXTERNAL = "/rest/v1/activities/external.json"
MOBILE = "/rest/v1/mobile/actions.json"
TYPES = "/rest/v1/activities/types.json"
EXTERNAL_TYPES = "/rest/v1/activities/external/types.json"
TYPE = "/rest/v1/activities/external/type"
DESCRIBE = TYPE + "/{}/describe.json"


# --- processes and helpers ---------------------------------------------------------------


def api_settings(bootstrap: str, **extra: str) -> dict[str, str]:
    topic = f"api-activities-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: PARTITIONS})
    return {
        "STREAMS_BROKER": bootstrap,
        "STREAMS_RULES_DIR": str(RULES),
        "STREAMS_TOPIC_ACTIVITIES": topic,
        "STREAMS_PARTITIONS": str(PARTITIONS),
        "STREAMS_CONNECT_TIMEOUT": "20",
        "STREAMS_API_CLIENTS": f"{CLIENT}:{SECRET},{OTHER}:{OTHER_SECRET}",
        "STREAMS_API_RATE_LIMIT_CALLS": "100000",
        **extra,
    }


def start_api(settings: dict[str, str], log: Path) -> ApiProcess:
    api = ApiProcess(settings, log).start()
    try:
        api.wait_ready(60)
    except BaseException:
        api.stop()
        raise
    return api


class Api:
    """A running API and a client for it, with the token of one client."""

    def __init__(self, process: ApiProcess, settings: dict[str, str]) -> None:
        self.process = process
        self.settings = settings
        self.topic = settings["STREAMS_TOPIC_ACTIVITIES"]
        self.http = httpx.Client(base_url=process.url, timeout=60)
        self.token = token(self.http)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = self.http.get(path, params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(self, path: str, payload: Any) -> dict[str, Any]:
        response = self.http.post(path, json=payload, headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.http.close()
        self.process.stop()


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = api_settings(kafka_bootstrap)
    log = tmp_path_factory.mktemp("api") / "api.log"
    running = Api(start_api(settings, log), settings)
    try:
        yield running
    finally:
        running.close()


def token(http: httpx.Client, client: str = CLIENT, secret: str = SECRET) -> str:
    response = http.get(
        "/identity/oauth/token",
        params={"grant_type": "client_credentials", "client_id": client, "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def error_code(body: dict[str, Any]) -> str:
    assert body["success"] is False, body
    assert body["requestId"] and len(body["errors"]) == 1
    code: str = body["errors"][0]["code"]
    return code


def record(lead: int, primary: str = "PyCon", **attributes: Any) -> dict[str, Any]:
    return {
        "leadId": lead,
        "activityDate": "2026-09-26T06:56:35+07:00",
        "activityTypeId": 100001,
        "primaryAttributeValue": primary,
        "attributes": [{"apiName": k, "value": v} for k, v in attributes.items()],
    }


def read_topic(
    bootstrap: str, topic: str, done: Callable[[list[tuple[bytes, dict[str, Any]]]], bool]
) -> list[tuple[bytes, dict[str, Any]]]:
    """(key, value) of every record of the topic, read from the beginning until `done` or
    30 s."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    seen: list[tuple[bytes, dict[str, Any]]] = []
    deadline = time.monotonic() + 30
    try:
        while not done(seen) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                seen.extend((r.key, orjson.loads(r.value)) for r in records)
    finally:
        consumer.close()
    return seen


def rules_digest(rules: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(rules.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(rules)).encode() + path.read_bytes())
    return digest.hexdigest()


# --- authentication --------------------------------------------------------------------------


def test_tokens_as_marketo_issues_and_checks_them(api: Api) -> None:
    http = api.http
    params = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    first = http.get("/identity/oauth/token", params=params).json()
    assert first["token_type"] == "bearer" and 0 < first["expires_in"] <= 3600
    assert first["scope"].startswith(CLIENT)
    # Asked again while valid: the same token, with what is left of its life.
    again = http.post("/identity/oauth/token", data=params).json()
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] <= first["expires_in"]

    wrong = http.get("/identity/oauth/token", params={**params, "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    unknown = http.get("/identity/oauth/token", params={**params, "client_id": "who"})
    assert unknown.status_code == 401 and unknown.json() == wrong.json()
    no_grant = http.get("/identity/oauth/token", params={"client_id": CLIENT})
    assert no_grant.status_code == 400 and no_grant.json()["error"] == "invalid_request"

    good = first["access_token"]
    assert http.get(TYPES, headers={"Authorization": f"Bearer {good}"}).json()["success"]
    assert http.get(TYPES, params={"access_token": good}).json()["success"]
    assert error_code(http.get(TYPES).json()) == "601"
    assert error_code(http.get(TYPES, params={"access_token": "garbage"}).json()) == "601"
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert error_code(http.get(TYPES, params={"access_token": forged}).json()) == "601"
    # A token names its client: another client's token is its own, with its own limits.
    other = token(http, OTHER, OTHER_SECRET)
    assert other != good and http.get(TYPES, params={"access_token": other}).json()["success"]


def test_an_expired_token_is_602_and_a_new_one_works(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = api_settings(kafka_bootstrap, STREAMS_API_TOKEN_TTL="1")
    short = Api(start_api(settings, tmp_path / "api.log"), settings)
    try:
        old = short.token
        time.sleep(2.2)
        assert error_code(short.http.get(TYPES, params={"access_token": old}).json()) == "602"
        fresh = token(short.http)
        assert fresh != old
        assert short.http.get(TYPES, params={"access_token": fresh}).json()["success"]
    finally:
        short.close()


def test_secrets_and_tokens_never_reach_the_log(api: Api) -> None:
    api.http.get("/identity/oauth/token", params={"client_id": CLIENT, "client_secret": SECRET})
    api.http.get(TYPES, params={"access_token": api.token, "client_secret": SECRET})
    time.sleep(0.3)
    log = api.process.log_path.read_text()
    assert "/rest/v1/activities/types.json" in log  # the access log is there...
    for secret in (SECRET, OTHER_SECRET, api.token):
        assert secret not in log  # ...without query strings or secrets


# --- catalog reads -------------------------------------------------------------------------


def test_activity_types_are_the_catalog_in_force(api: Api) -> None:
    body = api.get(TYPES)
    by_id = {t["id"]: t for t in body["result"]}
    assert {1, 2, 3, 12, 13, 37, 400, 100001, 100002} <= set(by_id)
    assert 100003 not in by_id  # a draft is not in force
    for entry in body["result"]:
        assert isinstance(entry["name"], str)
        assert {"name", "dataType"} <= set(entry["primaryAttribute"])
        assert all({"name", "dataType"} <= set(a) for a in entry["attributes"])
    mobile = by_id[400]
    assert mobile["name"] == "Mobile App Action"
    assert mobile["primaryAttribute"] == {
        "apiName": "action",
        "name": "Action",
        "dataType": "string",
    }
    assert {a["name"]: a["dataType"] for a in mobile["attributes"]}["Action Length"] == "float"
    conference = by_id[100001]  # approved with draft: the approved attributes only
    assert [a["apiName"] for a in conference["attributes"]] == [
        "conferenceDate",
        "numberOfAttendees",
    ]


def test_custom_types_and_describe_with_draft(api: Api) -> None:
    listed = {t["apiName"]: t for t in api.get(EXTERNAL_TYPES)["result"]}
    assert {k: v["status"] for k, v in listed.items()} == {
        "attendConference": "approved with draft",
        "depositCheque": "approved",
        "watchWebinar": "draft",
    }
    conference = listed["attendConference"]
    assert conference["triggerName"] == "Attends Conference"
    assert conference["filterName"] == "Attended Conference"
    approved = api.get(DESCRIBE.format("attendConference"))["result"][0]
    assert approved["primaryAttribute"]["apiName"] == "conferenceName"
    assert [a["apiName"] for a in approved["attributes"]] == ["conferenceDate", "numberOfAttendees"]
    draft = api.get(DESCRIBE.format("attendConference"), draft="true")["result"][0]
    assert [a["apiName"] for a in draft["attributes"]][-1] == "boothVisited"
    assert draft["status"] == "approved with draft"
    missing = api.http.get(DESCRIBE.format("noSuchType"), headers=api.auth).json()
    assert error_code(missing) == "610"


def test_type_management_is_refused_when_the_catalog_is_managed_in_git(api: Api) -> None:
    before = rules_digest(RULES)
    calls: list[tuple[str, Any]] = [
        (TYPE + ".json", {"apiName": "x", "name": "X", "triggerName": "a", "filterName": "b",
                          "primaryAttribute": {"apiName": "p", "name": "P"}}),
        (TYPE + "/attendConference.json", {"description": "changed"}),
        (TYPE + "/attendConference/approve.json", None),
        (TYPE + "/attendConference/discardDraft.json", None),
        (TYPE + "/watchWebinar/delete.json", None),
        (TYPE + "/attendConference/attributes/create.json",
         {"attributes": [{"apiName": "a", "name": "A", "dataType": "string"}]}),
        (TYPE + "/attendConference/attributes/update.json",
         {"attributes": [{"apiName": "conferenceDate", "name": "When"}]}),
        (TYPE + "/attendConference/attributes/delete.json",
         {"attributes": [{"apiName": "conferenceDate"}]}),
    ]  # fmt: skip
    for path, payload in calls:
        body = api.post(path, payload)
        assert error_code(body) == "603", path
        assert "managed in git" in body["errors"][0]["message"]
    assert rules_digest(RULES) == before


def test_type_management_edits_the_rules_directory_when_enabled(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    settings = api_settings(
        kafka_bootstrap,
        STREAMS_RULES_DIR=str(rules),
        STREAMS_API_CATALOG_WRITES="true",
        STREAMS_RULES_RELOAD_INTERVAL="0.5",
    )
    writable = Api(start_api(settings, tmp_path / "api.log"), settings)
    try:
        created = writable.post(TYPE + ".json", {
            "apiName": "bookDemo", "name": "Book Demo", "description": "A demo booked",
            "triggerName": "Books Demo", "filterName": "Booked Demo",
            "primaryAttribute": {"apiName": "product", "name": "Product"},
        })["result"][0]  # fmt: skip
        assert created["status"] == "draft" and created["id"] >= 100000
        assert created["primaryAttribute"]["dataType"] == "string"
        path = rules / "activity-types" / "bookDemo.yaml"
        assert path.is_file()

        added = writable.post(TYPE + "/bookDemo/attributes/create.json", {"attributes": [
            {"apiName": "seats", "name": "Seats", "dataType": "integer"},
            {"apiName": "region", "name": "Region", "dataType": "string"},
        ]})["result"][0]  # fmt: skip
        assert [a["apiName"] for a in added["attributes"]] == ["seats", "region"]

        # All or nothing: the second attribute is refused, the first is not kept either.
        text = path.read_text()
        refused = writable.post(TYPE + "/bookDemo/attributes/create.json", {"attributes": [
            {"apiName": "budget", "name": "Budget", "dataType": "currency"},
            {"apiName": "seats", "name": "Seats again", "dataType": "integer"},
        ]})  # fmt: skip
        assert error_code(refused) == "709"
        assert path.read_text() == text
        bad_type = writable.post(TYPE + "/bookDemo/attributes/create.json", {"attributes": [
            {"apiName": "budget", "name": "Budget", "dataType": "money"}]})  # fmt: skip
        assert error_code(bad_type) == "1001"

        updated = writable.post(TYPE + "/bookDemo/attributes/update.json", {"attributes": [
            {"apiName": "region", "name": "Sales Region"}]})["result"][0]  # fmt: skip
        assert updated["attributes"][1]["name"] == "Sales Region"
        writable.post(TYPE + "/bookDemo/attributes/delete.json", {"attributes": [
            {"apiName": "region"}]})  # fmt: skip

        started_with = writable.http.get("/health").json()["rulesVersion"]
        approved = writable.post(TYPE + "/bookDemo/approve.json", None)["result"][0]
        assert approved["status"] == "approved"
        # Hot reload: the approved type is in force without a restart.
        deadline = time.monotonic() + 30
        while all(t["id"] != created["id"] for t in writable.get(TYPES)["result"]):
            assert time.monotonic() < deadline, "the approved type never came in force"
            time.sleep(0.2)
        now_in_force = writable.http.get("/health").json()["rulesVersion"]
        assert now_in_force != started_with
        # The version in force, and only it, is exported; the reload is counted.
        exported = writable.http.get("/metrics").text
        assert f'streams_rules_info{{rules_version="{now_in_force}"}} 1.0' in exported
        assert f'rules_version="{started_with}"' not in exported
        assert 'streams_rules_reloads_total{result="applied"}' in exported
        assert [a["apiName"] for a in approved["attributes"]] == ["seats"]
        # Promoting a secondary attribute demotes the primary one (Marketo's isPrimary).
        promoted = writable.post(TYPE + "/bookDemo/attributes/update.json", {"attributes": [
            {"apiName": "seats", "isPrimary": True}]})["result"][0]  # fmt: skip
        assert promoted["status"] == "approved with draft"
        assert promoted["primaryAttribute"]["apiName"] == "seats"
        assert [a["apiName"] for a in promoted["attributes"]] == ["product"]
        writable.post(TYPE + "/bookDemo/discardDraft.json", None)
        changed = writable.post(TYPE + "/bookDemo.json", {"description": "Booked online"})
        assert changed["result"][0]["status"] == "approved with draft"
        assert changed["result"][0]["description"] == "Booked online"
        assert any("hot reload" in w for w in changed["warnings"])
        approved_only = writable.get(DESCRIBE.format("bookDemo"))["result"][0]
        assert approved_only["description"] == "A demo booked"
        discarded = writable.post(TYPE + "/bookDemo/discardDraft.json", None)["result"][0]
        assert discarded["status"] == "approved"

        in_use = writable.post(TYPE + "/attendConference/delete.json", None)
        assert error_code(in_use) == "709"
        assert "used by active campaign" in in_use["errors"][0]["message"]
        deleted = writable.post(TYPE + "/bookDemo/delete.json", None)["result"]
        assert deleted == [{"id": created["id"], "apiName": "bookDemo"}]
        assert not path.exists()
        load_plan(rules)  # the directory still validates

        # Deleted: out of force again after the next reload.
        deadline = time.monotonic() + 30
        while any(t["id"] == created["id"] for t in writable.get(TYPES)["result"]):
            assert time.monotonic() < deadline, "the deleted type stayed in force"
            time.sleep(0.2)
    finally:
        writable.close()


# --- adding activities -------------------------------------------------------------------------


def test_add_custom_activities_answers_each_record_in_order(api: Api) -> None:
    lead = 7_000_000 + int(uuid.uuid4().int % 1_000_000)
    records = [
        record(lead, numberOfAttendees=1200),
        record(lead, colour="red"),
        {**record(lead), "activityTypeId": 100003},
        {"leadId": lead, "activityTypeId": 100001},
        record(lead + 1, "EuroPython", numberOfAttendees="many"),
        "not a record",
        record(lead + 2, "PyData", conferenceDate="2026-09-20T10:00:00Z"),
    ]
    body = api.post(EXTERNAL, {"input": records})
    assert body["success"] is True
    statuses = [r["status"] for r in body["result"]]
    assert statuses == ["added", "skipped", "skipped", "skipped", "skipped", "skipped", "added"]
    codes = [r["errors"][0]["code"] for r in body["result"] if r["status"] == "skipped"]
    assert codes == ["1006", "1003", "1002", "1001", "1003"]
    messages = [r["errors"][0]["message"] for r in body["result"] if r["status"] == "skipped"]
    assert messages[0].startswith("unknown_attribute: attribute 'colour' is not defined")
    assert messages[1].startswith("type_not_approved:")
    assert messages[3].startswith("invalid_value:")
    added = [r for r in body["result"] if r["status"] == "added"]
    guids = [r["marketoGUID"] for r in added]
    assert len(set(guids)) == 2 and all(isinstance(r["id"], int) for r in added)

    on_topic = read_topic(
        api.settings["STREAMS_BROKER"],
        api.topic,
        lambda seen: {v.get("marketoGUID") for _, v in seen} >= set(guids),
    )
    mine = {v["marketoGUID"]: (k, v) for k, v in on_topic if v.get("marketoGUID") in guids}
    assert set(mine) == set(guids)
    assert mine[guids[0]][0] == str(lead).encode()  # keyed by lead id
    assert mine[guids[1]][0] == str(lead + 2).encode()
    assert mine[guids[0]][1]["primaryAttributeValue"] == "PyCon"

    # A retry of the same records: the same identities, so the workers drop the copies.
    again = api.post(EXTERNAL, {"input": records})
    assert [r.get("marketoGUID") for r in again["result"]] == [
        r.get("marketoGUID") for r in body["result"]
    ]
    assert [r.get("id") for r in again["result"]] == [r.get("id") for r in body["result"]]


def test_at_most_300_records_a_call(api: Api) -> None:
    lead = 8_000_000 + int(uuid.uuid4().int % 1_000_000)
    too_many = api.post(EXTERNAL, {"input": [record(lead, f"c{i}") for i in range(301)]})
    assert error_code(too_many) == "1003" and "at most 300" in too_many["errors"][0]["message"]
    full = api.post(EXTERNAL, {"input": [record(lead, f"c{i}") for i in range(300)]})
    assert [r["status"] for r in full["result"]] == ["added"] * 300
    assert len({r["marketoGUID"] for r in full["result"]}) == 300
    assert error_code(api.post(EXTERNAL, {"input": []})) == "701"
    assert error_code(api.post(EXTERNAL, {})) == "701"


def read_all(api: Api, path: str, token: str, **params: str) -> list[dict[str, Any]]:
    """Every page of a paged read, from `token` until moreResult is false (bounded)."""
    found: list[dict[str, Any]] = []
    for _ in range(50):
        page = api.get(path, nextPageToken=token, **params)
        assert page["success"], page
        found += page.get("result", [])
        token = page["nextPageToken"]
        if not page["moreResult"]:
            break
    return found


def test_records_added_are_read_back_with_the_same_ids(api: Api) -> None:
    lead = 9_000_000 + int(uuid.uuid4().int % 1_000_000)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    change = {
        "leadId": lead,
        "activityDate": "2026-09-27T10:00:00Z",
        "activityTypeId": 13,
        "fields": [{"name": "country", "newValue": "France", "oldValue": "Spain"}],
    }
    deletion = {"leadId": lead, "activityDate": "2026-09-28T10:00:00Z", "activityTypeId": 37}
    added = api.post(
        EXTERNAL, {"input": [record(lead, "Read Back", numberOfAttendees=5), change, deletion]}
    )
    answers = added["result"]
    assert [a["status"] for a in answers] == ["added"] * 3
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime=since)["nextPageToken"]

    found = read_all(
        api, "/rest/v1/activities.json", token, activityTypeIds="100001,13", leadIds=str(lead)
    )
    assert [(r["id"], r["marketoGUID"]) for r in found] == [
        (a["id"], a["marketoGUID"]) for a in answers[:2]
    ]
    assert found[0]["primaryAttributeValue"] == "Read Back"
    changes = read_all(
        api, "/rest/v1/activities/leadchanges.json", token, fields="Country", leadIds=str(lead)
    )
    assert [(c["marketoGUID"], c["fields"][0]["newValue"]) for c in changes] == [
        (answers[1]["marketoGUID"], "France")
    ]
    deleted = read_all(api, "/rest/v1/activities/deletedleads.json", token)
    assert [d["marketoGUID"] for d in deleted if d["leadId"] == lead] == [answers[2]["marketoGUID"]]

    listed = api.http.get(
        "/rest/v1/activities.json",
        params={"nextPageToken": token, "activityTypeIds": "1", "listId": "12"},
        headers=api.auth,
    ).json()
    assert error_code(listed) == "703"
    no_fields = api.get("/rest/v1/activities/leadchanges.json", nextPageToken=token)
    assert error_code(no_fields) in ("701", "1003")
    assert error_code(api.get("/rest/v1/activities.json", activityTypeIds="1")) == "701"
    assert error_code(api.get("/rest/v1/activities.json", nextPageToken="garbage")) in (
        "1001",
        "1003",
    )


# --- mobile actions ----------------------------------------------------------------------------


def mobile_batch(lead: int, tag: str) -> dict[str, Any]:
    return {
        "leadId": lead,
        "device": {"platform": "iOS", "deviceType": "iPhone 15"},
        "actions": [
            {
                "clientId": f"{tag}-1",
                "name": "Bought Shirt",
                "occurredAt": "2026-09-20T08:00:00Z",
                "metadata": {"type": "Shopping", "details": "RedShirt", "length": 20, "metric": 30},
            },
            {
                "clientId": f"{tag}-2",
                "name": "Opened App",
                "occurredAt": "2026-09-21T09:00:00+02:00",
            },
            {
                "clientId": f"{tag}-3",
                "name": "A name far over twenty",
                "occurredAt": "2026-09-21T09:00:00Z",
            },
            {"name": "No client id", "occurredAt": "2026-09-21T09:00:00Z"},
        ],
    }


def test_a_resent_mobile_batch_adds_nothing_twice(api: Api) -> None:
    lead = 6_000_000 + int(uuid.uuid4().int % 1_000_000)
    tag = uuid.uuid4().hex[:8]
    first = api.post(MOBILE, mobile_batch(lead, tag))["result"]
    assert [r["status"] for r in first] == ["added", "added", "skipped", "skipped"]
    assert [r.get("clientId") for r in first] == [f"{tag}-1", f"{tag}-2", f"{tag}-3", None]
    assert first[2]["errors"][0]["code"] == "1001"  # the engine's 20-character limit
    assert first[3]["errors"][0]["code"] == "1002"
    # The response was lost; the device sends the same batch again.
    second = api.post(MOBILE, mobile_batch(lead, tag))["result"]
    assert [r.get("marketoGUID") for r in second] == [r.get("marketoGUID") for r in first]
    guids = {r["marketoGUID"] for r in first if r["status"] == "added"}

    on_topic = read_topic(
        api.settings["STREAMS_BROKER"],
        api.topic,
        lambda seen: sum(v.get("marketoGUID") in guids for _, v in seen) >= 4,
    )
    mine = [(k, v) for k, v in on_topic if v.get("marketoGUID") in guids]
    assert len(mine) == 4 and {v["marketoGUID"] for _, v in mine} == guids  # 2 identities
    assert all(k == str(lead).encode() for k, _ in mine)
    shirt = next(v for _, v in mine if v["primaryAttributeValue"] == "Bought Shirt")
    assert shirt["activityTypeId"] == 400
    assert shirt["activityDate"] == "2026-09-20T08:00:00Z"
    assert {a["apiName"]: a["value"] for a in shirt["attributes"]} == {
        "actionType": "Shopping",
        "actionDetails": "RedShirt",
        "actionLength": 20,
        "actionMetric": 30,
        "platform": "iOS",
        "deviceType": "iPhone 15",
    }
    assert error_code(api.post(MOBILE, {"actions": []})) == "701"
    assert error_code(api.post(MOBILE, {"leadId": "x", "actions": [{}]})) == "1001"


# --- limits and hostile input ------------------------------------------------------------------


def test_a_body_over_1_mb_is_413(api: Api) -> None:
    big = orjson.dumps({"input": [record(1, "x" * 1_100_000)]})
    response = api.http.post(
        EXTERNAL, content=big, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_code(response.json()) == "413"
    # Under the limit, a record too large for Marketo's attributes is skipped, not a 413.
    wide = api.post(EXTERNAL, {"input": [record(1, "x", memo="y" * 70_000)]})
    assert wide["result"][0]["errors"][0]["code"] == "1049"


def test_records_kafka_did_not_acknowledge_in_time_are_skipped_1049(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`added` only after the acknowledgement: with no time to wait for it (the producer
    lingers 2 ms), every record is reported not added, and may be resent as it is."""
    settings = api_settings(kafka_bootstrap, STREAMS_API_WRITE_TIMEOUT="0.001")
    hurried = Api(start_api(settings, tmp_path / "api.log"), settings)
    try:
        lead = 4_000_000 + int(uuid.uuid4().int % 1_000_000)
        body = hurried.post(EXTERNAL, {"input": [record(lead, "Hurried"), record(lead, "x")]})
        assert [r["status"] for r in body["result"]] == ["skipped", "skipped"]
        for result in body["result"]:
            assert result["errors"][0]["code"] == "1049"
            assert "resending is safe" in result["errors"][0]["message"]
    finally:
        hurried.close()


def test_hostile_input_gets_an_envelope_never_a_500(api: Api) -> None:
    json_headers = {**api.auth, "Content-Type": "application/json"}
    text_headers = {**api.auth, "Content-Type": "text/plain"}
    posts: list[tuple[str, bytes, dict[str, str], str]] = [
        (EXTERNAL, b"{not json", json_headers, "609"),
        (EXTERNAL, b"", json_headers, "609"),
        (EXTERNAL, b"[1, 2]", json_headers, "1003"),
        (EXTERNAL, b'{"input": "all"}', json_headers, "1003"),
        (EXTERNAL, b'{"input": [1e400]}', json_headers, "609"),
        (EXTERNAL, b"\xff\xfe", json_headers, "609"),
        (EXTERNAL, b'{"input": []}', text_headers, "612"),
        (MOBILE, b'{"leadId": {"a": 1}, "actions": [1]}', json_headers, "1001"),
        (MOBILE, b'{"leadId": 1, "device": 3, "actions": [1]}', json_headers, "1003"),
        (TYPES, b"", api.auth, "605"),
    ]
    gets: list[tuple[str, str]] = [
        ("/rest/v1/activities.json?activityTypeIds=1,2,3,4,5,6,7,8,9,10,11", "1003"),
        ("/rest/v1/activities/pagingtoken.json?sinceDatetime=yesterday", "1001"),
        ("/rest/v1/activities/pagingtoken.json", "701"),
        ("/rest/v1/activities/deletedleads.json?nextPageToken=%00%ff", "1001"),
        (DESCRIBE.format("x" * 300) + "?draft=maybe", ""),
        (DESCRIBE.format("x" * 300), "610"),
        ("/rest/v1/nothing/here.json", "610"),
    ]
    calls = [("POST", path, content, headers, code) for path, content, headers, code in posts]
    calls += [("GET", path, b"", api.auth, code) for path, code in gets]
    for method, path, content, headers, code in calls:
        response = api.http.request(method, path, content=content, headers=headers)
        assert response.status_code < 500, (path, response.text)
        body = response.json()
        assert body["success"] is False, (path, body)
        if code:
            assert error_code(body) == code, (path, body)
    long_uri = api.http.get(TYPES + "?filter=" + "a" * 9000, headers=api.auth)
    assert long_uri.status_code == 414 and error_code(long_uri.json()) == "414"
    records = [
        {"leadId": [1], "activityDate": 5, "activityTypeId": "x"},
        {"leadId": 2**70, "activityDate": "2026-01-01T00:00:00Z", "activityTypeId": 1},
        {"leadId": 1, "activityDate": "2026-01-01", "activityTypeId": 1},
        {"leadId": 1, "activityDate": "2026-01-01T00:00:00Z", "activityTypeId": 100001,
         "primaryAttributeValue": {"nested": True}, "attributes": [None, 7]},
        None,
    ]  # fmt: skip
    body = api.post(EXTERNAL, {"input": records})
    assert [r["status"] for r in body["result"]] == ["skipped"] * len(records)


def test_rate_limit_606_per_client(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = api_settings(
        kafka_bootstrap, STREAMS_API_RATE_LIMIT_CALLS="5", STREAMS_API_RATE_LIMIT_WINDOW="3"
    )
    limited = Api(start_api(settings, tmp_path / "api.log"), settings)
    try:
        for _ in range(5):
            assert limited.get(TYPES)["success"]
        refused = limited.get(TYPES)
        assert error_code(refused) == "606"
        assert refused["errors"][0]["message"] == "Max rate limit '5' exceeded with in '3' secs"
        # Another client has a window of its own; the token endpoint is not counted.
        other = token(limited.http, OTHER, OTHER_SECRET)
        assert limited.http.get(TYPES, params={"access_token": other}).json()["success"]
        time.sleep(3.2)  # the window slides
        assert limited.get(TYPES)["success"]
    finally:
        limited.close()


def test_concurrent_calls_615_per_client(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = api_settings(kafka_bootstrap, STREAMS_API_CONCURRENT_CALLS="1")
    limited = Api(start_api(settings, tmp_path / "api.log"), settings)
    slow = socket.create_connection((limited.process.host, limited.process.port), timeout=10)
    try:
        body = orjson.dumps({"input": [record(5, "Slow upload")]})
        slow.sendall(
            b"POST " + EXTERNAL.encode() + b" HTTP/1.1\r\nHost: test\r\n"
            b"Authorization: Bearer " + limited.token.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )  # fmt: skip
        time.sleep(0.5)  # the call is in flight, its body still uploading
        assert error_code(limited.get(TYPES)) == "615"
        other = token(limited.http, OTHER, OTHER_SECRET)
        assert limited.http.get(TYPES, params={"access_token": other}).json()["success"]
        slow.sendall(body[10:])
        answer = b""
        while b'"result"' not in answer and b'"errors"' not in answer:
            chunk = slow.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert b"200 OK" in answer.split(b"\r\n")[0] and b'"added"' in answer, answer
        assert limited.get(TYPES)["success"]  # the slot is free again
    finally:
        slow.close()
        limited.close()


def test_method_get_on_a_post_and_unknown_parameters(api: Api) -> None:
    plain = api.get(DESCRIBE.format("attendConference"), draft="true")
    long_get = api.http.post(
        DESCRIBE.format("attendConference"),
        data={"_method": "GET", "draft": "true", "access_token": api.token},
    ).json()
    assert long_get["success"] and long_get["result"] == plain["result"]
    in_query = api.http.post(
        DESCRIBE.format("attendConference") + "?_method=GET",
        data={"draft": "true"},
        headers=api.auth,
    ).json()
    assert in_query["result"] == plain["result"]
    unknown = api.get(TYPES, fields="ignored", _=str(time.time()), whatever="x")
    assert unknown["success"] is True
    wrong = api.http.request("OPTIONS", "/identity/oauth/token")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    assert error_code(wrong.json()) == "605"


def test_the_openapi_document_is_served_and_names_every_call(api: Api) -> None:
    response = api.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/identity/oauth/token", "get"),
        (TYPES, "get"),
        (EXTERNAL_TYPES, "get"),
        ("/rest/v1/activities/external/type/{apiName}/describe.json", "get"),
        (TYPE + ".json", "post"),
        (TYPE + "/{apiName}.json", "post"),
        (TYPE + "/{apiName}/approve.json", "post"),
        (TYPE + "/{apiName}/discardDraft.json", "post"),
        (TYPE + "/{apiName}/delete.json", "post"),
        (TYPE + "/{apiName}/attributes/create.json", "post"),
        (TYPE + "/{apiName}/attributes/update.json", "post"),
        (TYPE + "/{apiName}/attributes/delete.json", "post"),
        (EXTERNAL, "post"),
        ("/rest/v1/activities/pagingtoken.json", "get"),
        ("/rest/v1/activities.json", "get"),
        ("/rest/v1/activities/leadchanges.json", "get"),
        ("/rest/v1/activities/deletedleads.json", "get"),
        (MOBILE, "post"),
        ("/health", "get"),
    ]:
        operation = paths[path][method]
        assert "200" in operation["responses"], path
        assert "422" not in operation["responses"], path
        if path.startswith("/rest/"):
            assert operation["security"], path
    schemas = document["components"]["schemas"]
    assert {"ErrorEnvelope", "AddCustomActivitiesRequest", "MobileActionsRequest"} <= set(schemas)
    assert api.http.get("/health").json() == {
        "status": "ok",
        "rulesVersion": load_plan(RULES).rules_version,
    }


def test_the_api_refuses_to_start_without_clients_or_on_invalid_rules(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = api_settings(kafka_bootstrap, STREAMS_API_CLIENTS="")
    nobody = ApiProcess(settings, tmp_path / "none.log").start()
    try:
        assert nobody.proc is not None and nobody.proc.wait(timeout=60) == 2
    finally:
        nobody.stop()
    assert "no API client is configured" in nobody.log_tail()
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "campaigns" / "broken.yaml").write_text("id: 1\nname: Broken\ntriggers: []\n")
    invalid = ApiProcess({**api_settings(kafka_bootstrap), "STREAMS_RULES_DIR": str(rules)},
                         tmp_path / "invalid.log").start()  # fmt: skip
    try:
        assert invalid.proc is not None and invalid.proc.wait(timeout=60) == 2
    finally:
        invalid.stop()
    assert "broken.yaml" in invalid.log_tail()


# --- end to end --------------------------------------------------------------------------------


def test_an_activity_posted_to_the_api_reaches_a_worker_and_makes_a_member(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """API → Kafka → a real worker with Redis → a membership event for the activity the API
    answered, once, although the client sent it twice (a retry after a lost response)."""
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    api_env = {
        **settings,
        "STREAMS_API_CLIENTS": f"{CLIENT}:{SECRET}",
        "STREAMS_API_RATE_LIMIT_CALLS": "1000",
    }
    lead = 5_000_000 + int(uuid.uuid4().int % 1_000_000)
    conference = {
        "leadId": lead,
        "activityDate": "2026-09-26T06:56:35+07:00",
        "activityTypeId": 100001,
        "primaryAttributeValue": "PyCon",
        "attributes": [
            {"apiName": "numberOfAttendees", "value": 1200},
            {"name": "Conference Date", "value": "2026-09-20T09:00:00Z"},
        ],
    }
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    api_process = start_api(api_env, tmp_path / "api.log")
    client = Api(api_process, api_env)
    try:
        with WorkerProcess(settings, tmp_path / "worker.log") as worker:
            worker.wait_ready(90)
            first = client.post(EXTERNAL, {"input": [conference]})["result"][0]
            again = client.post(EXTERNAL, {"input": [conference]})["result"][0]
            assert first["status"] == again["status"] == "added"
            assert first["marketoGUID"] == again["marketoGUID"]
            got = memberships.until(
                lambda v: any(e["activityId"] == first["marketoGUID"] for e in v), 90, worker.alive
            )
            # Give a second (wrong) event the time to show up before counting.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                memberships.poll()
            mine = [e for e in memberships.values if e["leadId"] == lead]
            metrics = worker.metrics()
        assert got, worker.log_tail()
        assert [(e["campaignName"], e["activityId"]) for e in mine] == [
            ("Big conferences", first["marketoGUID"])
        ], mine
        assert mine[0]["activityDate"] == "2026-09-25T23:56:35Z"
        assert 'streams_activities_total{outcome="duplicate"} 1.0' in metrics
    finally:
        memberships.close()
        client.close()


def test_concurrent_clients_do_not_share_limits(api: Api) -> None:
    """Calls of two clients at once all succeed (each well under its limits)."""
    other_token = token(api.http, OTHER, OTHER_SECRET)
    failures: list[str] = []

    def call(access_token: str) -> None:
        with httpx.Client(base_url=api.process.url, timeout=30) as http:
            for _ in range(5):
                body = http.get(TYPES, params={"access_token": access_token}).json()
                if not body["success"]:
                    failures.append(str(body))

    threads = [threading.Thread(target=call, args=(t,)) for t in (api.token, other_token)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
