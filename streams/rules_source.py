"""Where a ruleset comes from: a rules directory, or a git revision of one (`plan --from
origin/main`), materialised into a temporary directory with `git archive`.

A revision is `REV` (the rules directory at `--rules-path` inside the repository that holds
the current directory) or `REV:PATH`. An existing directory always wins over a revision of
the same name. An unknown revision, or a path the revision does not have, is a `SourceError`
naming it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path


class SourceError(Exception):
    """The ruleset cannot be found; the message names the directory or revision."""


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as exc:
        raise SourceError(f"git is needed to read a revision: {exc.strerror}") from None
    if done.returncode != 0:
        raise SourceError(done.stderr.decode(errors="replace").strip() or "git failed")
    return done.stdout


def materialise(spec: str, rules_path: str, into: Path, cwd: Path | None = None) -> Path:
    """The rules directory `spec` names: itself if it is a directory, else the revision's
    copy extracted under `into`."""
    if Path(spec).is_dir():
        return Path(spec)
    here = cwd or Path.cwd()
    revision, colon, path = spec.partition(":")
    path = path if colon else rules_path
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], here).decode().strip())
    except SourceError:
        raise SourceError(
            f"{spec!r} is neither a rules directory nor a git revision (not in a git repository)"
        ) from None
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top)
    except SourceError:
        raise SourceError(
            f"{spec!r} is neither a rules directory nor a known git revision"
        ) from None
    inside = (here / path).resolve().relative_to(top.resolve()) if not colon else Path(path)
    try:
        archive = _git(["archive", "--format=tar", revision, "--", inside.as_posix()], top)
    except SourceError:
        raise SourceError(f"revision {revision!r} has no {inside.as_posix()}/") from None
    target = into / revision.replace("/", "_")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / inside
