"""Fixtures for sweep and tune tests: tiny MLP runs on the bundled `digits` set, and a
throwaway PostgreSQL server for shared studies."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from tests.conftest import TINY as TINY_RUN
from tests.sweeps.postgres import Server, bin_dir

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


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], what: str,
              timeout: float = 180) -> None:
    """SIGKILL `proc` (no chance to save or clean up) as soon as `ready()` holds; fails if
    the process ends first or `what` does not happen within `timeout` seconds."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"ended before {what}: " + proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f} s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A throwaway PostgreSQL server for the session (see tests/sweeps/postgres.py); skipped
    where the server binaries or the psycopg2 driver are missing."""
    bindir = bin_dir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install "
                    "postgresql (make test installs it as root)")
    pytest.importorskip("psycopg2", reason="no psycopg2: pip install 'gankit[postgres]'")
    server = Server(bindir)          # binaries present but no server: an error, not a skip
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: Server, request: pytest.FixtureRequest) -> str:
    """The URL of a new empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(re.sub(r"\W", "_", request.node.name)[:60].lower())
