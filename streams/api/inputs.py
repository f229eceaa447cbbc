"""Reading what a call sends (its JSON body, its query parameters) as leniently as Marketo
does, and refusing what cannot be read with Marketo's codes: 612 (not JSON), 609 (JSON that
does not parse), 701 (a required parameter missing or blank), 1001/1003 (a value of the
wrong type or out of range). The reads' parameters are parsed by `streams.api.history`.

Every value is checked here by hand rather than by FastAPI's validation, whose 422 answers
are not Marketo's.
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
MAX_LIST_ITEM: Final = 100
"""How many characters of a bad value an error message quotes."""


async def read_json(request: Request) -> Any:
    """The body as JSON. A missing Content-Type is taken as JSON (lenient); another one is
    612, as Marketo answers."""
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
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(INVALID_JSON, f"Invalid JSON: {exc}") from None


def json_object(value: Any, what: str = "the body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(INVALID_DATA, f"Invalid data: {what} must be a JSON object")
    return value


def _shown(value: Any) -> str:
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
