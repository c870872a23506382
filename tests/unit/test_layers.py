"""The import layers of docs/architecture.md: no import cycle in pepperpy/, and the import-linter contracts
of pyproject.toml ([tool.importlinter]) kept. Every import counts, also one inside a function; only
``if TYPE_CHECKING:`` imports are left out."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]

# Imports that would close a cycle and are tolerated for now (each also in the contracts' ignore_imports in
# pyproject.toml): none left.
KNOWN_EDGES: list[tuple[str, str]] = []


def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph("pepperpy", exclude_type_checking_imports=True, cache_dir=None)


def find_cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle of ``graph`` as a path whose last module is its first, or None."""
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    done: set[str] = set()
    for start in sorted(edges):
        if start in done:
            continue
        path, on_path, stack = [start], {start}, [iter(edges[start])]
        while stack:
            following = next(stack[-1], None)
            if following is None:  # every import of path[-1] followed: no cycle through it
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                stack.pop()
            elif following in on_path:
                return [*path[path.index(following):], following]
            elif following not in done:
                path.append(following)
                on_path.add(following)
                stack.append(iter(edges[following]))
    return None


def test_the_cycle_finder_names_a_cycle_and_finds_none_in_a_tree():
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a")]:
        graph.add_import(importer=importer, imported=imported)
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"p.a", "p.b", "p.c"}
    graph.remove_import(importer="p.c", imported="p.a")
    assert find_cycle(graph) is None


def test_imports_inside_functions_are_in_the_graph():
    # core reaches _paths only inside ``data_path``; the cycle check and import-linter must still see it
    assert "def data_path" in (ROOT / "pepperpy" / "core.py").read_text()
    assert import_graph().direct_import_exists(importer="pepperpy.core", imported="pepperpy._paths")


def test_pepperpy_has_no_import_cycle():
    graph = import_graph()
    for importer, imported in KNOWN_EDGES:
        assert graph.direct_import_exists(importer=importer, imported=imported), (
            f"{importer} -> {imported} is gone: delete it from KNOWN_EDGES here and from ignore_imports in pyproject.toml"
        )
        graph.remove_import(importer=importer, imported=imported)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _layer_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return {f"pepperpy.{name.strip()}" for layer in layers["layers"] for name in layer.replace("|", ":").split(":")}


def test_every_module_of_pepperpy_has_a_layer():
    graph = import_graph()
    unplaced = sorted(graph.find_children("pepperpy") - _layer_modules())
    assert not unplaced, f"add {unplaced} to a layer of [tool.importlinter] in pyproject.toml (docs/architecture.md)"


def test_lint_imports_keeps_every_contract():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
