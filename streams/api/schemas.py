"""The OpenAPI document's shapes: what each call accepts and answers, as pydantic models.

Bodies are documented here, not validated by these models: they are read by hand
(`inputs`, the engine's `Decoder`), because a Marketo call answers a bad record with a
per-record `skipped` and a bad request with an error envelope, never with FastAPI's 422.
Query parameters are validated where they are declared, as FastAPI's typed parameters
(`history_routes`): taken as text and parsed by our rules, so their codes stay Marketo's
(the app's validation handler answers a missing required one with 701). Every REST answer
is HTTP 200 with either the operation's success shape or `ErrorEnvelope`, as in Marketo;
413, 414 and 415 carry an `ErrorEnvelope` too. `document` turns the models into the components of
`/openapi.json`, and the helpers below give each route its part of the document.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from streams.engine.datatypes import DataType

REF: Final = "#/components/schemas/"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(_Doc):
    code: str = Field(description="Marketo's code, a quoted integer (601, 1003, ...)")
    message: str


class ErrorEnvelope(_Doc):
    """A call that failed as a whole: nothing was done."""

    requestId: str
    success: Literal[False]
    errors: list[Error]


class AttributeValue(_Doc):
    apiName: str | None = Field(None, description="The attribute's apiName (or give name)")
    name: str | None = Field(None, description="The attribute's display name")
    value: Any = None


class FieldChange(_Doc):
    name: str
    newValue: Any = None
    oldValue: Any = None


class ActivityRecord(_Doc):
    """The spec's activity record (activities.md)."""

    leadId: int | str
    activityDate: str = Field(description="ISO 8601 with an offset")
    activityTypeId: int | str
    primaryAttributeValue: Any = None
    primaryAttributeValueId: int | None = None
    attributes: list[AttributeValue] | None = None
    marketoGUID: str | None = Field(None, description="The identity; by default a content hash")
    id: int | str | None = None
    fields: list[FieldChange] | None = Field(None, description="Types 12 and 13")


class AddCustomActivitiesRequest(_Doc):
    input: list[ActivityRecord] = Field(min_length=1, max_length=300)


class RecordResult(_Doc):
    id: int | None = None
    marketoGUID: str | None = None
    status: Literal["added", "skipped"]
    errors: list[Error] | None = None


class AddCustomActivitiesResponse(_Doc):
    requestId: str
    success: Literal[True]
    result: list[RecordResult]


class Device(_Doc):
    platform: str | None = Field(None, description="e.g. iOS, Android")
    deviceType: str | None = Field(None, description="e.g. iPhone 15, Pixel 9")


class ActionMetadata(_Doc):
    """What `reportAction(name, metadata)` was given."""

    type: str | None = None
    details: str | None = None
    length: float | str | None = None
    metric: float | str | None = None


class MobileAction(_Doc):
    clientId: str = Field(
        min_length=1,
        max_length=128,
        description="Unique per action on the device (a UUID): a re-sent action is not added twice",
    )
    name: str = Field(min_length=1, max_length=20, description="The action's name")
    occurredAt: str = Field(description="When it happened, ISO 8601 with an offset")
    metadata: ActionMetadata | None = None


class MobileActionsRequest(_Doc):
    leadId: int | str
    device: Device | None = None
    actions: list[MobileAction] = Field(min_length=1, max_length=300)


class ActionResult(RecordResult):
    clientId: str | None = None


class MobileActionsResponse(_Doc):
    requestId: str
    success: Literal[True]
    result: list[ActionResult]


class TypeAttribute(_Doc):
    apiName: str | None = None
    name: str
    description: str | None = None
    dataType: DataType


class ActivityType(_Doc):
    """An entry of Get Activity Types: a type in force, standard or custom."""

    id: int
    apiName: str | None = None
    name: str
    description: str | None = None
    primaryAttribute: TypeAttribute
    attributes: list[TypeAttribute]


class ActivityTypesResponse(_Doc):
    requestId: str
    success: Literal[True]
    result: list[ActivityType]


