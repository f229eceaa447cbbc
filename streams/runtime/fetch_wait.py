"""The worker's fetch long poll, bounded to `FETCH_MAX_WAIT_MS` instead of Faust's 1.5 s.

Why: aiokafka keeps at most one fetch request in flight per broker, and leaves out of it
every partition whose fetched records are still buffered (not yet taken by `getmany`).
Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` hard-coded
(`AIOKafkaConsumerThread._create_worker_consumer`), so when the only partition with data
has more records than one fetch brings (`consumer_max_fetch_size`, 4 MiB) and is still
being taken by batches when the next request goes out, that request holds only the idle
partitions and the broker keeps it up to 1.5 s waiting for data; the busy partition's next
records wait for it. Measured with bench/history.py --worker (one lead with 16,000
activities, 5.9 MB on one partition of four): the worker processed the first fetch's
~10,400 records, stood still ~1.4 s, then took the rest; which of the two fetches the
busy partition joined depended on timing, so the rate was bimodal (3,600-7,300/s or
52,000-66,000/s with the same code). A shorter long poll bounds that stall; an idle worker
sends more empty fetches (ten a second per broker at 100 ms, as the API's consumer pool
does: streams/api/consumer_pool.py).

`ShortFetchWaitConsumer` (the worker's and the dispatcher's consumers derive from it)
runs `ShortFetchWaitThread`: Faust's consumer thread whose worker consumer is Faust's,
with the wait replaced before the consumer starts: aiokafka passes its
`_fetch_max_wait_ms` (and `_fetch_min_bytes`) to the `Fetcher` it creates in `start()`.
An app may carry other values (`set_fetch_wait`: the worker's STREAMS_FETCH_MIN_BYTES and
STREAMS_FETCH_MAX_WAIT_MS): a minimum above 1 byte makes the broker hold each fetch until
that much data is there or the wait passed, so fewer, larger fetches (fewer requests and
batches) at the price of up to the wait added to a record's latency at low rates (README,
"What the broker serves in a latency phase"). Both internals are checked by
tests/unit/test_fetch_wait.py and tests/integration/test_fetch_wait.py (on the real broker),
which fail loudly if an upgrade moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import aiokafka
from faust.transport.drivers import aiokafka as aiokafka_driver

FETCH_MAX_WAIT_MS: Final = 100
"""How long the broker may hold a fetch with no new data, in ms (module doc)."""


@dataclass(frozen=True)
class FetchWait:
    """What a fetch asks the broker: answer once `min_bytes` are there, or after
    `max_wait_ms` with whatever is."""

    max_wait_ms: int = FETCH_MAX_WAIT_MS
    min_bytes: int = 1


def set_fetch_wait(app: Any, wait: FetchWait) -> None:
    """Have the consumer of `app` (a `create_app` app, before its worker starts) fetch
    with `wait` instead of `FetchWait()`."""
    app.streams_fetch_wait = wait


def fetch_wait_of(app: Any) -> FetchWait:
    """The `FetchWait` of `app`: the one `set_fetch_wait` gave it, else the default."""
    wait = getattr(app, "streams_fetch_wait", None)
    return wait if isinstance(wait, FetchWait) else FetchWait()


class ShortFetchWaitThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, whose consumer waits at most `FETCH_MAX_WAIT_MS`
    per fetch (or what `set_fetch_wait` gave its app)."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait = fetch_wait_of(self.app)
        consumer._fetch_max_wait_ms = wait.max_wait_ms
        consumer._fetch_min_bytes = wait.min_bytes
        return consumer


class ShortFetchWaitConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka-driver consumer, on `ShortFetchWaitThread`."""

    def _new_consumer_thread(self) -> ShortFetchWaitThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)
