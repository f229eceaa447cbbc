"""Build the native engine core (the Rust crate in `native/`) into `build/native/`.

    .venv/bin/python -m streams.native_build [--force]     (scripts/build-native)

Idempotent and fast when nothing changed: if `build/native/manifest.json` matches the
crate's files now in the tree (`engine_select.check_native`), it says so and exits 0
without running cargo. Otherwise, in this order:
1. hash the crate's files (Cargo.toml, Cargo.lock, src/**/*.rs) before building, so a file
   edited during the build leaves a manifest that no longer matches (stale, not wrong);
2. `cargo build --release --locked` with cargo's output in `build/native.log`, its
   intermediate files in `build/native-target/` (outside the source tree), PyO3 pointed at
   this interpreter, at most `STREAMS_NATIVE_JOBS` (default 2) jobs;
3. copy the library into a fresh directory as `streams_native<extension suffix>`, write
   the manifest there, then swap it in place of `build/native/`.
Exit status: 0 built or up to date, 3 no cargo (the compiled or pure engine runs; one line
says so), 1 the build failed (the log's tail is printed; the other engines run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from streams.engine_build import install, report_failure
from streams.engine_select import (
    MANIFEST,
    NATIVE_CRATE,
    NATIVE_DIR,
    NATIVE_MODULE,
    ROOT,
    check_native,
    extension_suffix,
    native_sources,
    source_hash,
)

LOG = NATIVE_DIR.parent / "native.log"
TARGET = NATIVE_DIR.parent / "native-target"
NO_CARGO = 3


def build(force: bool = False) -> int:
    module, reason, build_id = check_native()
    if module is not None and not force:
        print(f"build-native: up to date (build {build_id})", file=sys.stderr)
        return 0
    cargo = shutil.which("cargo")
    if cargo is None:
        print(
            "build-native: no cargo found: the native core is not built "
            "(the compiled or pure-Python engine runs)",
            file=sys.stderr,
        )
        return NO_CARGO
    sources = {str(p.relative_to(ROOT)): source_hash(p) for p in native_sources() if p.is_file()}
    build_id = hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:12]
    print(
        f"build-native: building the native core with cargo "
        f"({'--force' if module is not None else reason.split(':')[0]})",
        file=sys.stderr,
    )
    started = time.monotonic()
    jobs = os.environ.get("STREAMS_NATIVE_JOBS", "2")
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("wb") as log:
        child = subprocess.run(
            [cargo, "build", "--release", "--locked", "-j", jobs, "--target-dir", str(TARGET)],
            cwd=NATIVE_CRATE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYO3_PYTHON": sys.executable},
            check=False,
        )
    library = TARGET / "release" / "libstreams_native.so"
    if child.returncode != 0 or not library.is_file():
        return report_failure(LOG, "build-native: cargo failed", "the native core is not used")
    work = NATIVE_DIR.parent / f"native.new-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    name = NATIVE_MODULE + extension_suffix()
    shutil.copy2(library, work / name)
    manifest = {
        "build": build_id,
        "suffix": extension_suffix(),
        "python": sys.version.split()[0],
        "module": name,
        "sources": sources,
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    install(work, build_id, NATIVE_DIR)
    print(
        f"build-native: built {build_id} in {time.monotonic() - started:.0f} s ({NATIVE_DIR})",
        file=sys.stderr,
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    sys.exit(build(parser.parse_args().force))


if __name__ == "__main__":
    main()
