"""Action and endpoint files as written (actions.md), shape only: members, JSON types,
enumerations. What they mean (URLs, variables, types against the catalog) is checked in
`validation`, so that the one place that compiles them is the one that validates them.

Pure pydantic: the engine's loader imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool
"""A header or query value as YAML gives it; numbers and booleans are sent as text."""


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NoAuth(_Def):
    type: Literal["none"]


class ApiKeyAuth(_Def):
    type: Literal["apiKey"]
    in_: Literal["header", "query"] = Field(alias="in")
    name: str
    secret: str


class BasicAuth(_Def):
    type: Literal["basic"]
    username: str
    secret: str


class BearerTokenAuth(_Def):
    type: Literal["bearerToken"]
    tokenUrl: str
    clientId: str
    secret: str
    cacheFor: str
    tokenPath: str = "access_token"


Authentication = Annotated[
    NoAuth | ApiKeyAuth | BasicAuth | BearerTokenAuth, Field(discriminator="type")
]


class ActionDef(_Def):
    name: str
    description: str | None = None
    method: Literal["POST", "PUT", "PATCH", "GET"] = "POST"
    url: str
    headers: dict[str, Scalar] | None = None
    query: dict[str, Scalar] | None = None
    timeout: str | None = None
    authentication: Authentication | None = None
    payload: Any = None


class EndpointDef(_Def):
    """One entry of `endpoints.yaml`. Without `mode` it sets no rate, only `concurrency`
    and/or `allowHttp` (our addition: plain http to a host that is not loopback)."""

    endpoint: str
    mode: Literal["throttle", "cap"] | None = None
    callsPerSecond: float | None = Field(default=None, gt=0, le=1_000_000)
    maxDelay: str | None = None
    concurrency: int | None = Field(default=None, ge=1, le=10_000)
    allowHttp: bool | None = None


class CampaignActionDef(_Def):
    """One entry of a campaign's `actions:`."""

    action: str
    path: str | None = None


@dataclass(frozen=True)
class ActionFile:
    path: str
    definition: ActionDef


@dataclass(frozen=True)
class EndpointsFile:
    path: str
    entries: tuple[EndpointDef, ...]
