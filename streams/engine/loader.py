"""Reading a rules directory: `activity-types/*.yaml`, `campaigns/*.yaml` and
`actions/*.yaml`, one definition per file, and the optional `endpoints.yaml` (a list), into
definitions plus the problems found, each naming its file and field."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from streams.actions.definitions import ActionDef, ActionFile, EndpointDef, EndpointsFile
from streams.engine.catalog import TypeFile
from streams.engine.definitions import ActivityTypeDef, CampaignDef
from streams.engine.problems import Problem, field_path

TYPES_DIR: Final = "activity-types"
CAMPAIGNS_DIR: Final = "campaigns"
ACTIONS_DIR: Final = "actions"
ENDPOINTS_FILE: Final = "endpoints.yaml"
_ENDPOINTS: Final = TypeAdapter(list[EndpointDef])

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CampaignFile:
    path: str
    definition: CampaignDef


@dataclass(frozen=True)
class RuleFiles:
    types: list[TypeFile]
    campaigns: list[CampaignFile]
    actions: list[ActionFile] = field(default_factory=list)
    endpoints: EndpointsFile | None = None

    @property
    def version(self) -> str:
        """A content hash of the definitions, not of the bytes: comments, formatting and
        file names do not change it; any change of meaning does."""
        content: dict[str, Any] = {
            "types": sorted((canonical(t.definition) for t in self.types), key=lambda d: d["id"]),
            "campaigns": sorted(
                (canonical(c.definition) for c in self.campaigns), key=lambda d: d["id"]
            ),
        }
        # Only when present, so that rules without actions keep their version.
        if self.actions:
            content["actions"] = sorted(
                (_as_written(a.definition) for a in self.actions), key=lambda d: d["name"]
            )
        if self.endpoints is not None:
            content["endpoints"] = [_as_written(e) for e in self.endpoints.entries]
        text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(text).hexdigest()[:16]


def canonical(definition: BaseModel) -> Any:
    """A definition as data, with the spellings that mean the same made the same
    (`value: X` is `values: [X]`)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: walk(v) for k, v in node.items()}
            if "value" in node and "values" not in node:
                node["values"] = [node.pop("value")]
            return node
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(definition.model_dump(mode="json", exclude_none=True))


def _as_written(definition: BaseModel) -> Any:
    """An action or endpoint as data, members left out dropped (payloads are kept whole:
    `canonical`'s spellings are the campaigns' only)."""
    return {
        k: v for k, v in definition.model_dump(mode="json", by_alias=True).items() if v is not None
    }


