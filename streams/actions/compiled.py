"""Validated actions, ready to build requests from membership events (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from streams.actions.definitions import ActionDef, Authentication, NoAuth
from streams.actions.variables import Variable

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_DELAY: Final = 3600.0
"""A throttle's `maxDelay` when the entry gives none (the spec is silent): one hour."""
DEFAULT_CONCURRENCY: Final = 10
"""Calls in flight at once to an endpoint whose entry gives no `concurrency`."""
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

Part = str | Variable
"""A header value, a query value or a path segment: a constant or a variable."""


def endpoint_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower case, the default port left out: the key of
    capping, throttling and concurrency (actions.md, "Endpoints")."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True)
class EndpointLimits:
    endpoint: str
    mode: str | None = None
    """`throttle`, `cap`, or None: no rate."""
    calls_per_second: float | None = None
    max_delay: float = DEFAULT_MAX_DELAY
    concurrency: int = DEFAULT_CONCURRENCY
    allow_http: bool = False


@dataclass(frozen=True)
class CompiledAction:
    name: str
    path: str
    """The file it came from."""
    definition: ActionDef
    method: str
    url: str
    endpoint: str
    headers: tuple[tuple[str, Part], ...]
    query: tuple[tuple[str, Part], ...]
    timeout: float
    auth: Authentication
    payload: Any
    """The template (variables parsed); None for GET."""
    token_cache_for: float = 0.0
    """bearerToken: seconds a token is reused (`cacheFor`)."""


@dataclass(frozen=True)
class ActionUse:
    """One entry of a campaign's `actions:`."""

    action: CompiledAction
    path: tuple[Part, ...] = ()
    """Segments appended to the action's URL, each `/`-prefixed."""


@dataclass(frozen=True)
class ActionPlan:
    actions: dict[str, CompiledAction] = field(default_factory=dict)
    """By name."""
    uses: dict[int, tuple[ActionUse, ...]] = field(default_factory=dict)
    """Campaign id -> the actions it lists, in order (active and inactive campaigns)."""
    users: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Action name -> the files of the campaigns that use it, sorted."""
    endpoints: dict[str, EndpointLimits] = field(default_factory=dict)
    """Endpoints of `endpoints.yaml`, by `endpoint_of`."""
    carries: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """Campaign id -> the lead fields (case-folded) its membership events carry; only
    campaigns that list actions are keys."""

    def limits(self, endpoint: str) -> EndpointLimits:
        return self.endpoints.get(endpoint) or EndpointLimits(endpoint)


NO_AUTH: Final = NoAuth(type="none")
