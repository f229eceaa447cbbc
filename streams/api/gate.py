"""What every call goes through before it reaches a route, as one ASGI middleware.

In this order, each step answering with Marketo's envelope when it refuses:

1. a request id (Marketo's `requestId`) for the response and the access log;
2. the URI: longer than 8 KB is 414, as in Marketo (send a long GET as a POST with
   `_method=GET` instead);
3. for `/rest/...`, the access token (`Authorization: Bearer` or `access_token`): missing
   or forged 601, expired 602; then the client's limits: more than
   `STREAMS_API_CONCURRENT_CALLS` calls in flight is 615, more than
   `STREAMS_API_RATE_LIMIT_CALLS` admitted calls in the last `STREAMS_API_RATE_LIMIT_WINDOW`
   seconds is 606. A refused call is not counted. The concurrency slot is taken before the
   body is read, so a slow upload counts as a call in flight;
4. a body sent with a `Content-Encoding` (gzip, ...) is refused with 415: bodies are read
   as sent, never decompressed (a small compressed body could expand past every limit);
   the body, buffered up to `STREAMS_API_MAX_BODY_BYTES`: a larger one is 413 (the excess
   is read and dropped, up to a bound, so the client sees the answer rather than a reset);
   a body not received `STREAMS_API_BODY_TIMEOUT` seconds after the headers is 408, and the
   connection is closed (a slow upload holds a slot of its client, and an anonymous one a
   connection, for no longer than that);
5. Marketo's long GET: a POST with `_method=GET` in its query or its form-encoded body
   becomes a GET whose parameters are those of the query and of the body;
6. when the token came in that form body (step 3 had none), it is checked now.

Then the route runs with `request.state.client_id` and `request.state.request_id` set, and
the call is logged as one line without its query string (it may hold a secret or a token),
its path and client id with control characters escaped (`logsafe`), so a client cannot
forge a line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.api.auth import TokenIssuer, bearer_token
from streams.api.envelope import (
    ACCESS_TOKEN_INVALID,
    CONCURRENT_LIMIT,
    RATE_LIMIT,
    REQUEST_TIMEOUT,
    TOO_LARGE,
    UNSUPPORTED_ENCODING,
    URI_TOO_LONG,
    ApiError,
    error_response,
    new_request_id,
)
from streams.api.logsafe import printable

log = logging.getLogger("streams.api.access")

MAX_URI_BYTES: Final = 8192
DRAIN_FACTOR: Final = 4
"""A body over the limit is read and dropped up to this many times the limit, so that the
client sees the 413 (past that, the connection is closed)."""
PROTECTED_PREFIX: Final = "/rest/"
FORM: Final = "application/x-www-form-urlencoded"


class ClientLimits:
    """Per client: calls in flight, and a sliding window of admitted calls. Used from the
    event loop only (no lock needed)."""

    def __init__(
        self,
        calls: int,
        window: float,
        concurrent: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls = calls
        self.window = window
        self.concurrent = concurrent
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}

    def admit(self, client: str) -> None:
        """Count one call of `client`, or ApiError 615/606 (and count nothing)."""
        if self._in_flight.get(client, 0) >= self.concurrent:
            raise ApiError(
                CONCURRENT_LIMIT,
                f"Concurrent access limit reached: {self.concurrent} calls of this client "
                "are already in flight",
            )
        now = self.clock()
        recent = self._recent.setdefault(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.calls:
            raise ApiError(
                RATE_LIMIT,
                f"Max rate limit '{self.calls}' exceeded with in '{self.window:g}' secs",
            )
        recent.append(now)
        self._in_flight[client] = self._in_flight.get(client, 0) + 1

    def release(self, client: str) -> None:
        left = self._in_flight.get(client, 0) - 1
        if left > 0:
            self._in_flight[client] = left
        else:
            self._in_flight.pop(client, None)


class _Disconnected(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _query(scope: Scope) -> dict[str, str]:
    text = bytes(scope.get("query_string", b"")).decode("latin-1")
    return dict(parse_qsl(text, keep_blank_values=True))


def _is_form(scope: Scope) -> bool:
    content_type = _header(scope, b"content-type") or ""
    return content_type.split(";")[0].strip().lower() == FORM


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        issuer: TokenIssuer,
        limits: ClientLimits,
        max_body: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.issuer = issuer
        self.limits = limits
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        request_id = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = [0]

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        client: str | None = None
        try:
            client = await self._handle(scope, receive, logged_send, state)
        except ApiError as error:
            await error_response(request_id, error)(scope, receive, logged_send)
        except _Disconnected:
            status[0] = 499
        finally:
            if client is not None:
                self.limits.release(client)
            log.info(
                "%s %s %s %d %.1fms %s",
                printable(str(state.get("client_id") or "-"), 100),
                printable(scope["method"], 20),
                printable(scope["path"], 200),
                status[0],
                (time.monotonic() - started) * 1000,
                request_id,
            )

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, state: dict[str, object]
    ) -> str | None:
        """Runs the call; returns the client whose slot is held (to release), if any."""
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode())
        if len(raw_path) + len(scope.get("query_string", b"")) > MAX_URI_BYTES:
            raise ApiError(
                URI_TOO_LONG,
                f"Request-URI Too Long: more than {MAX_URI_BYTES} bytes; send it as a POST "
                "with _method=GET and the parameters in a form-encoded body",
                status=414,
            )
        encoding = (_header(scope, b"content-encoding") or "").strip().lower()
        if encoding not in ("", "identity"):
            raise ApiError(
                UNSUPPORTED_ENCODING,
                f"Unsupported Media Type: Content-Encoding {printable(encoding, 40)!r} is not "
                "accepted; send the body uncompressed (no Content-Encoding header)",
                status=415,
            )
        protected = scope["path"].startswith(PROTECTED_PREFIX)
        authorization = _header(scope, b"authorization")
        headers = {"authorization": authorization} if authorization is not None else {}
        token = bearer_token(headers, _query(scope))
        client: str | None = None
        if protected and token is not None:
            client = self._admit(token, state)
        try:
            body = await self._read_body(scope, receive)
            scope, body = self._method_override(scope, body)
            if protected and client is None:
                token = _query(scope).get("access_token")
                if not token:
                    raise ApiError(
                        ACCESS_TOKEN_INVALID,
                        "Access token invalid: no token; send 'Authorization: Bearer TOKEN' "
                        "(or the access_token parameter), with a token from "
                        "/identity/oauth/token",
                    )
                client = self._admit(token, state)
        except BaseException:
            if client is not None:
                self.limits.release(client)
            raise
        sent = [False]

        async def replay() -> Message:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send)
        except BaseException:
            if client is not None:
                self.limits.release(client)
            raise
        return client

    def _admit(self, token: str, state: dict[str, object]) -> str:
        client = self.issuer.verify(token)
        state["client_id"] = client
        self.limits.admit(client)
        return client

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        try:
            async with asyncio.timeout(self.body_timeout):
                return await self._read_body_now(scope, receive)
        except TimeoutError:
            raise ApiError(
                REQUEST_TIMEOUT,
                f"Request Timeout: the body did not arrive within {self.body_timeout:g} s",
                status=408,
                close=True,
            ) from None

    async def _read_body_now(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        too_large = ApiError(
            TOO_LARGE,
            f"Request Entity Too Large: the body is over {self.max_body} bytes",
            status=413,
        )
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body:
            if int(declared) <= self.max_body * DRAIN_FACTOR:
                await self._drain(receive, 0)
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_body:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _drain(self, receive: Receive, size: int) -> None:
        while size <= self.max_body * DRAIN_FACTOR:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    @staticmethod
    def _method_override(scope: Scope, body: bytes) -> tuple[Scope, bytes]:
        """Marketo's long GET: POST + `_method=GET` (query or form body) is a GET with the
        parameters of both."""
        if scope["method"] != "POST":
            return scope, body
        query = parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"), True)
        form: list[tuple[str, str]] = []
        if _is_form(scope) and body:
            form = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        if not any(k == "_method" and v.strip().upper() == "GET" for k, v in query + form):
            return scope, body
        params = [(k, v) for k, v in query + form if k != "_method"]
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-type", b"content-length")
        ]
        rewritten = dict(scope)
        rewritten.update(
            method="GET", query_string=urlencode(params).encode("latin-1"), headers=headers
        )
        return rewritten, b""
