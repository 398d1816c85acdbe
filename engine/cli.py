"""The ``affetto`` command line: ``affetto <command> ...``.

Each command lives in its own module under :mod:`engine.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` (a function taking the
parsed arguments and returning an exit status). Heavy imports (onnxruntime, numba) happen inside
the handlers, so ``affetto --help`` stays fast. To add a command (demo, serve, classify, ...),
write its module and list it in :data:`engine.commands.COMMAND_MODULES`.

Exit status: 0 on success, 2 for bad arguments (argparse), 1 when the command fails (missing
model, unwritable output, ...): the message is printed, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from engine.commands import COMMAND_MODULES, CommandError

PROG = "affetto"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered command."""
    parser = argparse.ArgumentParser(prog=PROG, description="affetto: emotion-driven adaptive music engine")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``affetto`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad arguments print usage and an error to stderr and return 2 (no SystemExit escapes).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status: int = args.handler(args)
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``affetto ... | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return 141
    return status


if __name__ == "__main__":
    raise SystemExit(main())
