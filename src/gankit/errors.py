"""The one base class of every error gankit reports to a user.

A `GankitError`'s message names the problem and the fix in one line; the CLI catches the base
class once (`cli/main.py`) and exits with the error's `exit_code`, never with a traceback.
This module imports nothing, so every layer can use it.
"""


class GankitError(Exception):
    """A problem the user can fix: bad input, missing data, an unreadable run or checkpoint.

    `exit_code` is what the CLI exits with; `kind` is the word it prints before the message
    ("gankit: error: ...").
    """

    exit_code: int = 2
    kind: str = "error"


class UserError(GankitError):
    """A problem with what the user asked for on the command line, reported in one line."""


class NonFiniteLoss(GankitError):
    """Training produced a NaN or inf loss; the last good checkpoint was kept."""
    exit_code = 3
