"""Entry point: builds the parser from each sub-command module and maps errors to exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from numerai_assets.cli import demo, intake, rescore, score, submissions

COMMANDS = (score, demo, submissions, rescore, intake)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numerai-assets", description="Scoring pipeline of the weekly tournament."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, UsageError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"numerai-assets {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
