"""The root conftest's tiny trained runs, served through Starlette's TestClient."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def served_cgan(cgan_run):
    from gankit.serve.models import load_models
    return load_models([str(cgan_run)], which="last")


@pytest.fixture(scope="session")
def client(served_cgan):
    """A TestClient on the tiny conditional run (8x8 digits, 10 classes)."""
    from starlette.testclient import TestClient

    from gankit.serve.app import create_app
    with TestClient(create_app(served_cgan, max_samples=32), raise_server_exceptions=False) as c:
        yield c
