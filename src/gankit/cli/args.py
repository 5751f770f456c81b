"""What the subcommands' parsers share: the parser class (a usage error is one line, like
every other gankit error) and the argument type of counts (a bad value names its option)."""
from __future__ import annotations

import argparse
from typing import Callable, NoReturn


class Parser(argparse.ArgumentParser):
    """argparse's parser with its usage errors (an unknown option, a missing or malformed
    value) printed as one line, `gankit: error: ...` and exit code 2 as main.py prints the
    others, naming the command whose --help lists the options (instead of the usage block)."""

    commands: dict[str, "Parser"]  # set on the top-level parser only (cli/main.py)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"gankit: error: {message}; `{self.prog} --help` lists the options\n")


def at_least(low: int) -> Callable[[str], int]:
    """The argparse type of a whole number >= low (values below it asked for nothing, and
    some commands then failed deep inside)."""
    def whole(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= {low}, got {text!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {n}")
        return n
    return whole


count = at_least(1)  # how many images, runs, processes or trials
