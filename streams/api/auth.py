"""Clients, access tokens and Marketo's identity endpoint.

Clients are `id:secret` pairs from the settings (`STREAMS_API_CLIENTS`, comma-separated, and
`STREAMS_API_CLIENTS_FILE`, one a line). `GET /identity/oauth/token?grant_type=
client_credentials&client_id=…&client_secret=…` answers, as Marketo's does,
`{"access_token", "token_type": "bearer", "expires_in", "scope"}`; a REST call passes the
token as `Authorization: Bearer …` or as the `access_token` parameter.

A token is `<client id, base64url>.<expiry, unix s>.<nonce>.<signature>`, signed with HMAC-
SHA256 under the client's secret. So any API process with the same clients accepts it (no
shared token store), a token cannot be forged or extended without the secret, and changing
a client's secret revokes every token it holds. A token whose signature does not verify is
601, one past its expiry is 602. As in Marketo, asking again while a token is still valid
returns the same token with its remaining lifetime (per process).

Secrets are `SecretStr` in the settings, compared in constant time, and never logged: the
access log (see `gate`) writes paths without their query string. A secret has at least
`MIN_SECRET_LENGTH` characters (the API refuses to start otherwise), and failed identity
calls are throttled per client id and per address (`auth_throttle`): HTTP 429 with
`Retry-After`, logged once per episode.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import Response

from streams.api.auth_throttle import AuthThrottle
from streams.api.envelope import (
    ACCESS_TOKEN_EXPIRED,
    ACCESS_TOKEN_INVALID,
    RATE_LIMIT,
    ApiError,
    JsonResponse,
)
from streams.api.logsafe import printable
from streams.settings import ApiSettings

log = logging.getLogger(__name__)

TOKEN_PATH: Final = "/identity/oauth/token"
SCOPE_SUFFIX: Final = "@streams"
MAX_TOKEN_LENGTH: Final = 2048
MIN_SECRET_LENGTH: Final = 16
"""Characters a client secret must have at least (Marketo's are 32): a short secret is
guessed long before any throttle matters. The API refuses to start with a shorter one."""


class ClientConfigError(ValueError):
    """The client list does not parse; the message names where, never a secret."""


def parse_clients(text: str, where: str, separators: str = ",\n") -> dict[str, str]:
    """`id:secret` pairs separated by commas or newlines; blank entries and `#` comment
    lines are skipped. An id has no `:`, a secret may have any character but a separator."""
    clients: dict[str, str] = {}
    entries: list[str] = [text]
    for separator in separators:
        entries = [part for entry in entries for part in entry.split(separator)]
    for number, raw in enumerate(entries, 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        client_id, colon, secret = entry.partition(":")
        client_id, secret = client_id.strip(), secret.strip()
        if not colon or not client_id or not secret:
            raise ClientConfigError(
                f"{where}: entry {number} is not id:secret (an id and a non-empty secret "
                "separated by a colon)"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ClientConfigError(
                f"{where}: the secret of client {client_id!r} has {len(secret)} characters; "
                f"at least {MIN_SECRET_LENGTH} are required (use a long random one, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
            )
        if client_id in clients and clients[client_id] != secret:
            raise ClientConfigError(f"{where}: client {client_id!r} is given twice")
        clients[client_id] = secret
    return clients


def load_clients(settings: ApiSettings) -> dict[str, str]:
    """Every configured client; ClientConfigError if a source does not parse or one id has
    two secrets."""
    clients: dict[str, str] = {}
    sources: list[tuple[str, str]] = []
    if settings.api_clients is not None:
        sources.append((settings.api_clients.get_secret_value(), "STREAMS_API_CLIENTS"))
    if settings.api_clients_file is not None:
        path = settings.api_clients_file
        try:
            sources.append((path.read_text(encoding="utf-8"), f"STREAMS_API_CLIENTS_FILE {path}"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientConfigError(
                f"STREAMS_API_CLIENTS_FILE {path}: cannot read: {exc}"
            ) from None
    for text, where in sources:
        for client_id, secret in parse_clients(text, where).items():
            if clients.get(client_id, secret) != secret:
                raise ClientConfigError(f"{where}: client {client_id!r} also has another secret")
            clients[client_id] = secret
    return clients


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Grant:
    access_token: str
    expires_in: int
    client_id: str


class InvalidClient(Exception):
    """Unknown client id or wrong secret (deliberately not saying which)."""


class TokenIssuer:
    def __init__(
        self, clients: Mapping[str, str], ttl: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = {cid: secret.encode("utf-8") for cid, secret in clients.items()}
        self.ttl = ttl
        self.clock = clock
        self._live: dict[str, tuple[str, int]] = {}
        """Per client, the token last issued and its expiry (Marketo returns it again)."""
        self._lock = threading.Lock()

    def _sign(self, key: bytes, payload: str) -> str:
        return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()[:40]

    def issue(self, client_id: str, secret: str) -> Grant:
        key = self._keys.get(client_id)
        # Compare even for an unknown id, so timing does not tell which ids exist.
        expected = key if key is not None else secrets.token_bytes(32)
        if not hmac.compare_digest(expected, secret.encode("utf-8")) or key is None:
            raise InvalidClient
        now = self.clock()
        with self._lock:
            live = self._live.get(client_id)
            if live is not None and live[1] - now >= 1:
                return Grant(live[0], int(live[1] - now), client_id)
            expiry = math.ceil(now + self.ttl)  # valid for at least the ttl
            payload = f"{_b64(client_id.encode())}.{expiry}.{secrets.token_hex(8)}"
            token = f"{payload}.{self._sign(key, payload)}"
            self._live[client_id] = (token, expiry)
        return Grant(token, self.ttl, client_id)

    def verify(self, token: str) -> str:
        """The client id the token was issued to; ApiError 601 (not a token of ours) or
        602 (expired)."""
        invalid = ApiError(ACCESS_TOKEN_INVALID, "Access token invalid")
        if len(token) > MAX_TOKEN_LENGTH:
            raise invalid
        parts = token.split(".")
        if len(parts) != 4:
            raise invalid
        encoded_id, expiry_text, _, signature = parts
        try:
            client_id = _unb64(encoded_id).decode("utf-8")
            expiry = int(expiry_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid from None
        key = self._keys.get(client_id)
        if key is None:
            raise invalid
        payload = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._sign(key, payload), signature):
            raise invalid
        if self.clock() >= expiry:
            raise ApiError(ACCESS_TOKEN_EXPIRED, "Access token expired")
        return client_id


def bearer_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token of a call: the Authorization header wins over the access_token
    parameter, as both are accepted."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    token = query.get("access_token")
    return token or None


router = APIRouter(tags=["Identity"])


def _oauth_error(status: int, error: str, description: str) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status_code=status)


async def _token_params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            body = (await request.body()).decode("utf-8", errors="replace")
            for key, value in parse_qsl(body, keep_blank_values=True):
                params.setdefault(key, value)
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic" and "client_id" not in params:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, colon, secret = decoded.partition(":")
        if colon:
            params.setdefault("client_id", client_id)
            params.setdefault("client_secret", secret)
    return params


_OAUTH_ERROR: Final = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        }
    }
}
IDENTITY_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "A token: `{access_token, token_type, expires_in, scope}`",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in", "scope"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string", "enum": ["bearer"]},
                        "expires_in": {"type": "integer", "minimum": 0},
                        "scope": {"type": "string"},
                    },
                }
            }
        },
    },
    400: {"description": "invalid_request, unsupported_grant_type", "content": _OAUTH_ERROR},
    401: {"description": "invalid_client: bad client credentials", "content": _OAUTH_ERROR},
    429: {
        "description": "slow_down: too many failed authentications for this client id or "
        "address; retry after `Retry-After` seconds",
        "content": _OAUTH_ERROR,
    },
}
_GRANT: Final = {"type": "string", "enum": ["client_credentials"]}
_GET_PARAMETERS: Final = [
    {"name": "grant_type", "in": "query", "required": True, "schema": _GRANT},
    {"name": "client_id", "in": "query", "required": True, "schema": {"type": "string"}},
    {"name": "client_secret", "in": "query", "required": True, "schema": {"type": "string"}},
]
_FORM: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "client_id", "client_secret"],
                    "properties": {
                        "grant_type": _GRANT,
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                }
            }
        },
    }
}


async def _token(request: Request) -> Response:
    params = await _token_params(request)
    grant_type = params.get("grant_type")
    if not grant_type:
        return _oauth_error(400, "invalid_request", "Missing grant type")
    if grant_type != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", "Only grant_type=client_credentials is supported"
        )
    issuer: TokenIssuer = request.app.state.issuer
    throttle: AuthThrottle = request.app.state.auth_throttle
    client_id = params.get("client_id", "")
    address = request.client.host if request.client is not None else "-"
    throttled = throttle.check(client_id, address)
    if throttled is not None:
        if throttled.newly:
            log.warning(
                "identity: %s throttled: too many failed authentications in %.0f s; refused "
                "for %d s (not logged again meanwhile)",
                printable(throttled.what, 120),
                throttle.window,
                throttled.retry_after,
            )
        response = _oauth_error(
            429,
            "slow_down",
            f"Max rate limit exceeded ({RATE_LIMIT}): too many failed authentications for "
            f"this {throttled.what.split(' ')[0]}; retry after {throttled.retry_after} s",
        )
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    try:
        grant = issuer.issue(client_id, params.get("client_secret", ""))
    except InvalidClient:
        throttle.failed(client_id, address)
        log.warning(
            "identity: bad client credentials for client id %s from %s",
            printable(repr(client_id[:100])),
            printable(address, 60),
        )
        return _oauth_error(401, "invalid_client", "Bad client credentials")
    return JsonResponse(
        {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "scope": f"{grant.client_id}{SCOPE_SUFFIX}",
        }
    )


_TOKEN_DOC: Final = (
    "Marketo's Identity call: client credentials in the query (or, with POST, in a form "
    "body or HTTP Basic). The same token is returned, with its remaining lifetime, while it "
    "is valid. Errors are OAuth's `{error, error_description}` with 400 or 401, as Marketo's."
)


@router.get(
    TOKEN_PATH,
    summary="Get an access token",
    description=_TOKEN_DOC,
    responses=IDENTITY_RESPONSES,
    operation_id="identityGet",
    openapi_extra={"parameters": _GET_PARAMETERS},
)
async def token_get(request: Request) -> Response:
    return await _token(request)


@router.post(
    TOKEN_PATH,
    summary="Get an access token (POST)",
    description=_TOKEN_DOC,
    responses=IDENTITY_RESPONSES,
    operation_id="identityPost",
    openapi_extra=_FORM,
)
async def token_post(request: Request) -> Response:
    return await _token(request)
