"""The four authentication modes of actions.md, applied to one try of a call.

`bearerToken` fetches a token with a form POST (`grant_type=client_credentials`) to
`tokenUrl`, keeps it for `cacheFor` less a one-minute margin, shares one fetch between
the calls that need it at once (a lock), and drops it when the endpoint answers 401 with
it, so that the next try fetches a new one. Tokens and secrets go in headers or the query
only: never in logs, dead letters or metrics (the caller redacts response excerpts).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from streams.actions.bodies import excerpt, read_bounded
from streams.actions.compiled import CompiledAction
from streams.actions.definitions import ApiKeyAuth, BasicAuth, BearerTokenAuth
from streams.actions.exceptions import CallFailed
from streams.actions.secrets import Secrets
from streams.actions.validation import TOKEN_MARGIN

Clock = Callable[[], float]


def is_retryable(status: int) -> bool:
    return status == 429 or status >= 500


class Authenticator:
    """No authentication; the base of the others."""

    refreshes: bool = False

    async def apply(
        self,
        session: aiohttp.ClientSession,
        headers: dict[str, str],
        query: list[tuple[str, str]],
    ) -> str | None:
        """Adds what the mode sends; returns the bearer token used, if any."""
        return None

    def invalidate(self, token: str) -> None:
        """The endpoint refused `token` (401)."""


class ApiKeyAuthenticator(Authenticator):
    def __init__(self, auth: ApiKeyAuth, secret: str) -> None:
        self.auth = auth
        self._secret = secret

    async def apply(
        self,
        session: aiohttp.ClientSession,
        headers: dict[str, str],
        query: list[tuple[str, str]],
    ) -> str | None:
        if self.auth.in_ == "header":
            headers[self.auth.name] = self._secret
        else:
            query.append((self.auth.name, self._secret))
        return None


class BasicAuthenticator(Authenticator):
    def __init__(self, auth: BasicAuth, secret: str) -> None:
        pair = f"{auth.username}:{secret}".encode()
        self._header = "Basic " + base64.b64encode(pair).decode()

    async def apply(
        self,
        session: aiohttp.ClientSession,
        headers: dict[str, str],
        query: list[tuple[str, str]],
    ) -> str | None:
        headers["Authorization"] = self._header
        return None


def _token_at(document: Any, path: str) -> str | None:
    node = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) and node else None


class BearerAuthenticator(Authenticator):
    refreshes = True

    def __init__(
        self,
        auth: BearerTokenAuth,
        secret: str,
        cache_for: float,
        secrets: Secrets,
        clock: Clock = time.monotonic,
    ) -> None:
        self.auth = auth
        self._secret = secret
        self.cache_for = cache_for
        self.secrets = secrets
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def apply(
        self,
        session: aiohttp.ClientSession,
        headers: dict[str, str],
        query: list[tuple[str, str]],
    ) -> str | None:
        token = await self.token(session)
        headers["Authorization"] = f"Bearer {token}"
        return token

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def token(self, session: aiohttp.ClientSession) -> str:
        if self._token is not None and self.clock() < self._expires:
            return self._token
        async with self._lock:
            if self._token is not None and self.clock() < self._expires:
                return self._token
            fetched_at = self.clock()
            token = await self._fetch(session)
            self.secrets.remember(token)
            self._token = token
            self._expires = fetched_at + max(0.0, self.cache_for - TOKEN_MARGIN)
            return token

    async def _fetch(self, session: aiohttp.ClientSession) -> str:
        """One form POST; CallFailed like a try of the call (the caller's timeout
        bounds it)."""
        self.fetches += 1
        form = {
            "grant_type": "client_credentials",
            "client_id": self.auth.clientId,
            "client_secret": self._secret,
        }
        try:
            async with session.post(
                self.auth.tokenUrl, data=form, headers={"Accept": "application/json"}
            ) as response:
                body = await read_bounded(response)
                status = response.status
        except aiohttp.ClientError as exc:
            raise CallFailed("connection", True) from exc
        text = self.secrets.redact(excerpt(body))
        if not 200 <= status < 300:
            raise CallFailed("http_status", is_retryable(status), status, text)
        try:
            token = _token_at(orjson.loads(body), self.auth.tokenPath)
        except orjson.JSONDecodeError:
            token = None
        if token is None:
            raise CallFailed(
                "http_status", False, status, f"no {self.auth.tokenPath} in the token response"
            )
        return token


def authenticator(action: CompiledAction, secrets: Secrets) -> Authenticator:
    auth = action.auth
    if isinstance(auth, ApiKeyAuth):
        return ApiKeyAuthenticator(auth, secrets.get(action.name))
    if isinstance(auth, BasicAuth):
        return BasicAuthenticator(auth, secrets.get(action.name))
    if isinstance(auth, BearerTokenAuth):
        return BearerAuthenticator(auth, secrets.get(action.name), action.token_cache_for, secrets)
    return Authenticator()
