"""The catalog operations of activity-types.md as edits of the type files of a rules directory.

Each operation:

1. reads the rules directory (`read_rules`) and the one file concerned, in ruamel.yaml
   round-trip mode, so that comments, key order and quoting of what it does not touch stay
   as they were and the git diff shows only the change;
2. applies the change to that YAML document, following the lifecycle: a `draft` type is
   edited in place, an approved type gets the change in `draft:` (status
   `approved with draft`), so that the approved version stays in force until approved;
3. re-validates the whole directory as it would be after the change, in memory, with the
   engine's own `compile_rules`: there is no second validator that could disagree with
   `validate`;
4. only then writes the file (temporary file + `os.replace`, so that a reader never sees
   half a file) or deletes it. A refusal raises `CatalogOpError` and leaves every file
   untouched.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from streams.engine.catalog import (
    CUSTOM_TYPE_MIN_ID,
    DEFAULT_MAX_CUSTOM_TYPES,
    Catalog,
    TypeFile,
    build_catalog,
    types_used,
)
from streams.engine.compiler import _FROZEN_WHEN_USED, compile_rules
from streams.engine.definitions import ActivityTypeDef, AttributeDef
from streams.engine.loader import (
    TYPES_DIR,
    CampaignFile,
    RuleFiles,
    _plain,
    parse_definition,
    read_rules,
)
from streams.engine.problems import Problem

TYPE_KEYS: Final = (
    "id",
    "apiName",
    "name",
    "description",
    "triggerName",
    "filterName",
    "status",
    "primaryAttribute",
    "attributes",
    "draft",
)
"""Key order of a type file, as in the spec; a key added to a file goes at its place."""
DRAFT_KEYS: Final = (
    "name",
    "description",
    "triggerName",
    "filterName",
    "primaryAttribute",
    "attributes",
)
ATTRIBUTE_KEYS: Final = ("apiName", "name", "description", "dataType", "isPrimary")
_FROZEN: Final[tuple[str, ...]] = _FROZEN_WHEN_USED
"""What a type approved and used by a campaign keeps: the compiler's own list."""


class CatalogOpError(Exception):
    """The operation is refused; nothing was written. `problems` are the validation problems
    the change would cause (empty for a refusal of the lifecycle itself)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Change:
    """What an operation did, for the one line the CLI prints."""

    path: str
    message: str
    written: bool = True

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class TypeRow:
    """One line of `types list`."""

    id: int
    api_name: str
    name: str
    status: str
    trigger_name: str
    filter_name: str
    attributes: int
    pending_attributes: int | None
    """The number of secondary attributes the draft would put in force, if it changes it."""
    used_by: tuple[str, ...]
    path: str


# --- YAML round trip -------------------------------------------------------------------------


def _yaml() -> YAML:
    """Round-trip mode with the spec's indentation; a wide line so that a long description
    written on one line is not folded."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _dump(document: CommentedMap) -> str:
    """The document as text. Dump a document once only: ruamel marks the comments it has
    written, and a second dump would lose some of them."""
    out = io.StringIO()
    _yaml().dump(document, out)
    return out.getvalue()


def _load_document(path: Path, shown: str) -> CommentedMap:
    try:
        text = path.read_text(encoding="utf-8")
        document = _yaml().load(text)
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise CatalogOpError(f"{shown}: cannot read: {exc}") from None
    if not isinstance(document, CommentedMap):
        raise CatalogOpError(f"{shown}: should hold a mapping (one definition)")
    return document


