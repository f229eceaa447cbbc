"""The variables of action files (actions.md, "Variables"): parsing and templates.

A string that starts with `$` is a variable, `$$` starts a literal `$`, and a trailing `?`
makes the variable optional. A template is the YAML value with every variable string
replaced by a `Variable`; `walk_variables` lists them, `payload` fills them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

SIMPLE: Final = {
    "event.id": "eventId",
    "campaign.id": "campaignId",
    "campaign.name": "campaignName",
    "lead.id": "leadId",
    "activity.id": "activityId",
    "activity.date": "activityDate",
    "activity.typeId": "activityTypeId",
    "rulesVersion": "rulesVersion",
}
"""Variables read from a member of the membership event, and that member."""
PRIMARY: Final = "activity.primary"
ATTRIBUTES: Final = "activity.attributes."
FIELDS: Final = "lead.fields."
KNOWN: Final = (*SIMPLE, PRIMARY, ATTRIBUTES + "<apiName>", FIELDS + "<name>")

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,254}")
MAX_DEPTH: Final = 20
"""Nesting of the payload template: deeper is a mistake, not a payload."""


class VariableError(ValueError):
    """A string that is not a known variable; the message says which are."""


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    """Without `$` and `?`: `lead.fields.country`."""
    optional: bool

    @property
    def source(self) -> str:
        """`activity.attributes`, `lead.fields`, or the simple variable's name."""
        for prefix in (ATTRIBUTES, FIELDS):
            if self.name.startswith(prefix):
                return prefix[:-1]
        return self.name

    @property
    def key(self) -> str:
        """The attribute's apiName or the field's name; "" for the other variables."""
        for prefix in (ATTRIBUTES, FIELDS):
            if self.name.startswith(prefix):
                return self.name[len(prefix) :]
        return ""

    def __str__(self) -> str:
        return f"${self.name}{'?' if self.optional else ''}"


def parse_value(raw: str) -> str | Variable:
    """A literal string (with `$$` turned into `$`) or the variable it names."""
    if not raw.startswith("$"):
        return raw
    if raw.startswith("$$"):
        return raw[1:]
    body = raw[1:]
    optional = body.endswith("?")
    name = body[:-1] if optional else body
    if name in SIMPLE or name == PRIMARY:
        return Variable(name, optional)
    for prefix in (ATTRIBUTES, FIELDS):
        if name.startswith(prefix):
            key = name[len(prefix) :]
            if not _NAME_RE.fullmatch(key):
                raise VariableError(f"{raw!r}: {prefix}<name> needs a name after the dot")
            return Variable(name, optional)
    raise VariableError(
        f"{raw!r} is not a known variable; use one of: "
        + ", ".join("$" + k for k in KNOWN)
        + " (a trailing ? makes it optional; $$ is a literal $)"
    )


def compile_template(node: Any, where: str, problems: list[tuple[str, str]], depth: int = 0) -> Any:
    """The YAML value with variables parsed; each bad variable adds (field path, message)."""
    if depth > MAX_DEPTH:
        problems.append((where, f"nested deeper than {MAX_DEPTH} levels"))
        return None
    if isinstance(node, str):
        try:
            return parse_value(node)
        except VariableError as exc:
            problems.append((where, str(exc)))
            return node
    if isinstance(node, dict):
        return {
            str(k): compile_template(v, f"{where}.{k}", problems, depth + 1)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            compile_template(v, f"{where}[{i}]", problems, depth + 1) for i, v in enumerate(node)
        ]
    return node


def walk_variables(node: Any, where: str = "") -> Iterator[tuple[str, Variable]]:
    """Every variable of a compiled template, with its field path."""
    if isinstance(node, Variable):
        yield where, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from walk_variables(v, f"{where}.{k}" if where else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_variables(v, f"{where}[{i}]")
