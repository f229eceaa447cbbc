"""Which engine runs: the mypyc-compiled build of the hot modules, or the pure-Python reference.

`streams/__init__.py` calls `select()` before any other module of the package is imported,
because the choice must be made before `streams.pipeline` or `streams.engine.*` are found.

The compiled build lives outside the source tree, in `build/engine/` (made by
`scripts/build-engine`, which `scripts/bootstrap` runs when a C compiler is found), with a
`manifest.json` naming, for every source file the build was compiled from (the compiled
modules and every `streams` module they import, transitively), its sha256, and the
interpreter's extension suffix and mypy's version. The build is put on the import path (a
finder placed first in `sys.meta_path`, for exactly the modules it holds) only when every
one of those hashes matches the files now in the tree: an edited `evaluator.py` makes the
build stale and the pure modules run, so a compiled module never runs stale code.

`STREAMS_ENGINE` picks (read from the environment here, at import time; `EngineSettings`
documents and validates the same variable):
- `auto` (default): the compiled build when it is present and fresh, else pure Python;
- `compiled`: the compiled build, or exit 2 with one line saying why it cannot run;
- `pure`: pure Python, whatever is built.
`describe()` is the one line the worker, the backtest and the benchmarks print at start.

This module imports only the standard library: it runs on every `import streams`.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final, NoReturn

ROOT: Final = Path(__file__).resolve().parent.parent
"""The directory holding the `streams` package (the project root in a checkout)."""
BUILD_DIR: Final = ROOT / "build" / "engine"
MANIFEST: Final = "manifest.json"
CHOICES: Final = ("auto", "compiled", "pure")
COMPILED_MODULES: Final = (
    "streams.engine.activity",
    "streams.engine.bounds",
    "streams.engine.catalog",
    "streams.engine.compiler",
    "streams.engine.datatypes",
    "streams.engine.evaluator",
    "streams.engine.events",
    "streams.engine.history_index",
    "streams.engine.leadstate",
    "streams.engine.logic",
    "streams.engine.operators",
    "streams.engine.rule_forms",
    "streams.pipeline",
)
"""The modules compiled by mypyc: the per-activity path (decode, evaluate, bound, index)."""


@dataclass(frozen=True)
class Selection:
    """What `select()` decided: `compiled` is True when the compiled modules are in use."""

    compiled: bool
    reason: str
    build: str = ""

    def describe(self) -> str:
        if self.compiled:
            return f"engine: compiled (mypyc build {self.build}; {self.reason})"
        return f"engine: pure Python ({self.reason})"


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def check_build(build_dir: Path = BUILD_DIR) -> tuple[dict[str, Path] | None, str, str]:
    """(module name -> extension file, or None; why not, or what; the build's id).

    None when there is no build, it was made for another interpreter, or a source it was
    compiled from has changed since (the first such file is named). `build_dir` (a symlink
    that `scripts/build-engine` swaps, see `streams.engine_build.install`) is resolved
    once, so the manifest and the modules come from the same build."""
    build_dir = build_dir.resolve()
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return None, "no compiled build: scripts/build-engine makes one", ""
    except (OSError, ValueError) as exc:
        return None, f"unreadable {build_dir / MANIFEST} ({exc}): scripts/build-engine", ""
    build = str(manifest.get("build", ""))
    if manifest.get("suffix") != extension_suffix():
        return None, f"the compiled build is for {manifest.get('suffix')}, not this Python", build
    sources: dict[str, str] = manifest.get("sources", {})
    for name, digest in sources.items():
        path = ROOT / name
        try:
            if source_hash(path) == digest:
                continue
        except OSError:
            pass
        return None, f"the compiled build is stale ({name} changed): scripts/build-engine", build
    modules = {name: build_dir / file for name, file in manifest.get("modules", {}).items()}
    missing = [m for m in COMPILED_MODULES if m not in modules]
    if missing or not all(path.is_file() for path in modules.values()):
        return None, "the compiled build is incomplete: scripts/build-engine", build
    return modules, f"{len(COMPILED_MODULES)} modules, sources unchanged", build


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds exactly the modules of one compiled build, before the source tree is searched."""

    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.modules.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def select(environ: dict[str, str] | None = None, build_dir: Path = BUILD_DIR) -> Selection:
    """Decide from `STREAMS_ENGINE` and the build, and install the finder if compiled.

    Must run before any compiled module is imported; exits 2 with one line on an invalid
    choice, or when `compiled` is asked for and cannot run."""
    choice = (environ if environ is not None else os.environ).get("STREAMS_ENGINE", "auto")
    choice = choice.strip().lower() or "auto"
    if choice not in CHOICES:
        _refuse(f"STREAMS_ENGINE={choice!r} is not one of {', '.join(CHOICES)}")
    if choice == "pure":
        return Selection(False, "STREAMS_ENGINE=pure")
    modules, reason, build = check_build(build_dir)
    already = [name for name in COMPILED_MODULES if name in sys.modules]
    if modules is not None and already:  # imported before the choice: they stay
        modules, reason = None, f"{already[0]} was imported before the engine was chosen"
    if modules is None:
        if choice == "compiled":
            _refuse(f"STREAMS_ENGINE=compiled, but {reason}")
        return Selection(False, reason)
    sys.meta_path.insert(0, CompiledFinder(modules))
    return Selection(True, reason, build)


def _refuse(message: str) -> NoReturn:
    print(f"streams: {message}", file=sys.stderr)
    raise SystemExit(2)


def in_use() -> bool:
    """Whether the engine modules imported in this process are the compiled ones (checked
    on the modules themselves, not on the choice)."""
    import streams.engine.evaluator as evaluator

    return not (evaluator.__file__ or "").endswith(".py")
