"""Fixtures for sweep and tune tests: tiny MLP runs on the bundled `digits` set."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import TINY as TINY_RUN

# Every point of a test sweep: the suite's tiny config at one epoch of 64 images, one hidden
# layer of 32: seconds per run.
TINY = {**TINY_RUN, "data.limit": 64, "epochs": 1, "model.g_hidden": [32], "model.d_hidden": [32]}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def gankit(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    """The real CLI in its own process (and process group, so a test can kill the lot)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gankit.cli.main", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)
