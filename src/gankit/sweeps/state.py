"""DIR/state.json of a sweep: per run, the wall time summed over invocations and the last
exit code (what a run folder cannot tell by itself)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gankit.fileio import atomic_write


class State:
    """DIR/state.json, read at start and written after every finished run."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / "state.json"
        self.data: dict[str, Any] = {"runs": {}}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                pass

    def get(self, name: str) -> dict[str, Any]:
        return self.data["runs"].get(name, {})

    def add(self, name: str, wall_s: float, exit_code: int) -> None:
        entry = self.data["runs"].setdefault(name, {"wall_s": 0.0})
        entry["wall_s"] = entry.get("wall_s", 0.0) + wall_s
        entry["exit_code"] = exit_code
        atomic_write(self.path, json.dumps(self.data, indent=1))

    def replace(self, runs: dict[str, dict[str, Any]]) -> None:
        """Every run's entry at once (a shared sweep rebuilds them from its study)."""
        self.data = {"runs": runs}
        atomic_write(self.path, json.dumps(self.data, indent=1))
