"""Writing accepted activities to the `activities` topic, and knowing when they are safe.

One idempotent `AIOKafkaProducer` with `acks=all` per API process, started and stopped with
the app. `write` sends a call's records, keyed by lead id as the workers expect, and
returns once every record has its fate: acknowledged by the brokers (stored on every in-sync
replica; the producer's own retries never store it twice), or failed. A record is reported
"added" to the client only when it was acknowledged. A record that failed or was not
acknowledged within `STREAMS_API_WRITE_TIMEOUT` may still be stored later; the client can
resend it safely, because the same record gets the same `marketoGUID` and the workers drop
the second copy as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: bytes
    value: bytes


class Writer(Protocol):
    async def write(self, records: Sequence[Outgoing]) -> list[str | None]:
        """For each record, None when the brokers acknowledged it, else why not."""
        ...


class KafkaWriter:
    def __init__(
        self,
        bootstrap_servers: Sequence[str],
        topic: str,
        timeout: float,
        max_request_size: int = 1_048_576,
    ) -> None:
        self.bootstrap_servers = list(bootstrap_servers)
        self.topic = topic
        self.timeout = timeout
        self.max_request_size = max_request_size
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_request_size=self.max_request_size,
            request_timeout_ms=max(1000, int(self.timeout * 1000)),
            client_id="streams-api",
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def write(self, records: Sequence[Outgoing]) -> list[str | None]:
        if self._producer is None:
            return ["the API is not connected to Kafka"] * len(records)
        outcomes: list[str | None] = [
            f"not sent to Kafka within {self.timeout:g} s (nothing was written: resending is safe)"
        ] * len(records)
        pending: dict[asyncio.Future[Any], int] = {}

        async def send_all() -> None:
            for index, record in enumerate(records):
                try:
                    future = await self._producer.send(self.topic, record.value, key=record.key)
                except Exception as exc:  # size, serialisation, metadata timeout
                    outcomes[index] = f"{type(exc).__name__}: {exc}"
                    continue
                pending[future] = index
            if pending:
                await asyncio.wait(list(pending))

        try:
            await asyncio.wait_for(send_all(), self.timeout)
        except TimeoutError:
            log.warning("write of %d records timed out after %.0f s", len(records), self.timeout)
        for future, index in pending.items():
            if not future.done():
                outcomes[index] = (
                    f"not acknowledged by Kafka within {self.timeout:g} s (it may still be "
                    "stored: resending is safe)"
                )
            elif future.cancelled():
                outcomes[index] = "cancelled before Kafka acknowledged it"
            elif (exc := future.exception()) is not None:
                outcomes[index] = f"{type(exc).__name__}: {exc}"
            else:
                outcomes[index] = None
        failed = sum(1 for o in outcomes if o is not None)
        if failed:
            log.warning("%d of %d records not acknowledged by Kafka", failed, len(records))
        return outcomes
