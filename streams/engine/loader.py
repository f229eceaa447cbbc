"""Reading a rules directory: `activity-types/*.yaml` and `campaigns/*.yaml`, one definition
per file, into definitions plus the problems found, each naming its file and field."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from streams.engine.catalog import TypeFile
from streams.engine.definitions import ActivityTypeDef, CampaignDef
from streams.engine.problems import Problem, field_path

TYPES_DIR: Final = "activity-types"
CAMPAIGNS_DIR: Final = "campaigns"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CampaignFile:
    path: str
    definition: CampaignDef


@dataclass(frozen=True)
class RuleFiles:
    types: list[TypeFile]
    campaigns: list[CampaignFile]

    @property
    def version(self) -> str:
        """A content hash of the definitions, not of the bytes: comments, formatting and
        file names do not change it; any change of meaning does."""
        text = orjson.dumps(
            {
                "types": sorted(
                    (canonical(t.definition) for t in self.types), key=lambda d: d["id"]
                ),
                "campaigns": sorted(
                    (canonical(c.definition) for c in self.campaigns), key=lambda d: d["id"]
                ),
            },
            option=orjson.OPT_SORT_KEYS,
        )
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


def read_yaml(path: Path, shown: str) -> tuple[Any, list[Problem]]:
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
    if not isinstance(documents[0], dict):
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
    return RuleFiles(types, campaigns), problems
