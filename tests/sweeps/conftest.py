"""Fixtures for sweep and tune tests: tiny MLP runs on the bundled `digits` set."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

# Every point of a test sweep: seconds per run (8x8 digits, one hidden layer of 32).
TINY = {"data.name": "digits", "data.limit": 64, "val_diagnostics": 64, "epochs": 1,
        "batch_size": 32, "device": "cpu", "model.g_hidden": [32], "model.d_hidden": [32]}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def gankit(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    """The real CLI in its own process (and process group, so a test can kill the lot)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gankit.cli.main", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)
