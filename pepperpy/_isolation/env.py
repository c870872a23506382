"""The virtual environment of a process-isolated plugin: ``uv venv`` + its requirements, under ``<home>/envs/``.

The env is a real venv made by ``uv venv`` with the parent's Python, named like the other envs
(``<plugin id>-<fingerprint>``), built in a temporary sibling under the env's lock, stamped, then
renamed into place (so ``pepperpy plugins clean`` and interrupted installs work as for every env).

PepperPy itself is never installed into it. The venv's ``site-packages`` holds a ``.pth`` file
naming its ``pepperpy-host`` folder, which links to the parent's own files: the ``pepperpy``
package and every distribution PepperPy depends on (pydantic, httpx, loguru, ...), so the worker
imports exactly the parent's versions. The plugin's requirements are installed by uv into the
venv with those versions as constraints; they come first on ``sys.path``. A plugin that needs
another version of one of PepperPy's own dependencies cannot be isolated this way: uv's
resolution fails and the error says so.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from pepperpy import _envs
from pepperpy._log import logger
from pepperpy.errors import PluginInstallError

HOST_DIR = "pepperpy-host"  # inside the venv: links to the parent's pepperpy and its dependencies
PTH_FILE = "_pepperpy_host.pth"
INSTALL_TIMEOUT_S = 600.0
LOCK_TIMEOUT_S = 900.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def host_pins() -> list[str]:
    """``name==version`` of every distribution in PepperPy's dependency closure (uv's constraints)."""
    return [f"{name}=={version}" for key, (name, version, _) in sorted(_closure("pepperpy").items()) if key != "pepperpy"]


def host_files() -> tuple[dict[str, Path], list[Path]]:
    """What the worker reaches of the parent: ``(link name -> parent file or folder, extra path entries)``.

    Links: the ``pepperpy`` package and the top-level files of every distribution in PepperPy's
    dependency closure (their dist-info included, so ``importlib.metadata`` sees the same versions).
    Extra path entries: the folders of distributions that list no files (the whole folder is reached),
    and the parent's site-packages when PepperPy runs from a source folder without being installed.
    """
    import pepperpy

    links: dict[str, Path] = {"pepperpy": Path(pepperpy.__file__).resolve().parent}
    folders: list[Path] = []
    closure = _closure("pepperpy")
    for _, _, distribution in closure.values():
        files = distribution.files
        if not files:
            folder = Path(str(distribution.locate_file(""))).resolve()
            if folder not in folders:
                folders.append(folder)
            continue
        for file in files:
            top = file.parts[0] if file.parts else ""
            if not top or top in ("..", "__pycache__", "pepperpy") or top.endswith(".pth"):
                continue
            if top not in links:
                links[top] = Path(str(distribution.locate_file(top)))
    if "pepperpy" not in closure:
        folders += [Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    return links, folders


def _closure(root: str) -> dict[str, tuple[str, str, importlib.metadata.Distribution]]:
    """The installed distributions ``root`` needs (its extras left out): canonical name -> (name, version, it)."""
    found: dict[str, tuple[str, str, importlib.metadata.Distribution]] = {}
    todo = [root]
    while todo:
        key = canonicalize_name(todo.pop())
        if key in found:
            continue
        try:
            distribution = importlib.metadata.distribution(key)
        except importlib.metadata.PackageNotFoundError:
            continue
        name, version, requires = _headers(distribution)
        found[key] = (name or key, version, distribution)
        for line in requires:
            needed = _needed_name(line)
            if needed:
                todo.append(needed)
    return found


def _needed_name(line: str) -> str | None:
    """The distribution a Requires-Dist line names, None when its marker leaves it out (extras, other platforms)."""
    head, _, marker = line.partition(";")
    if "extra" in marker:
        return None  # an optional extra of the distribution
    if marker.strip():
        try:
            if not Marker(marker).evaluate():
                return None
        except InvalidMarker:
            return None
    match = _NAME.match(head.strip())
    return match.group(0) if match else None


def _headers(distribution: importlib.metadata.Distribution) -> tuple[str, str, list[str]]:
    """Name, version and Requires-Dist from the METADATA headers only (parsing a whole long description
    with ``email`` costs milliseconds per distribution)."""
    text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
    name = version = ""
    requires = []
    for line in text.split("\n\n", 1)[0].splitlines():
        field, _, value = line.partition(":")
        if field == "Name":
            name = value.strip()
        elif field == "Version":
            version = value.strip()
        elif field == "Requires-Dist":
            requires.append(value.strip())
    return name, version, requires


def fingerprint(needed: Any, pins: list[str]) -> str:
    """Short hash of the plugin's requirements, the parent's Python, PepperPy's folder and its pinned dependencies."""
    return stamp_of(needed.fingerprint() if needed else None, pins)


