"""Entry point of the `gankit` console script.

Each subcommand lives in its own module with `add_parser(subparsers)`, which registers the
parser and sets `func`; adding a subcommand is one module plus one name in SUBCOMMANDS.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from gankit import __version__
from gankit.errors import GankitError

SUBCOMMANDS = ["data", "presets", "train", "sample", "eval", "classifier", "explore", "report",
               "sweep", "tune", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gankit", description="Train, evaluate, compare and explore GANs on small image sets.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"gankit.cli.{name}_cmd").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors of gankit's own kinds are printed as one clear line, exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return e.exit_code


class UserError(GankitError):
    """A problem with what the user asked for, reported as a one-line message."""


if __name__ == "__main__":
    sys.exit(main())
