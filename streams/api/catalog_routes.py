"""Marketo's activity type calls over the catalog of the rules directory.

Reads:

- `GET /rest/v1/activities/types.json`: the types **in force** in this process (standard
  and approved custom types, as loaded at start: what `external.json` accepts and what the
  workers started on the same rules enforce), with primary and secondary attributes;
- `GET /rest/v1/activities/external/types.json` and
  `GET /rest/v1/activities/external/type/{apiName}/describe.json[?draft=true]`: the custom
  type **files** as they are now (every status; `draft=true` shows the pending version).

Writes (create, update, approve, discard draft, delete, attributes create/update/delete)
run the catalog operations of the `types` CLI (`streams.catalog`) on the rules directory,
in one transaction of the directory per call (its cross-process lock: another API process or
a `types` command waits its turn), when `STREAMS_API_CATALOG_WRITES` is true: the same
lifecycle, the same refusals (709, with the validation problems), the same files, to be
committed like any other change. They change the files; the API and the workers put the
change in force by hot reload (`streams.runtime.hot_reload`, within
`STREAMS_RULES_RELOAD_INTERVAL` seconds), as for any rule change of the directory.
A call that changes several attributes is all or nothing: on a refusal the transaction puts
the file back.
When writes are off (the default) they answer 603: the catalog is managed in git.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from streams import catalog
from streams.api.envelope import (
    ACCESS_DENIED,
    BUSINESS_RULE,
    INVALID_DATA,
    INVALID_VALUE,
    NOT_FOUND,
    ApiError,
    JsonResponse,
    request_id,
    server_paths_hidden,
    success,
)
from streams.api.inputs import (
    blank,
    boolean_param,
    invalid,
    json_object,
    optional_text,
    read_json,
    required_text,
)
from streams.api.schemas import (
    ActivityTypesResponse,
    AttributesRequest,
    CreateTypeRequest,
    CustomTypesResponse,
    DeleteTypeResponse,
    DescribeResponse,
    UpdateTypeRequest,
    body,
    merge,
    query,
    result,
)
from streams.catalog import CatalogOpError
from streams.engine.catalog import ActivityType, AttributeSpec, Catalog, TypeFile
from streams.engine.datatypes import DataType
from streams.engine.definitions import ActivityTypeDef, AttributeDef
from streams.engine.loader import read_rules

BASE: Final = "/rest/v1/activities/external/type"
DATA_TYPES: Final = ", ".join(d.value for d in DataType)
MAX_NAME: Final = 255
MAX_DESCRIPTION: Final = 2000


# --- shapes ------------------------------------------------------------------------------------


def _in_force_attribute(spec: AttributeSpec) -> dict[str, Any]:
    return {"apiName": spec.api_name, "name": spec.name, "dataType": spec.data_type.value}


def in_force_type(activity_type: ActivityType, catalog: Catalog) -> dict[str, Any]:
    """An entry of Get Activity Types."""
    entry: dict[str, Any] = {
        "id": activity_type.id,
        "apiName": activity_type.api_name,
        "name": activity_type.name,
    }
    type_file = catalog.files.get(activity_type.id)
    if type_file is not None and type_file.definition.description:
        entry["description"] = type_file.definition.description
    entry["primaryAttribute"] = _in_force_attribute(activity_type.primary)
    entry["attributes"] = [_in_force_attribute(a) for a in activity_type.attributes]
    return entry


def _attribute(attribute: AttributeDef) -> dict[str, Any]:
    entry: dict[str, Any] = {"apiName": attribute.apiName, "name": attribute.name}
    if attribute.description is not None:
        entry["description"] = attribute.description
    entry["dataType"] = attribute.dataType.value
    return entry


def custom_type(definition: ActivityTypeDef, draft: bool = False) -> dict[str, Any]:
    """An entry of Get Custom Activity Types: the approved version's names (the pending
    ones with `draft`), and the status."""
    version = definition.pending() if draft else definition
    entry: dict[str, Any] = {
        "id": definition.id,
        "apiName": definition.apiName,
        "name": version.name,
    }
    if version.description is not None:
        entry["description"] = version.description
    entry.update(
        triggerName=version.triggerName, filterName=version.filterName, status=definition.status
    )
    return entry


def described(definition: ActivityTypeDef, draft: bool = False) -> dict[str, Any]:
    """Describe Custom Activity Type: the approved version, or with `draft` the version
    approving would put in force (a type that is only a draft is its own draft)."""
    version = definition.pending() if draft else definition
    entry = custom_type(definition, draft)
    entry["primaryAttribute"] = _attribute(version.primaryAttribute)
    entry["attributes"] = [_attribute(a) for a in version.attributes]
    return entry


# --- reading the files ---------------------------------------------------------------------------


def _type_files(rules_dir: Path) -> list[TypeFile]:
    files, _ = read_rules(rules_dir)
    return sorted(files.types, key=lambda t: t.definition.id)


async def type_files(request: Request) -> list[TypeFile]:
    rules_dir: Path = request.app.state.rules_dir
    return await run_in_threadpool(_type_files, rules_dir)


def find(files: list[TypeFile], api_name: str) -> TypeFile:
    folded = api_name.casefold()
    for type_file in files:
        if type_file.definition.apiName.casefold() == folded:
            return type_file
    known = ", ".join(t.definition.apiName for t in files) or "none"
    raise ApiError(
        NOT_FOUND,
        f"Requested resource not found: no custom activity type {api_name[:MAX_NAME]!r} "
        f"(known: {known})",
    )


# --- the write path ------------------------------------------------------------------------------


def _refused(exc: CatalogOpError) -> ApiError:
    message = str(exc)
    if exc.problems:
        message += ": " + "; ".join(str(p) for p in exc.problems)
    return ApiError(BUSINESS_RULE, f"Business Rule Violation: {server_paths_hidden(message)}")


def _in_one_transaction(rules_dir: Path, steps: list[Callable[[], catalog.Change]]) -> list[str]:
    """Run the steps in order under the directory's lock; a refusal undoes them all."""
    with catalog.transaction(rules_dir):
        return [step().message for step in steps]


