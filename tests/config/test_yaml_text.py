"""load_yaml: YAML text as data, or one line naming the file, the line and the column."""
from __future__ import annotations

import pytest

from gankit.config import ConfigError, load_yaml


def test_valid_yaml_is_its_data() -> None:
    assert load_yaml("a: [1, 2]\nb: {c: x}\n", "f.yaml") == {"a": [1, 2], "b": {"c": "x"}}
    assert load_yaml("", "f.yaml") is None


@pytest.mark.parametrize("text,line,column", [("a: 1\nb: [1, 2\n", 3, 1),
                                              ("a: 1\ngrid: {x: [1, 2}\n", 2, 16),
                                              ("a: 1\n  b: 2\n", 2, 4)])
def test_broken_yaml_is_one_line_naming_where(text: str, line: int, column: int) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(text, "sweep file s.yaml")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("sweep file s.yaml is not valid YAML: ")
    assert f"at line {line}, column {column}" in msg and msg.endswith("fix that line")
