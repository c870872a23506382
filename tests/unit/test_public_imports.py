"""The built-in plugins, and the plugins ``pepperpy plugins new`` writes, import only PepperPy's public names
(``from pepperpy.plugins import model_package_file``, never ``pepperpy._x``): what a plugin author copies works."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pepperpy.cli._scaffold import scaffold

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
# What plugin code imports from: the plugin API and the public modules of the categories and their helpers
# (the PluginManager's own module is for applications: its helpers for plugins are in pepperpy.plugins).
PLUGIN_FACING = {
    "pepperpy", "pepperpy.plugins", "pepperpy.core", "pepperpy.errors", "pepperpy.llm", "pepperpy.embeddings",
    "pepperpy.rag", "pepperpy.storage", "pepperpy.documents", "pepperpy.loaders", "pepperpy.tools",
    "pepperpy.structured", "pepperpy.http", "pepperpy.hooks", "pepperpy.parts", "pepperpy.ranking",
}


def private_imports(source: str) -> list[str]:
    """Each import of a private PepperPy module or name in ``source`` (inside functions too)."""
    found = []
    for node in sorted(ast.walk(ast.parse(source)), key=lambda node: getattr(node, "lineno", 0)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules, names = [node.module], [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] != "pepperpy":
                continue
            if any(part.startswith("_") for part in parts[1:]) or any(name.startswith("_") for name in names):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def pepperpy_modules(source: str) -> set[str]:
    """The PepperPy modules ``source`` imports from."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names if alias.name.split(".")[0] == "pepperpy"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "pepperpy":
            modules.add(node.module)
    return modules


def test_private_imports_are_found_also_inside_functions():
    source = "import os\nfrom pepperpy.plugins import file_lock\ndef f():\n    from pepperpy._paths import pepperpy_home\n"
    source += "import pepperpy._log\nfrom pepperpy import _redact\n"
    assert private_imports(source) == [
        "line 4: from pepperpy._paths import pepperpy_home",
        "line 5: import pepperpy._log",
        "line 6: from pepperpy import _redact",
    ]


@pytest.mark.parametrize("path", sorted(PLUGINS.rglob("*.py")), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_a_builtin_plugin_imports_only_public_names(path):
    source = path.read_text()
    assert private_imports(source) == []
    assert pepperpy_modules(source) <= PLUGIN_FACING, "import these names from pepperpy.plugins"


@pytest.mark.parametrize("category", ["llm", "embeddings", "rag", "storage", "loader", "greetings"])
def test_a_scaffolded_plugin_imports_only_public_names(category):
    files = scaffold(category, "example")
    sources = {name: text for name, text in files.items() if name.endswith(".py")}
    assert sources
    assert {name: private_imports(text) for name, text in sources.items()} == {name: [] for name in sources}
    assert all(pepperpy_modules(text) <= PLUGIN_FACING for text in sources.values())
