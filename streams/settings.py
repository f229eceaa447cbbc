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
