"""A tiny trained run (the bundled digits set, one short epoch) and the checks every CLI error
test makes: a non-zero exit code, one line on stderr, no traceback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gankit.cli.main import main

TINY = ["--set", "data.name=digits", "--set", "data.limit=64", "--set", "val_diagnostics=32",
        "--set", "epochs=1", "--set", "batch_size=32", "--set", "eval.every=0",
        "--set", "model.ngf=8", "--set", "model.ndf=8", "--device", "cpu", "--quiet",
        # the default's rates fall at epochs 12 and 14, which one epoch never reaches (a
        # warning line on stderr); constant rates keep stderr to the line under test
        "--set", "optim.schedule=constant", "--set", "optim.g_milestones=[]",
        "--set", "optim.d_milestones=[]"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def assert_one_line_error(code: int, err: str, *parts: str) -> None:
    """Exit code != 0, exactly one line on stderr holding every part, and no traceback."""
    lines = err.strip().splitlines()
    assert code != 0
    assert "Traceback" not in err
    assert len(lines) == 1, err
    for part in parts:
        assert part in lines[0], (part, lines[0])


def gankit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m gankit ARGS` in a fresh process (this tree's sources first on the path)."""
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One run of the default preset shrunk to seconds, trained through the CLI."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["--quiet", "train", "--out", str(out), *TINY]) == 0
    assert (out / "checkpoints" / "last.pt").is_file()
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A copy of the trained run that a test may damage."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
