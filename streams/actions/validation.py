"""The meaning of action and endpoint files, and of campaigns' `actions:`, checked against
the catalog: `validate`, the workers and the dispatcher all go through `compile_actions`,
so they cannot disagree about what an action does.

Refused, each with a problem naming the file and the field path: a bad name (letters,
digits, underscore, 1-30 characters) or a duplicate one; a URL that is not http(s), has no
host, carries credentials, a query or a fragment, or is plain http to a host that is not
loopback (unless `endpoints.yaml` allows it); a header or query name that is not an HTTP
token, or a header the dispatcher sets itself; an unknown variable; a body on a GET; a bad
duration; a secret name that is not an environment variable name; in a campaign, an
unknown or repeated action, a bad path, and a `$activity...` variable that some triggering
type of the campaign does not have, or has with different data types (the payload's JSON
type would depend on the activity).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from streams.actions.compiled import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_DELAY,
    DEFAULT_TIMEOUT,
    NO_AUTH,
    ActionPlan,
    ActionUse,
    CompiledAction,
    EndpointLimits,
    Part,
    endpoint_of,
    is_loopback,
)
from streams.actions.definitions import (
    ActionDef,
    ActionFile,
    ApiKeyAuth,
    BasicAuth,
    BearerTokenAuth,
    EndpointsFile,
)
from streams.actions.durations import parse_seconds
from streams.actions.variables import (
    ATTRIBUTES,
    FIELDS,
    PRIMARY,
    Variable,
    VariableError,
    compile_template,
    parse_value,
    walk_variables,
)
from streams.engine.catalog import ActivityType, AttributeSpec, Catalog
from streams.engine.datatypes import DataType
from streams.engine.problems import Problem

ACTION_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,30}")
TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP token (RFC 9110, 5.6.2): what a header name must be."""
ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_HEADERS: Final = frozenset(
    {"idempotency-key", "content-length", "content-type", "host", "transfer-encoding"}
)
"""Headers the dispatcher sets itself."""
MIN_TIMEOUT: Final = 0.1
MAX_TIMEOUT: Final = 900.0
MAX_DELAY_LIMIT: Final = 7 * 86400.0
TOKEN_MARGIN: Final = 60.0
"""A bearer token is reused for `cacheFor` less this margin."""
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%]+")
_JSON_KIND: Final = {
    DataType.STRING: "string",
    DataType.TEXT: "string",
    DataType.EMAIL: "string",
    DataType.PHONE: "string",
    DataType.LINK: "string",
    DataType.INTEGER: "integer",
    DataType.FLOAT: "number",
    DataType.CURRENCY: "number",
    DataType.BOOLEAN: "boolean",
    DataType.DATE: "date",
    DataType.DATETIME: "datetime",
}


@dataclass
class _Problems:
    problems: list[Problem]

    def add(self, file: str, where: str | None, message: str) -> None:
        self.problems.append(Problem(file, where, message))