def _parse(text: str, shown: str) -> tuple[ActivityTypeDef | None, list[Problem]]:
    """The text as `read_rules` would read it from the file (same loader, same model)."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:  # pragma: no cover - the text comes from our own dump
        return None, [Problem(shown, None, f"not valid YAML: {exc}")]
    return parse_definition(_plain(data), ActivityTypeDef, shown)


# Comments. ruamel keeps the comment lines that follow a node on the last scalar key of that
# node (the "tail"): the lines before the next key or item. When a node is added, moved or
# removed, its neighbour's tail is moved with it so that each comment stays above what it
# was written above and a file's trailing comment stays at the end.


def _is_block(node: Any) -> bool:
    return (
        isinstance(node, CommentedMap | CommentedSeq) and len(node) > 0 and not node.fa.flow_style()
    )


def _tail_slot(parent: Any, key: Any) -> tuple[CommentedMap, Any] | None:
    """The (mapping, key) whose post-comment holds the lines after `parent[key]`."""
    while True:
        child = parent[key]
        if not _is_block(child):
            return (parent, key) if isinstance(parent, CommentedMap) else None
        parent = child
        key = list(child)[-1] if isinstance(child, CommentedMap) else len(child) - 1


def _detach_tail(parent: Any, key: Any) -> str:
    """Remove and return the comment lines after `parent[key]`, keeping an end-of-line one."""
    slot = _tail_slot(parent, key)
    if slot is None:
        return ""
    mapping, last = slot
    entry = mapping.ca.items.get(last)
    if not entry or len(entry) < 3 or entry[2] is None:
        return ""
    token = entry[2]
    value: str = token.value
    if value.startswith("#"):
        end_of_line, _, following = value.partition("\n")
        token.value = end_of_line + "\n"
        return following
    entry[2] = None
    return value[1:] if value.startswith("\n") else value


def _attach_tail(parent: Any, key: Any, lines: str) -> None:
    if not lines:
        return
    slot = _tail_slot(parent, key)
    if slot is None:
        return
    mapping, last = slot
    entry = mapping.ca.items.setdefault(last, [None, None, None, None])
    if entry[2] is None:
        entry[2] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        entry[2].value = entry[2].value + lines


def _set(mapping: CommentedMap, key: str, value: Any, order: Sequence[str]) -> None:
    """Set `key`, inserting it at its place in `order` when it is new."""
    if key in mapping:
        if isinstance(value, CommentedMap | CommentedSeq) or _is_block(mapping[key]):
            lines = _detach_tail(mapping, key)
            mapping[key] = value
            _attach_tail(mapping, key, lines)
        else:
            mapping[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    keys = list(mapping)
    position = 0
    for index, existing in enumerate(keys):
        if (order.index(existing) if existing in order else len(order)) <= rank:
            position = index + 1
    lines = _detach_tail(mapping, keys[position - 1]) if position > 0 else ""
    mapping.insert(position, key, value)
    _attach_tail(mapping, key, lines)


def _remove(parent: CommentedMap | CommentedSeq, key: Any, owner: Any = None) -> None:
    """Remove `parent[key]`; the lines after it now follow its predecessor (whose own tail
    was about the removed node). `owner` is (mapping, key) holding `parent`, for the comment
    above a removed first item of a sequence."""
    keys = list(parent) if isinstance(parent, CommentedMap) else list(range(len(parent)))
    index = keys.index(key)
    lines = _detach_tail(parent, key)
    if index > 0:
        _detach_tail(parent, keys[index - 1])
        del parent[key]
        _attach_tail(parent, keys[index - 1], lines)
        return
    del parent[key]
    if isinstance(parent, CommentedSeq) and owner is not None:
        _replace_leading(parent, owner, lines)


def _replace_leading(seq: CommentedSeq, owner: tuple[CommentedMap, str], lines: str) -> None:
    """The comment above a sequence's first item, once that item is gone: the lines that
    were above the next one."""
    comment = seq.ca.comment
    if not comment or len(comment) < 2 or comment[1] is None:
        if lines and len(seq) == 0:
            _attach_tail(owner[0], owner[1], lines)
        return
    tokens = [
        CommentToken(line.lstrip(" ") + "\n", CommentMark(len(line) - len(line.lstrip(" "))), None)
        for line in lines.splitlines()
    ]
    if tokens and len(seq) > 0:
        comment[1][:] = tokens
        return
    comment[1] = None
    entry = owner[0].ca.items.get(owner[1])
    if entry and len(entry) > 3:
        entry[3] = None
    _attach_tail(owner[0], owner[1], lines)


def _append(seq: CommentedSeq, item: CommentedMap) -> None:
    lines = _detach_tail(seq, len(seq) - 1) if len(seq) else ""
    seq.append(item)
    seq.fa.set_block_style()
    _attach_tail(seq, len(seq) - 1, lines)


def _fresh(node: Any) -> Any:
    """A copy without comments or positions, to put an approved value into a draft."""
    if isinstance(node, dict):
        return CommentedMap((k, _fresh(v)) for k, v in node.items())
    if isinstance(node, list):
        seq = CommentedSeq(_fresh(v) for v in node)
        if seq:
            seq.fa.set_block_style()
        return seq
    return node


def _attribute_map(
    api_name: str, name: str, data_type: str | None, description: str | None
) -> CommentedMap:
    item = CommentedMap()
    item["apiName"] = api_name
    item["name"] = name
    if description is not None:
        item["description"] = description
    item["dataType"] = data_type or "string"
    return item


# --- the rules directory ---------------------------------------------------------------------


def _shown_root(rules_dir: Path) -> str:
    """How `read_rules` names the directory in the paths of its files and problems."""
    return str(rules_dir).rstrip("/") or "."


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.file, p.field or "", p.message))


@dataclass
class _Rules:
    """A rules directory as read before the change."""

    root: Path
    files: RuleFiles
    problems: list[Problem]
    catalog: Catalog
    max_custom_types: int

    @classmethod
    def read(cls, rules_dir: Path, max_custom_types: int) -> _Rules:
        if not rules_dir.is_dir():
            raise CatalogOpError(f"{rules_dir}: is not a directory of rules")
        files, problems = read_rules(rules_dir)
        catalog, _ = build_catalog(files.types, max_custom_types)
        return cls(rules_dir, files, problems, catalog, max_custom_types)

    def find(self, ref: str) -> TypeFile:
        """A type by id or by apiName (case-insensitive)."""
        text = ref.strip()
        for type_file in self.files.types:
            if text.isdigit() and type_file.definition.id == int(text):
                return type_file
        for type_file in self.files.types:
            if type_file.definition.apiName.casefold() == text.casefold():
                return type_file
        known = ", ".join(
            f"{t.definition.apiName} ({t.definition.id})"
            for t in sorted(self.files.types, key=lambda t: t.definition.id)
        )
        message = f"{self.root}: no activity type {ref!r}; known: {known or 'none'}"
        unreadable = sorted({p.file for p in self.problems if f"/{TYPES_DIR}/" in p.file})
        if unreadable:
            message += (
                f" ({', '.join(unreadable)} did not load: "
                f"`python -m streams validate {self.root}` says why)"
            )
        raise CatalogOpError(message)

    def users(self, type_id: int) -> list[CampaignFile]:
        """The campaigns (active or not) whose triggers or filters name the type."""
        found = []
        for campaign in sorted(self.files.campaigns, key=lambda c: c.path):
            definition = campaign.definition
            filters = definition.filters.items if definition.filters is not None else []
            used = types_used(
                (t.trigger for t in definition.triggers),
                (i.filter for i in filters if i.filter),
                self.catalog,
            )
            if type_id in used:
                found.append(campaign)
        return found

    def problems_with(self, shown: str, new: TypeFile | None) -> list[Problem]:
        """Every problem of the directory once `shown` holds `new` (or is gone)."""
        types = [t for t in self.files.types if t.path != shown]
        if new is not None:
            types.append(new)
        _, problems = compile_rules(
            RuleFiles(types, self.files.campaigns, self.files.actions, self.files.endpoints),
            max_custom_types=self.max_custom_types,
        )
        return _sorted([p for p in self.problems if p.file != shown] + problems)

    def commit(self, shown: str, path: Path, text: str | None) -> TypeFile | None:
        """Validate the directory with `text` as the new content of `path` (None: the file
        deleted), then write it; CatalogOpError with the problems otherwise."""
        new: TypeFile | None = None
        if text is not None:
            definition, problems = _parse(text, shown)
            if definition is None:
                raise self._refusal(shown, problems)
            new = TypeFile(shown, definition)
        problems = self.problems_with(shown, new)
        if problems:
            raise self._refusal(shown, problems)
        if text is None:
            path.unlink()
        else:
            _write_atomic(path, text)
        return new

    def _refusal(self, shown: str, problems: list[Problem]) -> CatalogOpError:
        _, now = compile_rules(self.files, max_custom_types=self.max_custom_types)
        before = set(self.problems) | set(now)
        old = sum(1 for p in problems if p in before)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        if old:
            count += f", {old} of them already there before this change"
        return CatalogOpError(
            f"{shown}: not changed: the rules directory would not validate after this "
            f"change ({count})",
            problems,
        )


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory and `os.replace`, so that a
    worker or `validate` reading the directory sees the old file or the new one, never half
    of one. The temporary name does not end in .yaml: a reader never takes it for a rule."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- one type file being edited ---------------------------------------------------------------


@dataclass
class _Edit:
    """The document of one type file, and where a change to it goes."""

    rules: _Rules
    type_file: TypeFile
    document: CommentedMap
    draft: CommentedMap | None
    """Where changes go for an approved type (None for a `draft` type: edited in place)."""
    new_draft: bool = False

    @classmethod
    def open(cls, rules: _Rules, ref: str) -> _Edit:
        type_file = rules.find(ref)
        document = _load_document(Path(type_file.path), type_file.path)
        status = type_file.definition.status
        draft: CommentedMap | None = None
        new_draft = False
        if status != "draft":
            existing = document.get("draft")
            if isinstance(existing, CommentedMap):
                draft = existing
            else:
                draft, new_draft = CommentedMap(), True
        return cls(rules, type_file, document, draft, new_draft)

    @property
    def definition(self) -> ActivityTypeDef:
        return self.type_file.definition

    @property
    def target(self) -> CommentedMap:
        return self.document if self.draft is None else self.draft

    @property
    def order(self) -> Sequence[str]:
        return TYPE_KEYS if self.draft is None else DRAFT_KEYS

    def set(self, key: str, value: Any) -> None:
        _set(self.target, key, value, self.order)

    def primary(self) -> CommentedMap:
        """The primary attribute mapping to edit: in the draft, a copy of the approved one."""
        if self.draft is not None and "primaryAttribute" not in self.draft:
            self.set("primaryAttribute", _fresh(self.document["primaryAttribute"]))
        node = self.target["primaryAttribute"]
        if not isinstance(node, CommentedMap):
            raise CatalogOpError(f"{self.type_file.path}: primaryAttribute: should be a mapping")
        return node

    def attributes(self) -> CommentedSeq:
        """The secondary attribute list to edit: in the draft, the full pending list (a copy
        of the approved one when the draft does not change it yet)."""
        if "attributes" not in self.target:
            source = self.document.get("attributes") if self.draft is not None else None
            self.set("attributes", _fresh(source) if source else CommentedSeq())
        node = self.target["attributes"]
        if not isinstance(node, CommentedSeq):
            raise CatalogOpError(f"{self.type_file.path}: attributes: should be a list")
        return node

    def finish(self) -> str:
        """Put a new draft in place, drop what the draft no longer changes, set the status;
        returns a note for the message about where the change went."""
        if self.draft is None:
            return "the type is a draft: approve it to put it in force"
        _prune(self.document, self.draft)
        if self.new_draft and self.draft:
            _set(self.document, "draft", self.draft, TYPE_KEYS)
        if not self.draft:
            if "draft" in self.document:
                _remove(self.document, "draft")
            _set(self.document, "status", "approved", TYPE_KEYS)
            return "the draft now matches the approved version: draft removed, status approved"
        _set(self.document, "status", "approved with draft", TYPE_KEYS)
        return (
            "in the draft, status 'approved with draft'; the approved version stays in force "
            "until `types approve`"
        )


def _normal(key: str, value: Any) -> Any:
    """A draft member's meaning, to tell whether it still differs from the approved one."""
    plain = _plain(value)
    try:
        if key == "primaryAttribute":
            return AttributeDef.model_validate(plain)
        if key == "attributes":
            return [AttributeDef.model_validate(a) for a in plain or []]
    except ValueError:
        return object()  # does not validate: never equal, validation will say why
    return plain


