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
`_fetch_max_wait_ms` to the `Fetcher` it creates in `start()`. Both internals are checked
by tests/unit/test_fetch_wait.py and tests/integration/test_fetch_wait.py (on the real broker),
which fail loudly if an upgrade moves them.
"""

from __future__ import annotations

from typing import Any, Final

import aiokafka
from faust.transport.drivers import aiokafka as aiokafka_driver

FETCH_MAX_WAIT_MS: Final = 100
"""How long the broker may hold a fetch with no new data, in ms (module doc)."""


class ShortFetchWaitThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, whose consumer waits at most `FETCH_MAX_WAIT_MS`
    per fetch."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class ShortFetchWaitConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka-driver consumer, on `ShortFetchWaitThread`."""

    def _new_consumer_thread(self) -> ShortFetchWaitThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)
