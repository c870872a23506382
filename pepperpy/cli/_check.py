"""The checks of ``pepperpy plugins check``: each plugin folder loaded the way PepperPy loads it, in isolation."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def plugin_folders(roots: list[Path]) -> list[str]:
    """The plugin folders under ``roots`` (each a plugin folder or a folder of them), each once."""
    folders: list[str] = []
    for root in roots:
        if (root / "plugin.json").is_file():
            candidates = [root]
        elif root.is_dir():
            candidates = sorted(p for p in root.iterdir() if p.is_dir() and (p / "plugin.json").is_file())
        else:
            candidates = []
        for candidate in candidates:
            real = os.path.realpath(candidate)
            if real not in folders:
                folders.append(real)
    return folders


def shared_ids(roots: list[Path]) -> dict[str, str]:
    """Folder -> its problem, for plugin folders that share their id with another folder of the same root.

    Across roots a higher one shadows a lower one on purpose (an override); within one root it is a copy
    left unrenamed, and which one PepperPy uses depends on the folder names.
    """
    from pepperpy._manifest import read_manifest
    from pepperpy._paths import plugin_folders_in
    from pepperpy._version import __version__
    from pepperpy.errors import PepperPyError
    from pepperpy.plugin_manager import same_id_problem

    problems: dict[str, str] = {}
    for root in roots:
        if not root.is_dir():
            continue
        by_id: dict[str, list[str]] = {}
        for folder in plugin_folders_in(str(root)):
            try:
                manifest = read_manifest(folder, __version__)
            except PepperPyError:
                continue  # its own check names the problem
            by_id.setdefault(f"{manifest.category}/{manifest.provider_name}", []).append(folder)
        for plugin_id, folders in by_id.items():
            if len(folders) > 1:
                for folder in folders:
                    problems[os.path.realpath(folder)] = same_id_problem(plugin_id, str(root), folders)
    return problems


def check_folder(checker: Any, folder: str, install_requirements: bool) -> tuple[str, str | None, list[str]]:
    """(label, problem or None, notes) for one plugin folder."""
    from pepperpy import _envs, _install
    from pepperpy._manifest import read_manifest
    from pepperpy._options import build_options
    from pepperpy._version import __version__
    from pepperpy.errors import PepperPyError
    from pepperpy.plugin_manager import PluginInfo

    try:
        found = PluginInfo(read_manifest(folder, __version__), Path(folder))
    except PepperPyError as exc:
        return folder, str(exc), []
    label = f"{found.id} ({folder})"
    from pepperpy._manifest import entry_file
    from pepperpy._trust import open_to_others, trust_problem

    exposed = open_to_others(folder, [str(Path(folder) / "plugin.json"), entry_file(folder, found.manifest)])
    if exposed:
        return label, trust_problem(folder, exposed), []
    isolated = found.manifest.isolation == "process"
    about_manifest = manifest_notes(found.manifest)
    try:
        needed = checker.requirement_set(found)
        _install.check_lock(needed)  # a stale lock fails here, as it would at the install
        if isolated:  # its requirements live in its worker's env, never in this process
            if install_requirements and needed:
                from pepperpy._isolation.env import ensure_env

                ensure_env(checker.home, found.id, needed)
            ready = not needed
        else:
            ready = not _envs.needs_install(
                _install.env_dir(checker.home, needed), needed.fingerprint(), isolated=False,
                has_requirements=bool(needed), provided=lambda: not _install.missing_from_running_env(needed),
            )
    except PepperPyError as exc:
        return label, str(exc), []
    if isolated:
        install_requirements = False  # the class is imported here without them: a missing one is a note
    notes = list(about_manifest)
    names = ", ".join(str(r) for r in (*needed.requirements, *needed.model_packages))
    try:
        if ready or install_requirements:
            checker.ensure_requirements(found, explicit=install_requirements)
        else:
            notes.append(f"requirements not installed ({names}); imported without them (--install installs them)")
        provider_class = checker.import_class(found)
        build_options(provider_class)
    except PepperPyError as exc:
        if ready or install_requirements:
            return label, str(exc), []
        if _missing_outside(exc, checker.package_name(found.id)):  # what its requirements would bring: not its fault
            note = f"cannot import without its requirements ({names}); run with --install to check the class"
            return label, None, [*about_manifest, note]
        return label, f"{exc} (its requirements {names} are not installed: add --install)", []
    finally:
        _forget_modules(checker.package_name(found.id))
    return label, None, notes


def manifest_notes(manifest: Any) -> list[str]:
    """What a valid plugin.json may not mean: a category one letter or two off PepperPy's own (a typo; other
    categories are a plugin's own, reached with ``with_plugin``), a loader no file picks."""
    import difflib

    from pepperpy._categories import CATEGORY_BASES

    notes = []
    close = difflib.get_close_matches(manifest.category, CATEGORY_BASES, n=1, cutoff=0.75)
    if close and close[0] != manifest.category:
        notes.append(
            f"category {manifest.category!r} is not PepperPy's {close[0]!r}: did you mean it? (a plugin of category "
            f"{manifest.category!r} is reached only by with_plugin({manifest.category!r}, {manifest.provider_name!r}))"
        )
    if manifest.category == "loader" and not manifest.suffixes:
        notes.append(
            f"no \"suffixes\" in plugin.json: no file is read with it unless named (loader={manifest.provider_name!r})"
        )
    return notes


def _missing_outside(exc: BaseException, own: str) -> bool:
    """True when ``exc`` was caused by a ModuleNotFoundError for a module outside the plugin's own package ``own``."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ModuleNotFoundError):
            name = cause.name or ""
            return bool(name) and name != own and not name.startswith(own + ".")
        cause = cause.__cause__ or cause.__context__
    return False


def _forget_modules(package: str) -> None:
    """Drop a checked plugin's modules (its package ``package``), so that another folder with the same id imports
    its own."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def check_entry_points(mgr: Any) -> list[tuple[str, str | None, list[str]]]:
    """Class entry points of installed distributions: each must import and be a valid provider."""
    from pepperpy.errors import PepperPyError

    mgr.discover()
    results: list[tuple[str, str | None, list[str]]] = []
    for plugin in mgr.entry_point_plugins.values():
        label = f"{plugin.id} ({plugin.entry_point.value} from {plugin.source})"
        try:
            mgr.load_class(plugin.category, plugin.provider_name)
            results.append((label, None, []))
        except PepperPyError as exc:
            results.append((label, str(exc), []))
    for bad in mgr.broken_entry_points:
        results.append((f"entry point {bad.name} = {bad.value!r} (from {bad.source})", bad.problem, []))
    return results