def _prune(document: CommentedMap, draft: CommentedMap) -> None:
    """A draft lists only what changes: members equal to the approved version go."""
    for key in list(draft):
        if key in DRAFT_KEYS and _normal(key, draft[key]) == _normal(key, document.get(key)):
            _remove(draft, key)


def _frozen_check(edit: _Edit, new: ActivityTypeDef) -> None:
    """Refuse, naming the campaigns, a change of what a used approved type keeps; this is
    the compiler's rule, checked first so that the message names who uses the type."""
    if new.draft is None or edit.definition.status == "draft":
        return
    pending = new.pending()
    changed = [m for m in _FROZEN if getattr(pending, m) != getattr(new, m)]
    if not changed:
        return
    users = edit.rules.users(edit.definition.id)
    if users:
        raise CatalogOpError(
            f"{edit.type_file.path}: cannot change {', '.join(changed)}: activity type "
            f"{new.apiName} is approved and used by {', '.join(c.path for c in users)}; "
            "only its description and secondary attributes can still change"
        )


def _changed_members(old: ActivityTypeDef, new: ActivityTypeDef) -> list[str]:
    return [m for m in DRAFT_KEYS if getattr(old, m) != getattr(new, m)]


def _apply(edit: _Edit, describe: Callable[[ActivityTypeDef, ActivityTypeDef], str]) -> Change:
    """Finish the edit, check it, write it; the message says what changed and where."""
    note = edit.finish()
    text = _dump(edit.document)
    new, _ = _parse(text, edit.type_file.path)
    if new is not None:
        if new == edit.definition:
            return Change(edit.type_file.path, "no change: nothing written", written=False)
        _frozen_check(edit, new)
    edit.rules.commit(edit.type_file.path, Path(edit.type_file.path), text)
    assert new is not None  # commit refuses a document that does not parse
    what = describe(edit.definition.pending(), new.pending())
    return Change(edit.type_file.path, f"{what} ({note})")