async def run_write(request: Request, steps: list[Callable[[], catalog.Change]]) -> list[str]:
    """The steps of one call, in a thread, in one transaction; 709 when refused."""
    rules_dir: Path = request.app.state.rules_dir
    try:
        changes = await run_in_threadpool(_in_one_transaction, rules_dir, steps)
    except CatalogOpError as exc:
        raise _refused(exc) from None
    return [
        *changes,
        "written to the rules directory: the API and the workers put it in force by hot "
        "reload (STREAMS_RULES_RELOAD_INTERVAL); commit it to keep it",
    ]


def writes_enabled(request: Request) -> None:
    if not request.app.state.catalog_writes:
        raise ApiError(
            ACCESS_DENIED,
            "Access denied: the activity type catalog of this deployment is managed in git "
            "(the rules directory's activity-types/*.yaml, reviewed like code). Change it "
            "with `python -m streams types ...` and a commit; a deployment with "
            "STREAMS_API_CATALOG_WRITES=true lets these calls edit the files",
        )


def _data_type(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in DataType.__members__.values():
        raise invalid(name, value, f"one of {DATA_TYPES}")
    return value


def _description(params: dict[str, Any], name: str = "description") -> str | None:
    return optional_text(params, name, MAX_DESCRIPTION)


def _primary(payload: dict[str, Any], required: bool) -> dict[str, Any]:
    raw = payload.get("primaryAttribute")
    if raw is None:
        if required:
            raise blank("primaryAttribute")
        return {}
    primary = json_object(raw, "primaryAttribute")
    text = required_text if required else optional_text
    return {
        "primary_api_name": text(primary, "apiName", MAX_NAME),
        "primary_name": text(primary, "name", MAX_NAME),
        "primary_data_type": _data_type(primary.get("dataType"), "primaryAttribute.dataType"),
        "primary_description": _description(primary),
    }


def _attributes(payload: dict[str, Any], promote: bool = False) -> list[dict[str, Any]]:
    raw = payload.get("attributes")
    if raw is None or raw == []:
        raise blank("attributes")
    if not isinstance(raw, list):
        raise ApiError(INVALID_DATA, "Invalid data: attributes must be a list")
    if len(raw) > 20:
        raise ApiError(INVALID_DATA, "Invalid data: at most 20 attributes")
    attributes = []
    for index, item in enumerate(raw):
        entry = json_object(item, f"attributes[{index}]")
        if entry.get("isPrimary") is True and not promote:
            raise ApiError(
                INVALID_VALUE,
                "isPrimary is not supported when creating or deleting attributes: promote an "
                f"existing one with POST {BASE}/{{apiName}}/attributes/update.json",
            )
        attributes.append(entry)
    return attributes


# --- the routes ----------------------------------------------------------------------------------

router = APIRouter(tags=["Activity types"])
API_NAME: Final = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}


@router.get(
    "/rest/v1/activities/types.json",
    summary="Get Activity Types",
    description="Every type in force: the standard types and the approved custom types, "
    "with primary and secondary attributes and their data types.",
    operation_id="getActivityTypes",
    responses=result(ActivityTypesResponse),
)
async def activity_types(request: Request) -> Response:
    in_force: Catalog = request.app.state.plan.catalog
    types = [in_force_type(in_force.types[i], in_force) for i in sorted(in_force.types)]
    return JsonResponse(success(request_id(request), types))