def stamp_of(requirements_fingerprint: str | None, pins: list[str]) -> str:
    """``fingerprint`` from the plugin's ``RequirementSet.fingerprint()`` (None: it has no requirements), for
    the plugin index, which keeps that string and not the set."""
    import pepperpy

    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    parts = ["isolation=process", requirements_fingerprint or "no-requirements", python]
    parts += [os.path.realpath(os.path.dirname(pepperpy.__file__)), *pins]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def venv_python(venv: Path) -> Path:
    """The venv's interpreter."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def env_path(home: Path, plugin_id: str, needed: Any) -> tuple[Path, str, list[str]]:
    """``(venv dir, its fingerprint, host_pins())`` for the plugin."""
    pins = host_pins()
    stamp = fingerprint(needed, pins)
    return _envs.env_folder(home, plugin_id, stamp), stamp, pins


def is_ready(venv: Path, stamp: str) -> bool:
    """True when ``venv`` is a complete env with this fingerprint (its use is then noted)."""
    from pepperpy import _install

    ready = _envs.is_installed(venv, stamp)
    if ready:
        _install.note_use(venv)
    return ready


def ensure_env(home: Path, plugin_id: str, needed: Any, before_install: Callable[[], None] | None = None) -> Path:
    """The plugin's venv, created and installed on first use (once, under a lock shared by processes).

    ``before_install`` runs when the venv must be made, before anything is written: it may refuse (raise)."""
    from pepperpy import _install
    from pepperpy._filelock import file_lock

    venv, stamp, pins = env_path(home, plugin_id, needed)
    if is_ready(venv, stamp):
        return venv
    if before_install is not None:
        before_install()
    try:
        _install._make_envs_dir(venv.parent)
        with file_lock(_install.lock_path(venv), LOCK_TIMEOUT_S):
            _install._remove_leftovers(venv)
            if not is_ready(venv, stamp):
                _build(venv, stamp, plugin_id, needed, pins)
    except TimeoutError as exc:
        raise PluginInstallError(f"{plugin_id}: another process is still building its worker env: {exc}") from None
    except OSError as exc:
        raise PluginInstallError(
            f"could not create the worker env of plugin {plugin_id} under {venv.parent}: {exc.strerror or exc}; "
            f"make {home} writable and free some space, or use another home (PEPPERPY_HOME)"
        ) from exc
    return venv


def _build(venv: Path, stamp: str, plugin_id: str, needed: Any, pins: list[str]) -> None:
    from pepperpy import _install

    links, folders = host_files()
    started = time.perf_counter()
    logger.info("creating the worker env of {} in {}", plugin_id, venv)
    staging = Path(tempfile.mkdtemp(prefix=f".{venv.name}.partial-", dir=venv.parent))
    try:
        python = sys.executable
        _run_uv(plugin_id, "create the venv", ["venv", "--python", python, "--no-project", "--no-config",
                                              "--no-python-downloads", "--quiet", str(staging)])
        site = _site_packages(staging)
        _link_host(staging / HOST_DIR, links)
        lines = [os.path.relpath(staging / HOST_DIR, site), *(str(folder) for folder in folders)]
        (site / PTH_FILE).write_text("\n".join(lines) + "\n")
        if needed:
            _install_requirements(venv.parent.parent, staging, plugin_id, needed, pins)
        _install.record_install(staging, needed or _install.RequirementSet(plugin_id))
        (staging / _install.LAST_USED_FILE).touch()
        (staging / _install.STAMP_FILE).write_text(stamp)
        _install._make_readable(staging)
        if venv.exists():
            shutil.rmtree(venv)  # an unstamped leftover
        os.rename(staging, venv)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("created the worker env of {} in {:.1f}s", plugin_id, time.perf_counter() - started)


def _site_packages(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Lib" / "site-packages"
    found = sorted((venv / "lib").glob("python*/site-packages"))
    if not found:
        raise PluginInstallError(f"uv venv made {venv} without a site-packages folder")
    return found[0]


def _link_host(folder: Path, links: dict[str, Path]) -> None:
    folder.mkdir()
    for name, target in links.items():
        if target.exists():
            os.symlink(target, folder / name, target_is_directory=target.is_dir())


def _install_requirements(home: Path, staging: Path, plugin_id: str, needed: Any, pins: list[str]) -> None:
    """The plugin's requirements (its lock, hashes required, when it has one) and model packages, under the
    install cooldown (pepperpy/_cooldown.py). The pins are exempt from it: they are the versions the parent already
    runs, whatever their age."""
    from pepperpy import _install

    cooldown = _install.install_policy(home, needed).allowing(pin.partition("==")[0] for pin in pins)
    python = str(venv_python(staging))
    constraints = staging / "pepperpy-constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    common = ["pip", "install", "--python", python, "--no-config", "--no-python-downloads", "--compile-bytecode",
              *cooldown.uv_options()]
    explain = partial(_install.explain_failure, needed=needed, cooldown=cooldown, home=home)
    if needed.requirements:
        _run_uv(plugin_id, "install its requirements",
                [*common, "-c", str(constraints), *_install.requirement_arguments(needed)], pins, explain)
    if needed.model_packages:
        _run_uv(plugin_id, "install its model packages", [*common, "--no-deps", *map(str, needed.model_packages)],
                explain=explain)
    constraints.unlink()


def _run_uv(plugin_id: str, what: str, arguments: list[str], pins: list[str] | None = None,
            explain: Callable[[str], str | None] | None = None) -> None:
    """Run uv under the install watchdog (uv stops if this process dies); PluginInstallError with uv's words."""
    from pepperpy import _install

    command = [sys.executable, "-I", "-S", "-c", _install._WATCHDOG, _install._uv_binary(), *arguments]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, "UV_NO_PROGRESS": "1"})
        try:
            code = process.wait(timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            _install._stop(process)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if code == 0:
        return
    explained = explain(text) if explain is not None else None
    if explained is not None:
        raise PluginInstallError(explained)
    tail = "\n".join(text.strip().splitlines()[-15:]) or f"(no output; it ran over {INSTALL_TIMEOUT_S:.0f}s)"
    hint = "Check the requirement names and versions, and that the package index is reachable."
    if pins:
        hint += (
            " The worker reuses PepperPy's own dependencies at the parent's versions "
            f"({', '.join(pins)}); a plugin that needs other versions of those cannot be isolated in a process."
        )
    raise PluginInstallError(f"could not {what} for plugin {plugin_id} (isolation: process); uv said:\n{tail}\n{hint}")


__all__ = ["HOST_DIR", "PTH_FILE", "ensure_env", "env_path", "host_files", "is_ready", "stamp_of", "venv_python"]
