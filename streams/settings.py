"""Settings, from the environment (`STREAMS_*`) and from flags of the same meaning.

One frozen class per kind of process; each field says what changes when you change it.
The README's settings table is checked against these classes by a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.engine.activity import DEAD_LETTER_RECORD_MAX_BYTES
from streams.engine.bounds import DEFAULT_LIMITS, Limits
from streams.engine.catalog import DEFAULT_MAX_CUSTOM_TYPES
from streams.engine.datatypes import CoercionError, parse_duration_us


def _duration(value: str) -> str:
    try:
        parse_duration_us(value)
    except CoercionError as exc:
        raise ValueError(str(exc)) from None
    return value


def _heartbeat_within_session(value: float, info: ValidationInfo) -> float:
    """`heartbeat_interval` at most a third of `session_timeout` (declared before it)."""
    session = info.data.get("session_timeout")
    if session is not None and value * 3 > session:
        raise ValueError(
            f"STREAMS_HEARTBEAT_INTERVAL ({value}) must be at most a third of "
            f"STREAMS_SESSION_TIMEOUT ({session}): the coordinator would otherwise "
            "evict a healthy worker after one late heartbeat"
        )
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
    future_horizon: str = Field(
        "1 day",
        description="How far ahead of the processing clock an activityDate may be; a later "
        "one is rejected invalid_value.",
    )
    lead_max_history: int = Field(
        DEFAULT_LIMITS.max_history,
        ge=100,
        description="Most history entries one lead keeps (all types); beyond, the oldest by "
        "activity date are dropped.",
    )
    lead_max_history_bytes: int = Field(
        DEFAULT_LIMITS.max_history_bytes,
        ge=100_000,
        description="Most bytes of JSON one lead's history keeps (all types); beyond, the "
        "oldest entries by activity date are dropped.",
    )
    lead_max_seen: int = Field(
        DEFAULT_LIMITS.max_seen,
        ge=100,
        description="Most activity identities one lead remembers for deduplication; beyond, "
        "the oldest processed are forgotten.",
    )
    lead_max_fields: int = Field(
        DEFAULT_LIMITS.max_fields,
        ge=10,
        description="Most lead fields (types 12 and 13) one lead keeps; beyond, the fields "
        "added most recently are not kept.",
    )
    lead_max_fields_chars: int = Field(
        DEFAULT_LIMITS.max_fields_chars,
        ge=10_000,
        description="Most characters (names and values) of one lead's fields; beyond, the "
        "fields added most recently are not kept.",
    )
    dlq_record_max_bytes: int = Field(
        DEAD_LETTER_RECORD_MAX_BYTES,
        ge=1024,
        le=131_072,
        description="Most bytes of a rejected record copied into its dead letter; a longer "
        "one is cut, with its length and sha256.",
    )

    engine: Literal["auto", "native", "compiled", "pure"] = Field(
        "auto",
        description="Which engine runs: the native core (scripts/build-native, Rust) over the "
        "mypyc-compiled build (scripts/build-engine), each when present and built from the "
        "current sources (auto); the native core always (native: exit 2 without it; a plan "
        "or store it does not support runs on the Python engine, said at start); the "
        "compiled build always, without the native core (compiled: exit 2 without it); or "
        "the pure-Python reference (pure). Read at process start only.",
    )

    _check_retention = field_validator("retention", "dedup_horizon", "future_horizon")(_duration)

    @property
    def retention_us(self) -> int:
        return parse_duration_us(self.retention)

    @property
    def dedup_horizon_us(self) -> int:
        return parse_duration_us(self.dedup_horizon)

    @property
    def limits(self) -> Limits:
        return Limits(
            future_horizon_us=parse_duration_us(self.future_horizon),
            max_history=self.lead_max_history,
            max_history_bytes=self.lead_max_history_bytes,
            max_seen=self.lead_max_seen,
            max_fields=self.lead_max_fields,
            max_fields_chars=self.lead_max_fields_chars,
            dead_letter_record_max_bytes=self.dlq_record_max_bytes,
        )


class KafkaSettings(EngineSettings):
    """What every process that talks to Kafka needs (workers, API); one field, one meaning,
    so that a variable means the same thing to every process."""

    broker: str = Field(
        "kafka://localhost:9092",
        description="Kafka bootstrap servers, comma-separated, kafka:// prefix optional.",
    )
    topic_activities: str = Field("activities", description="The input topic.")
    partitions: int = Field(
        8,
        ge=1,
        description="Partitions of the topics a worker or the API creates when they are missing.",
    )
    connect_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds to keep retrying an unreachable Kafka or Redis at start before "
        "giving up with a non-zero exit.",
    )
    rules_reload_interval: float = Field(
        10.0,
        ge=0,
        description="Seconds between checks of the rules directory for a new ruleset, put in "
        "force without a restart if it validates (0: never; a restart is then needed).",
    )

    @property
    def bootstrap_servers(self) -> list[str]:
        """`kafka://a:9092,b:9092` -> `["a:9092", "b:9092"]`."""
        return [s.strip().removeprefix("kafka://") for s in self.broker.split(",") if s.strip()]


class GroupMemberSettings(KafkaSettings):
    """What a member of a consumer group (a worker, the dispatcher) needs: its group
    timing."""

    session_timeout: float = Field(
        6.0,
        gt=0,
        description="Seconds without a heartbeat before a worker's partitions go to another "
        "(how soon a killed worker's work resumes elsewhere).",
    )
    heartbeat_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds between a worker's heartbeats to its group's coordinator, at "
        "most a third of the session timeout. A worker learns that its group is "
        "rebalancing (another worker joined or left) at its next heartbeat, and every "
        "partition waits for the slowest member to rejoin: this bounds that part of the "
        "pause.",
    )

    _check_heartbeat = field_validator("heartbeat_interval")(_heartbeat_within_session)


class WorkerSettings(GroupMemberSettings):
    """A streaming worker: the runtime contract of the spec's README."""

    redis_url: str = Field(
        "redis://localhost:6379/0", description="Redis holding the per-lead state."
    )
    redis_cluster: bool = Field(
        False,
        description="Whether STREAMS_REDIS_URL is a seed node of a Redis Cluster (the "
        "state then shards across its masters by lead).",
    )
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description="Replicas that must confirm each batch's state writes (Redis WAIT) "
        "before its events are sent: 1 with a replica per master, so that a failover loses "
        "no state; a master without them then fails the batch.",
    )
    topic_memberships: str = Field(
        "campaign-memberships", description="Where membership events are written."
    )
    topic_dlq: str = Field("activities.dlq", description="Where rejected records are written.")
    app_id: str = Field(
        "campaign-triggers",
        description="Consumer group and Redis key prefix: two deployments with different ids "
        "share nothing.",
    )
    web_host: str = Field(
        "0.0.0.0",
        description="The address the web port of a worker or the dispatcher listens on "
        "(127.0.0.1: this machine only; the devstack uses it).",
    )
    web_port: int = Field(6066, description="The worker's web port: /metrics, /health, /ready.")
    batch_size: int = Field(
        10_000,
        ge=1,
        description="Most records evaluated as one batch (one Redis round trip each way); "
        "reached only when a worker is behind: a larger batch loads, writes and commits a "
        "busy lead once for more of its activities.",
    )
    batch_wait: float = Field(
        0.0,
        ge=0,
        description="Seconds a fetched batch smaller than the batch size waits for more "
        "fetched records before it is evaluated; 0 evaluates each fetch at once.",
    )
    delivery_overlap: bool = Field(
        True,
        description="Whether a worker evaluates the next batch while the previous batch's "
        "events await the broker's acknowledgement; a batch's events are still sent only "
        "once the previous batch's are delivered, and batches acked and committed in "
        "order (false: each batch is delivered before the next is evaluated).",
    )
    save_overlap: bool = Field(
        False,
        description="Whether a worker evaluates the next batch while a batch's states are "
        "being saved (its events still wait for the save; a lead of the next batch is read "
        "once the previous batch's save of it returned). A state conflict then makes the "
        "worker exit and the batches be redelivered instead of evaluating the batch again.",
    )
    evaluate_ahead: int = Field(
        1,
        ge=0,
        le=8,
        description="With the delivery overlap: how many evaluated batches (states saved) "
        "may wait for an earlier batch's delivery before their own sends while a worker "
        "evaluates the next (0: the next batch is evaluated only once this one's sends are "
        "issued). Sends stay in batch order, each batch's once the earlier ones are "
        "delivered.",
    )
    state_cache_leads: int = Field(
        10_000,
        ge=0,
        description="Lead states a worker keeps in memory after saving them; loading a cached "
        "lead costs a check of its generation, not a read of its state (0: no cache).",
    )
    fetch_min_bytes: int = Field(
        1,
        ge=1,
        le=4 * 1024 * 1024,
        description="Bytes of new records the broker gathers before it answers a worker's "
        "fetch, unless STREAMS_FETCH_MAX_WAIT_MS passes first: above 1, fewer and larger "
        "fetches (fewer requests to the broker, fewer batches), each record waiting up to "
        "that long at low rates (1: the broker answers at the first record).",
    )
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=1500,
        description="Milliseconds the broker may hold a worker's fetch that has fewer than "
        "STREAMS_FETCH_MIN_BYTES of new records (also how often an idle worker fetches).",
    )
    switch_interval: float = Field(
        0.0005,
        gt=0,
        le=0.1,
        description="Seconds a thread of the worker keeps the Python interpreter while "
        "another thread waits for it (sys.setswitchinterval; Python's default is 0.005): "
        "the event loop and Faust's consumer thread wait up to this long for each other.",
    )


