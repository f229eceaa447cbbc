"""The API's application: `create_app(settings, plan)` composes the routes, the gate and the
error handlers. Nothing happens at import or in `create_app`; the Kafka producer starts and
stops with the application (its lifespan), so a test or a server owns its whole life.

Every answer is Marketo's envelope: a refusal raised anywhere as `ApiError` keeps its code;
an unknown path is 610 (HTTP 404), a wrong method 605 (HTTP 405); an error no code describes
is 611 "System error" (HTTP 200, as Marketo answers it), logged with its traceback and the
request id, and its details are not sent to the client. A path with a trailing slash is
not redirected (610). `/health` answers GET and HEAD without a token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from streams import __version__
from streams.api import auth, catalog_routes, explain_routes, history_routes, ingest, mobile
from streams.api.auth import TokenIssuer, load_clients
from streams.api.auth_throttle import AuthThrottle
from streams.api.envelope import (
    CANNOT_BE_BLANK,
    INVALID_DATA,
    METHOD_NOT_SUPPORTED,
    NOT_FOUND,
    SYSTEM_ERROR,
    ApiError,
    JsonResponse,
    error_response,
    failure,
    request_id,
)
from streams.api.gate import ClientLimits, Gate
from streams.api.history import ActivityHistory
from streams.api.logsafe import printable
from streams.api.schemas import REF, ErrorEnvelope, Health, component_schemas
from streams.api.writer import KafkaWriter, Writer
from streams.engine.activity import Decoder
from streams.engine.compiler import Plan
from streams.runtime.hot_reload import api_following_rules
from streams.runtime.metrics import instrument_api
from streams.settings import ApiSettings

log = logging.getLogger(__name__)

DESCRIPTION: Final = """\
Marketo Engage's Activities REST API over the campaign trigger processor: the catalog of
activity types, adding activities (validated exactly as the workers validate them, written
to Kafka and acknowledged before the answer), reading them back, and mobile app actions.

