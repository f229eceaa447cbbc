"""Marketo's Activities read endpoints over the `activities` topic: paging tokens, Get Lead
Activities, Get Lead Changes and Get Deleted Leads.

Framework-free and blocking (kafka-python): the HTTP layer calls it from a thread pool and
turns a `HistoryError` into Marketo's error envelope with `code` and `message`.

Paging tokens
=============

A token is where to read next in each partition of the topic, and nothing else: the server
keeps no state, so a token survives a restart of the API, and any API process can continue
a client's paging. Layout (then base64url without padding, so it is URL-safe as is)::

    version      1 byte   (1)
    topic tag    4 bytes  BLAKE2b-32 of the topic name: a token of another topic is refused
    count        varint   number of partitions the token knows (P)
    offsets      P varints: the next offset to read in partitions 0 .. P-1
    check        8 bytes  BLAKE2b-64 keyed MAC of everything before it

Only the canonical encoding of a token is accepted, so changing any character of a token is
detected (`1001 invalid nextPageToken`). The MAC key defaults to a constant, which makes the
check an integrity check, not an authentication: a client that forges a token gains nothing
that `sinceDatetime` does not give. `ActivityHistory(token_key=...)` makes forging
impossible where that matters.

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

Error codes
===========

- 701 (cannot be blank): a required scalar parameter is missing or blank: `nextPageToken`,
  `sinceDatetime`.
- 1001 (invalid value): a value of the wrong type, or unreadable: a tampered, garbage,
  truncated or other-topic `nextPageToken`, or one that knows more partitions than the topic
  has; an unparsable `sinceDatetime`; an id that is not a positive integer; a `batchSize`
  that is not an integer.
- 1003 (invalid data): a value out of its allowed range: `activityTypeIds` with no id, more
  than 10, or an id that names no approved type; `leadIds` with more than 30 ids; `fields`
  missing or empty (Get Lead Changes); `batchSize` outside 1..300.
- 608 (API temporarily unavailable, `HistoryUnavailable`): Kafka did not answer; the request
  may be retried.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams.api import envelope
from streams.engine.activity import Activity, Decoder
from streams.engine.catalog import ActivityType, Catalog
from streams.engine.datatypes import (
    INT64_MAX,
    Value,
    datetime_to_us,
    display_value,
    format_us,
    number_text,
)
from streams.engine.standard_types import CHANGE_DATA_VALUE, DELETE_LEAD, NEW_LEAD

# Marketo's codes, from the one table in envelope.py, as the integers HistoryError carries.
CANNOT_BE_BLANK: Final = int(envelope.CANNOT_BE_BLANK)
INVALID_VALUE: Final = int(envelope.INVALID_VALUE)
INVALID_DATA: Final = int(envelope.INVALID_DATA)
TEMPORARILY_UNAVAILABLE: Final = int(envelope.TEMPORARILY_UNAVAILABLE)

MAX_TYPE_IDS: Final = 10
MAX_LEAD_IDS: Final = 30
MAX_BATCH_SIZE: Final = 300

TOKEN_VERSION: Final = 1
DEFAULT_TOKEN_KEY: Final = b"streams.api.history nextPageToken v1"
_TAG_BYTES: Final = 4
_MAC_BYTES: Final = 8
_MAX_TOKEN_CHARS: Final = 200_000
"""Tokens of a topic of 10,000 partitions with large offsets stay well below this."""
_MAX_TOKEN_PARTITIONS: Final = 100_000
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_BATCH_SIZE_RE: Final = re.compile(r"[+-]?[0-9]{1,12}")

_PAUSE_AT: Final = 5000
"""Records buffered for one partition at which its fetching pauses until the merge drains
half of them (the merge waits for the partition that is furthest behind in time)."""
_EXACT_ID_LIMIT: Final = 2**52
"""Numeric identities below this are their own `id`; others hash into [2**52, 2**53)."""


class HistoryError(Exception):
    """A request that cannot be answered; `code` is Marketo's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HistoryUnavailable(HistoryError):
    """Kafka did not answer in time (608): nothing was read, the request may be retried."""

    def __init__(self, message: str) -> None:
        super().__init__(TEMPORARILY_UNAVAILABLE, message)


# --- paging tokens ---------------------------------------------------------------------


def _uvarint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_uvarint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or overlong number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _topic_tag(topic: str) -> bytes:
    return hashlib.blake2b(topic.encode(), digest_size=_TAG_BYTES).digest()


