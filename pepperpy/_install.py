"""Making a plugin's requirements importable: strict parsing, a fast path, uv installs.

Requirements are data, never commands: each line must be a PEP 508 requirement
(an optional ``--hash=`` is allowed). A plugin's packages go into its own env dir
``<home>/envs/<plugin>-<hash>``, built in a temporary sibling, stamped, then
renamed into place under a file lock so concurrent processes install once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from pepperpy._filelock import file_lock
from pepperpy._log import logger
from pepperpy._manifest import read_utf8
from pepperpy.errors import PluginDependencyError, PluginInstallError, PluginManifestError

STAMP_FILE = ".pepperpy-stamp"
INSTALL_TIMEOUT_S = 600.0  # bounds one uv run and the wait for another process's install
_HASH_OPTION = re.compile(r"\s+--hash=[\w:]+")
_NETWORK_HINTS = ("error sending request", "failed to fetch", "connection", "timed out", "dns error", "network")


@dataclass(frozen=True)
class RequirementSet:
    """What one plugin needs: its requirements and its data-only model packages."""

    plugin_id: str
    requirements: tuple[Requirement, ...] = ()
    model_packages: tuple[Requirement, ...] = ()
    requirements_file: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.requirements or self.model_packages)

    def fingerprint(self) -> str:
        """Short hash of the requirements, the Python ABI and the platform."""
        parts = [str(r) for r in self.requirements] + ["--no-deps"] + [str(r) for r in self.model_packages]
        parts += [sys.implementation.cache_tag, sysconfig.get_platform()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def parse_requirement_line(line: str, where: str) -> Requirement | None:
    """Parse one line; None for blanks and comments; PluginManifestError for anything else."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith("#"):
        return None
    text = _HASH_OPTION.sub("", text)
    if text.startswith("-"):
        raise PluginManifestError(f"{where}: option lines such as {text.split()[0]!r} are not allowed; list packages only")
    if "$" in text:
        raise PluginManifestError(f"{where}: environment references are not allowed in {text!r}; write the package name")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise PluginManifestError(f"{where}: {text!r} is not a PEP 508 requirement ({exc})") from None
    if requirement.url:
        raise PluginManifestError(f"{where}: URLs and local paths are not allowed ({text!r}); name a package from the index")
    return requirement


def parse_requirements_file(path: Path) -> tuple[Requirement, ...]:
    if not path.is_file():
        return ()
    lines = read_utf8(path).splitlines()
    parsed = (parse_requirement_line(line, f"{path}:{number}") for number, line in enumerate(lines, 1))
    return tuple(requirement for requirement in parsed if requirement is not None)


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_from_running_env(needed: RequirementSet) -> list[Requirement]:
    """Requirements the running environment does not provide; a conflicting version raises."""
    missing = []
    for requirement in needed.requirements + needed.model_packages:
        if not _applies(requirement):
            continue
        version = installed_version(requirement.name)
        if version is None:
            missing.append(requirement)
        elif not requirement.specifier.contains(version, prereleases=True):
            raise PluginDependencyError(
                f"plugin {needed.plugin_id} needs {requirement} but {requirement.name} {version} is installed in "
                "this environment and would shadow it; install a version that satisfies both, "
                "or use the plugin from a separate virtual environment"
            )
    return missing


def env_dir(home: Path, needed: RequirementSet) -> Path:
    return home / "envs" / f"{needed.plugin_id.replace('/', '-')}-{needed.fingerprint()}"


def is_stamped(directory: Path, needed: RequirementSet) -> bool:
    try:
        return (directory / STAMP_FILE).read_text() == needed.fingerprint()
    except OSError:
        return False


class _NetworkError(Exception):
    """uv failed in a way that may pass: worth another try."""


def _uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


@retry(
    retry=retry_if_exception_type(_NetworkError),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=1, max=8),
    reraise=True,
)
def _run_uv(arguments: list[str], timeout_s: float) -> None:
    command = [_uv_binary(), "pip", "install", "--python", sys.executable, "--no-config", "--no-python-downloads"]
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    try:
        done = subprocess.run(command + arguments, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise _NetworkError(f"uv did not finish within {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        output = (done.stderr or "") + (done.stdout or "")
        if any(hint in output.lower() for hint in _NETWORK_HINTS):
            raise _NetworkError(output)
        raise subprocess.CalledProcessError(done.returncode, command, output=output)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _say(message: str) -> None:
    if sys.stderr.isatty():
        print(f"pepperpy: {message}", file=sys.stderr, flush=True)


def install(home: Path, needed: RequirementSet, timeout_s: float = INSTALL_TIMEOUT_S) -> Path:
    """Install ``needed`` into its env dir (once, under a lock shared by all processes) and return the dir."""
    target = env_dir(home, needed)
    try:
        with file_lock(target.with_name(target.name + ".lock"), timeout_s):
            if not is_stamped(target, needed):
                _install_fresh(target, needed, timeout_s)
    except TimeoutError as exc:
        raise PluginInstallError(f"{needed.plugin_id}: another process is still installing it: {exc}") from None
    return target


def _install_fresh(target: Path, needed: RequirementSet, timeout_s: float) -> None:
    """Build the env in a temporary sibling, stamp it, then rename it into place."""
    started = time.perf_counter()
    logger.info("installing requirements of {} into {}", needed.plugin_id, target)
    _say(f"installing {needed.plugin_id}'s requirements (first use only)...")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _install_into(staging, needed, timeout_s)
        (staging / STAMP_FILE).write_text(needed.fingerprint())
        if target.exists():
            shutil.rmtree(target)  # an unstamped leftover of an interrupted older install
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - started
    logger.info("installed requirements of {} in {:.1f}s", needed.plugin_id, elapsed)
    _say(f"installed {needed.plugin_id}'s requirements in {elapsed:.1f}s")


def _install_into(staging: Path, needed: RequirementSet, timeout_s: float) -> None:
    steps: list[tuple[str, list[str]]] = []
    if needed.requirements:
        steps.append(("requirements", ["--target", str(staging), "-r", str(needed.requirements_file)]))
    if needed.model_packages:
        packages = [str(r) for r in needed.model_packages]
        steps.append(("model packages", ["--target", str(staging), "--no-deps", *packages]))
    for label, arguments in steps:
        _say(f"  uv pip install {label} for {needed.plugin_id}")
        try:
            _run_uv(arguments, timeout_s)
        except (_NetworkError, subprocess.CalledProcessError) as exc:
            output = exc.output if isinstance(exc, subprocess.CalledProcessError) else str(exc)
            names = ", ".join(str(r) for r in needed.requirements + needed.model_packages)
            raise PluginInstallError(
                f"could not install the {label} of plugin {needed.plugin_id} ({names}); uv said:\n"
                f"{_tail(output or '')}\nCheck the requirement names and versions, and that the package index is reachable."
            ) from None


__all__ = [
    "RequirementSet",
    "env_dir",
    "install",
    "is_stamped",
    "missing_from_running_env",
    "parse_requirement_line",
    "parse_requirements_file",
]
