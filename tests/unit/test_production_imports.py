"""Production code does not depend on the development stack: the worker, the API and the
application client load without `streams.devstack` (nor the test helpers)."""

from __future__ import annotations

import subprocess
import sys


def test_production_modules_do_not_import_the_devstack() -> None:
    code = (
        "import sys\n"
        "import streams.cli.main, streams.cli.worker, streams.cli.api, streams.cli.produce\n"
        "import streams.cli.dispatcher\n"
        "import streams.runtime.worker, streams.api.app, streams.client\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('streams.devstack', 'tests')))\n"
        "print(' '.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "", f"production code imports {done.stdout.strip()}"
