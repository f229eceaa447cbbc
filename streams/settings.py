"""Settings, from the environment (`STREAMS_*`) and from flags of the same meaning.

One frozen class per kind of process; each field says what changes when you change it.
The README's settings table is checked against these classes by a test.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.engine.catalog import DEFAULT_MAX_CUSTOM_TYPES
from streams.engine.datatypes import CoercionError, parse_duration_us


def _duration(value: str) -> str:
    try:
        parse_duration_us(value)
    except CoercionError as exc:
        raise ValueError(str(exc)) from None
    return value


class EngineSettings(BaseSettings):
    """What every process that evaluates rules needs (backtest, workers, API)."""

    model_config = SettingsConfigDict(env_prefix="STREAMS_", frozen=True, extra="ignore")

    rules_dir: Path = Field(
        Path("rules"), description="The rules directory enforced (activity-types/, campaigns/)."
    )
    retention: str = Field(
        "90 days",
        description="How long a lead's activity history is kept (raised to the longest "
        "filter window); filters without a window count back this far.",
    )
    dedup_horizon: str = Field(
        "7 days",
        description="How long (processing time) an activity's identity is remembered: a "
        "record with a known identity within it is a duplicate and changes nothing.",
    )
    max_custom_types: int = Field(
        DEFAULT_MAX_CUSTOM_TYPES, ge=1, description="How many custom activity types may exist."
    )

    _check_retention = field_validator("retention", "dedup_horizon")(_duration)

    @property
    def retention_us(self) -> int:
        return parse_duration_us(self.retention)

    @property
    def dedup_horizon_us(self) -> int:
        return parse_duration_us(self.dedup_horizon)


class WorkerSettings(EngineSettings):
    """A streaming worker: the runtime contract of the spec's README."""

    broker: str = Field(
        "kafka://localhost:9092",
        description="Kafka bootstrap servers, comma-separated, kafka:// prefix optional.",
    )
    redis_url: str = Field(
        "redis://localhost:6379/0", description="Redis holding the per-lead state."
    )
    topic_activities: str = Field("activities", description="The input topic.")
    topic_memberships: str = Field(
        "campaign-memberships", description="Where membership events are written."
    )
    topic_dlq: str = Field("activities.dlq", description="Where rejected records are written.")
    app_id: str = Field(
        "campaign-triggers",
        description="Consumer group and Redis key prefix: two deployments with different ids "
        "share nothing.",
    )
    web_port: int = Field(6066, description="The worker's web port: /metrics, /health, /ready.")
    partitions: int = Field(
        8, ge=1, description="Partitions of the topics the worker creates when they are missing."
    )
    batch_size: int = Field(
        5000,
        ge=1,
        description="Most records evaluated as one batch (one Redis round trip each way).",
    )
    batch_wait: float = Field(
        0.05,
        gt=0,
        description="Seconds a batch waits to fill before it is evaluated: the latency paid "
        "for fewer, larger batches.",
    )
    session_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds without a heartbeat before a worker's partitions go to another "
        "(how soon a killed worker's work resumes elsewhere).",
    )
    connect_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds to keep retrying an unreachable Kafka or Redis at start before "
        "giving up with a non-zero exit.",
    )

    @property
    def bootstrap_servers(self) -> list[str]:
        """`kafka://a:9092,b:9092` -> `["a:9092", "b:9092"]`."""
        return [s.strip().removeprefix("kafka://") for s in self.broker.split(",") if s.strip()]
