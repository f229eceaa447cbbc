"""The catalog operations of activity-types.md as edits of the type files of a rules directory.

Each operation, in one transaction of the rules directory (`rulesdir`: under its
cross-process lock):

1. reads the rules directory and the one file concerned, in round-trip mode (`yamledit`), so
   that the git diff shows only the change;
2. applies the change to that YAML document, following the lifecycle: a `draft` type is
   edited in place, an approved type gets the change in `draft:` (status
   `approved with draft`), so that the approved version stays in force until approved;
3. re-validates the whole directory as it would be after the change, in memory, with the
   engine's own `compile_rules`: there is no second validator that could disagree with
   `validate` (the "frozen when used" rule is asked of the compiler's `frozen_changes`,
   first, only so that the refusal names every campaign using the type);
4. only then writes the file or deletes it. A refusal raises `CatalogOpError` and leaves
   every file untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from streams.catalog.errors import CatalogOpError
from streams.catalog.rulesdir import (
    RulesDir,
    open_rules,
    parse_type,
    read_consistent,
    shown_root,
    transaction,
    type_file_name,
)
from streams.catalog.yamledit import (
    append_item,
    attach_tail,
    detach_tail,
    dump,
    fresh,
    load_document,
    remove_key,
    set_key,
)
from streams.engine.catalog import CUSTOM_TYPE_MIN_ID, DEFAULT_MAX_CUSTOM_TYPES, TypeFile
from streams.engine.compiler import frozen_changes
from streams.engine.definitions import ActivityTypeDef, AttributeDef
from streams.engine.loader import CAMPAIGNS_DIR, TYPES_DIR, plain
from streams.engine.problems import Problem
from streams.engine.standard_types import STANDARD_TYPES

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


def attribute_map(
    api_name: str, name: str, data_type: str | None, description: str | None
) -> CommentedMap:
    item = CommentedMap()
    item["apiName"] = api_name
    item["name"] = name
    if description is not None:
        item["description"] = description
    item["dataType"] = data_type or "string"
    return item


# --- one type file being edited ---------------------------------------------------------------


@dataclass
class _Edit:
    """The document of one type file, and where a change to it goes."""

    rules: RulesDir
    type_file: TypeFile
    document: CommentedMap
    draft: CommentedMap | None
    """Where changes go for an approved type (None for a `draft` type: edited in place)."""
    new_draft: bool = False

    @classmethod
    def open(cls, rules: RulesDir, ref: str) -> _Edit:
        type_file = rules.find(ref)
        document = load_document(Path(type_file.path), type_file.path)
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
        set_key(self.target, key, value, self.order)

    def primary(self) -> CommentedMap:
        """The primary attribute mapping to edit: in the draft, a copy of the approved one."""
        if self.draft is not None and "primaryAttribute" not in self.draft:
            self.set("primaryAttribute", fresh(self.document["primaryAttribute"]))
        node = self.target["primaryAttribute"]
        if not isinstance(node, CommentedMap):
            raise CatalogOpError(f"{self.type_file.path}: primaryAttribute: should be a mapping")
        return node

    def attributes(self) -> CommentedSeq:
        """The secondary attribute list to edit: in the draft, the full pending list (a copy
        of the approved one when the draft does not change it yet)."""
        if "attributes" not in self.target:
            source = self.document.get("attributes") if self.draft is not None else None
            self.set("attributes", fresh(source) if source else CommentedSeq())
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
            set_key(self.document, "draft", self.draft, TYPE_KEYS)
        if not self.draft:
            if "draft" in self.document:
                remove_key(self.document, "draft")
            set_key(self.document, "status", "approved", TYPE_KEYS)
            return "the draft now matches the approved version: draft removed, status approved"
        set_key(self.document, "status", "approved with draft", TYPE_KEYS)
        return (
            "in the draft, status 'approved with draft'; the approved version stays in force "
            "until `types approve`"
        )


def _normal(key: str, value: Any) -> Any:
    """A draft member's meaning, to tell whether it still differs from the approved one."""
    data = plain(value)
    try:
        if key == "primaryAttribute":
            return AttributeDef.model_validate(data)
        if key == "attributes":
            return [AttributeDef.model_validate(a) for a in data or []]
    except ValueError:
        return object()  # does not validate: never equal, validation will say why
    return data


def _prune(document: CommentedMap, draft: CommentedMap) -> None:
    """A draft lists only what changes: members equal to the approved version go."""
    for key in list(draft):
        if key in DRAFT_KEYS and _normal(key, draft[key]) == _normal(key, document.get(key)):
            remove_key(draft, key)


