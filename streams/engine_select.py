"""Which engine runs: the native core (Rust), the mypyc-compiled build of the hot modules, or
the pure-Python reference.

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

The native core (`native/`, a Rust crate built by `scripts/build-native` into
`build/native/`, see `streams.native_build`) is checked alike: its `manifest.json` names the
sha256 of every file of the crate it was built from and the interpreter's extension suffix;
a changed `.rs` file makes it stale and it is not used. The native core runs beneath the
Python engine's `Processor` (`streams.engine.native`), for the plans it supports; a plan it
does not (yet) support runs on the compiled or pure modules, said in one line when the
`Processor` is built. So the native choice comes on top of the compiled/pure one.

`STREAMS_ENGINE` picks (read from the environment here, at import time; `EngineSettings`
documents and validates the same variable):
- `auto` (default): the native core when its build is present and fresh, over the compiled
  build when it is present and fresh, else pure Python;
- `native`: the native core, or exit 2 with one line saying why it cannot run (under it,
  the compiled build when fresh, else pure Python);
- `compiled`: the compiled build (no native core), or exit 2 with one line saying why not;
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
from typing import Any, Final, NoReturn

ROOT: Final = Path(__file__).resolve().parent.parent
"""The directory holding the `streams` package (the project root in a checkout)."""
BUILD_DIR: Final = ROOT / "build" / "engine"
NATIVE_DIR: Final = ROOT / "build" / "native"
NATIVE_CRATE: Final = ROOT / "native"
NATIVE_MODULE: Final = "streams_native"
MANIFEST: Final = "manifest.json"
CHOICES: Final = ("auto", "native", "compiled", "pure")
COMPILED_MODULES: Final = (
    "streams.engine.activity",
    "streams.engine.bounds",
    "streams.engine.catalog",
    "streams.engine.compiler",
    "streams.engine.datatypes",
    "streams.engine.evaluator",
    "streams.engine.events",
    "streams.engine.history_index",
    "streams.engine.intervals",
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
    native: Path | None = None
    """The native core's extension file when it is chosen (None: not used)."""
    native_reason: str = ""
    """Why the native core is used or not (its build id, or what is missing)."""

    def describe(self) -> str:
        if self.compiled:
            python = f"compiled (mypyc build {self.build}; {self.reason})"
        else:
            python = f"pure Python ({self.reason})"
        if self.native is not None:
            return (
                "engine: native core for the backtest and the workers "
                f"({self.native_reason}) over {python}"
            )
        if self.native_reason:
            return f"engine: {python}; native core not used: {self.native_reason}"
        return f"engine: {python}"


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def _fresh_manifest(
    build_dir: Path, kind: str, script: str, expected: set[str] | None = None, needs: str = ""
) -> tuple[dict[str, Any] | None, str, str]:
    """(the build's manifest, or None; why not; the build's id): None when there is no
    readable manifest, it was made for another interpreter, its sources are not exactly
    `expected` (when given: a file added or removed), or one of them has changed since
    (the first such file is named)."""
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return None, f"no {kind} build: {script} makes one{needs}", ""
    except (OSError, ValueError) as exc:
        return None, f"unreadable {build_dir / MANIFEST} ({exc}): {script}", ""
    build = str(manifest.get("build", ""))
    if manifest.get("suffix") != extension_suffix():
        return None, f"the {kind} build is for {manifest.get('suffix')}, not this Python", build
    sources: dict[str, str] = manifest.get("sources", {})
    if expected is not None and set(sources) != expected:
        return None, f"the {kind} build is stale (files added or removed): {script}", build
    for name, digest in sources.items():
        try:
            if source_hash(ROOT / name) == digest:
                continue
        except OSError:
            pass
        return None, f"the {kind} build is stale ({name} changed): {script}", build
    return manifest, "", build


def check_build(build_dir: Path = BUILD_DIR) -> tuple[dict[str, Path] | None, str, str]:
    """(module name -> extension file, or None; why not, or what; the build's id).

    None when there is no build, it was made for another interpreter, or a source it was
    compiled from has changed since (the first such file is named). `build_dir` (a symlink
    that `scripts/build-engine` swaps, see `streams.engine_build.install`) is resolved
    once, so the manifest and the modules come from the same build."""
    build_dir = build_dir.resolve()
    manifest, why, build = _fresh_manifest(build_dir, "compiled", "scripts/build-engine")
    if manifest is None:
        return None, why, build
    modules = {name: build_dir / file for name, file in manifest.get("modules", {}).items()}
    missing = [m for m in COMPILED_MODULES if m not in modules]
    if missing or not all(path.is_file() for path in modules.values()):
        return None, "the compiled build is incomplete: scripts/build-engine", build
    return modules, f"{len(COMPILED_MODULES)} modules, sources unchanged", build


def native_sources() -> list[Path]:
    """The files the native core is built from: the crate's manifest, lock and sources."""
    crate = NATIVE_CRATE
    files = [crate / "Cargo.toml", crate / "Cargo.lock"]
    return files + sorted((crate / "src").rglob("*.rs"))


def check_native(native_dir: Path = NATIVE_DIR) -> tuple[Path | None, str, str]:
    """(the extension file, or None; why not, or what; the build's id), as `check_build`
    (`native_dir`, a symlink `scripts/build-native` swaps, resolved once)."""
    native_dir = native_dir.resolve()
    now = {str(p.relative_to(ROOT)) for p in native_sources() if p.is_file()}
    manifest, why, build = _fresh_manifest(
        native_dir, "native", "scripts/build-native", now, " (needs cargo)"
    )
    if manifest is None:
        return None, why, build
    module = native_dir / str(manifest.get("module", ""))
    if not module.is_file():
        return None, "the native build is incomplete: scripts/build-native", build
    return module, f"build {build}, sources unchanged", build


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


def select(
    environ: dict[str, str] | None = None,
    build_dir: Path = BUILD_DIR,
    native_dir: Path = NATIVE_DIR,
) -> Selection:
    """Decide from `STREAMS_ENGINE` and the builds, and install the finder if compiled.

    Must run before any compiled module is imported; exits 2 with one line on an invalid
    choice, or when `compiled` or `native` is asked for and cannot run."""
    choice = (environ if environ is not None else os.environ).get("STREAMS_ENGINE", "auto")
    choice = choice.strip().lower() or "auto"
    if choice not in CHOICES:
        _refuse(f"STREAMS_ENGINE={choice!r} is not one of {', '.join(CHOICES)}")
    if choice == "pure":
        return Selection(False, "STREAMS_ENGINE=pure")
    native: Path | None = None
    native_reason = ""
    if choice in ("auto", "native"):
        native, native_reason, _ = check_native(native_dir)
        if native is None and choice == "native":
            _refuse(f"STREAMS_ENGINE=native, but {native_reason}")
    selection = _select_compiled(choice, build_dir)
    return Selection(selection.compiled, selection.reason, selection.build, native, native_reason)


def _select_compiled(choice: str, build_dir: Path) -> Selection:
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
