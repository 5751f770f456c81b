"""Entry point of the `gankit` console script (and of `python -m gankit`).

Each subcommand lives in its own module with `add_parser(subparsers)`, which registers the
parser and sets `func`; adding a subcommand is one module plus one name in SUBCOMMANDS.
Every error a user can fix is a `gankit.errors.GankitError`: it is caught here, once, and
printed as one line (`gankit: error: ...`) with the error's exit code, never a traceback. So
is an OSError about a path (one that cannot be made, read or written) and an allocation
that failed (out of memory), exit code 2.

The one exception to "imports at the top": a subcommand module imports the library inside its
`run`, so building the parser loads no PyTorch and `gankit --help` or `gankit data fetch`
start in a fraction of a second (tests/data/test_data_mnist.py pins the fetch).
"""
from __future__ import annotations

import importlib
import re
import sys

from gankit import __version__
from gankit.cli.args import Parser
from gankit.errors import GankitError, UserError
from gankit.log import set_quiet

__all__ = ["GankitError", "UserError", "build_parser", "main"]  # UserError: for older imports

SUBCOMMANDS = ["data", "presets", "train", "sample", "eval", "classifier", "explore", "report",
               "runs", "sweep", "tune", "reproduce", "serve", "pretrained"]
EXIT_INTERRUPTED = 130  # stopped by a signal (the shell's 128 + SIGINT)


def build_parser() -> Parser:
    parser = Parser(
        prog="gankit", description="Train, evaluate, compare and explore GANs on small image sets.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    # dest differs from `train --quiet` (no progress bar): a subparser's default would
    # overwrite a top-level option of the same dest.
    parser.add_argument("--quiet", dest="quiet_messages", action="store_true",
                        help="no progress messages about data and caches (warnings still show)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"gankit.cli.{name}_cmd").add_parser(sub)
    parser.commands = sub.choices
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a GankitError is printed as one clear line and exits with its exit_code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's parser, so that the error names its --help
        parser.commands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    set_quiet(args.quiet_messages)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GankitError as e:
        print(f"gankit: {e.kind}: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.filename is None:  # not about a path the user gave: a bug or the system's, in full
            raise
        # a path that cannot be made, read or written (a file where a folder should be, no
        # permission, a full or read-only disk): the user's to fix, in one line
        where = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
        print(f"gankit: error: {where}: {e.strerror or e}; check the path (every part of it "
              "a folder you may write to) and the free space", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        m = re.search(r"allocate (\d+) bytes", str(e))
        size = f" ({int(m.group(1)) / 2**30:.1f} GiB at once)" if m else ""
        print(f"gankit: error: out of memory{size}; ask for less: a smaller --n, batch_size "
              "or model (a run keeps its last saved checkpoint)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during training: stopped without saving
        print("gankit: stopped at once; the last saved checkpoint is kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        set_quiet(False)


def _out_of_memory(e: BaseException) -> bool:
    """Whether e is an allocation that failed: Python's MemoryError, torch's CPU allocator
    ("can't allocate memory") or its CUDA OutOfMemoryError (named, not imported: torch is not
    loaded to build the parser)."""
    return isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" \
        or "can't allocate memory" in str(e)


if __name__ == "__main__":
    sys.exit(main())