def plain(node: Any) -> Any:
    """YAML timestamps back to the text that was written, so that dates and date-times go
    through the one coercion of `datatypes` (which insists on an offset)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, datetime):
        return node.isoformat()
    if isinstance(node, date):
        return node.isoformat()
    return node


def read_yaml(path: Path, shown: str, kind: type = dict) -> tuple[Any, list[Problem]]:
    yaml = YAML(typ="safe", pure=True)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, None, f"cannot read: {exc}")]
    try:
        documents = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, [Problem(shown, None, f"{where}not valid YAML: {exc.problem}")]
    except YAMLError as exc:
        return None, [Problem(shown, None, f"not valid YAML: {exc}")]
    documents = [d for d in documents if d is not None]
    if not documents:
        return None, [Problem(shown, None, "the file is empty: it should hold one definition")]
    if len(documents) > 1:
        return None, [Problem(shown, None, "holds several YAML documents; one definition per file")]
    if not isinstance(documents[0], kind):
        if kind is list:
            return None, [Problem(shown, None, "should hold a list (one entry per endpoint)")]
        return None, [Problem(shown, None, "should hold a mapping (one definition)")]
    return plain(documents[0]), []


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known member (misspelt?)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_definition(data: Any, model: type[M], shown: str) -> tuple[M | None, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [
            Problem(shown, field_path(error["loc"]) or None, _message(error))
            for error in exc.errors()
        ]


def salvage(data: Any, model: type[M], problems: list[Problem]) -> M | None:
    """The definition without the members its problems name, so that one run reports what
    else is wrong with it (a wrong operator behind an unknown key or `minTimes: 0`). The file
    already has problems, so a salvaged definition is only ever checked, never run. None
    when dropping those members does not make it parse (a required member is missing)."""
    for _ in range(8):
        paths = [p.field for p in problems if p.field]
        if not paths or any(p.endswith("]") for p in paths) or not isinstance(data, dict):
            return None  # dropping a whole list item would renumber the others
        smaller = _without(data, paths)
        if smaller == data:
            return None  # a required member is missing: nothing to drop
        data = smaller
        found, problems = parse_definition(data, model, "")
        if found is not None:
            return found
    return None


def _without(data: Any, paths: list[str]) -> Any:
    """A copy of `data` without the members at `paths` (`a.b[1].c`)."""
    dropped = {tuple(_PATH_STEP.findall(path)) for path in paths}

    def walk(node: Any, at: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {
                k: walk(v, (*at, str(k))) for k, v in node.items() if (*at, str(k)) not in dropped
            }
        if isinstance(node, list):
            return [walk(v, (*at, str(i))) for i, v in enumerate(node)]
        return node

    return walk(data, ())


_PATH_STEP: Final = re.compile(r"[^.\[\]]+")


def _yaml_files(folder: Path, shown: str, problems: list[Problem]) -> list[tuple[Path, str]]:
    if not folder.exists():
        return []
    if not folder.is_dir():
        problems.append(Problem(shown, None, "should be a directory"))
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".yml":
            problems.append(
                Problem(f"{shown}/{path.name}", None, "rule files end in .yaml: rename it")
            )
        elif path.suffix == ".yaml" and path.is_file():
            files.append((path, f"{shown}/{path.name}"))
    return files


def read_rules(rules_dir: Path) -> tuple[RuleFiles, list[Problem]]:
    """Every definition that parses, and a problem for every one that does not."""
    shown_root = str(rules_dir).rstrip("/") or "."
    problems: list[Problem] = []
    if not rules_dir.is_dir():
        problems.append(Problem(shown_root, None, "is not a directory of rules"))
        return RuleFiles([], []), problems
    if not (rules_dir / TYPES_DIR).exists() and not (rules_dir / CAMPAIGNS_DIR).exists():
        problems.append(
            Problem(
                shown_root,
                None,
                f"holds neither {TYPES_DIR}/ nor {CAMPAIGNS_DIR}/: not a rules directory "
                "(a mistyped path?)",
            )
        )
        return RuleFiles([], []), problems
    types: list[TypeFile] = []
    for path, shown in _yaml_files(rules_dir / TYPES_DIR, f"{shown_root}/{TYPES_DIR}", problems):
        data, found = read_yaml(path, shown)
        problems += found
        if data is not None:
            type_def, found = parse_definition(data, ActivityTypeDef, shown)
            problems += found
            type_def = type_def or salvage(data, ActivityTypeDef, found)
            if type_def is not None:
                types.append(TypeFile(shown, type_def))
    campaigns: list[CampaignFile] = []
    folder = rules_dir / CAMPAIGNS_DIR
    for path, shown in _yaml_files(folder, f"{shown_root}/{CAMPAIGNS_DIR}", problems):
        data, found = read_yaml(path, shown)
        problems += found
        if data is not None:
            campaign, found = parse_definition(data, CampaignDef, shown)
            problems += found
            campaign = campaign or salvage(data, CampaignDef, found)
            if campaign is not None:
                campaigns.append(CampaignFile(shown, campaign))
    actions: list[ActionFile] = []
    folder = rules_dir / ACTIONS_DIR
    for path, shown in _yaml_files(folder, f"{shown_root}/{ACTIONS_DIR}", problems):
        data, found = read_yaml(path, shown)
        problems += found
        if data is not None:
            action, found = parse_definition(data, ActionDef, shown)
            problems += found
            if action is not None:
                actions.append(ActionFile(shown, action))
    return RuleFiles(
        types, campaigns, actions, _read_endpoints(rules_dir, shown_root, problems)
    ), problems


def _read_endpoints(
    rules_dir: Path, shown_root: str, problems: list[Problem]
) -> EndpointsFile | None:
    path = rules_dir / ENDPOINTS_FILE
    shown = f"{shown_root}/{ENDPOINTS_FILE}"
    if not path.exists():
        return None
    data, found = read_yaml(path, shown, list)
    problems += found
    if data is None:
        return None
    try:
        return EndpointsFile(shown, tuple(_ENDPOINTS.validate_python(data)))
    except ValidationError as exc:
        problems += [
            Problem(shown, field_path(error["loc"]) or None, _message(error))
            for error in exc.errors()
        ]
        return None
