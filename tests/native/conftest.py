"""Fixtures of the native kernels' tests."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from gankit.native import build


@pytest.fixture
def unavailable(monkeypatch) -> Iterator[Callable[[ModuleType], str]]:
    """`unavailable(module)` makes every native kernel unbuildable (as on a machine without a
    C compiler), clears the build cache and the module's one-line reporter, and returns why
    the module's kernel is not available; the caches are cleared again after the test."""
    modules: list[ModuleType] = []

    def make(module: ModuleType) -> str:
        monkeypatch.setenv("CC", "gankit-no-such-compiler")
        build._build.cache_clear()
        module.report_unavailable.cache_clear()
        modules.append(module)
        return module.why_not()

    yield make
    build._build.cache_clear()
    for m in modules:
        m.report_unavailable.cache_clear()
