"""gankit's import graph: no cycles between modules, and no import that points up the layers.

Every module under src/gankit is parsed (not imported), and every import of a gankit module
is counted, at the top of a file or inside a function alike: a function-level import that
points up is still a dependency that points up. The layers, from the bottom (STYLE.md and
docs/ARCHITECTURE.md): config; data and image conversion; C kernels (native), models, losses,
sampling; plots; metrics; training; exploration, sweeps, pretrained; report, serve, reproduce;
cli. A module may import from its own layer or below.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# First name under `gankit.` -> layer rank (higher may import lower, never the reverse).
LAYERS: dict[str, int] = {
    "errors": 0, "fileio": 0, "log": 0, "config": 0,
    "data": 1,
    "native": 2, "models": 2, "losses": 2, "sampling": 2,
    "plots": 3,
    "metrics": 4,
    "training": 5,
    "exploration": 6, "sweeps": 6, "pretrained": 6,
    "report": 7, "serve": 7, "reproduce": 7,
    "cli": 8, "__main__": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Dotted name -> file of every gankit module (a package is its __init__.py)."""
    return {module_name(p): p for p in sorted((SRC / "gankit").rglob("*.py"))}


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The gankit modules that module `name` imports, anywhere in its file.

    `from pkg import x` counts as importing `pkg.x` when that is a module, else `pkg`.
    """
    package = name if _is_package(path) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:      # `import gankit.a.b` where b is not a module
                t = t.rpartition(".")[0]
            if t.startswith("gankit") and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer(name: str) -> int | None:
    """The rank of a module, None for the `gankit` package itself (it imports nothing)."""
    parts = name.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else None


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(g.items()):
        for dep in sorted(deps):
            lm, ld = layer(mod), layer(dep)
            if lm is not None and ld is not None and ld > lm:
                bad.append(f"{mod} (layer {lm}) imports {dep} (layer {ld})")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_package_has_a_layer():
    unknown = sorted({n.split(".")[1] for n in modules() if "." in n} - set(LAYERS))
    assert not unknown, f"add these to LAYERS in tests/test_layers.py: {unknown}"


def test_no_import_points_up():
    bad = upward_imports(graph())
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


# The checker itself, on small made-up graphs: a test that could not fail would prove nothing.

def test_checker_sees_an_upward_import():
    assert upward_imports({"gankit.plots.x": {"gankit.training.loop"}}) == [
        "gankit.plots.x (layer 3) imports gankit.training.loop (layer 5)"]
    assert upward_imports({"gankit.training.loop": {"gankit.plots.x"}}) == []
    # the two imports the layers of 2026-12-07 forbid: plots below metrics, sweeps below report
    assert upward_imports({"gankit.plots.samples": {"gankit.metrics.features"},
                           "gankit.sweeps.runner": {"gankit.report.compare"}}) == [
        "gankit.plots.samples (layer 3) imports gankit.metrics.features (layer 4)",
        "gankit.sweeps.runner (layer 6) imports gankit.report.compare (layer 7)"]


def test_checker_sees_a_cycle():
    g = {"gankit.data.a": {"gankit.data.b"}, "gankit.data.b": {"gankit.data.c"},
         "gankit.data.c": {"gankit.data.a"}, "gankit.data.d": {"gankit.data.a"}}
    assert cycles(g) == [["gankit.data.a", "gankit.data.b", "gankit.data.c"]]


def test_checker_reads_function_level_and_relative_imports(tmp_path: Path):
    pkg = tmp_path / "gankit" / "plots"
    pkg.mkdir(parents=True)
    src = pkg / "x.py"
    src.write_text("from . import y\n\ndef f():\n    from gankit.training.loop import Trainer\n")
    known = {"gankit.plots.x": src, "gankit.plots.y": pkg / "y.py",
             "gankit.training.loop": tmp_path / "loop.py"}
    assert imports_of("gankit.plots.x", src, known) == {"gankit.plots.y", "gankit.training.loop"}


@pytest.mark.parametrize("name", ["gankit.metrics", "gankit.plots", "gankit.data"])
def test_known_modules_are_found(name: str):
    assert name in modules()