@router.get(
    "/rest/v1/activities/external/types.json",
    summary="Get Custom Activity Types",
    description="Every custom type of the rules directory, whatever its status.",
    operation_id="getCustomActivityTypes",
    responses=result(CustomTypesResponse),
)
async def custom_types(request: Request) -> Response:
    files = await type_files(request)
    return JsonResponse(success(request_id(request), [custom_type(t.definition) for t in files]))


@router.get(
    BASE + "/{apiName}/describe.json",
    summary="Describe Custom Activity Type",
    description="The approved version of a custom type, or with draft=true the version "
    "that approving would put in force.",
    operation_id="describeCustomActivityType",
    openapi_extra=query(
        ("draft", "true: the draft version", False, {"type": "string", "enum": ["true", "false"]})
    ),
    responses=result(DescribeResponse),
)
async def describe(request: Request, apiName: str) -> Response:
    files = await type_files(request)
    draft = boolean_param(request.query_params, "draft")
    definition = find(files, apiName).definition
    return JsonResponse(success(request_id(request), [described(definition, draft)]))


async def _after(request: Request, api_name: str, changes: list[str]) -> Response:
    """The answer of a write: the type as it now is (its draft version)."""
    files = await type_files(request)
    definition = find(files, api_name).definition
    return JsonResponse(
        success(request_id(request), [described(definition, draft=True)], warnings=changes)
    )


def _ops_args(request: Request) -> tuple[Path, int]:
    return request.app.state.rules_dir, request.app.state.max_custom_types


@router.post(
    BASE + ".json",
    summary="Create Custom Activity Type",
    description="A new type, as a draft file `activity-types/<apiName>.yaml` (when catalog "
    "writes are enabled; else 603).",
    operation_id="createCustomActivityType",
    openapi_extra=body(CreateTypeRequest),
    responses=result(DescribeResponse),
)
async def create_type(request: Request) -> Response:
    writes_enabled(request)
    payload = json_object(await read_json(request))
    args = {
        "api_name": required_text(payload, "apiName", MAX_NAME),
        "name": required_text(payload, "name", MAX_NAME),
        "trigger_name": required_text(payload, "triggerName", MAX_NAME),
        "filter_name": required_text(payload, "filterName", MAX_NAME),
        "description": _description(payload),
        **_primary(payload, required=True),
    }
    if args["primary_data_type"] is None:
        args["primary_data_type"] = DataType.STRING.value
    rules_dir, most = _ops_args(request)
    changes = await run_write(
        request,
        [lambda: catalog.create_type(rules_dir, max_custom_types=most, **args)],
    )
    return await _after(request, args["api_name"], changes)


@router.post(
    BASE + "/{apiName}.json",
    summary="Update Custom Activity Type",
    description="Change names, description or primary attribute: in place on a draft, in "
    "the draft of an approved type.",
    operation_id="updateCustomActivityType",
    openapi_extra=merge(body(UpdateTypeRequest)),
    responses=result(DescribeResponse),
)
async def update_type(request: Request, apiName: str) -> Response:
    writes_enabled(request)
    payload = json_object(await read_json(request))
    type_file = find(await type_files(request), apiName)
    args = {
        "name": optional_text(payload, "name", MAX_NAME),
        "trigger_name": optional_text(payload, "triggerName", MAX_NAME),
        "filter_name": optional_text(payload, "filterName", MAX_NAME),
        "description": _description(payload),
        **_primary(payload, required=False),
    }
    ref = type_file.definition.apiName
    rules_dir, most = _ops_args(request)
    changes = await run_write(
        request,
        [lambda: catalog.update_type(rules_dir, ref, max_custom_types=most, **args)],
    )
    return await _after(request, ref, changes)


async def _lifecycle(
    request: Request,
    api_name: str,
    operation: Callable[..., catalog.Change],
) -> Response:
    writes_enabled(request)
    type_file = find(await type_files(request), api_name)
    ref = type_file.definition.apiName
    rules_dir, most = _ops_args(request)
    changes = await run_write(
        request,
        [lambda: operation(rules_dir, ref, max_custom_types=most)],
    )
    return await _after(request, ref, changes)


@router.post(
    BASE + "/{apiName}/approve.json",
    summary="Approve Custom Activity Type",
    operation_id="approveCustomActivityType",
    responses=result(DescribeResponse),
)
async def approve(request: Request, apiName: str) -> Response:
    return await _lifecycle(request, apiName, catalog.approve_type)