# --- the operations ---------------------------------------------------------------------------


def list_types(
    rules_dir: Path, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> tuple[list[TypeRow], list[Problem]]:
    """The custom types of the directory, with the campaigns that use them, and the problems
    of the files that did not load (their types are not listed)."""
    rules = _Rules.read(rules_dir, max_custom_types)
    rows = []
    for type_file in sorted(rules.files.types, key=lambda t: t.definition.id):
        definition = type_file.definition
        pending = definition.pending()
        users = tuple(
            Path(c.path).name + ("" if c.definition.status == "active" else " (inactive)")
            for c in rules.users(definition.id)
        )
        rows.append(
            TypeRow(
                id=definition.id,
                api_name=definition.apiName,
                name=definition.name,
                status=definition.status,
                trigger_name=definition.triggerName,
                filter_name=definition.filterName,
                attributes=len(definition.attributes),
                pending_attributes=(
                    len(pending.attributes) if pending.attributes != definition.attributes else None
                ),
                used_by=users,
                path=type_file.path,
            )
        )
    return rows, rules.problems


def show_type(rules_dir: Path, ref: str) -> tuple[str, str]:
    """The path and the text of a type's file, as written."""
    rules = _Rules.read(rules_dir, DEFAULT_MAX_CUSTOM_TYPES)
    type_file = rules.find(ref)
    return type_file.path, Path(type_file.path).read_text(encoding="utf-8")


def create_type(
    rules_dir: Path,
    *,
    api_name: str,
    name: str,
    trigger_name: str,
    filter_name: str,
    primary_api_name: str,
    primary_name: str,
    primary_data_type: str = "string",
    primary_description: str | None = None,
    description: str | None = None,
    type_id: int | None = None,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """A new type, as a draft in `activity-types/<apiName>.yaml`: it yields nothing until it
    is approved, so creating it cannot change what any campaign does."""
    rules = _Rules.read(rules_dir, max_custom_types)
    shown = f"{_shown_root(rules_dir)}/{TYPES_DIR}/{api_name}.yaml"
    path = rules_dir / TYPES_DIR / f"{api_name}.yaml"
    if path.exists():
        raise CatalogOpError(f"{shown}: already exists: use `types update` to change it")
    if type_id is None:
        type_id = max([t.definition.id for t in rules.files.types] + [CUSTOM_TYPE_MIN_ID - 1]) + 1
    document = CommentedMap()
    document["id"] = type_id
    document["apiName"] = api_name
    document["name"] = name
    if description is not None:
        document["description"] = description
    document["triggerName"] = trigger_name
    document["filterName"] = filter_name
    document["status"] = "draft"
    document["primaryAttribute"] = _attribute_map(
        primary_api_name, primary_name, primary_data_type, primary_description
    )
    document["attributes"] = CommentedSeq()
    document["attributes"].fa.set_flow_style()
    rules.commit(shown, path, _dump(document))
    return Change(
        shown,
        f"created activity type {type_id} ({api_name}) as a draft; approve it to make "
        f"trigger {trigger_name!r} and filter {filter_name!r} exist",
    )


def update_type(
    rules_dir: Path,
    ref: str,
    *,
    api_name: str | None = None,
    name: str | None = None,
    description: str | None = None,
    trigger_name: str | None = None,
    filter_name: str | None = None,
    primary_api_name: str | None = None,
    primary_name: str | None = None,
    primary_data_type: str | None = None,
    primary_description: str | None = None,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """Change a type's names, description or primary attribute: in place on a draft, in
    `draft:` on an approved type. `api_name` is accepted only to refuse a change of it."""
    rules = _Rules.read(rules_dir, max_custom_types)
    edit = _Edit.open(rules, ref)
    if api_name is not None and api_name != edit.definition.apiName:
        raise CatalogOpError(
            f"{edit.type_file.path}: apiName {edit.definition.apiName!r} cannot change (it "
            "never does, as in Marketo): create a new type and delete this one instead"
        )
    changes = {
        "name": name,
        "description": description,
        "triggerName": trigger_name,
        "filterName": filter_name,
    }
    primary_changes = {
        "apiName": primary_api_name,
        "name": primary_name,
        "dataType": primary_data_type,
        "description": primary_description,
    }
    if all(v is None for v in (*changes.values(), *primary_changes.values())):
        raise CatalogOpError(
            f"{edit.type_file.path}: nothing to change: give a new name, description, "
            "triggerName, filterName or primary attribute member"
        )
    for key, value in changes.items():
        if value is not None:
            edit.set(key, value)
    if any(v is not None for v in primary_changes.values()):
        primary = edit.primary()
        for key, value in primary_changes.items():
            if value is not None:
                _set(primary, key, value, ATTRIBUTE_KEYS)

    def describe(old: ActivityTypeDef, new: ActivityTypeDef) -> str:
        return f"changed {', '.join(_changed_members(old, new)) or 'nothing in force'}"

    return _apply(edit, describe)


def approve_type(
    rules_dir: Path, ref: str, *, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> Change:
    """Put a type in force: a draft becomes approved, and the draft of an approved type
    replaces the approved version (as `ActivityTypeDef.pending()` says)."""
    rules = _Rules.read(rules_dir, max_custom_types)
    type_file = rules.find(ref)
    definition = type_file.definition
    shown, path = type_file.path, Path(type_file.path)
    document = _load_document(path, shown)
    if definition.status == "approved":
        raise CatalogOpError(
            f"{shown}: nothing to approve: activity type {definition.apiName} is approved "
            "and has no draft"
        )
    if definition.status == "draft":
        _set(document, "status", "approved", TYPE_KEYS)
        rules.commit(shown, path, _dump(document))
        return Change(
            shown,
            f"approved; trigger {definition.triggerName!r} and filter "
            f"{definition.filterName!r} now exist",
        )
    draft = document.get("draft")
    if not isinstance(draft, CommentedMap):
        raise CatalogOpError(f"{shown}: status 'approved with draft' but no draft mapping")
    keys = list(document)
    position = keys.index("draft")
    after_draft = _detach_tail(document, "draft")
    _promote(document, draft)
    draft.clear()
    _remove(document, "draft")
    if position > 0:
        _attach_tail(document, keys[position - 1], after_draft)
    _set(document, "status", "approved", TYPE_KEYS)
    expected = definition.pending().model_copy(update={"status": "approved"})
    text = _dump(document)
    new, _ = _parse(text, shown)
    if new is not None and new != expected:  # pragma: no cover - a bug of _promote
        raise CatalogOpError(f"{shown}: internal error: the approved file differs from the draft")
    rules.commit(shown, path, text)
    changed = ", ".join(_changed_members(definition, expected)) or "nothing"
    return Change(
        shown,
        f"draft approved: {changed} now in force; trigger {expected.triggerName!r}, "
        f"filter {expected.filterName!r}",
    )


def _promote(document: CommentedMap, draft: CommentedMap) -> None:
    """Move each member of the draft to the top level, keeping its comments; an attribute
    marked `isPrimary` becomes the primary attribute, as `pending()` does."""
    for key in [k for k in DRAFT_KEYS if k in draft]:
        value = draft[key]
        _detach_tail(draft, key)
        if key == "attributes" and isinstance(value, CommentedSeq):
            promoted = [a for a in value if isinstance(a, CommentedMap) and a.get("isPrimary")]
            if promoted:
                primary = promoted[0]
                value.remove(primary)
                _detach_tail(primary, list(primary)[-1])
                del primary["isPrimary"]
                _set(document, "primaryAttribute", primary, TYPE_KEYS)
            if value:
                value.fa.set_block_style()
        _set(document, key, value, TYPE_KEYS)


def discard_draft(
    rules_dir: Path, ref: str, *, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> Change:
    """Drop the pending version of an approved type; the approved one was in force all
    along, so nothing changes for the campaigns."""
    rules = _Rules.read(rules_dir, max_custom_types)
    type_file = rules.find(ref)
    definition = type_file.definition
    shown, path = type_file.path, Path(type_file.path)
    if definition.status == "draft":
        raise CatalogOpError(
            f"{shown}: activity type {definition.apiName} is itself a draft (never approved): "
            "there is no approved version to return to; use `types delete` to remove it"
        )
    if definition.status == "approved":
        raise CatalogOpError(
            f"{shown}: no draft to discard: activity type {definition.apiName} is approved "
            "and has no draft"
        )
    document = _load_document(path, shown)
    if "draft" in document:
        _remove(document, "draft")
    _set(document, "status", "approved", TYPE_KEYS)
    rules.commit(shown, path, _dump(document))
    return Change(shown, "draft discarded; status approved (the approved version is unchanged)")


def delete_type(
    rules_dir: Path, ref: str, *, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> Change:
    """Remove a type's file. A type used by a campaign stays: by an active one because the
    spec forbids it, by an inactive one because the campaign would no longer validate."""
    rules = _Rules.read(rules_dir, max_custom_types)
    type_file = rules.find(ref)
    definition = type_file.definition
    users = rules.users(definition.id)
    active = [c.path for c in users if c.definition.status == "active"]
    inactive = [c.path for c in users if c.definition.status != "active"]
    if active or inactive:
        reasons = []
        if active:
            reasons.append(f"it is used by active campaign(s) {', '.join(active)}")
        if inactive:
            reasons.append(
                f"inactive campaign(s) {', '.join(inactive)} still refer to its trigger or "
                "filter and would no longer validate"
            )
        raise CatalogOpError(
            f"{type_file.path}: cannot delete activity type {definition.apiName}: "
            f"{'; '.join(reasons)}. Remove those references first"
        )
    rules.commit(type_file.path, Path(type_file.path), None)
    return Change(type_file.path, f"deleted activity type {definition.id} ({definition.apiName})")


def _find_attribute(edit: _Edit, ref: str) -> int:
    """The index of a secondary attribute in the list being edited, by apiName or name."""
    items = edit.attributes()
    pending = edit.definition.pending()
    folded = ref.casefold()
    if folded in (
        pending.primaryAttribute.apiName.casefold(),
        pending.primaryAttribute.name.casefold(),
    ):
        raise CatalogOpError(
            f"{edit.type_file.path}: {ref!r} is the primary attribute of {pending.apiName}: "
            "change it with `types update --primary-...`"
        )
    for exact in (True, False):
        for index, item in enumerate(items):
            if not isinstance(item, CommentedMap):
                continue
            names = [str(item.get("apiName", "")), str(item.get("name", ""))]
            if any((n == ref) if exact else (n.casefold() == folded) for n in names):
                return index
    known = ", ".join(a.apiName for a in pending.attributes) or "none"
    raise CatalogOpError(
        f"{edit.type_file.path}: activity type {pending.apiName} has no attribute {ref!r}; "
        f"its secondary attributes: {known}"
    )


def add_attribute(
    rules_dir: Path,
    ref: str,
    *,
    api_name: str,
    name: str,
    data_type: str = "string",
    description: str | None = None,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """Add a secondary attribute (through the draft on an approved type)."""
    rules = _Rules.read(rules_dir, max_custom_types)
    edit = _Edit.open(rules, ref)
    _append(edit.attributes(), _attribute_map(api_name, name, data_type, description))
    return _apply(edit, lambda old, new: f"attribute {api_name!r} added")


def update_attribute(
    rules_dir: Path,
    ref: str,
    attribute: str,
    *,
    name: str | None = None,
    data_type: str | None = None,
    description: str | None = None,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """Change a secondary attribute's name, dataType or description (through the draft on
    an approved type: activities already recorded keep the old meaning)."""
    rules = _Rules.read(rules_dir, max_custom_types)
    edit = _Edit.open(rules, ref)
    index = _find_attribute(edit, attribute)
    if name is None and data_type is None and description is None:
        raise CatalogOpError(
            f"{edit.type_file.path}: nothing to change: give a new name, dataType or description"
        )
    item = edit.attributes()[index]
    for key, value in (("name", name), ("dataType", data_type), ("description", description)):
        if value is not None:
            _set(item, key, value, ATTRIBUTE_KEYS)
    return _apply(edit, lambda old, new: f"attribute {item.get('apiName')!r} updated")


def remove_attribute(
    rules_dir: Path,
    ref: str,
    attribute: str,
    *,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """Remove a secondary attribute (through the draft on an approved type)."""
    rules = _Rules.read(rules_dir, max_custom_types)
    edit = _Edit.open(rules, ref)
    items = edit.attributes()
    index = _find_attribute(edit, attribute)
    removed = str(items[index].get("apiName"))
    _remove(items, index, owner=(edit.target, "attributes"))
    if not items:
        items.fa.set_flow_style()
    return _apply(edit, lambda old, new: f"attribute {removed!r} removed")
