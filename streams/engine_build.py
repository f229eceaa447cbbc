"""Compile the engine's hot modules with mypyc into `build/engine/` (scripts/build-engine).

    .venv/bin/python -m streams.engine_build [--force]

Idempotent and fast when nothing changed: if `build/engine/manifest.json` matches the
sources now in the tree (see `streams.engine_select`), it says so and exits 0 without
importing mypyc. Otherwise, in this order:
1. hash every source the build depends on (the modules of `COMPILED_MODULES` and every
   `streams` module they import, transitively), before compiling, so a file edited during
   the build leaves a manifest that no longer matches (stale, not wrong);
2. compile in a child process, into a fresh directory beside `build/engine/`, with the
   compiler's output in `build/engine.log` (mypy type-checks the modules with the
   project's `[tool.mypy]` configuration first; a type error fails the build);
3. write the manifest into the new directory, rename it `build/engine-<build id>/`, and
   point the symlink `build/engine` at it with one atomic rename (`install`): a process
   starting meanwhile reads the old build or the new one, never a half-swapped directory
   (`check_build` resolves the link once). The previous build is kept (a process may still
   be loading it); older ones are removed.
Exit status: 0 built or up to date, 3 no C compiler or Python headers (the pure path runs;
one line says so), 1 the build failed (the log's tail is printed; the pure path runs).
Needs mypy (a dev dependency); the compiled modules need nothing at run time.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from streams.engine_select import (
    BUILD_DIR,
    COMPILED_MODULES,
    MANIFEST,
    ROOT,
    check_build,
    extension_suffix,
    source_hash,
)

LOG = BUILD_DIR.parent / "engine.log"
NO_COMPILER = 3


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def dependencies(modules: tuple[str, ...] = COMPILED_MODULES) -> list[Path]:
    """The files of `modules` and of every `streams` module they import, transitively."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] == "streams"]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != "streams":
                    continue
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]
    return sorted(set(seen.values()))


def compiler_missing() -> str | None:
    """Why no extension can be compiled here, or None."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if os.environ.get("CC"):
        cc = os.environ["CC"].split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc}) found"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return f"no Python headers (Python.h) in {sysconfig.get_paths()['include']}"
    return None


def compile_into(out: Path) -> None:
    """The child process: mypyc over the modules, extensions into `out` (cwd: ROOT)."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    paths = [str(module_file(name).relative_to(ROOT)) for name in COMPILED_MODULES]  # type: ignore[union-attr]  # every compiled module has a file
    extensions = mypycify(
        ["--config-file", str(ROOT / "pyproject.toml"), *paths],
        target_dir=str(out / "c"),
        group_name="streams_engine",
        opt_level="3",
    )
    dist = Distribution({"ext_modules": extensions, "script_name": "streams.engine_build"})
    dist.script_args = [
        "build_ext",
        "--build-lib",
        str(out / "lib"),
        "--build-temp",
        str(out / "obj"),
        "--parallel",
        str(os.cpu_count() or 1),
    ]
    dist.parse_command_line()
    dist.run_commands()


def build(force: bool = False) -> int:
    modules, reason, build_id = check_build()
    if modules is not None and not force:
        print(f"build-engine: up to date (build {build_id})", file=sys.stderr)
        return 0
    missing = compiler_missing()
    if missing:
        print(f"build-engine: {missing}: the engine runs as pure Python", file=sys.stderr)
        return NO_COMPILER
    sources = {str(p.relative_to(ROOT)): source_hash(p) for p in dependencies()}
    identity = json.dumps([COMPILED_MODULES, sources], sort_keys=True).encode()
    build_id = hashlib.sha256(identity).hexdigest()[:12]
    print(
        f"build-engine: compiling {len(COMPILED_MODULES)} modules with mypyc "
        f"({'--force' if modules is not None else reason.split(':')[0]})",
        file=sys.stderr,
    )
    started = time.monotonic()
    work = BUILD_DIR.parent / f"engine.new-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with LOG.open("wb") as log:
        child = subprocess.run(
            [sys.executable, "-m", "streams.engine_build", "--compile-into", str(work)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "STREAMS_ENGINE": "pure"},
            check=False,
        )
    if child.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        return report_failure(LOG, "build-engine: mypyc failed", "the engine runs as pure Python")
    lib = work / "lib"
    built = {
        ".".join(p.relative_to(lib).with_suffix("").with_suffix("").parts): str(p.relative_to(lib))
        for p in lib.rglob(f"*{extension_suffix()}")
    }
    manifest = {
        "build": build_id,
        "suffix": extension_suffix(),
        "python": sys.version.split()[0],
        "mypy": _mypy_version(),
        "sources": sources,
        "modules": built,
    }
    (lib / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    install(lib, build_id)
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"build-engine: built {build_id} in {time.monotonic() - started:.0f} s ({BUILD_DIR})",
        file=sys.stderr,
    )
    return 0


def report_failure(log: Path, what: str, consequence: str) -> int:
    """The log's last lines and one line saying what failed and what runs instead; 1."""
    print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
    print(f"{what} (log: {log}): {consequence}", file=sys.stderr)
    return 1


def install(lib: Path, build_id: str, link: Path = BUILD_DIR) -> Path:
    """Move the finished build `lib` to `engine-<build_id>` beside `link`, and point `link`
    at it by renaming a fresh symlink over it (atomic on POSIX). Keeps the build `link`
    pointed at before (a process may be importing from it) and removes older ones (named
    like this one: `native-target`, cargo's, is not a build). A
    `link` that is a directory (a build made before builds were versioned) is moved
    aside first: until the link exists, a starting process finds no build and runs pure."""
    target = link.parent / f"{link.name}-{build_id}"
    previous = link.resolve() if link.is_symlink() else None
    if target.exists() and target != previous:
        shutil.rmtree(target)
    if target != previous:
        lib.rename(target)
    if link.exists() and not link.is_symlink():
        aside = link.parent / f"{link.name}.old-{os.getpid()}"
        link.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    fresh = link.parent / f"{link.name}.link-{os.getpid()}"
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target.name)
    fresh.replace(link)
    keep = {target, previous}
    for other in link.parent.glob(f"{link.name}-" + "?" * len(build_id)):
        if other.is_dir() and other not in keep:
            shutil.rmtree(other, ignore_errors=True)
    return target


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--compile-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_into:
        compile_into(args.compile_into)
        return
    sys.exit(build(args.force))


if __name__ == "__main__":
    main()
