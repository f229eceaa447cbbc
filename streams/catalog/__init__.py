"""The catalog of custom activity types as files of a rules directory: one transaction
(`rulesdir`, with the cross-process lock), comment-preserving edits (`yamledit`) and the
lifecycle operations (`lifecycle`), used by the `types` CLI, the API and hot reload alike."""

from streams.catalog.errors import CatalogOpError
from streams.catalog.lifecycle import (
    Change,
    TypeRow,
    add_attribute,
    approve_type,
    create_type,
    delete_type,
    discard_draft,
    list_types,
    remove_attribute,
    show_type,
    update_attribute,
    update_type,
)
from streams.catalog.rulesdir import read_consistent, transaction, type_file_name

__all__ = [
    "CatalogOpError",
    "Change",
    "TypeRow",
    "add_attribute",
    "approve_type",
    "create_type",
    "delete_type",
    "discard_draft",
    "list_types",
    "read_consistent",
    "remove_attribute",
    "show_type",
    "transaction",
    "type_file_name",
    "update_attribute",
    "update_type",
]
