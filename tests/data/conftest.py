"""Fixtures of the data tests: an empty private cache, and a loopback HTTP mirror."""
from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache for this test only (and no GANKIT_DATA), so the shared cache is never
    touched by tests that write or break files."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    monkeypatch.delenv("GANKIT_DATA", raising=False)
    return cache


class Mirror:
    """What the loopback mirror serves: `files[path] = bytes`; a path in `truncate` sends a
    Content-Length larger than its body and closes the connection halfway."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    """An HTTP server on 127.0.0.1 (ephemeral port) serving Mirror.files under Mirror.base."""
    state: Mirror

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.lstrip("/")
            state.requests.append(path)
            body = state.files.get(path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if path in state.truncate:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Mirror(f"http://127.0.0.1:{server.server_address[1]}/")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
