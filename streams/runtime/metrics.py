"""What the worker and the API count, exposed at `/metrics` in Prometheus' text format.

Every metric name here is what `deploy/grafana/dashboards/streams.json` and
`deploy/prometheus/alerts.yml` query; tests/integration/test_prometheus.py has a real
Prometheus scrape a worker and the API under load and evaluates every one of those queries.

Label values are bounded: outcomes, rejection codes, campaign ids (the rules'), partitions,
route templates (never a path with ids in it), HTTP statuses and Marketo error codes.
The per-record figures (the end-to-end delay) are added a batch at a time
(`BulkHistogram.observe_ages`: the timestamps sorted, then a bisection per bucket), so
that a batch of 5,000 records costs one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import re
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from streams.engine.native import FALLBACK_REASONS
from streams.pipeline import DEAD_LETTER_CODES

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from streams.pipeline import BatchResult

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4"
"""Prometheus' text format; aiohttp refuses the `charset` that prometheus-client's constant
carries (the body is ASCII)."""

DELAY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
STAGE_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_STAGES: Final = ("queued", "load", "evaluate", "save", "settle", "deliver")
"""A batch's path through the worker, in order (`streams_batch_stage_seconds`)."""
LAG_REFRESH: Final = 5.0
"""Seconds a consumer-lag reading is reused: scrapes closer together do not ask Kafka."""


class BulkHistogram:
    """A Prometheus histogram fed many values at once (one lock per batch, not per value)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = [float(b) for b in buckets]
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        bounds = self.bounds
        counts = [0] * len(self._counts)
        total = 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1  # le=b counts value <= b
            total += value
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def observe_ages(self, now: float, stamps: Iterable[float | None]) -> None:
        """`observe_many(max(0, now - t) for t in stamps if t)`, a batch's delays since a
        common `now`, counted per bucket instead of per value: a value is at most bound b
        when t >= now - b, so with the stamps sorted (in C) each bucket is one bisection
        and the sum is `k * now - sum(the k stamps up to now)`."""
        ordered = sorted([t for t in stamps if t])
        n = len(ordered)
        at_most = [n - bisect_left(ordered, now - bound) for bound in self.bounds]
        counts = [at_most[0]]
        counts += [b - a for a, b in itertools.pairwise(at_most)]
        counts.append(n - at_most[-1])
        past = bisect_right(ordered, now)
        total = past * now - math.fsum(ordered[:past])
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip([*self.bounds, float("inf")], counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)


class ConsumerLag:
    """Consumer lag per partition of the activities topic, from the group's committed
    offsets and the log end offsets, both asked of Kafka (kafka-python, in a thread) at
    most every `LAG_REFRESH` s. A partition with no committed offset counts from the log
    start. Every worker of the group reports the whole group's lag (the dashboard takes
    the max per partition): it shows even when no worker holds a partition."""

    def __init__(self, bootstrap: Sequence[str], group: str, topic: str) -> None:
        self.bootstrap = list(bootstrap)
        self.group = group
        self.topic = topic
        self._lags: dict[int, int] = {}
        self._read_at = 0.0
        self._consumer: Any = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the offsets again if the last reading is older than `LAG_REFRESH`; on any
        Kafka error keep no reading (the series disappear, never a stale value)."""
        with self._lock:
            if time.monotonic() - self._read_at < LAG_REFRESH:
                return
            self._read_at = time.monotonic()
            try:
                self._lags = self._read()
            except Exception as exc:  # kafka-python raises many types
                log.debug("consumer lag not read: %s", exc)
                self._lags = {}
                self.close()

    def _read(self) -> dict[int, int]:
        from kafka import KafkaConsumer, TopicPartition

        if self._consumer is None:
            # In the group only to read its committed offsets: it never subscribes nor
            # polls, so it never joins the group nor takes a partition.
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                enable_auto_commit=False,
                request_timeout_ms=15_000,
            )
        consumer = self._consumer
        partitions = consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        if not tps:
            return {}
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        lags = {}
        for tp in tps:
            committed = consumer.committed(tp)
            offset = committed if committed is not None and committed >= 0 else starts[tp]
            lags[tp.partition] = max(0, ends[tp] - offset)
        return lags

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("streams_consumer_lag", "", labels=["topic", "partition"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "streams_consumer_lag",
            "Records of the activities topic not yet committed by the consumer group, per "
            "partition (log end offset - committed offset).",
            labels=["topic", "partition"],
        )
        for partition, lag in sorted(self._lags.items()):
            family.add_metric([self.topic, str(partition)], lag)
        yield family

    def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):  # a broken client: nothing more to do
                self._consumer.close()
        self._consumer = None


