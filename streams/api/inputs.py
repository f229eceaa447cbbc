"""Reading what a call sends (its JSON body, its query parameters) as leniently as Marketo
does, and refusing what cannot be read with Marketo's codes: 612 (not JSON), 609 (JSON that
does not parse), 701 (a required parameter missing or blank), 1001/1003 (a value of the
wrong type or out of range). The reads' parameters are parsed by `streams.api.history_params`.

Every value is checked here by hand rather than by FastAPI's validation, whose 422 answers
are not Marketo's.

Nesting: orjson parses up to 1,024 levels but encodes only 254, and the API re-encodes what
it accepts (to write it, to quote it in a message). So JSON nests at most `MAX_DEPTH`
levels wherever the API keeps or quotes it: a record of Add Custom Activities or of mobile
actions nested deeper is skipped alone (`too_deep`, checked by `ingest.prepare`), and the
body of any other call is refused as a whole (609). A body beyond the parser's own limit
does not parse at all: 609 for the whole call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from starlette.requests import Request

from streams.api.envelope import (
    CANNOT_BE_BLANK,
    INVALID_CONTENT_TYPE,
    INVALID_DATA,
    INVALID_JSON,
    INVALID_VALUE,
    ApiError,
)

JSON_TYPES: Final = ("application/json", "text/json")
MAX_DEPTH: Final = 32
"""Levels of arrays and objects a record (or a body that is not a list of records) may
nest; a record of the spec nests 3 (record, attributes, attribute)."""
MAX_LIST_ITEM: Final = 100
"""How many characters of a bad value an error message quotes."""


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests arrays and objects more than `limit` levels (a scalar is 0,
    `[]` 1). Iterative, so no depth can exhaust the stack; stops at the first too deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


async def read_json(request: Request, max_depth: int | None = MAX_DEPTH) -> Any:
    """The body as JSON. A missing Content-Type is taken as JSON (lenient); another one is
    612, as Marketo answers. A body nested deeper than `max_depth` is 609; None leaves the
    check to the caller (the lists of records, checked one record at a time)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise ApiError(
            INVALID_CONTENT_TYPE,
            f"Invalid Content Type {content_type[:MAX_LIST_ITEM]!r}: send the body as JSON "
            "with 'Content-Type: application/json'",
        )
    body = await request.body()
    if not body.strip():
        raise ApiError(INVALID_JSON, "Invalid JSON: the body is empty")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(INVALID_JSON, f"Invalid JSON: {exc}") from None
    if max_depth is not None and too_deep(value, max_depth):
        raise ApiError(
            INVALID_JSON, f"Invalid JSON: the body nests arrays and objects over {max_depth} levels"
        )
    return value


def json_object(value: Any, what: str = "the body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(INVALID_DATA, f"Invalid data: {what} must be a JSON object")
    return value


def _shown(value: Any) -> str:
    if too_deep(value):
        return f"(a value nested over {MAX_DEPTH} levels)"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= MAX_LIST_ITEM else text[: MAX_LIST_ITEM - 1] + "…"


def invalid(name: str, value: Any, required: str) -> ApiError:
    """Marketo's 1001 text: Invalid value '%s'. Required of type '%s'."""
    return ApiError(
        INVALID_VALUE, f"Invalid value '{_shown(value)}' for {name}. Required of type '{required}'"
    )


def blank(name: str) -> ApiError:
    return ApiError(CANNOT_BE_BLANK, f"{name} cannot be blank")


def required_text(params: Mapping[str, Any], name: str, max_length: int = 255) -> str:
    value = params.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise blank(name)
    if not isinstance(value, str):
        raise invalid(name, value, "string")
    if len(value) > max_length:
        raise ApiError(
            INVALID_VALUE, f"{name} is {len(value)} characters long; at most {max_length}"
        )
    return value


def optional_text(params: Mapping[str, Any], name: str, max_length: int = 255) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name, value, "string")
    if len(value) > max_length:
        raise ApiError(
            INVALID_VALUE, f"{name} is {len(value)} characters long; at most {max_length}"
        )
    return value


def boolean_param(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    """`true`/`false` in any case (also 1/0, yes/no); empty is the default."""
    raw = params.get(name)
    if raw is None or not raw.strip():
        return default
    folded = raw.strip().lower()
    if folded in ("true", "1", "yes"):
        return True
    if folded in ("false", "0", "no"):
        return False
    raise invalid(name, raw, "boolean")
