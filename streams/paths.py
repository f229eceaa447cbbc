"""Where the processes keep local files between runs (the one such place, for production
and development alike)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """STREAMS_CACHE_DIR, else $XDG_CACHE_HOME/streams (~/.cache/streams), created if
    missing: the workers' scratch directories, and on a development machine the broker's
    jars and Java runtime."""
    root = os.environ.get("STREAMS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "streams"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