class CustomActivityType(_Doc):
    id: int
    apiName: str
    name: str
    description: str | None = None
    triggerName: str
    filterName: str
    status: Literal["draft", "approved", "approved with draft"]


class CustomActivityTypeDescribed(CustomActivityType):
    primaryAttribute: TypeAttribute
    attributes: list[TypeAttribute] = Field(default_factory=list)


class CustomTypesResponse(_Doc):
    requestId: str
    success: Literal[True]
    result: list[CustomActivityType]
    warnings: list[str] | None = None


class DescribeResponse(_Doc):
    requestId: str
    success: Literal[True]
    result: list[CustomActivityTypeDescribed]
    warnings: list[str] | None = None


class DeletedType(_Doc):
    id: int
    apiName: str


class DeleteTypeResponse(_Doc):
    requestId: str
    success: Literal[True]
    result: list[DeletedType]
    warnings: list[str] | None = None


class AttributeIn(_Doc):
    apiName: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    dataType: DataType | None = None
    isPrimary: bool | None = None


class PrimaryAttributeIn(_Doc):
    apiName: str | None = None
    name: str | None = None
    description: str | None = None
    dataType: DataType | None = None


class CreateTypeRequest(_Doc):
    apiName: str
    name: str
    description: str | None = None
    triggerName: str
    filterName: str
    primaryAttribute: PrimaryAttributeIn


class UpdateTypeRequest(_Doc):
    name: str | None = None
    description: str | None = None
    triggerName: str | None = None
    filterName: str | None = None
    primaryAttribute: PrimaryAttributeIn | None = None


class AttributesRequest(_Doc):
    attributes: list[AttributeIn] = Field(min_length=1)


class PagingTokenResponse(_Doc):
    requestId: str
    success: Literal[True]
    nextPageToken: str


class ActivitiesPageResponse(_Doc):
    """`result` is left out when the page is empty, as Marketo does."""

    requestId: str
    success: Literal[True]
    nextPageToken: str
    moreResult: bool
    result: list[dict[str, Any]] | None = None


class Health(_Doc):
    status: str
    rulesVersion: str | None = None


MODELS: Final[tuple[type[BaseModel], ...]] = (
    ErrorEnvelope,
    AddCustomActivitiesRequest,
    AddCustomActivitiesResponse,
    MobileActionsRequest,
    MobileActionsResponse,
    ActivityTypesResponse,
    CustomTypesResponse,
    DescribeResponse,
    DeleteTypeResponse,
    CreateTypeRequest,
    UpdateTypeRequest,
    AttributesRequest,
    PagingTokenResponse,
    ActivitiesPageResponse,
    Health,
)


def component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(model, "validation") for model in MODELS], ref_template=REF + "{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def body(model: type[BaseModel], content_type: str = "application/json") -> dict[str, Any]:
    """A route's `openapi_extra` for a required request body of this shape."""
    return {
        "requestBody": {
            "required": True,
            "content": {content_type: {"schema": {"$ref": REF + model.__name__}}},
        }
    }


def result(model: type[BaseModel], description: str = "Marketo's envelope") -> dict[int | str, Any]:
    """A route's `responses`: HTTP 200 with the success shape or the error envelope."""
    return {
        200: {
            "description": f"{description} (success, or errors with Marketo's codes)",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": REF + model.__name__},
                            {"$ref": REF + ErrorEnvelope.__name__},
                        ]
                    }
                }
            },
        }
    }


def query(*parameters: tuple[str, str, bool, dict[str, Any]]) -> dict[str, Any]:
    """A route's `openapi_extra` for its query parameters: (name, description, required,
    schema). Parameters are read by hand; unknown ones are ignored."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": required, "description": text,
             "schema": schema}
            for name, text, required, schema in parameters
        ]
    }  # fmt: skip


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in merged and isinstance(merged[key], list):
                merged[key] = merged[key] + value
            else:
                merged[key] = value
    return merged