@router.post(
    BASE + "/{apiName}/discardDraft.json",
    summary="Discard Custom Activity Type Draft",
    operation_id="discardCustomActivityTypeDraft",
    responses=result(DescribeResponse),
)
async def discard_draft(request: Request, apiName: str) -> Response:
    return await _lifecycle(request, apiName, catalog.discard_draft)


@router.post(
    BASE + "/{apiName}/delete.json",
    summary="Delete Custom Activity Type",
    description="Removes the type's file; refused (709) while a campaign uses the type.",
    operation_id="deleteCustomActivityType",
    responses=result(DeleteTypeResponse),
)
async def delete(request: Request, apiName: str) -> Response:
    writes_enabled(request)
    type_file = find(await type_files(request), apiName)
    definition = type_file.definition
    rules_dir, most = _ops_args(request)
    changes = await run_write(
        request,
        [lambda: catalog.delete_type(rules_dir, definition.apiName, max_custom_types=most)],
    )
    entry = {"id": definition.id, "apiName": definition.apiName}
    return JsonResponse(success(request_id(request), [entry], warnings=changes))


async def _attribute_steps(
    request: Request,
    api_name: str,
    make: Callable[[Path, str, int, dict[str, Any]], list[Callable[[], catalog.Change]]],
) -> Response:
    writes_enabled(request)
    payload = json_object(await read_json(request))
    attributes = _attributes(payload, promote=make is _update)
    type_file = find(await type_files(request), api_name)
    ref = type_file.definition.apiName
    rules_dir, most = _ops_args(request)
    steps = [step for attribute in attributes for step in make(rules_dir, ref, most, attribute)]
    changes = await run_write(request, steps)
    return await _after(request, ref, changes)


def _add(rules_dir: Path, ref: str, most: int, item: dict[str, Any]) -> list[Callable[[], Any]]:
    api_name = required_text(item, "apiName", MAX_NAME)
    name = required_text(item, "name", MAX_NAME)
    data_type = _data_type(item.get("dataType"), "dataType") or DataType.STRING.value
    description = _description(item)
    return [
        lambda: catalog.add_attribute(
            rules_dir,
            ref,
            api_name=api_name,
            name=name,
            data_type=data_type,
            description=description,
            max_custom_types=most,
        )
    ]


def _update(rules_dir: Path, ref: str, most: int, item: dict[str, Any]) -> list[Callable[[], Any]]:
    """The attribute's changes, then, with `isPrimary: true`, its promotion to primary (the
    primary one demoted to a secondary attribute, as Marketo does)."""
    api_name = required_text(item, "apiName", MAX_NAME)
    name = optional_text(item, "name", MAX_NAME)
    data_type = _data_type(item.get("dataType"), "dataType")
    description = _description(item)
    promote = item.get("isPrimary") is True
    steps: list[Callable[[], Any]] = []
    if not promote or name is not None or data_type is not None or description is not None:
        steps.append(
            lambda: catalog.update_attribute(
                rules_dir,
                ref,
                api_name,
                name=name,
                data_type=data_type,
                description=description,
                max_custom_types=most,
            )
        )
    if promote:
        steps.append(
            lambda: catalog.promote_attribute(rules_dir, ref, api_name, max_custom_types=most)
        )
    return steps


def _remove(rules_dir: Path, ref: str, most: int, item: dict[str, Any]) -> list[Callable[[], Any]]:
    api_name = required_text(item, "apiName", MAX_NAME)
    return [lambda: catalog.remove_attribute(rules_dir, ref, api_name, max_custom_types=most)]


@router.post(
    BASE + "/{apiName}/attributes/create.json",
    summary="Create Custom Activity Type Attributes",
    operation_id="createCustomActivityTypeAttributes",
    openapi_extra=body(AttributesRequest),
    responses=result(DescribeResponse),
)
async def attributes_create(request: Request, apiName: str) -> Response:
    return await _attribute_steps(request, apiName, _add)


@router.post(
    BASE + "/{apiName}/attributes/update.json",
    summary="Update Custom Activity Type Attributes",
    operation_id="updateCustomActivityTypeAttributes",
    openapi_extra=body(AttributesRequest),
    responses=result(DescribeResponse),
)
async def attributes_update(request: Request, apiName: str) -> Response:
    return await _attribute_steps(request, apiName, _update)


@router.post(
    BASE + "/{apiName}/attributes/delete.json",
    summary="Delete Custom Activity Type Attributes",
    operation_id="deleteCustomActivityTypeAttributes",
    openapi_extra=body(AttributesRequest),
    responses=result(DescribeResponse),
)
async def attributes_delete(request: Request, apiName: str) -> Response:
    return await _attribute_steps(request, apiName, _remove)
