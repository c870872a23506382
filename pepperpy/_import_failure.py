"""Why a plugin folder's module failed to import, told in the author's terms: files and requirements.txt,
never the internal ``pepperpy.loaded_plugins...`` module names."""

from __future__ import annotations

import importlib.util
import os
import re
import traceback
from pathlib import Path

from pepperpy.errors import PepperPyError

_CANNOT_IMPORT_NAME = re.compile(r"cannot import name '([\w.]+)'")


def describe(plugin_id: str, folder: Path, package: str, requirements: Path, path: str, exc: BaseException) -> str:
    """The PluginLoadError message for ``exc``, raised while importing ``path`` (loaded as ``package.<module>``)."""
    importer = _importer(folder, exc) or os.path.relpath(path, folder)
    missing = _missing_module(package, exc)
    if missing is not None and missing.startswith("."):
        file = folder.joinpath(*missing[1:].split("."))
        return (
            f"plugin {plugin_id}: {importer} imports {missing!r}, but there is no {file}.py (nor a package folder "
            f"{file}{os.sep}); add that file or fix the import"
        )
    if missing is not None:
        top = missing.split(".", 1)[0]
        sibling = next((p for p in (folder / f"{top}.py", folder / top) if p.exists()), None)
        if sibling is not None:
            return (
                f"plugin {plugin_id}: {importer} imports {missing!r} as an installed package, but it is a module of "
                f"the plugin folder ({sibling}); import it relatively: `from . import {top}` or "
                f"`from .{top} import ...`"
            )
        if importlib.util.find_spec(top) is None:
            return (
                f"plugin {plugin_id}: {importer} imports {missing!r}, which is not installed; add the package that "
                f"provides it to {requirements} (PepperPy installs it on first use)"
            )
    shown = str(exc).replace(f"{package}.", ".").replace(package, "the plugin folder")
    return (
        f"plugin {plugin_id}: importing {path} failed with {type(exc).__name__}: {shown}"
        + ("" if isinstance(exc, PepperPyError) else "; fix the module")
    )


def _missing_module(package: str, exc: BaseException) -> str | None:
    """The module ``exc`` says is missing: ``.name`` for one of the plugin folder, else its full name; or None."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        name = exc.name
    elif type(exc) is ImportError and exc.name == package:  # `from . import helpers` with no helpers module
        match = _CANNOT_IMPORT_NAME.match(str(exc))
        if match is None:
            return None
        name = f"{package}.{match.group(1)}"
    else:
        return None
    if name.startswith(package + "."):
        return name[len(package) :]
    return None if name == package else name


def _importer(folder: Path, exc: BaseException) -> str | None:
    """``provider.py (line 3)``: the innermost frame of ``exc`` in a file of ``folder``."""
    found = None
    real = os.path.realpath(folder)
    for frame in traceback.extract_tb(exc.__traceback__):
        if not os.path.isabs(frame.filename):  # <frozen importlib._bootstrap> and the like
            continue
        file = os.path.realpath(frame.filename)
        if os.path.commonpath([real, file]) == real:
            found = f"{os.path.relpath(file, real)} (line {frame.lineno})"
    return found