class ApiSettings(KafkaSettings):
    """The HTTP API (`python -m streams api`): Marketo's Activities endpoints over the same
    catalog and topic as the workers."""

    api_host: str = Field(
        "0.0.0.0", description="The address the API listens on (127.0.0.1: this machine only)."
    )
    api_port: int = Field(8080, ge=1, le=65535, description="The API's port.")
    api_clients: SecretStr | None = Field(
        None,
        description="API clients as id:secret pairs, comma-separated; a client gets tokens "
        "from /identity/oauth/token with them.",
    )
    api_clients_file: Path | None = Field(
        None,
        description="A file of more id:secret pairs, one a line (# comments); read at start.",
    )
    api_token_ttl: int = Field(
        3600,
        ge=1,
        description="Seconds an access token is valid; a call with an older one gets 602.",
    )
    api_rate_limit_calls: int = Field(
        100,
        ge=1,
        description="Calls a client may make per STREAMS_API_RATE_LIMIT_WINDOW; the next gets 606.",
    )
    api_rate_limit_window: float = Field(
        20.0, gt=0, description="Seconds of the sliding window of the rate limit."
    )
    api_concurrent_calls: int = Field(
        10, ge=1, description="Calls one client may have in flight at once; one more gets 615."
    )
    api_auth_failures_per_client: int = Field(
        10,
        ge=1,
        description="Failed identity calls for one client id within "
        "STREAMS_API_AUTH_FAILURE_WINDOW after which its identity calls get HTTP 429.",
    )
    api_auth_failures_per_address: int = Field(
        30,
        ge=1,
        description="Failed identity calls from one address within "
        "STREAMS_API_AUTH_FAILURE_WINDOW after which its identity calls get HTTP 429.",
    )
    api_auth_failure_window: float = Field(
        60.0, gt=0, description="Seconds of the sliding window of failed identity calls."
    )
    api_header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection may take to send a request's line and headers "
        "before it is closed (slow clients, slowloris).",
    )
    api_body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request's body may take to arrive after its headers; a later "
        "one gets 408 and the connection is closed (slow uploads).",
    )
    api_max_body_bytes: int = Field(
        1_048_576, ge=1, description="Largest request body accepted; a larger one gets 413."
    )
    api_catalog_writes: bool = Field(
        False,
        description="Whether the type management endpoints edit the rules directory (as the "
        "types CLI does); off, they answer that the catalog is managed in git.",
    )
    api_explain_redis_url: str | None = Field(
        None,
        description="The workers' Redis (their STREAMS_REDIS_URL), read by the explain call "
        "for a lead's live state; unset, that call answers 703.",
    )
    api_explain_redis_cluster: bool = Field(
        False,
        description="Whether STREAMS_API_EXPLAIN_REDIS_URL is a seed node of a Redis Cluster "
        "(the workers' STREAMS_REDIS_CLUSTER).",
    )
    api_explain_app_id: str = Field(
        "campaign-triggers",
        description="The workers' STREAMS_APP_ID (their Redis key prefix), for the explain call.",
    )
    api_write_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a write to Kafka may wait for the brokers' acknowledgement "
        "before its records are reported as not added.",
    )