class WorkerMetrics:
    """One registry per worker app, so that tests can build several apps in one process."""

    def __init__(self, lag: ConsumerLag | None = None) -> None:
        self.registry = CollectorRegistry()
        self.activities = Counter(
            "streams_activities",
            "Activities read, by outcome: accepted, duplicate, redelivered or rejected.",
            ["outcome"],
            registry=self.registry,
        )
        self.memberships = Counter(
            "streams_memberships", "Membership events emitted.", registry=self.registry
        )
        self.campaign_memberships = Counter(
            "streams_campaign_memberships",
            "Membership events emitted, per campaign id (redeliveries included).",
            ["campaign_id"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "streams_dead_letters",
            "Records sent to the dead-letter topic, by rejection code.",
            ["code"],
            registry=self.registry,
        )
        for code in DEAD_LETTER_CODES:  # at 0 from the start: `increase()` needs a series
            self.dead_letters.labels(code)
        self.batches = Counter("streams_batches", "Batches evaluated.", registry=self.registry)
        self.conflicts = Counter(
            "streams_state_conflicts",
            "Batches evaluated again because another writer changed a lead's state.",
            registry=self.registry,
        )
        self.quarantined = Counter(
            "streams_state_quarantined",
            "Leads whose stored state could not be read and was moved aside "
            "(<app_id>:quarantine:{lead}:<ms>); the lead went on from an empty state.",
            registry=self.registry,
        )
        self.native_fallbacks = Counter(
            "streams_native_fallbacks",
            "Batches the native core handed to the Python engine, and failures of the core "
            "outside a batch, by reason: cannot_hold (a lead's stored state holds a value the "
            "core does not), fault (the core failed: on a batch, redone by the Python engine; "
            "after a batch's save, which stands, its leads evicted; or evicting leads, "
            "when it drops every lead: an exception, a Python callback's, or a Rust panic; "
            "one failure counted once).",
            ["reason"],
            registry=self.registry,
        )
        for reason in FALLBACK_REASONS:
            self.native_fallbacks.labels(reason)
        self.minimal_dead_letters = Counter(
            "streams_dead_letters_minimal",
            "Dead letters the broker refused, replaced by a minimal one (position, error, "
            "length and sha256 of the record).",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "streams_batch_seconds",
            "Time from a batch's arrival to its events' delivery.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "streams_batch_records",
            "Records per batch.",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
            registry=self.registry,
        )
        self.delay = BulkHistogram(
            "streams_activity_delay_seconds",
            "Per activity: time from its record's timestamp (its append to the activities "
            "topic) to the broker's acknowledgement of its membership events and dead letters.",
            DELAY_BUCKETS,
        )
        self.registry.register(self.delay)
        self.fetch_delay = BulkHistogram(
            "streams_fetch_delay_seconds",
            "Per activity: time from its record's timestamp (its append to the activities "
            "topic) to the return of the worker's fetch that holds it.",
            STAGE_BUCKETS,
        )
        self.registry.register(self.fetch_delay)
        self.stage_seconds = Histogram(
            "streams_batch_stage_seconds",
            "Per batch, time spent in each stage, in order: queued (from its fetch's return "
            "to the agent), load (states read from Redis), evaluate (decode and the engine), "
            "save (states written to Redis), settle (waiting for the earlier batches' "
            "deliveries before its own sends), deliver (events and dead letters produced and "
            "acknowledged by the broker).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.rules_info = Gauge(
            "streams_rules_info",
            "The rules in force (value 1).",
            ["rules_version"],
            registry=self.registry,
        )
        self.lag = lag
        if lag is not None:
            self.registry.register(lag)

    def record_batch(self, result: BatchResult, appended: Sequence[float], started: float) -> None:
        """A batch delivered: `appended` holds its records' timestamps (Unix seconds),
        `started` the `time.perf_counter()` of its arrival."""
        now = time.time()
        self.batches.inc()
        self.batch_size.observe(len(appended))
        self.activities.labels("accepted").inc(result.accepted)
        self.activities.labels("duplicate").inc(result.duplicates)
        self.activities.labels("redelivered").inc(result.redelivered)
        self.activities.labels("rejected").inc(len(result.dead_letters))
        self.memberships.inc(len(result.events))
        for campaign, count in Tally(e["campaignId"] for e in result.events).items():
            self.campaign_memberships.labels(str(campaign)).inc(count)
        for code, count in Tally(d["error"]["code"] for d in result.dead_letters).items():
            self.dead_letters.labels(str(code)).inc(count)
        self.delay.observe_ages(now, appended)
        self.batch_seconds.observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def render_async(self) -> bytes:
        """`render`, after reading the consumer lag in a thread (it asks Kafka)."""
        if self.lag is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.lag.refresh)
        return self.render()


