"""Marketo's Activities reads over the `activities` topic: Get Paging Token, Get Lead
Activities, Get Lead Changes and Get Deleted Leads.

Framework-free and blocking (kafka-python): the HTTP layer (`history_routes`) calls it from
a thread pool and turns a `HistoryError` into Marketo's envelope. This module composes the
others, one job each: `paging_token` (the token codec), `history_params` (the parameters'
rules), `consumer_pool` (Kafka consumers), `merge` (one page, pure), `activity_shapes`
(Marketo's shapes), `history_errors` (the codes).

Tokens
======

Reading with a token: a partition the token does not know (the topic grew since) is read
from its beginning; an offset below the earliest retained one (retention deleted records)
resumes at the earliest; an offset beyond the partition's end (a log truncated by an unclean
leader election, or a recreated topic) reads nothing and is kept as it is. A token that knows
more partitions than the topic has is refused (`1001`). The partition count is asked again
at most every `metadata_max_age` seconds (and at once for a token that knows more), so new
partitions are seen within that time; nothing is lost meanwhile, since the tokens handed
out do not know them and so will read them from the beginning.

`sinceDatetime` is matched against the record's Kafka timestamp, the time the activity was
written to the topic (producer `CreateTime`, or the broker's `LogAppendTime` if the topic is
so configured), not against its `activityDate`: Marketo matches on the time the activity was
created in Marketo, and the time it reached the topic is the faithful equivalent (a mobile
device may send an action days after its `activityDate`; a reader that asked for activities
since yesterday must still get it). The offsets come from the broker's ListOffsets by
timestamp (the first record of each partition with a timestamp at or after `since`, rounded
up to the millisecond); a partition with no such record starts at its end offset.

Pages
=====

Each call reads the partitions from the token's offsets up to the end offsets observed at the
start of the call (so a page is bounded even while producers write), merges the partitions
in a deterministic order (by record timestamp, then partition, then offset, as a k-way merge
that keeps each partition's offset order), filters, and stops at `batch_size` results. The
next token holds, per partition, the offset after the last record consumed there: returned,
or read and filtered out (not matching, or not decodable). Records read ahead but not reached
by the merge when the page filled are not consumed, so they come on the next page. Hence
every matching record is returned exactly once, in the same order whatever the page size.

`moreResult` is true while some partition has not been consumed up to the end offsets seen
at the start of the call; false with the token to resume from later, as in Marketo. A call
is also bounded in time and in records scanned (a selective filter over a long backlog):
it may then return fewer than `batch_size` results, even none, with `moreResult` true, as
Marketo does. A partition that yields nothing within `idle_timeout` although its end offset
says there is more (the broker's end offsets are not trusted blindly) is left for the next
call.

Records that do not decode against the catalog in force (the workers reject and dead-letter
them; the API validates before writing, but anything may be on the topic) are skipped, as is
a record of a type since removed from the catalog. A record written twice (a producer's
retry) appears twice, with the same `id` and `marketoGUID`: the topic is the history, and
deduplication is the workers' (clients deduplicate on `marketoGUID`).

"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from streams.api.activity_shapes import activity_result, lead_change_result
from streams.api.consumer_pool import ConsumerFetcher, ConsumerPool
from streams.api.history_errors import INVALID_VALUE, HistoryError
from streams.api.history_params import (
    MAX_BATCH_SIZE,
    check_batch_size,
    check_fields,
    check_leads,
    check_types,
)
from streams.api.merge import Fetched, Limits, merge
from streams.api.paging_token import DEFAULT_TOKEN_KEY, decode_token, encode_token
from streams.engine.activity import Activity, Decoder
from streams.engine.catalog import Catalog
from streams.engine.datatypes import datetime_to_us
from streams.engine.standard_types import CHANGE_DATA_VALUE, DELETE_LEAD, NEW_LEAD

Selector = Callable[[Activity, bytes], dict[str, Any] | None]
"""A decoded record and its bytes to its result, or None when it does not match."""

Read = tuple[list[dict[str, Any]], str, bool]
"""A page: its results, the next token, and `moreResult`."""


class ActivityHistory:
    """Marketo's activity reads over one topic, decoded against one catalog. Thread-safe
    (see `consumer_pool`)."""

    def __init__(
        self,
        bootstrap: str | list[str],
        topic: str,
        catalog: Catalog,
        *,
        token_key: bytes = DEFAULT_TOKEN_KEY,
        pool_size: int = 4,
        request_timeout: float = 10.0,
        max_wait: float = 5.0,
        idle_timeout: float = 1.0,
        max_scan: int = 50_000,
        metadata_max_age: float = 10.0,
        consumer_config: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.catalog = catalog
        self.token_key = token_key
        self.request_timeout = request_timeout
        self.max_wait = max_wait
        """Seconds a call may spend reading before it returns what it has."""
        self.idle_timeout = idle_timeout
        """Seconds without any record, while some partition still has records to read by
        its end offset, after which that partition is left for the next call."""
        self.max_scan = max_scan
        """Records a call may consume (matching or not) before it returns what it has."""
        self.clock = clock
        self.pool = ConsumerPool(
            bootstrap,
            topic,
            size=pool_size,
            request_timeout=request_timeout,
            metadata_max_age=metadata_max_age,
            consumer_config=consumer_config,
        )

    @property
    def catalog(self) -> Catalog:
        return self._decoder.catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        """A new catalog (a type approved) applies from the next call."""
        self._decoder = Decoder(catalog)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> ActivityHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # tokens

    def paging_token(self, since: datetime) -> str:
        """The token that reads every record written to the topic at or after `since`
        (record timestamp, not activityDate; a naive datetime is taken as UTC)."""
        if not isinstance(since, datetime):
            raise HistoryError(INVALID_VALUE, "sinceDatetime must be a date-time")
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        since_ms = max(0, -(-datetime_to_us(since) // 1000))  # rounded up to the ms
        timeout_ms = int(self.request_timeout * 1000)
        with self.pool.lease() as consumer:
            tps = self.pool.partitions(consumer, fresh=True)
            if not tps:
                return encode_token(self.topic, [], self.token_key)
            found = consumer.offsets_for_times(dict.fromkeys(tps, since_ms), timeout_ms)
            end = consumer.end_offsets(tps, timeout_ms)
        offsets = [found[tp].offset if found.get(tp) is not None else end[tp] for tp in tps]
        return encode_token(self.topic, offsets, self.token_key)

    # the three reads

    def activities(
        self,
        token: str,
        type_ids: list[int],
        lead_ids: list[int] | None = None,
        batch_size: int = MAX_BATCH_SIZE,
    ) -> Read:
        """Get Lead Activities: the records of these types (and leads), in Marketo's shape."""
        decoder = self._decoder  # one catalog for the whole call
        catalog_types = decoder.catalog.types
        types = check_types(type_ids, decoder.catalog)
        leads = check_leads(lead_ids)
        check_batch_size(batch_size)
        offsets = decode_token(token, self.topic, self.token_key)

        def select(activity: Activity, raw: bytes) -> dict[str, Any] | None:
            if activity.type_id not in types or (leads and activity.lead_id not in leads):
                return None
            return activity_result(catalog_types[activity.type_id], activity, raw)

        return self._read(decoder, offsets, select, batch_size)

    def lead_changes(
        self,
        token: str,
        fields: list[str],
        lead_ids: list[int] | None = None,
        batch_size: int = MAX_BATCH_SIZE,
    ) -> Read:
        """Get Lead Changes: Change Data Value (13) and New Lead (12) records that set one
        of `fields` (names compared without regard to case, as lead fields are), each with
        only the changes of those fields."""
        wanted = check_fields(fields)
        leads = check_leads(lead_ids)
        check_batch_size(batch_size)
        offsets = decode_token(token, self.topic, self.token_key)
        decoder = self._decoder  # one catalog for the whole call
        catalog_types = decoder.catalog.types

        def select(activity: Activity, raw: bytes) -> dict[str, Any] | None:
            if activity.type_id not in (CHANGE_DATA_VALUE, NEW_LEAD) or not activity.fields:
                return None
            if leads and activity.lead_id not in leads:
                return None
            if not any(name.casefold() in wanted for name, _ in activity.fields):
                return None
            return lead_change_result(catalog_types[activity.type_id], activity, raw, wanted)

        return self._read(decoder, offsets, select, batch_size)

    def deleted_leads(self, token: str, batch_size: int = MAX_BATCH_SIZE) -> Read:
        """Get Deleted Leads: the Delete Lead (37) records."""
        check_batch_size(batch_size)
        offsets = decode_token(token, self.topic, self.token_key)
        decoder = self._decoder
        delete_type = decoder.catalog.types[DELETE_LEAD]

        def select(activity: Activity, raw: bytes) -> dict[str, Any] | None:
            if activity.type_id != DELETE_LEAD:
                return None
            return activity_result(delete_type, activity, raw)

        return self._read(decoder, offsets, select, batch_size)

    # one page

    def _read(
        self, decoder: Decoder, token_offsets: list[int], select: Selector, batch_size: int
    ) -> Read:
        timeout_ms = int(self.request_timeout * 1000)
        limits = Limits(batch_size, self.max_scan, self.max_wait, self.idle_timeout)
        decode = decoder.decode

        def keep(partition: int, record: Fetched) -> dict[str, Any] | None:
            value = record.value
            if value is None:
                return None
            activity = decode(value, f"{self.topic}/{partition}/{record.offset}")
            return select(activity, value) if isinstance(activity, Activity) else None

        with self.pool.lease() as consumer:
            tps = self.pool.partitions(consumer, at_least=len(token_offsets))
            if len(token_offsets) > len(tps):
                raise HistoryError(
                    INVALID_VALUE,
                    f"invalid nextPageToken: it knows {len(token_offsets)} partitions of "
                    f"{self.topic!r}, which has {len(tps)}",
                )
            if not tps:
                return [], encode_token(self.topic, [], self.token_key), False
            begin = consumer.beginning_offsets(tps, timeout_ms)
            end_by_tp = consumer.end_offsets(tps, timeout_ms)
            end = [end_by_tp[tp] for tp in tps]
            start = [
                max(token_offsets[p] if p < len(token_offsets) else 0, begin[tp])
                for p, tp in enumerate(tps)
            ]
            fetcher = ConsumerFetcher(consumer, tps, start, end)
            page = merge(fetcher, start, end, keep, limits, self.clock)
        more = page.stalled or any(n < e for n, e in zip(page.next_offsets, end, strict=True))
        return page.results, encode_token(self.topic, page.next_offsets, self.token_key), more