def _mac(body: bytes, key: bytes) -> bytes:
    if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
        key = hashlib.blake2b(key).digest()
    return hashlib.blake2b(body, key=key, digest_size=_MAC_BYTES).digest()


def _pack(topic: str, offsets: Sequence[int], key: bytes) -> bytes:
    body = bytearray((TOKEN_VERSION,))
    body += _topic_tag(topic)
    _uvarint(len(offsets), body)
    for offset in offsets:
        _uvarint(offset, body)
    return bytes(body) + _mac(bytes(body), key)


def encode_token(topic: str, offsets: Sequence[int], key: bytes = DEFAULT_TOKEN_KEY) -> str:
    """The token that reads partition `p` of `topic` from `offsets[p]`."""
    if any(not 0 <= offset <= INT64_MAX for offset in offsets):
        raise ValueError("offsets are 0 .. 2**63-1")
    if len(offsets) > _MAX_TOKEN_PARTITIONS:
        raise ValueError(f"at most {_MAX_TOKEN_PARTITIONS} partitions")
    return base64.urlsafe_b64encode(_pack(topic, offsets, key)).decode("ascii").rstrip("=")


def _invalid_token(token: str, reason: str) -> HistoryError:
    shown = token if len(token) <= 60 else token[:57] + "..."
    return HistoryError(INVALID_VALUE, f"invalid nextPageToken {shown!r}: {reason}")


