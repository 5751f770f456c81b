"""`python -m gankit`, the global --quiet, and data messages printed once per command."""
from __future__ import annotations

import pytest

from gankit import __version__
from gankit.cli.main import main
from gankit.data import sources
from tests.cli.conftest import gankit


def test_python_dash_m_gankit():
    p = gankit("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"gankit {__version__}"


@pytest.fixture
def fresh_search(monkeypatch, mnist_cache):
    """Forget the data sets this test process has found already."""
    monkeypatch.setattr(sources, "_FOUND", {})


def test_each_data_message_once_per_command(capsys, fresh_search):
    assert main(["data", "fetch", "mnist"]) == 0  # two splits of one file set
    err = capsys.readouterr().err
    assert err.count("[gankit data] looking in the cache") == 1, err


def test_quiet_silences_data_messages(capsys, fresh_search):
    assert main(["--quiet", "data", "fetch", "mnist"]) == 0
    captured = capsys.readouterr()
    assert "[gankit data]" not in captured.err
    assert "mnist test: 10000 images" in captured.out


def test_presets_keys_lists_types_defaults_and_valid_values(capsys):
    assert main(["presets", "--keys"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["eval.features"].split()[1:] == ["str", "'classifier'", "classifier", "|",
                                                  "inception"]
    assert lines["epochs"].split()[1:] == ["int", "10", ">=", "1"]
