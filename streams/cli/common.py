"""What every command shares: exit codes, loading rules with the validate messages."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from pydantic_settings import BaseSettings

from streams.engine.compiler import Plan, load_plan
from streams.engine.problems import RulesError
from streams.paths import cache_dir
from streams.runtime.kafka_logs import quiet_client_logs
from streams.settings import EngineSettings
from streams.text import counted

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2
"""Invalid rules or invalid input given on the command line."""


class CommandError(Exception):
    """A command cannot go on; the message is for the user, the code is the exit status."""

    def __init__(self, message: str, code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.code = code


def error(message: str) -> None:
    print(message, file=sys.stderr)


def load_rules_or_exit(rules_dir: Path, settings: EngineSettings) -> Plan:
    """The compiled rules, or CommandError(2) after printing one line per problem."""
    try:
        return load_plan(rules_dir, settings.retention_us, settings.max_custom_types)
    except RulesError as exc:
        for problem in exc.problems:
            error(str(problem))
        raise CommandError(
            f"{rules_dir}: {counted(len(exc.problems), 'problem')}; nothing was run"
        ) from None


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than `minimum`, or a clear error."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{number} is below {minimum}: give {minimum} or more")
        return number

    parse.__name__ = f"integer >= {minimum}"
    return parse


def faust_datadir() -> Path:
    """A Faust data directory of this process's own under the cache, removed at exit (and,
    for processes that exited without cleaning up, at the next start)."""
    _remove_dead_datadirs(cache_dir())
    datadir = Path(tempfile.mkdtemp(prefix=f"faust-{os.getpid()}-", dir=cache_dir()))
    atexit.register(shutil.rmtree, datadir, ignore_errors=True)
    return datadir


def _remove_dead_datadirs(root: Path) -> None:
    """Faust's data directories of workers that exited without cleaning up (a kill -9, or
    the worker's own hard exit after a failed batch): `faust-<pid>-*` whose pid is gone."""
    for path in root.glob("faust-*-*"):
        pid = path.name.split("-")[1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


Flags = dict[str, tuple[str, type, str]]
"""A long-running command's flags: setting name -> (flag, type, help). Each wins over the
STREAMS_* variable of the same setting."""

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def add_service_flags(
    parser: argparse.ArgumentParser, flags: Flags, log_help: str = "log level (default info)"
) -> None:
    for name, (flag, kind, text) in flags.items():
        parser.add_argument(flag, dest=name, type=kind, help=text)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning"], help=log_help
    )


def start_service(
    args: argparse.Namespace, flags: Flags, settings_class: type[SettingsT]
) -> SettingsT:
    """The settings of a long-running command (its STREAMS_* variables, its flags winning)
    and its logging, the Kafka clients' reconnect noise summed up (`quiet_client_logs`)."""
    overrides = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    settings = settings_class(**overrides)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_client_logs()
    return settings
