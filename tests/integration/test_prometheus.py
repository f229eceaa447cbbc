"""The dashboard and the alerts proven on a real Prometheus, not only parsed.

A worker, the API and the custom actions dispatcher run on the session's Kafka and Redis;
a real `prometheus` (Debian's package, scripts/install-prometheus) scrapes them every
second with deploy/prometheus's alert rules loaded; a producer offers activities at a
steady rate, a client calls the API (some calls with a bad token), and membership events
go to the dispatcher. Then every panel query of
deploy/grafana/dashboards/streams.json and every alert expression of alerts.yml is
evaluated through Prometheus' HTTP API, at an instant inside the load:

- every panel returns series, none NaN, with plausible values (activities/s near the
  offered rate, the API's calls/s near the client's, the dispatcher's calls/s near the
  memberships offered to it, delays and latencies under bounds, one lag series per
  partition, the 601s the client provoked);
- every alert expression evaluates without error and without NaN, none fires on this
  healthy stack, each metric it names has series, and where it is "subject > threshold"
  the subject has series too; Prometheus reports every rule's health as ok.

The dispatcher runs on rules of its own (tests/integration/test_dispatcher.py's), calling
a loopback HTTP server, fed membership events at a steady rate.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaProducer

from streams.devstack.api import ApiProcess
from streams.devstack.process import ManagedProcess, ServiceError, cache_dir, free_port
from streams.devstack.worker import WorkerProcess
from streams.engine.native import FALLBACK_REASONS
from streams.pipeline import DEAD_LETTER_CODES
from streams.samples import sample_activities
from tests.integration.streaming import PARTITIONS, isolated_settings, lead_key
from tests.integration.test_deploy import (
    DASHBOARD,
    INSTALL_PROMETHEUS,
    PROMETHEUS,
    alert_exprs,
    dashboard_panels,
    metric_names,
)
from tests.integration.test_dispatcher import Dispatcher, ThreadedServer, membership, setup

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
OFFERED = 150.0
"""Activities/s the producer offers."""
API_CALLS = 4.0
"""Calls/s the API client makes (3 good ones with 2 records each, 1 with a bad token)."""
MEMBERSHIPS = 5.0
"""Membership events/s offered to the dispatcher (each one call of its action)."""
LOAD_SECONDS = 40.0
RATE_WINDOW = "20s"
"""What Grafana's $__rate_interval becomes here (scrapes every 1 s)."""
CLIENT, SECRET = "prometheus-test", "a-secret-of-more-than-16-characters"
SUBJECT_MAY_BE_EMPTY = {"StreamsApiSystemErrors": "no call failed with 611 here"}


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    log = cache_dir() / "install-prometheus.log"
    with log.open("wb") as out:
        subprocess.run(
            ["bash", str(INSTALL_PROMETHEUS)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    found = shutil.which("prometheus")
    if not found:
        pytest.skip(f"prometheus is not installed (see {log})")
    return found


class Prometheus(ManagedProcess):
    def __init__(self, binary: str, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        rules = workdir / "alerts.yml"
        shutil.copy(PROMETHEUS / "alerts.yml", rules)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        path = workdir / "prometheus.yml"
        path.write_text(json.dumps(config))
        argv = [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        super().__init__("prometheus", argv, workdir / "prometheus.log")

    def api(self, path: str, **params: Any) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, time=f"{at:.3f}")
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"prometheus exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/-/ready", timeout=1
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise ServiceError(f"prometheus not ready within {timeout:.0f} s:\n{self.log_tail()}")


class Load:
    """Activities at `OFFERED`/s to the topic and `API_CALLS`/s to the API, in threads."""

    def __init__(self, bootstrap: str, topic: str, api_url: str, memberships: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.api_url = api_url
        self.memberships = memberships
        self.stop = threading.Event()
        self.sent = 0
        self.calls = 0
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._produce, daemon=True),
            threading.Thread(target=self._call, daemon=True),
            threading.Thread(target=self._dispatch, daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _produce(self) -> None:
        lines = [orjson.dumps(a) for a in sample_activities(int(OFFERED * 120), 400, 71)]
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        started = time.monotonic()
        try:
            while not self.stop.is_set() and self.sent < len(lines):
                due = int((time.monotonic() - started) * OFFERED)
                for line in lines[self.sent : min(due, len(lines))]:
                    producer.send(self.topic, key=lead_key(line), value=line)
                self.sent = max(self.sent, min(due, len(lines)))
                producer.flush(timeout=10)
                time.sleep(0.1)
        except Exception as exc:
            self.errors.append(f"producer: {exc!r}")
        finally:
            producer.close()

    def _call(self) -> None:
        http = httpx.Client(base_url=self.api_url, timeout=30)
        try:
            token = http.get(
                "/identity/oauth/token",
                params={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT,
                    "client_secret": SECRET,
                },
            ).json()["access_token"]
            lead = 50_000
            started = time.monotonic()
            while not self.stop.is_set():
                if self.calls % 4 == 3:
                    http.get(
                        "/rest/v1/activities/types.json",
                        headers={"Authorization": "Bearer not-a-token"},
                    )
                else:
                    lead += 2
                    http.post(
                        "/rest/v1/activities/external.json",
                        json={"input": [_record(lead), _record(lead + 1)]},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                self.calls += 1
                time.sleep(max(0.0, started + self.calls / API_CALLS - time.monotonic()))
        except Exception as exc:
            self.errors.append(f"api client: {exc!r}")
        finally:
            http.close()

    def _dispatch(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        n = 0
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                n += 1
                event = membership(n)
                producer.send(
                    self.memberships, key=str(event["leadId"]).encode(), value=orjson.dumps(event)
                )
                producer.flush(timeout=10)
                time.sleep(max(0.0, started + n / MEMBERSHIPS - time.monotonic()))
        except Exception as exc:
            self.errors.append(f"memberships: {exc!r}")
        finally:
            producer.close()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _record(lead: int) -> dict[str, Any]:
    return {
        "leadId": lead,
        "activityDate": "2026-09-26T06:56:35+07:00",
        "activityTypeId": 100001,
        "primaryAttributeValue": "PyCon",
        "attributes": [],
    }


@pytest.fixture(scope="module")
def scraped(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Prometheus, float, Load]]:
    """Prometheus after `LOAD_SECONDS` of load, and an instant inside the load."""
    binary = _prometheus_binary()
    workdir = tmp_path_factory.mktemp("prometheus")
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    worker = WorkerProcess(settings, workdir / "worker.log").start()
    api_settings = {
        k: settings[k] for k in ("STREAMS_BROKER", "STREAMS_RULES_DIR", "STREAMS_TOPIC_ACTIVITIES")
    }
    api_settings.update(
        STREAMS_PARTITIONS=str(PARTITIONS),
        STREAMS_API_CLIENTS=f"{CLIENT}:{SECRET}",
        STREAMS_API_RATE_LIMIT_CALLS="100000",
        STREAMS_CONNECT_TIMEOUT="20",
    )
    api = ApiProcess(api_settings, workdir / "api.log").start()
    crm = ThreadedServer()
    dispatch_env = setup(workdir, kafka_bootstrap, crm.server)
    dispatcher = Dispatcher(dispatch_env, workdir / "dispatcher.log").start()
    prometheus = Prometheus(
        binary,
        workdir,
        {
            "streams-worker": f"127.0.0.1:{worker.web_port}",
            "streams-api": f"127.0.0.1:{api.port}",
            "streams-dispatcher": f"127.0.0.1:{dispatcher.port}",
        },
    )
    load = Load(
        kafka_bootstrap,
        settings["STREAMS_TOPIC_ACTIVITIES"],
        api.url,
        dispatch_env["STREAMS_TOPIC_MEMBERSHIPS"],
    )
    try:
        worker.wait_ready(90)
        api.wait_ready(60)
        dispatcher.wait_ready(60)
        prometheus.start()
        prometheus.wait_ready()
        load.start()
        time.sleep(LOAD_SECONDS)
        at = time.time() - 2  # inside the load, with the last scrapes in
        time.sleep(3)
        assert not load.errors, load.errors
        assert worker.alive(), worker.log_tail()
        assert dispatcher.alive(), dispatcher.log_tail()
        yield prometheus, at, load
    finally:
        load.close()
        prometheus.stop()
        dispatcher.stop()
        crm.close()
        api.stop()
        worker.stop()


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


def _panel_queries() -> dict[str, tuple[str, str]]:
    """`title/refId` -> (PromQL with the rate interval set, the job it reads)."""
    out = {}
    for panel in dashboard_panels(json.loads(DASHBOARD.read_text())["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", RATE_WINDOW)
            assert "$" not in expr, expr
            job = re.search(r'job="([^"]+)"', expr)
            out[f"{panel['title']}/{target['refId']}"] = (expr, job.group(1) if job else "")
    return out


def test_every_panel_returns_plausible_series(scraped: tuple[Prometheus, float, Load]) -> None:
    prometheus, at, _load = scraped
    results: dict[str, list[dict[str, Any]]] = {}
    for name, (expr, _job) in _panel_queries().items():
        result = prometheus.query(expr, at)
        assert result, f"{name}: no series for {expr}"
        nan = [s for s in result if math.isnan(float(s["value"][1]))]
        assert not nan, f"{name}: NaN in {nan}"
        results[name] = result
    print(f"\npanels evaluated: {len(results)}")

    offered = OFFERED + API_CALLS * 3 / 4 * 2  # the producer's and the API's records
    activities = sum(_values(results["Activities/s by outcome/A"]))
    assert 0.6 * offered < activities < 1.4 * offered, (activities, offered)
    outcomes = {s["metric"]["outcome"] for s in results["Activities/s by outcome/A"]}
    assert {"accepted", "rejected"} <= outcomes
    assert _values(results["Workers up/A"]) == [1.0]
    assert len(results["Rules version in force/A"]) == 1
    assert _values(results["Memberships/s/A"])[0] > 0
    per_campaign = results["Memberships/s per campaign/A"]
    assert len(per_campaign) >= 3 and all(v >= 0 for v in _values(per_campaign))
    assert sum(_values(per_campaign)) == pytest.approx(
        _values(results["Memberships/s/A"])[0], rel=0.05
    )
    letters = _values(results["Dead letters/s by code/A"])  # every code, from 0 up
    assert len(letters) == len(DEAD_LETTER_CODES) and min(letters) >= 0 and sum(letters) > 0
    for quantile in ("A", "B"):
        delay = _values(results[f"End-to-end delay p50 / p99/{quantile}"])[0]
        assert 0 < delay < 30, delay
        batch = _values(results[f"Batch latency p50 / p99/{quantile}"])[0]
        assert 0 < batch < 10, batch
        api_latency = _values(results[f"API latency p50 / p99/{quantile}"])[0]
        assert 0 < api_latency < 5, api_latency
    lag = results["Consumer lag per partition/A"]
    assert sorted(int(s["metric"]["partition"]) for s in lag) == list(range(PARTITIONS))
    assert all(0 <= v < OFFERED * 30 for v in _values(lag)), lag
    assert _values(results["Records per batch/A"])[0] >= 1
    assert _values(results["Batches/s/A"])[0] > 0
    assert _values(results["State conflicts/s/A"]) == [0.0]
    fallbacks = results["Native core fallbacks/s by reason/A"]  # every reason, from 0 up
    assert sorted(f["metric"]["reason"] for f in fallbacks) == sorted(FALLBACK_REASONS)
    assert _values(fallbacks) == [0.0] * len(FALLBACK_REASONS), fallbacks
    actions = {
        (s["metric"]["endpoint"], s["metric"]["outcome"]): v
        for s, v in zip(
            results["Action calls/s by endpoint and outcome/A"],
            _values(results["Action calls/s by endpoint and outcome/A"]),
            strict=True,
        )
    }
    assert {outcome for _, outcome in actions} == {"success"}, actions
    assert all(endpoint.startswith("http://127.0.0.1:") for endpoint, _ in actions), actions
    assert sum(actions.values()) == pytest.approx(MEMBERSHIPS, rel=0.4)
    calls = sum(_values(results["API calls/s by route/A"]))
    print(
        f"activities/s {activities:.1f} (offered {offered:.1f}), API calls/s {calls:.2f} "
        f"(made {API_CALLS}), delay p50/p99 "
        f"{_values(results['End-to-end delay p50 / p99/A'])[0]:.3f}/"
        f"{_values(results['End-to-end delay p50 / p99/B'])[0]:.3f} s, lag {_values(lag)}"
    )
    assert 0.6 * API_CALLS < calls < 1.4 * API_CALLS, calls
    routes = {s["metric"]["route"] for s in results["API calls/s by route/A"]}
    assert routes >= {"/rest/v1/activities/external.json", "/rest/v1/activities/types.json"}
    errors = {
        s["metric"]["code"]: v
        for s, v in zip(
            results["API errors/s by code/A"],
            _values(results["API errors/s by code/A"]),
            strict=True,
        )
    }
    assert set(errors) == {"601"}, errors
    assert errors["601"] == pytest.approx(API_CALLS / 4, rel=0.4)


_THRESHOLD = re.compile(r"^(?P<subject>.*\S)\s*(?:>|<|>=|<=|==|!=)\s*[\d.]+\s*$", re.S)


def test_every_alert_evaluates_and_none_fires_on_a_healthy_stack(
    scraped: tuple[Prometheus, float, Load],
) -> None:
    prometheus, at, _ = scraped
    for name, expr in alert_exprs().items():
        result = prometheus.query(expr, at)
        assert not [s for s in result if math.isnan(float(s["value"][1]))], name
        assert result == [], f"{name} would fire on a healthy stack: {result}"
        for metric in metric_names(expr):
            assert prometheus.query(f"count({metric})", at), f"{name}: no series of {metric}"
        match = _THRESHOLD.match(expr.strip())
        if (
            match
            and name not in SUBJECT_MAY_BE_EMPTY
            and not re.search(r"\b(unless|and|or)\b", match["subject"])
        ):
            subject = prometheus.query(match["subject"], at)
            assert subject, f"{name}: {match['subject']} has no series"
            assert not [s for s in subject if math.isnan(float(s["value"][1]))], name
    groups = prometheus.api("rules")["groups"]
    health = {r["name"]: r["health"] for g in groups for r in g["rules"]}
    assert set(health) == set(alert_exprs())
    assert set(health.values()) == {"ok"}, health