Get a token from `/identity/oauth/token` and pass it as `Authorization: Bearer TOKEN` (or
the `access_token` parameter). As in Marketo, every REST answer is HTTP 200 with
`{"requestId", "success", ...}`: read `success`, and on failure `errors[].code` (601 invalid
token, 602 expired, 606 rate limit, 615 concurrency limit, 609 invalid JSON, ...); records
that are refused one by one are `skipped` in `result`. HTTP-level errors are 413 (body over
1 MB), 414 (URI over 8 KB: send a POST with `_method=GET` and a form-encoded body), 404 and
405, each with the same envelope.
"""


def _health(request: Request) -> Response:
    writer = request.app.state.writer
    ready = not isinstance(writer, KafkaWriter) or writer.started
    return JsonResponse(
        {
            "status": "ok" if ready else "starting",
            "rulesVersion": request.app.state.plan.rules_version,
        },
        status_code=200 if ready else 503,
    )


def _error_envelope_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF + ErrorEnvelope.__name__}}},
    }


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, completed: the shapes of `schemas`, the two ways to pass a token,
    and the answers every REST call may give (413, 414, 415). Bodies are read by hand and
    parameters typed as text, parsed by our rules, so FastAPI's 422 never happens (the
    validation handler answers with Marketo's codes) and is left out."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.update(component_schemas())
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "accessTokenParameter": {"type": "apiKey", "in": "query", "name": "access_token"},
    }
    components["responses"] = {
        "TooLarge": _error_envelope_response("Request Entity Too Large (body over the limit)"),
        "UriTooLong": _error_envelope_response("Request-URI Too Long (over 8 KB)"),
        "Encoded": _error_envelope_response(
            "Unsupported Media Type: a Content-Encoding (send the body uncompressed)"
        ),
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["413"] = {"$ref": "#/components/responses/TooLarge"}
            responses["414"] = {"$ref": "#/components/responses/UriTooLong"}
            responses["415"] = {"$ref": "#/components/responses/Encoded"}
            if path.startswith("/rest/"):
                operation["security"] = [{"bearerAuth": []}, {"accessTokenParameter": []}]
    app.openapi_schema = document
    return document


def create_app(
    settings: ApiSettings,
    plan: Plan,
    *,
    clients: Mapping[str, str] | None = None,
    writer: Writer | None = None,
) -> FastAPI:
    """The application over one plan (the catalog in force) and one set of clients (from
    the settings unless given)."""
    issuer = TokenIssuer(
        load_clients(settings) if clients is None else clients, settings.api_token_ttl
    )
    kafka_writer = writer or KafkaWriter(
        settings.bootstrap_servers, settings.topic_activities, settings.api_write_timeout
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if isinstance(kafka_writer, KafkaWriter):
            await kafka_writer.start()
        history = ActivityHistory(
            settings.bootstrap_servers, settings.topic_activities, plan.catalog
        )
        app.state.history = history
        try:
            async with api_following_rules(app, settings.rules_reload_interval):
                yield
        finally:
            if isinstance(kafka_writer, KafkaWriter):
                await kafka_writer.stop()
            await run_in_threadpool(history.close)

    app = FastAPI(
        title="streams: Marketo-compatible Activities API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
    )
    # No redirect of `/path/` to `/path`: Starlette builds its Location from the Host
    # header, which the client controls (an open redirect); such a path is 610, as any.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.plan = plan
    app.state.decoder = Decoder(plan.catalog, settings.limits.future_horizon_us)
    app.state.writer = kafka_writer
    app.state.issuer = issuer
    app.state.auth_throttle = AuthThrottle(
        settings.api_auth_failures_per_client,
        settings.api_auth_failures_per_address,
        settings.api_auth_failure_window,
    )
    app.state.rules_dir = settings.rules_dir
    app.state.max_custom_types = settings.max_custom_types
    app.state.catalog_writes = settings.api_catalog_writes

    for module in (auth, catalog_routes, ingest, history_routes, mobile, explain_routes):
        app.include_router(module.router)
    app.add_api_route(
        "/health",
        _health,
        methods=["GET", "HEAD"],
        summary="Liveness and readiness (no token needed)",
        operation_id="health",
        tags=["Service"],
        responses={
            200: {
                "description": "Ready",
                "content": {"application/json": {"schema": {"$ref": REF + Health.__name__}}},
            },
            503: {
                "description": "Not connected to Kafka yet",
                "content": {"application/json": {"schema": {"$ref": REF + Health.__name__}}},
            },
        },
    )
    app.add_middleware(
        Gate,
        issuer=issuer,
        limits=ClientLimits(
            settings.api_rate_limit_calls,
            settings.api_rate_limit_window,
            settings.api_concurrent_calls,
        ),
        max_body=settings.api_max_body_bytes,
        body_timeout=settings.api_body_timeout,
    )
    app.state.api_metrics = instrument_api(
        app
    )  # after the gate: outermost, so the gate's refusals count too
    _handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign] # FastAPI's documented way to customise the document
    return app


def _allowed(request: Request) -> list[str]:
    """Every method the API document names at this path (a path may have one route per
    method, and Starlette's 405 names only the first route's methods)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request_id(request), exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        headers = exc.headers
        if exc.status_code == 404:
            code, message = NOT_FOUND, f"Requested resource not found: {request.url.path[:200]}"
        elif exc.status_code == 405:
            code = METHOD_NOT_SUPPORTED
            message = f"HTTP Method not supported: {request.method} {request.url.path[:200]}"
            headers = {"Allow": ", ".join(_allowed(request))}
        else:
            code, message = str(exc.status_code), str(exc.detail)
        return JsonResponse(
            failure(request_id(request), code, message),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's typed parameters answer with Marketo's codes: a required parameter
        left out is 701, as a blank one is; anything else 1003 (the parameters are typed
        as text and parsed by our own rules, so this is rare)."""
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(p) for p in first.get("loc", ())]
        if first.get("type") == "missing" and location:
            error = ApiError(CANNOT_BE_BLANK, f"{location[-1]} cannot be blank")
        else:
            where = printable(".".join(location), 200)
            error = ApiError(INVALID_DATA, f"Invalid data: {where}: {first.get('msg', 'invalid')}")
        return error_response(request_id(request), error)

    @app.exception_handler(Exception)
    async def system_error(request: Request, exc: Exception) -> Response:
        rid = request_id(request)
        log.error("request %s: unhandled %s", rid, type(exc).__name__, exc_info=exc)
        return JsonResponse(
            failure(rid, SYSTEM_ERROR, f"System error (request {rid}); the details are logged")
        )