class DispatcherSettings(GroupMemberSettings):
    """The dispatcher (`python -m streams dispatcher`): memberships in, calls of custom
    actions out (actions.md). Its consumer group is `STREAMS_APP_ID` + `-dispatcher`."""

    topic_memberships: str = Field(
        "campaign-memberships", description="Where membership events are written."
    )
    topic_actions_dlq: str = Field(
        "actions.dlq", description="Where calls of custom actions that failed for good go."
    )
    app_id: str = Field(
        "campaign-triggers",
        description="Consumer group and Redis key prefix: two deployments with different ids "
        "share nothing.",
    )
    web_host: str = Field(
        "0.0.0.0",
        description="The address the web port of a worker or the dispatcher listens on "
        "(127.0.0.1: this machine only; the devstack uses it).",
    )
    dispatcher_port: int = Field(
        6069, ge=1, le=65535, description="The dispatcher's web port: /metrics, /health, /ready."
    )
    dispatcher_in_flight: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Memberships whose calls may be under way at once; the next waits (each "
        "endpoint's own concurrency is set in endpoints.yaml, 10 by default).",
    )
    dispatcher_stop_grace: float = Field(
        10.0,
        ge=0,
        le=300,
        description="On SIGTERM, seconds the memberships under way get to end before they are "
        "cancelled; a cancelled one is not committed, so the next dispatcher calls it again.",
    )
    dispatcher_backoff: float = Field(
        0.5,
        gt=0,
        le=60,
        description="Seconds before a call's first retry; each next one waits twice as long "
        "(with jitter), unless Retry-After says otherwise.",
    )
