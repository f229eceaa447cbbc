"""The rule files as written: activity types and campaigns, in the spec's YAML shape.

These models check shape only (members, JSON types, enumerations); the meaning (names that
resolve, operators that fit a dataType, values that coerce) is checked where it is compiled,
in `catalog` and `compiler`, so that validating and compiling cannot disagree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.actions.definitions import CampaignActionDef
from streams.engine.datatypes import DataType

TypeStatus = Literal["draft", "approved", "approved with draft"]


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("attributes", "constraints", "items", mode="before", check_fields=False)
    @classmethod
    def _empty_list(cls, value: Any) -> Any:
        """`attributes:` left blank is YAML's null: the same as an empty list."""
        return [] if value is None else value


class AttributeDef(_Def):
    apiName: str
    name: str
    description: str | None = None
    dataType: DataType = DataType.STRING
    isPrimary: bool = False


class TypeDraftDef(_Def):
    """The pending version of an approved type: only what changes is given."""

    name: str | None = None
    description: str | None = None
    triggerName: str | None = None
    filterName: str | None = None
    primaryAttribute: AttributeDef | None = None
    attributes: list[AttributeDef] | None = None


class ActivityTypeDef(_Def):
    id: int
    apiName: str
    name: str
    description: str | None = None
    triggerName: str
    filterName: str
    status: TypeStatus = "draft"
    primaryAttribute: AttributeDef
    attributes: list[AttributeDef] = Field(default_factory=list)
    draft: TypeDraftDef | None = None

    def pending(self) -> ActivityTypeDef:
        """The version that approving would put in force: the draft applied, with an
        attribute marked `isPrimary` promoted and the primary it replaces left where the
        draft lists it."""
        if self.draft is None:
            return self
        draft = self.draft
        attributes = list(draft.attributes) if draft.attributes is not None else self.attributes
        primary = draft.primaryAttribute or self.primaryAttribute
        promoted = [a for a in attributes if a.isPrimary]
        if promoted:
            primary = promoted[0].model_copy(update={"isPrimary": False})
            attributes = [a for a in attributes if not a.isPrimary]
        return self.model_copy(
            update={
                "name": draft.name if draft.name is not None else self.name,
                "description": (
                    draft.description if draft.description is not None else self.description
                ),
                "triggerName": draft.triggerName or self.triggerName,
                "filterName": draft.filterName or self.filterName,
                "primaryAttribute": primary,
                "attributes": attributes,
                "draft": None,
            }
        )


class ConstraintDef(_Def):
    """`attribute` left out means the primary attribute; `value: X` stands for `values: [X]`."""

    attribute: str | None = None
    operator: str
    values: list[Any] | None = None
    value: Any = None

    @model_validator(mode="after")
    def _one_of_value_values(self) -> ConstraintDef:
        if self.value is not None and self.values is not None:
            raise ValueError("give either value or values, not both")
        return self

    @property
    def value_list(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        return [] if self.value is None else [self.value]


class TriggerDef(_Def):
    trigger: str
    constraints: list[ConstraintDef] = Field(default_factory=list)


class FilterItemDef(_Def):
    """Either a history filter (`filter:`) or a field filter (`field:`)."""

    filter: str | None = None
    field: str | None = None
    constraints: list[ConstraintDef] | None = None
    window: str | None = None
    minTimes: int | None = Field(default=None, ge=1)
    negate: bool | None = None
    operator: str | None = None
    values: list[Any] | None = None
    value: Any = None

    @model_validator(mode="after")
    def _one_kind(self) -> FilterItemDef:
        if (self.filter is None) == (self.field is None):
            raise ValueError("an item names either a filter (history) or a field, not both")
        if self.filter is not None:
            extra = [k for k in ("operator", "values", "value") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"a history filter takes constraints, not {', '.join(extra)}")
        else:
            extra = [
                k
                for k in ("constraints", "window", "minTimes", "negate")
                if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(
                    f"a field filter takes operator and values, not {', '.join(extra)}"
                )
            if self.operator is None:
                raise ValueError("a field filter needs an operator")
            if self.value is not None and self.values is not None:
                raise ValueError("give either value or values, not both")
        return self

    @property
    def value_list(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        return [] if self.value is None else [self.value]


class FiltersDef(_Def):
    logic: str = "all"
    items: list[FilterItemDef] = Field(default_factory=list)

    @field_validator("logic", mode="before")
    @classmethod
    def _item_number(cls, value: Any) -> Any:
        """`logic: 2` is an expression that YAML reads as a number."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class CampaignDef(_Def):
    id: int
    name: str
    description: str | None = None
    status: Literal["active", "inactive"] = "active"
    qualification: str = "once"
    triggers: list[TriggerDef] = Field(min_length=1)
    filters: FiltersDef | None = None
    actions: list[CampaignActionDef] | None = None
    """Custom actions called for each membership (actions.md); None keeps the rules
    version of campaigns written before actions existed."""
