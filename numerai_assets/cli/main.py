"""Entry point: builds the parser from each sub-command module, maps errors to exit status 2,
and stops quietly when the reader of the output has gone."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from collections.abc import Sequence

from numerai_assets.cli import demo, explain, intake, rescore, score, submissions

COMMANDS = (score, demo, submissions, explain, rescore, intake)
SIGPIPE_STATUS = 128 + signal.SIGPIPE  # 141, what a shell reports for a command killed by it


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
    try:
        code = _run(argv)
        sys.stdout.flush()  # so that a closed pipe is found here, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # a pipe or socket of the command's own work, not the reader of its output
        # Whoever read the output has gone (`status --json | head -1`): stop quietly as other
        # commands do, with the status of a SIGPIPE, as Python's documentation of the signal
        # module recommends; the redirection keeps the flush at exit from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_STATUS
    return code


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, UsageError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"numerai-assets {args.command}: {message}", file=sys.stderr)
        return 2


def _stdout_closed() -> bool:
    """Whether standard output is a pipe with no reader left (Linux and macOS flag it POLLERR);
    True where that cannot be told."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


if __name__ == "__main__":
    sys.exit(main())