def decode_token(token: object, topic: str, key: bytes = DEFAULT_TOKEN_KEY) -> list[int]:
    """The offsets of a token made by `encode_token` for `topic`; HistoryError 701 when it is
    blank, 1001 when it is anything but an unaltered token of this topic."""
    if token is None or token == "":
        raise HistoryError(CANNOT_BE_BLANK, "nextPageToken cannot be blank")
    if not isinstance(token, str):
        raise HistoryError(INVALID_VALUE, "invalid nextPageToken: not a string")
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token) or len(token) % 4 == 1:
        raise _invalid_token(token, "not a paging token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _invalid_token(token, "not a paging token") from None
    if len(raw) < 1 + _TAG_BYTES + 1 + _MAC_BYTES:
        raise _invalid_token(token, "too short")
    if raw[0] != TOKEN_VERSION:
        raise _invalid_token(token, f"unknown token version {raw[0]}")
    body_end = len(raw) - _MAC_BYTES
    if _mac(raw[:body_end], key) != raw[body_end:]:
        raise _invalid_token(token, "altered or truncated (check failed)")
    if raw[1 : 1 + _TAG_BYTES] != _topic_tag(topic):
        raise _invalid_token(token, f"made for another topic than {topic!r}")
    try:
        count, pos = _read_uvarint(raw, 1 + _TAG_BYTES, body_end)
        if count > _MAX_TOKEN_PARTITIONS:
            raise ValueError("too many partitions")
        offsets = []
        for _ in range(count):
            offset, pos = _read_uvarint(raw, pos, body_end)
            if offset > INT64_MAX:
                raise ValueError("offset out of range")
            offsets.append(offset)
        if pos != body_end:
            raise ValueError("trailing bytes")
    except ValueError as exc:
        raise _invalid_token(token, str(exc)) from None
    if _pack(topic, offsets, key) != raw or encode_token(topic, offsets, key) != token:
        raise _invalid_token(token, "not in canonical form")
    return offsets


# --- parameters --------------------------------------------------------------------------
# Helpers for the HTTP layer, which receives every parameter as text: they raise the same
# codes as the methods below, so that a route needs no rules of its own.


def parse_since(raw: str | None) -> datetime:
    """`sinceDatetime`: ISO-8601 date-time (`Z`, `+07:00`, `+0700`) or date; without an
    offset it is taken as UTC (Marketo takes it in the instance's time zone)."""
    if raw is None or not raw.strip():
        raise HistoryError(CANNOT_BE_BLANK, "sinceDatetime cannot be blank")
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise HistoryError(
            INVALID_VALUE, f"invalid sinceDatetime {shown!r}: not an ISO-8601 date-time"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_ids(raw: str | None, name: str) -> list[int] | None:
    """A comma-separated list of positive integers (`activityTypeIds`, `leadIds`); None
    when the parameter is absent or blank."""
    if raw is None or not raw.strip():
        return None
    ids: list[int] = []
    for item in raw.split(","):
        text = item.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19) or int(text) < 1:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise HistoryError(
                INVALID_VALUE, f"invalid value {shown!r} in {name}: not a positive integer"
            )
        ids.append(int(text))
    return ids


def parse_names(raw: str | None) -> list[str]:
    """`fields`: a comma-separated list of lead field names (blank items dropped)."""
    if raw is None:
        return []
    return [name.strip() for name in raw.split(",") if name.strip()]


def parse_batch_size(raw: str | None) -> int:
    """`batchSize`, 300 when absent."""
    if raw is None or not raw.strip():
        return MAX_BATCH_SIZE
    text = raw.strip()
    if not _BATCH_SIZE_RE.fullmatch(text):
        raise HistoryError(INVALID_VALUE, f"invalid batchSize {text[:20]!r}: not an integer")
    return check_batch_size(int(text))


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise HistoryError(INVALID_VALUE, "batchSize must be an integer")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise HistoryError(
            INVALID_DATA, f"batchSize {batch_size} is out of range: 1 to {MAX_BATCH_SIZE}"
        )
    return batch_size


def _positive_ids(ids: Iterable[object], name: str) -> list[int]:
    """The distinct ids, in order; 1001 for anything but a positive 64-bit integer."""
    out: dict[int, None] = {}
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT64_MAX:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise HistoryError(INVALID_VALUE, f"invalid value {shown} in {name}")
        out[value] = None
    return list(out)


# --- results -----------------------------------------------------------------------------


def activity_number(identity: str) -> int:
    """Marketo's integer `id` for an activity identity (`marketoGUID`): the number itself
    for a canonical decimal identity below 2**52, else a 52-bit hash of it plus 2**52, so
    the two kinds never collide and every id stays exact in JSON clients (< 2**53)."""
    if identity.isascii() and identity.isdigit() and len(identity) <= 16:
        number = int(identity)
        if 0 < number < _EXACT_ID_LIMIT and str(number) == identity:
            return number
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return _EXACT_ID_LIMIT + int.from_bytes(digest, "big") % _EXACT_ID_LIMIT


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return value


def _attributes(activity_type: ActivityType, values: dict[str, Value]) -> list[dict[str, Any]]:
    return [
        {"name": spec.name, "value": display_value(spec.data_type, values[spec.api_name])}
        for spec in activity_type.attributes
        if spec.api_name in values
    ]


def _raw_fields(record: dict[str, Any]) -> list[Any]:
    fields = record.get("fields")
    return fields if isinstance(fields, list) else []


def _field_entry(name: str, new_value: str | None, raw: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if isinstance(raw, dict):
        field_id = raw.get("id")
        if isinstance(field_id, int) and not isinstance(field_id, bool):
            entry["id"] = field_id
    old = raw.get("oldValue") if isinstance(raw, dict) else None
    if isinstance(old, bool):
        old = "true" if old else "false"
    elif isinstance(old, int | float):
        old = number_text(old)
    elif not isinstance(old, str):
        old = None
    entry.update(name=name, newValue=new_value, oldValue=old)
    return entry


# --- reading -----------------------------------------------------------------------------


def _close(consumer: Any) -> None:
    with suppress(Exception):  # closing a consumer whose broker is gone may raise
        consumer.close(autocommit=False, timeout_ms=1000)


Selector = Callable[[Activity, bytes], dict[str, Any] | None]
"""A decoded record and its bytes to its result, or None when it does not match."""


class ActivityHistory:
    """Marketo's activity reads over one topic, decoded against one catalog.

    Thread-safe: each call leases a KafkaConsumer from a small pool (at most `pool_size`
    idle ones are kept; a call that finds none creates one), so concurrent calls run in
    parallel and a consumer is never used by two threads at once. Consumers are assigned
    partitions directly: no consumer group, nothing committed.
    """

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
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.catalog = catalog
        self.token_key = token_key
        self.pool_size = pool_size
        self.request_timeout = request_timeout
        self.max_wait = max_wait
        """Seconds a call may spend reading before it returns what it has."""
        self.idle_timeout = idle_timeout
        """Seconds without any record, while some partition still has records to read by
        its end offset, after which that partition is left for the next call."""
        self.max_scan = max_scan
        """Records a call may consume (matching or not) before it returns what it has."""
        self.metadata_max_age = metadata_max_age
        """Seconds the topic's partition count is trusted before it is asked again."""
        self.consumer_config = consumer_config or {}
        self._partition_count: int | None = None
        self._counted_at = 0.0
        self._pool: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def catalog(self) -> Catalog:
        return self._decoder.catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        """A new catalog (a type approved) applies from the next call."""
        self._decoder = Decoder(catalog)

    # consumers

    def _new_consumer(self) -> Any:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": "streams-history",
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "request_timeout_ms": int(self.request_timeout * 1000),
            "bootstrap_timeout_ms": int(self.request_timeout * 1000),
            "fetch_max_wait_ms": 100,
            "max_partition_fetch_bytes": 256 * 1024,
            "max_poll_records": 1000,
            **self.consumer_config,
        }
        try:
            return KafkaConsumer(**config)
        except KafkaError as exc:
            raise HistoryUnavailable(f"Kafka at {self.bootstrap} did not answer: {exc}") from exc

    @contextmanager
    def _lease(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("ActivityHistory is closed")
            consumer = self._pool.pop() if self._pool else None
        if consumer is None:
            consumer = self._new_consumer()
        healthy = False
        try:
            yield consumer
            healthy = True
        except HistoryError:
            healthy = True  # the request's fault, not the consumer's
            raise
        except KafkaError as exc:
            raise HistoryUnavailable(f"Kafka at {self.bootstrap}: {exc}") from exc
        finally:
            if healthy:
                try:
                    consumer.assign([])  # stop fetching while idle
                except Exception:
                    healthy = False
            with self._lock:
                keep = healthy and not self._closed and len(self._pool) < self.pool_size
                if keep:
                    self._pool.append(consumer)
            if not keep:
                _close(consumer)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._pool = self._pool, []
        for consumer in idle:
            _close(consumer)

    def __enter__(self) -> ActivityHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _partitions(
        self, consumer: Any, at_least: int = 0, fresh: bool = False
    ) -> list[TopicPartition]:
        """The topic's partitions. The count is cached for `metadata_max_age` seconds (a
        metadata request costs up to the client's 100 ms refresh backoff); a stale count
        loses nothing, since a partition a token does not know is read from its beginning
        once known, and a token that knows more partitions forces a refresh."""
        with self._lock:
            count, counted_at = self._partition_count, self._counted_at
        if (
            fresh
            or count is None
            or count < at_least
            or time.monotonic() - counted_at >= self.metadata_max_age
        ):
            consumer.topics()  # a metadata request for every topic: refreshes the cache
            ids = sorted(consumer.partitions_for_topic(self.topic) or ())
            if ids != list(range(len(ids))):
                raise HistoryUnavailable(f"topic {self.topic!r} has partitions {ids} (a gap)")
            count = len(ids)
            with self._lock:
                self._partition_count, self._counted_at = count, time.monotonic()
        return [TopicPartition(self.topic, p) for p in range(count)]

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
        with self._lease() as consumer:
            tps = self._partitions(consumer, fresh=True)
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
    ) -> tuple[list[dict[str, Any]], str, bool]:
        """Get Lead Activities: the records of these types (and leads), in Marketo's shape."""
        decoder = self._decoder  # one catalog for the whole call
        catalog_types = decoder.catalog.types
        types = self._check_types(type_ids, decoder.catalog)
        leads = self._check_leads(lead_ids)
        check_batch_size(batch_size)
        offsets = decode_token(token, self.topic, self.token_key)

        def select(activity: Activity, raw: bytes) -> dict[str, Any] | None:
            if activity.type_id not in types or (leads and activity.lead_id not in leads):
                return None
            return self._activity_result(catalog_types[activity.type_id], activity, raw)

        return self._read(decoder, offsets, select, batch_size)

    def lead_changes(
        self,
        token: str,
        fields: list[str],
        lead_ids: list[int] | None = None,
        batch_size: int = MAX_BATCH_SIZE,
    ) -> tuple[list[dict[str, Any]], str, bool]:
        """Get Lead Changes: Change Data Value (13) and New Lead (12) records that set one
        of `fields` (names compared without regard to case, as lead fields are), each with
        only the changes of those fields."""
        if not isinstance(fields, list | tuple) or not fields:
            raise HistoryError(INVALID_DATA, "fields is required: at least one field name")
        if any(not isinstance(name, str) for name in fields):
            raise HistoryError(INVALID_VALUE, "fields must be field names")
        wanted = {name.strip().casefold() for name in fields if name.strip()}
        if not wanted:
            raise HistoryError(INVALID_DATA, "fields is required: at least one field name")
        leads = self._check_leads(lead_ids)
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
            record = orjson.loads(raw)
            raw_fields = _raw_fields(record)
            changes = [
                _field_entry(name, new, raw_fields[i] if i < len(raw_fields) else None)
                for i, (name, new) in enumerate(activity.fields)
                if name.casefold() in wanted
            ]
            return {
                **self._identity(activity),
                "fields": changes,
                "attributes": _attributes(catalog_types[activity.type_id], activity.attributes),
            }

        return self._read(decoder, offsets, select, batch_size)

    def deleted_leads(
        self, token: str, batch_size: int = MAX_BATCH_SIZE
    ) -> tuple[list[dict[str, Any]], str, bool]:
        """Get Deleted Leads: the Delete Lead (37) records."""
        check_batch_size(batch_size)
        offsets = decode_token(token, self.topic, self.token_key)
        decoder = self._decoder
        delete_type = decoder.catalog.types[DELETE_LEAD]

        def select(activity: Activity, raw: bytes) -> dict[str, Any] | None:
            if activity.type_id != DELETE_LEAD:
                return None
            return self._activity_result(delete_type, activity, raw)

        return self._read(decoder, offsets, select, batch_size)

    # validation and shapes

    @staticmethod
    def _check_types(type_ids: object, catalog: Catalog) -> set[int]:
        if not isinstance(type_ids, list | tuple | set | frozenset):
            raise HistoryError(INVALID_VALUE, "activityTypeIds must be a list of integers")
        ids = _positive_ids(type_ids, "activityTypeIds")
        if not ids:
            raise HistoryError(INVALID_DATA, "activityTypeIds is required: 1 to 10 type ids")
        if len(ids) > MAX_TYPE_IDS:
            raise HistoryError(
                INVALID_DATA,
                f"activityTypeIds has {len(ids)} ids; at most {MAX_TYPE_IDS} are allowed",
            )
        unknown = ", ".join(str(i) for i in ids if i not in catalog.types)
        if unknown:
            raise HistoryError(
                INVALID_DATA, f"activityTypeIds: no approved activity type has the id {unknown}"
            )
        return set(ids)

    @staticmethod
    def _check_leads(lead_ids: object) -> set[int]:
        """The lead ids to keep; empty means every lead."""
        if lead_ids is None:
            return set()
        if not isinstance(lead_ids, list | tuple | set | frozenset):
            raise HistoryError(INVALID_VALUE, "leadIds must be a list of integers")
        ids = _positive_ids(lead_ids, "leadIds")
        if len(ids) > MAX_LEAD_IDS:
            raise HistoryError(
                INVALID_DATA, f"leadIds has {len(ids)} ids; at most {MAX_LEAD_IDS} are allowed"
            )
        return set(ids)

    @staticmethod
    def _identity(activity: Activity) -> dict[str, Any]:
        return {
            "id": activity_number(activity.id),
            "marketoGUID": activity.id,
            "leadId": activity.lead_id,
            "activityDate": format_us(activity.ts),
            "activityTypeId": activity.type_id,
        }

    def _activity_result(
        self, activity_type: ActivityType, activity: Activity, raw: bytes
    ) -> dict[str, Any]:
        result = self._identity(activity)
        record = orjson.loads(raw)
        value_id = record.get("primaryAttributeValueId")
        if isinstance(value_id, int) and not isinstance(value_id, bool):
            result["primaryAttributeValueId"] = value_id
        elif activity.type_id == DELETE_LEAD:
            result["primaryAttributeValueId"] = activity.lead_id  # as Marketo: the lead's id
        primary = activity.primary
        attributes = _attributes(activity_type, activity.attributes)
        if isinstance(primary, list):  # Change Data Value: the changed fields' names
            result["primaryAttributeValue"] = ", ".join(primary)
            if len(activity.fields) == 1:
                raw_fields = _raw_fields(record)
                change = _field_entry(*activity.fields[0], raw_fields[0] if raw_fields else None)
                attributes[:0] = [
                    {"name": "New Value", "value": change["newValue"]},
                    {"name": "Old Value", "value": change["oldValue"]},
                ]
        elif primary is None:
            result["primaryAttributeValue"] = None
        else:
            result["primaryAttributeValue"] = _text(
                display_value(activity_type.primary.data_type, primary)
            )
        result["attributes"] = attributes
        return result

    # the merge

    def _read(
        self, decoder: Decoder, token_offsets: list[int], select: Selector, batch_size: int
    ) -> tuple[list[dict[str, Any]], str, bool]:
        timeout_ms = int(self.request_timeout * 1000)
        with self._lease() as consumer:
            tps = self._partitions(consumer, at_least=len(token_offsets))
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
            results, next_offsets, stalled = self._merge(
                consumer, decoder, tps, start, end, select, batch_size
            )
        more = stalled or any(n < e for n, e in zip(next_offsets, end, strict=True))
        return results, encode_token(self.topic, next_offsets, self.token_key), more

    def _merge(
        self,
        consumer: Any,
        decoder: Decoder,
        tps: list[TopicPartition],
        start: list[int],
        end: list[int],
        select: Selector,
        batch_size: int,
    ) -> tuple[list[dict[str, Any]], list[int], bool]:
        """Consume partitions from `start` (up to `end`) in (timestamp, partition, offset)
        order; returns the results, the offset after the last record consumed in each
        partition, and whether some partition was left unread (idle or out of time)."""
        next_offsets = list(start)
        to_read = [p for p in range(len(tps)) if start[p] < end[p]]
        if not to_read:
            return [], next_offsets, False
        consumer.assign([tps[p] for p in to_read])
        for p in to_read:
            consumer.seek(tps[p], start[p])
        partition_of = {tps[p]: p for p in to_read}
        buffers: dict[int, deque[Any]] = {p: deque() for p in to_read}
        last_buffered = {p: start[p] - 1 for p in to_read}
        reading = set(to_read)  # still fetching: the end offset not reached
        starving = set(to_read)  # reading, and nothing buffered: the merge must wait
        paused: set[int] = set()
        stalled = False
        heap: list[tuple[int, int, int]] = []  # (timestamp, partition, offset) of each head
        results: list[dict[str, Any]] = []
        decode = decoder.decode
        scanned = 0
        began = time.monotonic()
        last_data = began

        while True:
            # Merge while every partition still being read has a record to compare.
            while heap and not starving and len(results) < batch_size:
                if scanned >= self.max_scan:
                    break
                _, p, _ = heapq.heappop(heap)
                buffer = buffers[p]
                record = buffer.popleft()
                next_offsets[p] = record.offset + 1
                scanned += 1
                if buffer:
                    head = buffer[0]
                    heapq.heappush(heap, (head.timestamp, p, head.offset))
                elif p in reading:
                    starving.add(p)
                value = record.value
                if value is None:
                    continue
                activity = decode(value, f"{self.topic}/{p}/{record.offset}")
                if isinstance(activity, Activity):
                    result = select(activity, value)
                    if result is not None:
                        results.append(result)
            if len(results) >= batch_size or scanned >= self.max_scan or not starving:
                break
            now = time.monotonic()
            if now - began >= self.max_wait or now - last_data >= self.idle_timeout:
                reading -= starving  # left for the next call
                starving.clear()
                stalled = True
                continue
            for p in [p for p in paused if len(buffers[p]) < _PAUSE_AT // 2]:
                consumer.resume(tps[p])
                paused.discard(p)
            polled = consumer.poll(
                timeout_ms=max(1, int(min(self.idle_timeout, 0.2) * 1000)),
                max_records=1000,
            )
            for tp, records in polled.items():
                if tp not in partition_of or partition_of[tp] not in reading:
                    continue
                p = partition_of[tp]
                buffer = buffers[p]
                was_empty = not buffer
                for record in records:
                    if last_buffered[p] < record.offset < end[p]:
                        buffer.append(record)
                        last_buffered[p] = record.offset
                if buffer:
                    last_data = time.monotonic()
                    starving.discard(p)
                    if was_empty:
                        heapq.heappush(heap, (buffer[0].timestamp, p, buffer[0].offset))
                if len(buffer) >= _PAUSE_AT and p not in paused:
                    consumer.pause(tp)
                    paused.add(p)
            for p in list(reading):
                if last_buffered[p] + 1 >= end[p] or consumer.position(tps[p]) >= end[p]:
                    reading.discard(p)
                    starving.discard(p)

        for p in to_read:
            # Read to the end and all consumed: skip gaps (transaction markers, compacted
            # records) so that moreResult turns false.
            if (
                p not in reading
                and not buffers[p]
                and next_offsets[p] < end[p]
                and (last_buffered[p] + 1 >= end[p] or consumer.position(tps[p]) >= end[p])
            ):
                next_offsets[p] = end[p]
        return results, next_offsets, stalled
