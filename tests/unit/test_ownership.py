"""One owner per concern: no module reaches into the PluginManager's (or the facade's providers') private
attributes; the manager offers small public methods instead."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pepperpy

PACKAGE = Path(pepperpy.__file__).parent
# a manager held under one of its usual names, then a private attribute: manager._ready, mgr._requirement_set, ...
REACH_IN = re.compile(r"\b(?:manager|mgr|m|checker|self\.manager|self\._manager)\._[a-z]\w*|\bfacade\._[a-z]\w*")


def test_no_module_reaches_into_the_managers_private_attributes():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "plugin_manager.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if REACH_IN.search(line):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


def _imported_from(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``import from`` in ``path`` reads (``from .plugins import x`` in pepperpy/cli)."""
    if not node.level:
        return node.module or ""
    package = path.parent.relative_to(PACKAGE.parent).parts
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


def test_no_module_imports_another_modules_private_names():
    # a private module (_common) may have public names; a private name (_split_id) stays in its module:
    # what several modules share gets a public name in a module of its own (pepperpy/cli/_plugin_ids.py)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = _imported_from(path, node)
            folder = PACKAGE.parent.joinpath(*module.split("."))
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                a_module = (folder / f"{alias.name}.py").is_file() or (folder / alias.name).is_dir()
                if module.startswith("pepperpy") and private and not a_module:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {alias.name} from {module}")
    assert found == []


def test_mark_ready_takes_a_plugins_requirements_as_importable(manager, make_plugin, monkeypatch):
    """What a worker process says of its own venv: no env is made or joined for the plugin."""
    make_plugin("needy", files={"requirements.txt": "pepperpy-test-only-package==1.0\n"})
    assert manager.needs_install("llm", "needy") is True
    manager.mark_ready("llm/needy")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("an install was started")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    assert manager.needs_install("llm", "needy") is False
    assert manager.create_provider("llm", "needy").plugin_id == "llm/needy"
    assert not (manager.home / "envs").exists()


def test_import_class_checks_the_class_without_caching_it(manager, make_plugin):
    make_plugin("plain")
    info = manager.discover()["llm/plain"]
    first = manager.import_class(info)
    assert first.__name__ == "EchoProvider" and manager.loaded_folder_plugins() == []