def _check_url(
    url: str, file: str, where: str, out: _Problems, allowed_http: set[str]
) -> str | None:
    """The endpoint of a valid static URL, else None after adding the problem."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        out.add(file, where, f"{url!r} is not a URL: {exc}")
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        out.add(file, where, f"{url!r}: give an absolute http(s) URL with a host")
        return None
    if parts.username is not None or parts.password is not None:
        out.add(file, where, "credentials do not go in the URL: use authentication")
        return None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        out.add(file, where, "no query or fragment in the URL: put parameters under query")
        return None
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        out.add(file, where, "a URL holds no spaces or control characters")
        return None
    endpoint = endpoint_of(url)
    if (
        parts.scheme.lower() == "http"
        and not is_loopback(parts.hostname)
        and endpoint not in allowed_http
    ):
        out.add(
            file,
            where,
            f"{url!r}: use https (plain http only to a loopback host, or to an endpoint "
            "that endpoints.yaml gives allowHttp: true)",
        )
        return None
    return endpoint


def _duration(raw: str | None, default: float, file: str, where: str, out: _Problems) -> float:
    if raw is None:
        return default
    try:
        return parse_seconds(raw)
    except ValueError as exc:
        out.add(file, where, str(exc))
        return default


def _parts(
    values: dict[str, Any] | None, file: str, where: str, out: _Problems, header: bool
) -> tuple[tuple[str, Part], ...]:
    parts: list[tuple[str, Part]] = []
    seen: set[str] = set()
    for name, raw in (values or {}).items():
        here = f"{where}.{name}"
        if header and not TOKEN_RE.fullmatch(name):
            out.add(file, here, f"{name!r} is not a valid HTTP header name (an HTTP token)")
            continue
        if header and name.lower() in RESERVED_HEADERS:
            out.add(file, here, f"{name} is set by the dispatcher; it cannot be given")
            continue
        if not name or (not header and any(ord(c) < 32 for c in name)):
            out.add(file, here, "not a valid query parameter name")
            continue
        folded = name.lower() if header else name
        if folded in seen:
            out.add(file, here, "given twice")
            continue
        seen.add(folded)
        if isinstance(raw, bool):
            text: str = "true" if raw else "false"
        else:
            text = str(raw)
        if any(ord(c) < 32 and c != "\t" for c in text):
            out.add(file, here, "holds control characters (a new line?)")
            continue
        try:
            parts.append((name, parse_value(text)))
        except VariableError as exc:
            out.add(file, here, str(exc))
    return tuple(parts)


def _check_auth(action: ActionDef, file: str, out: _Problems, allowed_http: set[str]) -> float:
    """Checks the authentication; returns `cacheFor` in seconds for a bearer token."""
    auth = action.authentication
    where = "authentication"
    if auth is None:
        return 0.0
    if isinstance(auth, ApiKeyAuth | BasicAuth | BearerTokenAuth) and not ENV_NAME_RE.fullmatch(
        auth.secret
    ):
        out.add(
            file,
            f"{where}.secret",
            "names the environment variable that holds the secret (letters, digits, "
            "underscore), never the secret itself",
        )
    if isinstance(auth, ApiKeyAuth):
        if auth.in_ == "header":
            if not TOKEN_RE.fullmatch(auth.name):
                out.add(file, f"{where}.name", f"{auth.name!r} is not a valid HTTP header name")
            elif auth.name.lower() in RESERVED_HEADERS:
                out.add(file, f"{where}.name", f"{auth.name} is set by the dispatcher")
            elif any(n.lower() == auth.name.lower() for n in action.headers or {}):
                out.add(file, f"{where}.name", f"{auth.name} is also under headers")
        elif not auth.name or any(n == auth.name for n in action.query or {}):
            out.add(file, f"{where}.name", "must be a query name not under query")
    if isinstance(auth, BasicAuth | BearerTokenAuth) and any(
        n.lower() == "authorization" for n in action.headers or {}
    ):
        out.add(file, "headers.Authorization", "set by the authentication; remove it")
    if isinstance(auth, BasicAuth) and ":" in auth.username:
        out.add(file, f"{where}.username", "a basic username holds no ':'")
    if isinstance(auth, BearerTokenAuth):
        _check_url(auth.tokenUrl, file, f"{where}.tokenUrl", out, allowed_http)
        cache_for = _duration(auth.cacheFor, 0.0, file, f"{where}.cacheFor", out)
        if cache_for and cache_for <= TOKEN_MARGIN:
            out.add(file, f"{where}.cacheFor", "must be longer than the one-minute safety margin")
        if not auth.tokenPath.strip():
            out.add(file, f"{where}.tokenPath", "must not be empty")
        return cache_for
    return 0.0


def compile_action(
    action_file: ActionFile, allowed_http: set[str], problems: list[Problem]
) -> CompiledAction | None:
    out = _Problems(problems)
    before = len(problems)
    file, action = action_file.path, action_file.definition
    if not ACTION_NAME_RE.fullmatch(action.name):
        out.add(file, "name", "letters, digits and underscore only, 1 to 30 characters")
    endpoint = _check_url(action.url, file, "url", out, allowed_http)
    headers = _parts(action.headers, file, "headers", out, header=True)
    query = _parts(action.query, file, "query", out, header=False)
    timeout = _duration(action.timeout, DEFAULT_TIMEOUT, file, "timeout", out)
    if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        out.add(file, "timeout", f"between {MIN_TIMEOUT:g} seconds and {MAX_TIMEOUT:g} seconds")
    cache_for = _check_auth(action, file, out, allowed_http)
    if action.method == "GET" and action.payload is not None:
        out.add(file, "payload", "a GET has no body: remove the payload or use POST")
    found: list[tuple[str, str]] = []
    template = compile_template(action.payload, "payload", found)
    for where, message in found:
        out.add(file, where, message)
    if len(problems) > before or endpoint is None:
        return None
    return CompiledAction(
        name=action.name,
        path=file,
        definition=action,
        method=action.method,
        url=action.url,
        endpoint=endpoint,
        headers=headers,
        query=query,
        timeout=timeout,
        auth=action.authentication or NO_AUTH,
        payload=template,
        token_cache_for=cache_for,
    )


def compile_endpoints(
    endpoints: EndpointsFile | None, problems: list[Problem]
) -> dict[str, EndpointLimits]:
    if endpoints is None:
        return {}
    out = _Problems(problems)
    file = endpoints.path
    limits: dict[str, EndpointLimits] = {}
    for index, entry in enumerate(endpoints.entries):
        where = f"[{index}]"
        parts = urlsplit(entry.endpoint)
        try:
            parts.port  # noqa: B018
            bad = (
                parts.scheme.lower() not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or bool(parts.query or parts.fragment or parts.username)
            )
        except ValueError:
            bad = True
        if bad:
            out.add(file, f"{where}.endpoint", "scheme://host[:port], nothing else")
            continue
        key = endpoint_of(entry.endpoint)
        if key in limits:
            out.add(file, f"{where}.endpoint", f"{key} is listed twice")
            continue
        if entry.mode is not None and entry.callsPerSecond is None:
            out.add(file, f"{where}.callsPerSecond", f"is required with mode {entry.mode}")
        if entry.mode is None and entry.callsPerSecond is not None:
            out.add(file, f"{where}.mode", "is required with callsPerSecond (throttle or cap)")
        if entry.maxDelay is not None and entry.mode != "throttle":
            out.add(file, f"{where}.maxDelay", "applies to mode throttle only")
        max_delay = _duration(entry.maxDelay, DEFAULT_MAX_DELAY, file, f"{where}.maxDelay", out)
        if not 0 <= max_delay <= MAX_DELAY_LIMIT:
            out.add(file, f"{where}.maxDelay", "at most 7 days")
        limits[key] = EndpointLimits(
            endpoint=key,
            mode=entry.mode,
            calls_per_second=entry.callsPerSecond,
            max_delay=max_delay,
            concurrency=entry.concurrency or DEFAULT_CONCURRENCY,
            allow_http=bool(entry.allowHttp),
        )
    return limits


def _compile_path(raw: str | None, file: str, where: str, out: _Problems) -> tuple[Part, ...]:
    if raw is None:
        return ()
    if not raw.startswith("/"):
        out.add(file, where, "starts with /")
        return ()
    segments: list[Part] = []
    for segment in raw[1:].split("/"):
        if segment in ("", ".", ".."):
            out.add(file, where, f"{raw!r}: empty, . and .. segments are not allowed")
            return ()
        try:
            value = parse_value(segment)
        except VariableError as exc:
            out.add(file, where, str(exc))
            return ()
        if isinstance(value, Variable):
            if value.optional:
                out.add(file, where, f"{value}: a path segment cannot be optional")
                return ()
        elif not _SEGMENT_RE.fullmatch(value):
            out.add(file, where, f"{segment!r}: not a valid URL path segment")
            return ()
        segments.append(value)
    return tuple(segments)


def used_variables(action: CompiledAction, path: tuple[Part, ...] = ()) -> list[Variable]:
    """Every variable a use of the action reads: payload, headers, query and path."""
    variables = [v for _, v in walk_variables(action.payload)]
    variables += [v for _, v in action.headers + action.query if isinstance(v, Variable)]
    variables += [v for v in path if isinstance(v, Variable)]
    return variables


def _check_activity_variables(
    action: CompiledAction,
    types: Sequence[ActivityType],
    file: str,
    where: str,
    out: _Problems,
    path: tuple[Part, ...],
) -> None:
    """Each `$activity.primary` / `$activity.attributes.X` of the action must exist, with
    one JSON type, on every type that can trigger the campaign."""
    for variable in used_variables(action, path):
        if variable.name != PRIMARY and not variable.name.startswith(ATTRIBUTES):
            continue
        kinds: dict[str, list[str]] = {}
        for activity_type in types:
            spec: AttributeSpec | None = activity_type.primary
            if variable.name != PRIMARY:
                spec = next(
                    (a for a in activity_type.attributes if a.api_name == variable.key), None
                )
                if spec is None:
                    out.add(
                        file,
                        where,
                        f"action {action.name} uses {variable}, but activity type "
                        f"{activity_type.label}, which can trigger this campaign, has no "
                        f"attribute with apiName {variable.key!r}",
                    )
                    kinds = {}
                    break
            assert spec is not None
            kinds.setdefault(_JSON_KIND[spec.data_type], []).append(activity_type.label)
        if len(kinds) > 1:
            shown = "; ".join(f"{k} in {', '.join(v)}" for k, v in kinds.items())
            out.add(
                file,
                where,
                f"action {action.name} uses {variable}, whose data type differs between the "
                f"types that trigger this campaign ({shown})",
            )


def compile_actions(
    action_files: Sequence[ActionFile],
    endpoints: EndpointsFile | None,
    campaigns: Sequence[Any],
    catalog: Catalog,
    problems: list[Problem],
) -> ActionPlan:
    """`campaigns` are the engine's `CampaignFile`s. Problems go into `problems`; the plan
    holds what compiled."""
    out = _Problems(problems)
    limits = compile_endpoints(endpoints, problems)
    allowed_http = {k for k, v in limits.items() if v.allow_http}
    actions: dict[str, CompiledAction] = {}
    names: dict[str, str] = {}
    for action_file in sorted(action_files, key=lambda a: a.path):
        name = action_file.definition.name
        other = names.setdefault(name.casefold(), action_file.path)
        if other != action_file.path:
            out.add(action_file.path, "name", f"{name!r} is also the name of {other}")
            continue
        compiled = compile_action(action_file, allowed_http, problems)
        if compiled is not None:
            actions[name.casefold()] = compiled
    uses: dict[int, tuple[ActionUse, ...]] = {}
    users: dict[str, set[str]] = {}
    carries: dict[int, tuple[str, ...]] = {}
    for campaign_file in campaigns:
        definition = campaign_file.definition
        entries = definition.actions or []
        if not entries:
            continue
        file = campaign_file.path
        types = [
            t for t in (catalog.trigger(trigger.trigger) for trigger in definition.triggers) if t
        ]
        listed: list[ActionUse] = []
        fields: set[str] = set()
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            where = f"actions[{index}]"
            folded = entry.action.casefold()
            if folded in seen:
                out.add(file, f"{where}.action", f"{entry.action} is listed twice")
                continue
            seen.add(folded)
            if folded not in names:
                close = difflib.get_close_matches(
                    entry.action, [a.definition.name for a in action_files], n=1
                )
                hint = f"; did you mean {close[0]!r}?" if close else ""
                out.add(file, f"{where}.action", f"unknown action {entry.action!r}{hint}")
                continue
            compiled = actions.get(folded)
            path = _compile_path(entry.path, file, f"{where}.path", out)
            if compiled is None:
                continue  # its own file's problems are reported
            _check_activity_variables(compiled, types, file, f"{where}.action", out, path)
            users.setdefault(compiled.name, set()).add(file)
            listed.append(ActionUse(compiled, path))
            fields |= {
                v.key.casefold()
                for v in used_variables(compiled, path)
                if v.name.startswith(FIELDS)
            }
        uses[definition.id] = tuple(listed)
        carries[definition.id] = tuple(sorted(fields))
    return ActionPlan(
        actions={a.name: a for a in actions.values()},
        uses=uses,
        users={k: tuple(sorted(v)) for k, v in users.items()},
        endpoints=limits,
        carries=carries,
    )
