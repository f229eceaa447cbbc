"""A rules directory as one transaction: a lock that holds across processes, validation of the
whole directory before any write, atomic writes, and all-or-nothing across several writes.

Order of a change (`open_rules`, then `RulesDir.commit`):

1. take the directory's exclusive `flock` (on the directory itself: no lock file to commit
   or ignore). It is held by the open file description, so it excludes other processes
   (the API's, a `types` command's) and other threads of this one alike; a nested
   `transaction` on the same directory in the same thread joins the outer one;
2. read the directory under the lock (a read-modify-write that cannot lose an update);
3. validate the directory as it would be after the change, with the engine's own
   `compile_rules`, and refuse (`CatalogOpError`) with its problems;
4. write through a temporary file with a short fixed-length name and `os.replace` (a reader
   sees the old file or the new one), then fsync the directory;
5. on any error before the transaction ends, put back every file it wrote, then release.

Readers that must see a consistent directory (hot reload) take the lock shared
(`read_consistent`). The lock is advisory and local: it does not hold across machines
sharing a network file system; run catalog writes on one host.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from streams.catalog.errors import CatalogOpError
from streams.engine.catalog import Catalog, TypeFile, build_catalog, types_used
from streams.engine.compiler import compile_rules
from streams.engine.definitions import ActivityTypeDef
from streams.engine.loader import (
    TYPES_DIR,
    CampaignFile,
    RuleFiles,
    parse_definition,
    plain,
    read_rules,
)
from streams.engine.problems import Problem
from streams.text import counted

LOCK_TIMEOUT_S: Final = 30.0
"""How long a write waits for another writer of the same directory before it is refused."""
MAX_FILE_NAME_BYTES: Final = 255
"""The file name limit of Linux file systems (ext4, xfs, tmpfs)."""
_SUFFIX: Final = ".yaml"


def type_file_name(api_name: str) -> str:
    """The file name of a new type: `<apiName>.yaml`, or, when that would exceed the file
    system's limit (apiNames may have 255 characters, as in Marketo), the apiName cut short
    with a hash of the whole so that two long apiNames never share a file. Every apiName that
    validates has a file name that fits."""
    name = api_name + _SUFFIX
    if len(name.encode()) <= MAX_FILE_NAME_BYTES:
        return name
    digest = hashlib.sha256(api_name.encode()).hexdigest()[:12]
    keep = MAX_FILE_NAME_BYTES - len(_SUFFIX) - len(digest) - 1
    return f"{api_name.encode()[:keep].decode(errors='ignore')}-{digest}{_SUFFIX}"


@dataclass
class Transaction:
    """The writes of one change while the directory's lock is held: each file's content
    before its first write is kept, so that `rollback` puts the directory back."""

    root: Path
    _before: dict[Path, str | None] = field(default_factory=dict)
    _made: list[Path] = field(default_factory=list)

    def make_dir(self, path: Path) -> None:
        """A folder this change needs; removed again by `rollback` if still empty."""
        if not path.exists():
            path.mkdir()
            self._made.append(path)

    def _remember(self, path: Path) -> None:
        if path not in self._before:
            self._before[path] = path.read_text(encoding="utf-8") if path.exists() else None

    def write(self, path: Path, text: str) -> None:
        self._remember(path)
        write_atomic(path, text)

    def delete(self, path: Path) -> None:
        self._remember(path)
        path.unlink()
        _sync_dir(path.parent)

    def rollback(self) -> None:
        for path, text in reversed(list(self._before.items())):
            if text is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, text)
        self._before.clear()
        for made in reversed(self._made):
            if made.is_dir() and not any(made.iterdir()):
                made.rmdir()
        self._made.clear()


_held = threading.local()


def _key(rules_dir: Path) -> str:
    return os.path.realpath(rules_dir)


def _lock(rules_dir: Path, operation: int, timeout_s: float) -> int:
    """An fd of the directory holding its flock (`LOCK_EX` or `LOCK_SH`)."""
    try:
        fd = os.open(rules_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise CatalogOpError(f"{rules_dir}: is not a directory of rules ({exc.strerror})") from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise CatalogOpError(
                    f"{rules_dir}: another catalog change holds the directory's lock; "
                    f"gave up after {timeout_s:g} s: try again"
                ) from None
            time.sleep(0.01)


@contextmanager
def transaction(rules_dir: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[Transaction]:
    """Hold the directory's exclusive lock; on an exception, undo every write and re-raise.
    Nested on the same directory in the same thread: the outer transaction is joined."""
    held: dict[str, Transaction] = getattr(_held, "transactions", None) or {}
    _held.transactions = held
    key = _key(rules_dir)
    if key in held:
        yield held[key]
        return
    fd = _lock(rules_dir, fcntl.LOCK_EX, timeout_s)
    current = Transaction(rules_dir)
    held[key] = current
    try:
        yield current
    except BaseException:
        current.rollback()
        raise
    finally:
        del held[key]
        os.close(fd)  # releases the flock


@contextmanager
def read_consistent(rules_dir: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the directory's lock shared: no catalog change is half-way while it is held.
    Inside this thread's own transaction on the directory, that transaction's lock does."""
    if _key(rules_dir) in (getattr(_held, "transactions", None) or {}):
        yield
        return
    fd = _lock(rules_dir, fcntl.LOCK_SH, timeout_s)
    try:
        yield
    finally:
        os.close(fd)


