"""The Grafana dashboard as code: `python deploy/grafana/dashboard.py` writes
`dashboards/streams.json` from the panels below. Edit this file, run it, and commit both:
tests/integration/test_deploy.py fails when the JSON is not what this file generates, and
tests/integration/test_prometheus.py evaluates every query on a real Prometheus scraping a
worker and the API under load.

Jobs: `streams-worker` (the workers' /metrics), `streams-api` (the API's /metrics),
`streams-dispatcher` (the custom actions dispatcher's /metrics, once it is deployed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "streams.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
W = 'job="streams-worker"'
A = 'job="streams-api"'
D = 'job="streams-dispatcher"'
RATE = "[$__rate_interval]"


def target(expr: str, legend: str, ref: str, *, instant: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "range": not instant,
    }
    if instant:
        out["instant"] = True
    return out


def stat(title: str, description: str, pos: tuple[int, int, int, int], *targets: Any) -> Any:
    x, y, w, h = pos
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {
                "unit": "short",
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
        },
        "targets": list(targets),
    }


def series(
    title: str, description: str, unit: str, pos: tuple[int, int, int, int], *targets: Any
) -> Any:
    x, y, w, h = pos
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": list(targets),
    }


def row(title: str, y: int) -> Any:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def quantiles(metric: str, selector: str) -> list[dict[str, Any]]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}{RATE})))",
            f"p{round(float(q) * 100)}",
            ref,
        )
        for q, ref in (("0.5", "A"), ("0.99", "B"))
    ]


def panels() -> list[Any]:
    return [
        row("Workers", 0),
        stat(
            "Workers up",
            "Workers Prometheus scrapes successfully (job streams-worker).",
            (0, 1, 6, 4),
            target(f"sum(up{{{W}}})", "up", "A", instant=True),
        ),
        stat(
            "Rules version in force",
            "The rulesVersion each worker enforces (streams_rules_info); more than one "
            "for long means a rollout did not finish.",
            (6, 1, 18, 4),
            target(
                f"max by (instance, rules_version) (streams_rules_info{{{W}}})",
                "{{instance}}: {{rules_version}}",
                "A",
                instant=True,
            ),
        ),
        series(
            "Activities/s by outcome",
            "Activities read by the workers, by outcome (accepted, duplicate, redelivered, "
            "rejected).",
            "ops",
            (0, 5, 12, 8),
            target(
                f"sum by (outcome) (rate(streams_activities_total{{{W}}}{RATE}))",
                "{{outcome}}",
                "A",
            ),
        ),
        series(
            "Memberships/s",
            "Membership events emitted, in all and per worker.",
            "ops",
            (12, 5, 12, 8),
            target(f"sum(rate(streams_memberships_total{{{W}}}{RATE}))", "all", "A"),
            target(
                f"sum by (instance) (rate(streams_memberships_total{{{W}}}{RATE}))",
                "{{instance}}",
                "B",
            ),
        ),
        series(
            "Memberships/s per campaign",
            "Membership events emitted per campaign id (streams_campaign_memberships_total).",
            "ops",
            (0, 13, 12, 8),
            target(
                f"sum by (campaign_id) (rate(streams_campaign_memberships_total{{{W}}}{RATE}))",
                "campaign {{campaign_id}}",
                "A",
            ),
        ),
        series(
            "Dead letters/s by code",
            "Records sent to the dead-letter topic, by the spec's rejection code.",
            "ops",
            (12, 13, 12, 8),
            target(
                f"sum by (code) (rate(streams_dead_letters_total{{{W}}}{RATE}))",
                "{{code}}",
                "A",
            ),
        ),
        row("Latency and lag", 21),
        series(
            "End-to-end delay p50 / p99",
            "Per activity: from its append to the activities topic to the broker's "
            "acknowledgement of its membership events (streams_activity_delay_seconds).",
            "s",
            (0, 22, 12, 8),
            *quantiles("streams_activity_delay_seconds", W),
        ),
        series(
            "Consumer lag per partition",
            "Records of the activities topic the consumer group has not committed yet (log "
            "end - committed offset), the largest any worker reports per partition.",
            "short",
            (12, 22, 12, 8),
            target(
                f"max by (partition) (streams_consumer_lag{{{W}}})",
                "partition {{partition}}",
                "A",
            ),
        ),
        series(
            "Batch latency p50 / p99",
            "Time from a batch's arrival to its events' delivery (streams_batch_seconds), "
            "over all workers.",
            "s",
            (0, 30, 12, 8),
            *quantiles("streams_batch_seconds", W),
        ),
        series(
            "Records per batch",
            "Mean and p99 records per evaluated batch (up to STREAMS_BATCH_SIZE).",
            "short",
            (12, 30, 12, 8),
            target(
                f"sum(rate(streams_batch_records_sum{{{W}}}{RATE})) / "
                f"sum(rate(streams_batch_records_count{{{W}}}{RATE}))",
                "mean",
                "A",
            ),
            target(
                f"histogram_quantile(0.99, sum by (le) "
                f"(rate(streams_batch_records_bucket{{{W}}}{RATE})))",
                "p99",
                "B",
            ),
        ),
        series(
            "Batches/s",
            "Batches evaluated per worker.",
            "ops",
            (0, 38, 12, 8),
            target(
                f"sum by (instance) (rate(streams_batches_total{{{W}}}{RATE}))",
                "{{instance}}",
                "A",
            ),
        ),
        series(
            "State conflicts/s",
            "Batches evaluated again because another writer changed a lead's state "
            "(should be 0 outside rebalances).",
            "ops",
            (12, 38, 12, 8),
            target(
                f"sum by (instance) (rate(streams_state_conflicts_total{{{W}}}{RATE}))",
                "{{instance}}",
                "A",
            ),
        ),
        series(
            "Native core fallbacks/s by reason",
            "Batches the native core (STREAMS_ENGINE auto, when built, or native) handed to "
            "the Python engine: cannot_hold, a lead's stored state holds a value the core "
            "does not (the worker's log names the lead); fault, the core failed on a batch "
            "or after its save (the log has the exception). Should be 0.",
            "ops",
            (0, 46, 24, 8),
            target(
                f"sum by (reason) (rate(streams_native_fallbacks_total{{{W}}}{RATE}))",
                "{{reason}}",
                "A",
            ),
        ),
        row("HTTP API", 54),
        series(
            "API calls/s by route",
            "Calls answered by the API processes, by route template.",
            "reqps",
            (0, 55, 12, 8),
            target(
                f"sum by (route) (rate(streams_api_requests_total{{{A}}}{RATE}))",
                "{{route}}",
                "A",
            ),
        ),
        series(
            "API latency p50 / p99",
            "Time from a call's arrival to the end of its answer, all routes.",
            "s",
            (12, 55, 12, 8),
            *quantiles("streams_api_request_seconds", A),
        ),
        series(
            "API errors/s by code",
            "Calls answered with a Marketo error code (601 token, 606 rate limit, 611 system "
            "error, ...), with their HTTP status.",
            "reqps",
            (0, 63, 24, 8),
            target(
                f'sum by (code, status) (rate(streams_api_requests_total{{{A}, code!=""}}{RATE}))',
                "{{code}} (HTTP {{status}})",
                "A",
            ),
        ),
        row("Custom actions", 71),
        series(
            "Action calls/s by endpoint and outcome",
            "Calls of custom actions that ended, by endpoint and outcome "
            "(streams_action_calls_total of the dispatcher).",
            "reqps",
            (0, 72, 24, 8),
            target(
                f"sum by (endpoint, outcome) (rate(streams_action_calls_total{{{D}}}{RATE}))",
                "{{endpoint}}: {{outcome}}",
                "A",
            ),
        ),
    ]


def dashboard() -> dict[str, Any]:
    numbered = []
    for n, panel in enumerate(panels(), start=1):
        numbered.append({"id": n, **panel})
    return {
        "uid": "streams-workers",
        "title": "Streams workers",
        "description": "The smart-campaign trigger processor: workers (throughput, "
        "memberships, dead letters, delay, lag, batches, conflicts, rules version), the HTTP "
        "API (calls, latency, error codes) and custom actions.",
        "tags": ["streams"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": 39,
        "version": 2,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": numbered,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
