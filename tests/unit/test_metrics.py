"""The pure parts of streams/runtime/metrics.py: the batch-fed histogram renders what
prometheus-client's own histogram renders for the same values, the API's error-code peek,
and a batch's counts (tests/integration/test_prometheus.py proves the rest live)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.pipeline import BatchResult
from streams.runtime.metrics import (
    DELAY_BUCKETS,
    ApiMetrics,
    BulkHistogram,
    WorkerMetrics,
    _error_code,
)


def samples(rendered: bytes, name: str) -> dict[str, float]:
    out = {}
    for line in rendered.decode().splitlines():
        if line.startswith(name) and not line.startswith(f"{name}_created"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@given(st.lists(st.floats(0, 4000, allow_nan=False), max_size=200))
def test_bulk_histogram_renders_as_prometheus_client_does(values: list[float]) -> None:
    registry = CollectorRegistry()
    bulk = BulkHistogram("d_seconds", "doc", DELAY_BUCKETS)
    registry.register(bulk)
    reference_registry = CollectorRegistry()
    reference = Histogram("d_seconds", "doc", buckets=DELAY_BUCKETS, registry=reference_registry)
    half = len(values) // 2
    bulk.observe_many(values[:half])
    bulk.observe_many(values[half:])
    for value in values:
        reference.observe(value)
    got = samples(generate_latest(registry), "d_seconds")
    want = samples(generate_latest(reference_registry), "d_seconds")
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-6 * max(1.0, abs(value)), key


@given(
    st.lists(st.one_of(st.none(), st.just(0.0), st.floats(-50, 4000, allow_nan=False))),
    st.floats(1e9, 2e9, allow_nan=False),
)
def test_ages_since_a_common_now_count_as_their_values_do(
    ages: list[float | None], now: float
) -> None:
    """`observe_ages(now, stamps)` is `observe_many(max(0, now - t) for t in stamps if
    t)`: no stamp (None or 0) is skipped, a stamp after `now` counts as 0."""
    stamps = [None if a is None else (0.0 if a == 0.0 else now - a) for a in ages]
    by_age, by_value = (BulkHistogram("d_seconds", "doc", DELAY_BUCKETS) for _ in range(2))
    by_age.observe_ages(now, stamps)
    values = [max(0.0, now - t) for t in stamps if t]
    by_value.observe_many(values)
    # The same bucket unless a value lies within rounding of a bound.
    near = any(abs(v - b) < 1e-5 for v in values for b in DELAY_BUCKETS)
    if not near:
        assert by_age._counts == by_value._counts
    assert sum(by_age._counts) == len(values)
    assert abs(by_age._sum - by_value._sum) <= 1e-9 * now * max(1, len(values))


def test_error_code_is_read_only_from_small_failed_envelopes() -> None:
    assert _error_code(b'{"requestId":"a#1","success":false,"errors":[{"code":"601"}]}') == "601"
    assert _error_code(b'{"requestId":"a#1","success":true,"result":[]}') == ""
    assert _error_code(b"not json") == ""
    assert _error_code(b'{"requestId":"a#1","success":false,"errors":[]}') == ""
    big = b'{"requestId":"a#1","success":false,"errors":[{"code":"611"}],"x":"' + b"y" * 70_000
    assert _error_code(big + b'"}') == ""


def test_a_batch_counts_by_outcome_campaign_and_code() -> None:
    metrics = WorkerMetrics()
    result = BatchResult(
        events=[{"campaignId": 2001}, {"campaignId": 2001}, {"campaignId": 2002}],
        dead_letters=[{"error": {"code": "malformed"}}, {"error": {"code": "unknown_type"}}],
        accepted=3,
        duplicates=1,
    )
    metrics.record_batch(result, [1.0e9] * 6, 0.0)
    text = metrics.render().decode()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
        assert found, series
        return float(found.group(1))

    assert value('streams_activities_total{outcome="accepted"}') == 3
    assert value('streams_activities_total{outcome="rejected"}') == 2
    assert value('streams_campaign_memberships_total{campaign_id="2001"}') == 2
    assert value('streams_dead_letters_total{code="unknown_type"}') == 1
    assert value("streams_memberships_total") == 3
    assert value("streams_activity_delay_seconds_count") == 6
    assert value('streams_activity_delay_seconds_bucket{le="1800.0"}') == 0  # 1e9 is 1970


def test_the_api_exports_none_of_the_workers_batch_metrics() -> None:
    """The API evaluates no batch: a worker series at its /metrics would be a flat line
    that a dashboard could mistake for the workers'."""
    rendered = ApiMetrics().render().decode()
    for name in ("streams_batch_stage_seconds", "streams_fetch_delay_seconds"):
        assert f"# TYPE {name}" not in rendered
        assert f"# TYPE {name}" in WorkerMetrics().render().decode()


def test_every_dead_letter_code_is_exported_from_the_start() -> None:
    """An alert on one code (`StreamsEngineErrors`) must evaluate before its first letter:
    each code's series exists at 0."""
    from streams.pipeline import DEAD_LETTER_CODES

    rendered = WorkerMetrics().render().decode()
    for code in DEAD_LETTER_CODES:
        assert f'streams_dead_letters_total{{code="{code}"}} 0.0' in rendered
