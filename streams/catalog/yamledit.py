"""Comment-preserving editing of YAML documents (ruamel.yaml round-trip mode).

A change to a rule file touches only what it changes: comments, key order and quoting of the
rest stay as they were, so the git diff of a catalog change shows only the change. Dump a
document once only (ruamel marks the comments it has written; a second dump loses some).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from streams.catalog.errors import CatalogOpError


def round_trip() -> YAML:
    """Round-trip mode with the spec's indentation; a wide line so that a long description
    written on one line is not folded."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def dump(document: CommentedMap) -> str:
    """The document as text. Dump a document once only: ruamel marks the comments it has
    written, and a second dump would lose some of them."""
    out = io.StringIO()
    round_trip().dump(document, out)
    return out.getvalue()


def load_document(path: Path, shown: str) -> CommentedMap:
    try:
        text = path.read_text(encoding="utf-8")
        document = round_trip().load(text)
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise CatalogOpError(f"{shown}: cannot read: {exc}") from None
    if not isinstance(document, CommentedMap):
        raise CatalogOpError(f"{shown}: should hold a mapping (one definition)")
    return document


# Comments. ruamel keeps the comment lines that follow a node on the last scalar key of that
# node (the "tail"): the lines before the next key or item. When a node is added, moved or
# removed, its neighbour's tail is moved with it so that each comment stays above what it
# was written above and a file's trailing comment stays at the end.


def is_block(node: Any) -> bool:
    return (
        isinstance(node, CommentedMap | CommentedSeq) and len(node) > 0 and not node.fa.flow_style()
    )


def _tail_slot(parent: Any, key: Any) -> tuple[CommentedMap, Any] | None:
    """The (mapping, key) whose post-comment holds the lines after `parent[key]`."""
    while True:
        child = parent[key]
        if not is_block(child):
            return (parent, key) if isinstance(parent, CommentedMap) else None
        parent = child
        key = list(child)[-1] if isinstance(child, CommentedMap) else len(child) - 1


def detach_tail(parent: Any, key: Any) -> str:
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


def attach_tail(parent: Any, key: Any, lines: str) -> None:
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


def set_key(mapping: CommentedMap, key: str, value: Any, order: Sequence[str]) -> None:
    """Set `key`, inserting it at its place in `order` when it is new."""
    if key in mapping:
        if isinstance(value, CommentedMap | CommentedSeq) or is_block(mapping[key]):
            lines = detach_tail(mapping, key)
            mapping[key] = value
            attach_tail(mapping, key, lines)
        else:
            mapping[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    keys = list(mapping)
    position = 0
    for index, existing in enumerate(keys):
        if (order.index(existing) if existing in order else len(order)) <= rank:
            position = index + 1
    lines = detach_tail(mapping, keys[position - 1]) if position > 0 else ""
    mapping.insert(position, key, value)
    attach_tail(mapping, key, lines)


def remove_key(parent: CommentedMap | CommentedSeq, key: Any, owner: Any = None) -> None:
    """Remove `parent[key]`; the lines after it now follow its predecessor (whose own tail
    was about the removed node). `owner` is (mapping, key) holding `parent`, for the comment
    above a removed first item of a sequence."""
    keys = list(parent) if isinstance(parent, CommentedMap) else list(range(len(parent)))
    index = keys.index(key)
    lines = detach_tail(parent, key)
    if index > 0:
        detach_tail(parent, keys[index - 1])
        del parent[key]
        attach_tail(parent, keys[index - 1], lines)
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
            attach_tail(owner[0], owner[1], lines)
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
    attach_tail(owner[0], owner[1], lines)


def append_item(seq: CommentedSeq, item: CommentedMap) -> None:
    lines = detach_tail(seq, len(seq) - 1) if len(seq) else ""
    seq.append(item)
    seq.fa.set_block_style()
    attach_tail(seq, len(seq) - 1, lines)


def fresh(node: Any) -> Any:
    """A copy without comments or positions, to put an approved value into a draft."""
    if isinstance(node, dict):
        return CommentedMap((k, fresh(v)) for k, v in node.items())
    if isinstance(node, list):
        seq = CommentedSeq(fresh(v) for v in node)
        if seq:
            seq.fa.set_block_style()
        return seq
    return node