@contextmanager
def open_rules(rules_dir: Path, max_custom_types: int) -> Iterator[RulesDir]:
    """The directory, read under its exclusive lock, ready for one change."""
    with transaction(rules_dir) as current:
        yield RulesDir.read(rules_dir, max_custom_types, current)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory and `os.replace`, so that a
    worker or `validate` reading the directory sees the old file or the new one, never half
    of one. The temporary name is short whatever the target's (a long target name must not
    make it exceed the file system's limit) and does not end in .yaml: a reader never takes
    it for a rule."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".catalog-", suffix=".tmp")
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
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    """Make a rename or unlink durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_type(text: str, shown: str) -> tuple[ActivityTypeDef | None, list[Problem]]:
    """The text as `read_rules` would read it from the file (same loader, same model)."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:  # pragma: no cover - the text comes from our own dump
        return None, [Problem(shown, None, f"not valid YAML: {exc}")]
    return parse_definition(plain(data), ActivityTypeDef, shown)


def shown_root(rules_dir: Path) -> str:
    """How `read_rules` names the directory in the paths of its files and problems."""
    return str(rules_dir).rstrip("/") or "."


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.file, p.field or "", p.message))


@dataclass
class RulesDir:
    """A rules directory as read, under its lock, before the change; `commit` writes
    through the transaction that holds the lock."""

    root: Path
    files: RuleFiles
    problems: list[Problem]
    catalog: Catalog
    max_custom_types: int
    transaction: Transaction | None

    @classmethod
    def read(
        cls, rules_dir: Path, max_custom_types: int, transaction: Transaction | None = None
    ) -> RulesDir:
        """Read the directory (`transaction`: the one this read belongs to; None for a read
        that will not write)."""
        if not rules_dir.is_dir():
            raise CatalogOpError(f"{rules_dir}: is not a directory of rules")
        files, problems = read_rules(rules_dir)
        catalog, _ = build_catalog(files.types, max_custom_types)
        return cls(rules_dir, files, problems, catalog, max_custom_types, transaction)

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
            replace(self.files, types=types), max_custom_types=self.max_custom_types
        )
        return _sorted([p for p in self.problems if p.file != shown] + problems)

    def commit(self, shown: str, path: Path, text: str | None) -> TypeFile | None:
        """Validate the directory with `text` as the new content of `path` (None: the file
        deleted), then write it; CatalogOpError with the problems otherwise."""
        new: TypeFile | None = None
        if text is not None:
            definition, problems = parse_type(text, shown)
            if definition is None:
                raise self._refusal(shown, problems)
            new = TypeFile(shown, definition)
        problems = self.problems_with(shown, new)
        if problems:
            raise self._refusal(shown, problems)
        if self.transaction is None:  # pragma: no cover - a programming error
            raise RuntimeError("RulesDir.commit outside a transaction")
        if text is None:
            self.transaction.delete(path)
        else:
            self.transaction.write(path, text)
        return new

    def _refusal(self, shown: str, problems: list[Problem]) -> CatalogOpError:
        _, now = compile_rules(self.files, max_custom_types=self.max_custom_types)
        before = set(self.problems) | set(now)
        old = sum(1 for p in problems if p in before)
        count = counted(len(problems), "problem")
        if old:
            count += f", {old} of them already there before this change"
        return CatalogOpError(
            f"{shown}: not changed: the rules directory would not validate after this "
            f"change ({count})",
            problems,
        )
