"""The catalog of activity types in force: the standard ones plus the approved custom ones.

`build_catalog` checks every rule of activity-types.md that a single type file or the set of
them can break, and returns the problems with the catalog; campaign-dependent rules (a type
used by a campaign keeps its names) are checked by the compiler, which knows the usage.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from streams.engine.datatypes import COERCERS, DataType, Value
from streams.engine.definitions import ActivityTypeDef, AttributeDef
from streams.engine.problems import Problem
from streams.engine.standard_types import DELETE_LEAD_TYPE, STANDARD_TYPES

CUSTOM_TYPE_MIN_ID: Final = 100_000
MAX_SECONDARY_ATTRIBUTES: Final = 20
DEFAULT_MAX_CUSTOM_TYPES: Final = 10

_API_NAME_RE: Final = re.compile(r"[A-Za-z0-9]{1,255}")
_TYPE_NAME_RE: Final = re.compile(r"[\w ]+")
"""Letters and digits of any script (`Visite du café`), spaces and underscores."""


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    api_name: str
    name: str
    data_type: DataType
    coerce: Callable[[object], Value] = field(compare=False, repr=False)
    native: type | None = field(default=None, compare=False, repr=False)
    """A JSON value of exactly this type is already the coerced value (the decoder's fast
    path); None when every value needs `coerce`."""


_NATIVE: Final[dict[DataType, type]] = {
    DataType.STRING: str,
    DataType.TEXT: str,
    DataType.PHONE: str,
    DataType.LINK: str,
    DataType.INTEGER: int,
    DataType.FLOAT: float,
    DataType.CURRENCY: float,
    DataType.BOOLEAN: bool,
}


@dataclass(frozen=True)
class ActivityType:
    """One type as the engine uses it: the approved version only."""

    id: int
    api_name: str
    name: str
    trigger_name: str | None
    filter_name: str | None
    primary: AttributeSpec
    attributes: tuple[AttributeSpec, ...]
    standard: bool
    by_key: Mapping[str, AttributeSpec] = field(repr=False)
    """Secondary attributes by apiName and by display name."""

    def resolve(self, key: str | None) -> AttributeSpec | None:
        """The attribute a constraint names; no name means the primary attribute."""
        if key is None or key in (self.primary.api_name, self.primary.name):
            return self.primary
        return self.by_key.get(key)

    @property
    def label(self) -> str:
        return f"{self.id} ({self.api_name})"


def _spec(attribute: AttributeDef) -> AttributeSpec:
    return AttributeSpec(
        attribute.apiName,
        attribute.name,
        attribute.dataType,
        COERCERS[attribute.dataType],
        _NATIVE.get(attribute.dataType),
    )


def compile_type(definition: ActivityTypeDef, standard: bool = False) -> ActivityType:
    attributes = tuple(_spec(a) for a in definition.attributes)
    by_key: dict[str, AttributeSpec] = {}
    for spec in attributes:
        by_key.setdefault(spec.api_name, spec)
        by_key.setdefault(spec.name, spec)
    return ActivityType(
        id=definition.id,
        api_name=definition.apiName,
        name=definition.name,
        trigger_name=definition.triggerName or None,
        filter_name=definition.filterName or None,
        primary=_spec(definition.primaryAttribute),
        attributes=attributes,
        standard=standard,
        by_key=by_key,
    )


@dataclass(frozen=True)
class TypeFile:
    """A custom type as loaded from its file."""

    path: str
    definition: ActivityTypeDef


@dataclass
class Catalog:
    types: dict[int, ActivityType]
    """Every type an activity may have: standard and approved custom types, by id."""
    drafts: dict[int, TypeFile]
    """Custom types that exist only as drafts: their activities are rejected."""
    files: dict[int, TypeFile]
    """Every custom type file, by id, whatever its status."""
    by_trigger: dict[str, ActivityType]
    """By `triggerName.casefold()`."""
    by_filter: dict[str, ActivityType]
    """By `filterName.casefold()`."""

    def trigger(self, name: str) -> ActivityType | None:
        return self.by_trigger.get(name.casefold())

    def filter(self, name: str) -> ActivityType | None:
        return self.by_filter.get(name.casefold())

    def unknown_name_message(self, kind: str, name: str) -> str:
        """Why a trigger or filter name does not resolve, with the likeliest fix."""
        folded = name.casefold()
        for type_file in self.drafts.values():
            draft = type_file.definition
            if folded == (draft.triggerName if kind == "trigger" else draft.filterName).casefold():
                return (
                    f"{kind} {name!r} belongs to activity type {draft.id} ({draft.apiName}), "
                    "which is a draft: approve it first"
                )
        known = self.by_trigger if kind == "trigger" else self.by_filter
        names = [t.trigger_name if kind == "trigger" else t.filter_name for t in known.values()]
        close = difflib.get_close_matches(name, [n for n in names if n], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {kind} {name!r}{hint}"


def _check_attribute(
    attribute: AttributeDef, where: str, path: str, problems: list[Problem], draft: bool
) -> None:
    if not _API_NAME_RE.fullmatch(attribute.apiName):
        problems.append(
            Problem(where, f"{path}.apiName", f"{attribute.apiName!r}: letters and digits only")
        )
    if not attribute.name.strip():
        problems.append(Problem(where, f"{path}.name", "must not be empty"))
    if attribute.isPrimary and not draft:
        problems.append(
            Problem(where, f"{path}.isPrimary", "allowed only in a draft that promotes it")
        )


def _check_version(
    definition: ActivityTypeDef, where: str, prefix: str, problems: list[Problem], draft: bool
) -> None:
    """The rules one version of a type obeys on its own."""
    p = prefix
    if not _API_NAME_RE.fullmatch(definition.apiName):
        problems.append(
            Problem(where, f"{p}apiName", f"{definition.apiName!r}: 1-255 letters and digits")
        )
    if not _TYPE_NAME_RE.fullmatch(definition.name) or not any(
        c.isalpha() for c in definition.name
    ):
        problems.append(
            Problem(
                where,
                f"{p}name",
                f"{definition.name!r}: letters (of any script), digits, spaces and "
                "underscores, with at least one letter",
            )
        )
    for member in ("triggerName", "filterName"):
        if not getattr(definition, member).strip():
            problems.append(Problem(where, f"{p}{member}", "must not be empty"))
    if definition.triggerName.casefold() == definition.filterName.casefold():
        problems.append(
            Problem(where, f"{p}filterName", "must differ from the type's own triggerName")
        )
    _check_attribute(definition.primaryAttribute, where, f"{p}primaryAttribute", problems, draft)
    if len(definition.attributes) > MAX_SECONDARY_ATTRIBUTES:
        problems.append(
            Problem(
                where,
                f"{p}attributes",
                f"{len(definition.attributes)} secondary attributes; "
                f"at most {MAX_SECONDARY_ATTRIBUTES} are allowed",
            )
        )
    seen_api = {definition.primaryAttribute.apiName: "the primary attribute"}
    seen_names = {definition.primaryAttribute.name.casefold(): "the primary attribute"}
    for index, attribute in enumerate(definition.attributes):
        path = f"{p}attributes[{index}]"
        _check_attribute(attribute, where, path, problems, draft)
        other = seen_api.get(attribute.apiName)
        if other:
            problems.append(
                Problem(where, f"{path}.apiName", f"{attribute.apiName!r} is also {other}")
            )
        other = seen_names.get(attribute.name.casefold())
        if other:
            problems.append(Problem(where, f"{path}.name", f"{attribute.name!r} is also {other}"))
        seen_api.setdefault(attribute.apiName, f"attributes[{index}]")
        seen_names.setdefault(attribute.name.casefold(), f"attributes[{index}]")


def _check_draft(type_file: TypeFile, problems: list[Problem]) -> None:
    definition, where = type_file.definition, type_file.path
    draft = definition.draft
    if definition.status == "approved with draft" and draft is None:
        problems.append(
            Problem(where, "draft", "status 'approved with draft' needs the pending draft")
        )
    if definition.status != "approved with draft" and draft is not None:
        problems.append(
            Problem(
                where,
                "draft",
                f"allowed only with status 'approved with draft', not {definition.status!r}",
            )
        )
    if draft is None:
        return
    draft_attributes = draft.attributes or []
    promoted = [i for i, a in enumerate(draft_attributes) if a.isPrimary]
    if len(promoted) > 1:
        problems.append(
            Problem(
                where,
                f"draft.attributes[{promoted[1]}].isPrimary",
                "only one attribute can be promoted to primary",
            )
        )
    if promoted:
        if draft.primaryAttribute is not None:
            problems.append(
                Problem(
                    where,
                    "draft.primaryAttribute",
                    "give either a new primaryAttribute or an attribute with isPrimary",
                )
            )
        old = definition.primaryAttribute.apiName
        if not any(a.apiName == old and not a.isPrimary for a in draft_attributes):
            problems.append(
                Problem(
                    where,
                    f"draft.attributes[{promoted[0]}].isPrimary",
                    f"promoting a new primary needs the old primary {old!r} demoted "
                    "to a secondary attribute in the same draft",
                )
            )
    _check_version(definition.pending(), where, "draft.", problems, draft=True)


def build_catalog(
    type_files: Sequence[TypeFile], max_custom_types: int = DEFAULT_MAX_CUSTOM_TYPES
) -> tuple[Catalog, list[Problem]]:
    problems: list[Problem] = []
    standard = [compile_type(d, standard=True) for d in (*STANDARD_TYPES, DELETE_LEAD_TYPE)]
    types: dict[int, ActivityType] = {t.id: t for t in standard}
    drafts: dict[int, TypeFile] = {}
    files: dict[int, TypeFile] = {}
    by_trigger = {t.trigger_name.casefold(): t for t in standard if t.trigger_name}
    by_filter = {t.filter_name.casefold(): t for t in standard if t.filter_name}
    rule_names: dict[str, str] = dict.fromkeys((*by_trigger, *by_filter), "a standard type")
    ids: dict[int, str] = {}
    api_names: dict[str, str] = {}
    type_names: dict[str, str] = {}

    # By id, then path: the newer type (the higher id) is the one that breaks a limit or
    # finds a name taken, so a change is refused for itself, without knock-on problems in
    # the campaigns of the types that were there first.
    in_order = sorted(type_files, key=lambda f: (f.definition.id, f.path))
    for over in in_order[max_custom_types:]:
        problems.append(
            Problem(
                over.path,
                None,
                f"activity type {over.definition.id} ({over.definition.apiName}) is custom "
                f"type number {in_order.index(over) + 1} (by id) of {len(type_files)}; at "
                f"most {max_custom_types} are allowed (STREAMS_MAX_CUSTOM_TYPES raises the "
                "limit)",
            )
        )
    for type_file in in_order:
        definition, where = type_file.definition, type_file.path
        before = len(problems)
        if definition.id < CUSTOM_TYPE_MIN_ID:
            problems.append(
                Problem(
                    where,
                    "id",
                    f"{definition.id} is below {CUSTOM_TYPE_MIN_ID}, the first id of custom types",
                )
            )
        elif ids.setdefault(definition.id, where) != where:
            problems.append(
                Problem(where, "id", f"{definition.id} is also the id of {ids[definition.id]}")
            )
        _check_version(definition, where, "", problems, draft=False)
        _check_draft(type_file, problems)
        versions = [definition] if definition.draft is None else [definition, definition.pending()]
        for version in versions:
            _claim(api_names, version.apiName.casefold(), where, "apiName", problems)
            _claim(type_names, version.name.casefold(), where, "name", problems)
            for member in ("triggerName", "filterName"):
                name = getattr(version, member)
                if name.strip():
                    _claim(rule_names, name.casefold(), where, member, problems)
        if len(problems) > before:
            continue
        files[definition.id] = type_file
        if definition.status == "draft":
            drafts[definition.id] = type_file
            continue
        compiled = compile_type(definition)
        types[compiled.id] = compiled
        if compiled.trigger_name:
            by_trigger[compiled.trigger_name.casefold()] = compiled
        if compiled.filter_name:
            by_filter[compiled.filter_name.casefold()] = compiled
    return Catalog(types, drafts, files, by_trigger, by_filter), problems


def _claim(
    owners: dict[str, str], key: str, where: str, member: str, problems: list[Problem]
) -> None:
    """Record that `where` uses `key`; a key already used by another file is a problem."""
    owner = owners.setdefault(key, where)
    if owner != where:
        problems.append(Problem(where, member, f"{key!r} is already used by {owner}"))


def types_used(triggers: Iterable[str], filters: Iterable[str], catalog: Catalog) -> set[int]:
    """Ids of the types whose trigger or filter the given names resolve to."""
    used = {t.id for name in triggers if (t := catalog.trigger(name)) is not None}
    used |= {t.id for name in filters if (t := catalog.filter(name)) is not None}
    return used
