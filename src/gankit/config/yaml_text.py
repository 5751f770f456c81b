"""YAML text as data, or one line that says where it is broken.

PyYAML's own message spans several lines (the context, a copy of the line and a caret); a
user who edited a sweep, tune or run config file gets the problem and its place in one.
"""
from __future__ import annotations

from typing import Any

import yaml

from gankit.config.schema import ConfigError


def load_yaml(text: str, what: str) -> Any:
    """The data of YAML `text`; ConfigError naming `what` (a file, say) and the line and column
    of the problem when it is not valid YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        context = getattr(e, "context", None)
        raise ConfigError(f"{what} is not valid YAML: {problem}{where}"
                          f"{f' ({context})' if context else ''}; fix that line") from None