def _frozen_check(edit: _Edit, new: ActivityTypeDef) -> None:
    """Refuse, naming the campaigns, a change of what a used approved type keeps; this is
    the compiler's rule, checked first so that the message names who uses the type."""
    if edit.definition.status == "draft":
        return
    changed = frozen_changes(new)
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
    text = dump(edit.document)
    new, _ = parse_type(text, edit.type_file.path)
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
    rules_dir: Path,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
    include_standard: bool = False,
) -> tuple[list[TypeRow], list[Problem]]:
    """The custom types of the directory (after the standard ones with `include_standard`),
    with the campaigns that use them, and the problems of the files that did not load
    (their types are not listed)."""
    with read_consistent(rules_dir):
        rules = RulesDir.read(rules_dir, max_custom_types)
        rows = [_standard_row(d, rules) for d in STANDARD_TYPES] if include_standard else []
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
                        len(pending.attributes)
                        if pending.attributes != definition.attributes
                        else None
                    ),
                    used_by=users,
                    path=type_file.path,
                )
            )
        return rows, rules.problems


def _standard_row(definition: ActivityTypeDef, rules: RulesDir) -> TypeRow:
    return TypeRow(
        id=definition.id,
        api_name=definition.apiName,
        name=definition.name,
        status="standard",
        trigger_name=definition.triggerName,
        filter_name=definition.filterName,
        attributes=len(definition.attributes),
        pending_attributes=None,
        used_by=tuple(Path(c.path).name for c in rules.users(definition.id)),
        path="-",
    )


@dataclass(frozen=True)
class Versions:
    """A type's approved version (in force; None for a draft type, nothing is in force)
    and the version approving would put in force (None when there is nothing to approve)."""

    path: str
    status: str
    in_force: ActivityTypeDef | None
    pending: ActivityTypeDef | None


def type_versions(rules_dir: Path, ref: str) -> Versions:
    """The two versions of a type, for `types show`."""
    with read_consistent(rules_dir):
        type_file = RulesDir.read(rules_dir, DEFAULT_MAX_CUSTOM_TYPES).find(ref)
    definition = type_file.definition
    return Versions(
        type_file.path,
        definition.status,
        None if definition.status == "draft" else definition.model_copy(update={"draft": None}),
        None if definition.status == "approved" else definition.pending(),
    )


