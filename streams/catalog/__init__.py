"""The catalog of custom activity types as files of a rules directory: one transaction
(`rulesdir`, with the cross-process lock), comment-preserving edits (`yamledit`) and the
lifecycle operations (`lifecycle`), used by the `types` CLI, the API and hot reload alike."""

from streams.catalog.errors import CatalogOpError
from streams.catalog.lifecycle import (
    Change,
    TypeRow,
    Versions,
    add_attribute,
    approve_type,
    create_type,
    delete_type,
    discard_draft,
    list_types,
    promote_attribute,
    remove_attribute,
    show_type,
    type_versions,
    update_attribute,
    update_type,
)
from streams.catalog.rulesdir import read_consistent, transaction, type_file_name

__all__ = [
    "CatalogOpError",
    "Change",
    "TypeRow",
    "Versions",
    "add_attribute",
    "approve_type",
    "create_type",
    "delete_type",
    "discard_draft",
    "list_types",
    "promote_attribute",
    "read_consistent",
    "remove_attribute",
    "show_type",
    "transaction",
    "type_file_name",
    "type_versions",
    "update_attribute",
    "update_type",
]
