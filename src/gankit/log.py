"""gankit's progress messages ("[gankit data] looking in the cache ...") through `logging`.

Every module logs to a child of the "gankit" logger (`logging.getLogger("gankit.data")`);
this module gives that logger one handler, which writes "[gankit data] message" to the
current `sys.stderr` (so stdout stays clean for tables and JSON, and redirections and
pytest's capture see it). INFO is shown by default; `gankit --quiet` (or `set_quiet(True)`,
or `logging.getLogger("gankit").setLevel(logging.WARNING)`) leaves only warnings. The
messages do not propagate to the root logger, so an application that configures logging
itself does not get them twice.
"""
from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("gankit")


class _CurrentStderr(logging.StreamHandler):
    """A StreamHandler bound to whatever `sys.stderr` is when a message is written."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - logging's own attribute
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001 - StreamHandler.__init__ sets it
        pass


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        where = record.name.replace(".", " ")
        level = "warning: " if record.levelno >= logging.WARNING else ""
        return f"[{where}] {level}{record.getMessage()}"


def set_quiet(quiet: bool) -> None:
    """Show only warnings (quiet) or also progress messages (the default)."""
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)


if not any(isinstance(h, _CurrentStderr) for h in LOGGER.handlers):
    _handler = _CurrentStderr()
    _handler.setFormatter(_Format())
    LOGGER.addHandler(_handler)
    LOGGER.propagate = False
    set_quiet(False)
