"""For applications: send activities to the `activities` topic the way the workers expect.

`ActivityProducer` validates each activity against the catalog before sending (the same
decoder as the workers, so a record it accepts is one they accept), keys it by lead id, and
uses an idempotent producer with `acks=all`: a send the broker acknowledged is stored on
every in-sync replica, and the producer's own retries never write it twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from kafka import KafkaProducer

from streams.engine.activity import DEFAULT_FUTURE_HORIZON_US, Activity, Decoder
from streams.engine.catalog import Catalog


class InvalidActivity(ValueError):
    """The activity would be rejected by the workers; `code` is the spec's rejection code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ActivityProducer:
    def __init__(
        self,
        bootstrap_servers: list[str],
        catalog: Catalog,
        topic: str = "activities",
        future_horizon_us: int = DEFAULT_FUTURE_HORIZON_US,
        **kafka_options: Any,
    ) -> None:
        self.topic = topic
        self.decoder = Decoder(catalog, future_horizon_us)
        options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "retries": 2**31 - 1,
            "max_in_flight_requests_per_connection": 5,
            "request_timeout_ms": 30_000,
        }
        options.update(kafka_options)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **options)

    def check(self, activity: Mapping[str, Any] | bytes) -> tuple[bytes, Activity]:
        """The record's bytes and its decoded form, or InvalidActivity."""
        value = activity if isinstance(activity, bytes) else orjson.dumps(activity)
        decoded = self.decoder.decode(value, "client", time.time_ns() // 1000)
        if not isinstance(decoded, Activity):
            raise InvalidActivity(decoded.code, decoded.message)
        return value, decoded

    def send(self, activity: Mapping[str, Any] | bytes) -> Any:
        """Validate and send; returns kafka-python's future (`.get(timeout)` waits for the
        broker's acknowledgement). Raises InvalidActivity without sending anything."""
        value, decoded = self.check(activity)
        return self.producer.send(self.topic, key=str(decoded.lead_id).encode(), value=value)

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout=timeout)

    def close(self, timeout: float | None = None) -> None:
        self.producer.close(timeout=timeout)

    def __enter__(self) -> ActivityProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