# --- the API ------------------------------------------------------------------------------

ROUTE_CACHE: Final = 4096
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other a client sends is `other` (a bounded label)."""
ERROR_PEEK: Final = 65_536
"""A response body is parsed for its Marketo error code only if it is this small and its
first bytes say `"success":false` (error envelopes are small; pages of results are not
parsed)."""


class ApiMetrics:
    """What the HTTP API counts: calls by route template, method, HTTP status and Marketo
    error code (empty on success), and their latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "streams_api_requests",
            "Calls answered, by route template, method, HTTP status and Marketo error code "
            "(errors[0].code of the envelope; empty when the call succeeded).",
            ["route", "method", "status", "code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "streams_api_request_seconds",
            "Time from a call's arrival to the end of its answer, by route template.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "streams_api_requests_in_flight", "Calls being answered.", registry=self.registry
        )
        self.rules_info = Gauge(
            "streams_rules_info",
            "The rules in force (value 1): the API's ingest and read-back follow hot reloads.",
            ["rules_version"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _error_code(body: bytes) -> str:
    """errors[0].code of a failed Marketo envelope, or ''."""
    if len(body) > ERROR_PEEK or b'"success":false' not in body[:200]:
        return ""
    try:
        errors = orjson.loads(body).get("errors") or [{}]
        return str(errors[0].get("code", ""))
    except (orjson.JSONDecodeError, AttributeError, TypeError, IndexError):
        return ""


class ApiMetricsMiddleware:
    """The outermost middleware of the API: counts every call, including the gate's
    refusals and the 611 of an unhandled error (which Starlette answers outside the
    middleware stack: counted here as status 500, code 611)."""

    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, templates: Callable[[], Iterable[str]]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._templates = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None
        self._seen: dict[str, str] = {}

    def route_of(self, path: str) -> str:
        """The API document's path template that `path` matches (the same for a call the
        gate refused before routing), or `unmatched`; remembered for up to
        `ROUTE_CACHE` distinct paths."""
        found = self._seen.get(path)
        if found is not None:
            return found
        if self._patterns is None:
            self._patterns = [
                (re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(t))), t)
                for t in self._templates()
            ]
        found = next((t for rx, t in self._patterns if rx.fullmatch(path)), "unmatched")
        if len(self._seen) >= ROUTE_CACHE:
            self._seen.clear()
        self._seen[path] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        started = time.perf_counter()
        status = 500
        body = bytearray()
        peek = True

        async def recording_send(message: Message) -> None:
            nonlocal status, peek
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and peek:
                body.extend(message.get("body", b""))
                if len(body) > ERROR_PEEK:
                    peek = False
                    body.clear()
            await send(message)

        metrics.in_flight.inc()
        code = ""
        try:
            await self.app(scope, receive, recording_send)
            code = _error_code(bytes(body)) if peek else ""
        except Exception:
            status, code = 500, "611"
            raise
        finally:
            metrics.in_flight.dec()
            route = self.route_of(scope["path"])
            method = scope["method"] if scope["method"] in METHODS else "other"
            metrics.requests.labels(route, method, str(status), code).inc()
            metrics.seconds.labels(route).observe(time.perf_counter() - started)


def instrument_api(app: FastAPI, metrics: ApiMetrics | None = None) -> ApiMetrics:
    """Count every call of `app` and serve the counts at `/metrics` (no token, like
    `/health`; not in the API document). Call it after the other middlewares are added,
    so that this one is outermost."""
    from starlette.responses import Response

    metrics = metrics or ApiMetrics()

    async def serve(request: Any) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    # A plain Starlette route: FastAPI would read `request` as a query parameter.
    app.add_route("/metrics", serve, methods=["GET"], include_in_schema=False)
    app.add_middleware(
        ApiMetricsMiddleware,
        metrics=metrics,
        templates=lambda: list(app.openapi().get("paths", {})),
    )
    return metrics
