"""Entry point: `python -m streams COMMAND ...` (or the `streams` script)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from streams import __version__
from streams.cli import actions, api, demo, dispatcher, explain, plan, produce, rules, types, worker
from streams.cli.common import EXIT_INVALID, CommandError, error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streams",
        description="Smart-campaign trigger processor: activities in, campaign memberships out.",
    )
    parser.add_argument("--version", action="version", version=f"streams {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    rules.register(commands)
    demo.register(commands)
    produce.register(commands)
    worker.register(commands)
    api.register(commands)
    types.register(commands)
    plan.register(commands)
    explain.register(commands)
    dispatcher.register(commands)
    actions.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except CommandError as exc:
        error(str(exc))
        return exc.code
    except ValidationError as exc:
        # Settings from the environment that do not validate.
        for problem in exc.errors():
            name = "STREAMS_" + "_".join(str(p) for p in problem["loc"]).upper()
            error(f"{name}: {problem['msg']}")
        return EXIT_INVALID
    except BrokenPipeError:
        sys.stderr.close()  # `backtest ... | head`: the reader left, nothing to report
        return 0
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return code
