"""The parameters of the activity reads: parsing the text the HTTP layer receives, and the
rules every read checks (1 to 10 type ids, at most 30 lead ids, a batch size of 1 to 300),
each refusal a `HistoryError` with Marketo's code (701 blank, 1001 unreadable, 1003 out of
range). `streams.api.history_routes` exposes them as FastAPI dependencies; `ActivityHistory`
checks the same rules for callers that are not HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from streams.api.history_errors import (
    CANNOT_BE_BLANK,
    INVALID_DATA,
    INVALID_VALUE,
    HistoryError,
)
from streams.engine.catalog import Catalog
from streams.engine.datatypes import INT64_MAX

MAX_TYPE_IDS: Final = 10
MAX_LEAD_IDS: Final = 30
MAX_BATCH_SIZE: Final = 300
_BATCH_SIZE_RE: Final = re.compile(r"[+-]?[0-9]{1,12}")


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


def check_types(type_ids: object, catalog: Catalog) -> set[int]:
    """`activityTypeIds`: 1 to 10 ids of types in force in `catalog`."""
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


def check_leads(lead_ids: object) -> set[int]:
    """`leadIds`: the lead ids to keep, at most 30; empty means every lead."""
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


def check_fields(fields: object) -> set[str]:
    """`fields` of Get Lead Changes: at least one name; the case-folded names."""
    if not isinstance(fields, list | tuple) or not fields:
        raise HistoryError(INVALID_DATA, "fields is required: at least one field name")
    if any(not isinstance(name, str) for name in fields):
        raise HistoryError(INVALID_VALUE, "fields must be field names")
    wanted = {name.strip().casefold() for name in fields if name.strip()}
    if not wanted:
        raise HistoryError(INVALID_DATA, "fields is required: at least one field name")
    return wanted
