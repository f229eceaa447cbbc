"""Marketo's response envelopes and error codes.

Every answer of a REST call is `{"requestId", "success", ...}`: on success with `result`
(and, for paged reads, `nextPageToken` and `moreResult`); on failure with
`errors: [{"code", "message"}]`, the code a quoted integer from Marketo's table. As in
Marketo, a response-level error is answered with HTTP 200 (clients read `success`, never the
status), except the few that HTTP itself describes: 413 (body too large), 414 (URI too
long), 408 (a body that did not arrive in time), 404/405 (no such resource or method).
Record-level errors (`1xxx`) go in the `result` entry of the record they concern, with
`status: "skipped"`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

# Response-level codes: the request failed as a whole and nothing was done.
ACCESS_TOKEN_INVALID: Final = "601"
ACCESS_TOKEN_EXPIRED: Final = "602"
ACCESS_DENIED: Final = "603"
METHOD_NOT_SUPPORTED: Final = "605"
RATE_LIMIT: Final = "606"
TEMPORARILY_UNAVAILABLE: Final = "608"
INVALID_JSON: Final = "609"
NOT_FOUND: Final = "610"
SYSTEM_ERROR: Final = "611"
INVALID_CONTENT_TYPE: Final = "612"
CONCURRENT_LIMIT: Final = "615"
CANNOT_BE_BLANK: Final = "701"
NOT_ENABLED: Final = "703"
BUSINESS_RULE: Final = "709"
# Record-level codes (also used, as Marketo does, for a request whose parameters are wrong).
INVALID_VALUE: Final = "1001"
MISSING_VALUE: Final = "1002"
INVALID_DATA: Final = "1003"
FIELD_NOT_FOUND: Final = "1006"
DUPLICATE_IN_INPUT: Final = "1036"
FAILED_TO_CREATE: Final = "1049"
# HTTP-level refusals answered with their HTTP status, also as the code.
TOO_LARGE: Final = "413"
URI_TOO_LONG: Final = "414"
UNSUPPORTED_ENCODING: Final = "415"
REQUEST_TIMEOUT: Final = "408"

DESCRIPTIONS: Final[Mapping[str, str]] = {
    ACCESS_TOKEN_INVALID: "Access token invalid",
    ACCESS_TOKEN_EXPIRED: "Access token expired",
    ACCESS_DENIED: "Access denied",
    METHOD_NOT_SUPPORTED: "HTTP Method not supported",
    RATE_LIMIT: "Max rate limit exceeded",
    TEMPORARILY_UNAVAILABLE: "API Temporarily Unavailable",
    INVALID_JSON: "Invalid JSON",
    NOT_FOUND: "Requested resource not found",
    SYSTEM_ERROR: "System error",
    INVALID_CONTENT_TYPE: "Invalid Content Type",
    CONCURRENT_LIMIT: "Concurrent access limit reached",
    CANNOT_BE_BLANK: "cannot be blank",
    NOT_ENABLED: "The feature is not enabled",
    BUSINESS_RULE: "Business Rule Violation",
    INVALID_VALUE: "Invalid value",
    MISSING_VALUE: "Missing value for the required parameter",
    INVALID_DATA: "Invalid data",
    FIELD_NOT_FOUND: "Field not found",
    DUPLICATE_IN_INPUT: "Duplicate object found in input",
    FAILED_TO_CREATE: "Failed to create activity",
}
"""Marketo's meaning of each code used here (its REST API error-code table)."""

MAX_MESSAGE: Final = 1000
"""An error message is cut at this many characters (a message may quote client input)."""


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """A response-level failure: answered as Marketo's error envelope."""

    def __init__(self, code: str, message: str, status: int = 200, *, close: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.close = close
        """Answer with `connection: close`: the request was not read to its end, so the
        connection cannot carry another one."""


def new_request_id() -> str:
    """Marketo's shape: a few hex digits, `#`, the time in hex milliseconds."""
    return f"{secrets.token_hex(2)}#{int(time.time() * 1000):x}"


def request_id(request: Request) -> str:
    """The id the gate gave this call (a new one if the call did not go through it)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else new_request_id()


def error_entry(code: str, message: str) -> dict[str, str]:
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return {"code": code, "message": message}


def failure(request_id: str, code: str, message: str) -> dict[str, Any]:
    return {"requestId": request_id, "success": False, "errors": [error_entry(code, message)]}


def success(
    request_id: str,
    result: Sequence[Any] | None,
    warnings: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A success envelope; `result` None leaves the member out (Marketo's paged reads omit
    an empty result)."""
    body: dict[str, Any] = {"requestId": request_id, "success": True}
    if result is not None:
        body["result"] = list(result)
    body.update(extra)
    if warnings:
        body["warnings"] = list(warnings)
    return body


_RULES_PREFIX: Final = re.compile(
    r"(?<![\w.~:/-])/(?:[^/\s:'\"]+/)*?(?=(?:activity-types|campaigns)/)"
)
_ABSOLUTE_DIRS: Final = re.compile(r"(?<![\w.~:/-])/(?:[^/\s:'\"]+/)+")


def server_paths_hidden(message: str) -> str:
    """`message` without the server's directories: a file of the rules directory is named
    from it (`activity-types/x.yaml`), any other absolute path by its last part."""
    return _ABSOLUTE_DIRS.sub("", _RULES_PREFIX.sub("", message))


def error_response(request_id: str, error: ApiError) -> JsonResponse:
    headers = {"connection": "close"} if error.close else None
    return JsonResponse(
        failure(request_id, error.code, error.message), status_code=error.status, headers=headers
    )