def show_type(rules_dir: Path, ref: str) -> tuple[str, str]:
    """The path and the text of a type's file, as written."""
    with read_consistent(rules_dir):
        rules = RulesDir.read(rules_dir, DEFAULT_MAX_CUSTOM_TYPES)
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
    is approved, so creating it cannot change what any campaign does. In a directory
    with neither `activity-types/` nor `campaigns/` (a new one), it makes the first."""
    with transaction(rules_dir) as current, open_rules(rules_dir, max_custom_types) as rules:
        if not (rules_dir / TYPES_DIR).exists() and not (rules_dir / CAMPAIGNS_DIR).exists():
            current.make_dir(rules_dir / TYPES_DIR)
            rules = RulesDir.read(rules_dir, max_custom_types, current)
        file_name = type_file_name(api_name)
        shown = f"{shown_root(rules_dir)}/{TYPES_DIR}/{file_name}"
        path = rules_dir / TYPES_DIR / file_name
        if path.exists():
            raise CatalogOpError(f"{shown}: already exists: use `types update` to change it")
        if type_id is None:
            type_id = (
                max([t.definition.id for t in rules.files.types] + [CUSTOM_TYPE_MIN_ID - 1]) + 1
            )
        document = CommentedMap()
        document["id"] = type_id
        document["apiName"] = api_name
        document["name"] = name
        if description is not None:
            document["description"] = description
        document["triggerName"] = trigger_name
        document["filterName"] = filter_name
        document["status"] = "draft"
        document["primaryAttribute"] = attribute_map(
            primary_api_name, primary_name, primary_data_type, primary_description
        )
        document["attributes"] = CommentedSeq()
        document["attributes"].fa.set_flow_style()
        rules.commit(shown, path, dump(document))
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
    with open_rules(rules_dir, max_custom_types) as rules:
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
        if primary_api_name is not None and _secondary_index(edit, primary_api_name) is not None:
            _promote_attribute(edit, primary_api_name)  # Marketo's way: the old one demoted
            primary_changes["apiName"] = None
        if any(v is not None for v in primary_changes.values()):
            primary = edit.primary()
            for key, value in primary_changes.items():
                if value is not None:
                    set_key(primary, key, value, ATTRIBUTE_KEYS)

        def describe(old: ActivityTypeDef, new: ActivityTypeDef) -> str:
            return f"changed {', '.join(_changed_members(old, new)) or 'nothing in force'}"

        return _apply(edit, describe)


def approve_type(
    rules_dir: Path, ref: str, *, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> Change:
    """Put a type in force: a draft becomes approved, and the draft of an approved type
    replaces the approved version (as `ActivityTypeDef.pending()` says)."""
    with open_rules(rules_dir, max_custom_types) as rules:
        type_file = rules.find(ref)
        definition = type_file.definition
        shown, path = type_file.path, Path(type_file.path)
        document = load_document(path, shown)
        if definition.status == "approved":
            raise CatalogOpError(
                f"{shown}: nothing to approve: activity type {definition.apiName} is approved "
                "and has no draft"
            )
        if definition.status == "draft":
            set_key(document, "status", "approved", TYPE_KEYS)
            rules.commit(shown, path, dump(document))
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
        after_draft = detach_tail(document, "draft")
        _promote(document, draft)
        draft.clear()
        remove_key(document, "draft")
        if position > 0:
            attach_tail(document, keys[position - 1], after_draft)
        set_key(document, "status", "approved", TYPE_KEYS)
        expected = definition.pending().model_copy(update={"status": "approved"})
        text = dump(document)
        new, _ = parse_type(text, shown)
        if new is not None and new != expected:  # pragma: no cover - a bug of _promote
            raise CatalogOpError(
                f"{shown}: internal error: the approved file differs from the draft"
            )
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
        detach_tail(draft, key)
        if key == "attributes" and isinstance(value, CommentedSeq):
            promoted = [a for a in value if isinstance(a, CommentedMap) and a.get("isPrimary")]
            if promoted:
                primary = promoted[0]
                value.remove(primary)
                detach_tail(primary, list(primary)[-1])
                del primary["isPrimary"]
                set_key(document, "primaryAttribute", primary, TYPE_KEYS)
            if value:
                value.fa.set_block_style()
        set_key(document, key, value, TYPE_KEYS)


def discard_draft(
    rules_dir: Path, ref: str, *, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> Change:
    """Drop the pending version of an approved type; the approved one was in force all
    along, so nothing changes for the campaigns."""
    with open_rules(rules_dir, max_custom_types) as rules:
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
        document = load_document(path, shown)
        if "draft" in document:
            remove_key(document, "draft")
        set_key(document, "status", "approved", TYPE_KEYS)
        rules.commit(shown, path, dump(document))
        return Change(shown, "draft discarded; status approved (the approved version is unchanged)")


def delete_type(
    rules_dir: Path, ref: str, *, max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> Change:
    """Remove a type's file. A type used by a campaign stays: by an active one because the
    spec forbids it, by an inactive one because the campaign would no longer validate."""
    with open_rules(rules_dir, max_custom_types) as rules:
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
        return Change(
            type_file.path, f"deleted activity type {definition.id} ({definition.apiName})"
        )


def _secondary_index(edit: _Edit, api_name: str) -> int | None:
    """The index of the secondary attribute with this apiName in the list being edited."""
    for index, item in enumerate(edit.attributes()):
        if isinstance(item, CommentedMap) and str(item.get("apiName", "")) == api_name:
            return index
    return None


def _promote_attribute(edit: _Edit, ref: str) -> str:
    """Swap a secondary attribute and the primary one: the secondary becomes the primary
    attribute and the old primary takes its place in the list (in the draft of an approved
    type). Returns the promoted apiName."""
    index = _find_attribute(edit, ref)
    items = edit.attributes()
    promoted = fresh(items[index])
    promoted.pop("isPrimary", None)
    demoted = fresh(edit.primary())
    items[index] = demoted
    edit.set("primaryAttribute", promoted)
    return str(promoted.get("apiName"))


def promote_attribute(
    rules_dir: Path,
    ref: str,
    attribute: str,
    *,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """Make a secondary attribute the primary one, the old primary becoming a secondary
    attribute, as Marketo does (through the draft on an approved type; refused, naming the
    campaigns, when the type is approved and used: its primary attribute is frozen)."""
    with open_rules(rules_dir, max_custom_types) as rules:
        edit = _Edit.open(rules, ref)
        old = edit.definition.pending().primaryAttribute.apiName
        promoted = _promote_attribute(edit, attribute)
        return _apply(
            edit, lambda before, after: f"{promoted!r} promoted to primary, {old!r} demoted"
        )


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
    with open_rules(rules_dir, max_custom_types) as rules:
        edit = _Edit.open(rules, ref)
        append_item(edit.attributes(), attribute_map(api_name, name, data_type, description))
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
    with open_rules(rules_dir, max_custom_types) as rules:
        edit = _Edit.open(rules, ref)
        index = _find_attribute(edit, attribute)
        if name is None and data_type is None and description is None:
            raise CatalogOpError(
                f"{edit.type_file.path}: nothing to change: give a new name, dataType or "
                "description"
            )
        item = edit.attributes()[index]
        for key, value in (("name", name), ("dataType", data_type), ("description", description)):
            if value is not None:
                set_key(item, key, value, ATTRIBUTE_KEYS)
        return _apply(edit, lambda old, new: f"attribute {item.get('apiName')!r} updated")


def remove_attribute(
    rules_dir: Path,
    ref: str,
    attribute: str,
    *,
    max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES,
) -> Change:
    """Remove a secondary attribute (through the draft on an approved type)."""
    with open_rules(rules_dir, max_custom_types) as rules:
        edit = _Edit.open(rules, ref)
        items = edit.attributes()
        index = _find_attribute(edit, attribute)
        removed = str(items[index].get("apiName"))
        remove_key(items, index, owner=(edit.target, "attributes"))
        if not items:
            items.fa.set_flow_style()
        return _apply(edit, lambda old, new: f"attribute {removed!r} removed")
