"""Making a plugin's requirements importable: strict parsing, a fast path, uv installs.

Requirements are data, never commands: each line must be a PEP 508 requirement
(an optional ``--hash=`` is allowed). A plugin's packages go into its own env dir
``<home>/envs/<plugin>-<hash>``, built in a temporary sibling ``.<env>.partial-<random>``,
made readable by every user, stamped, then renamed into place under a file lock so
concurrent processes install once. uv runs under a small watchdog that kills it when the
installing process dies, and the next install of the plugin removes what a killed one left.
Each env keeps a last-used record (refreshed at most hourly) for ``pepperpy plugins clean``.
Every uv run ignores releases younger than the install cooldown (``_cooldown.py``); a plugin's
``requirements.lock`` (``_lockfile.py``), when present, is what gets installed, hashes required.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from pepperpy import _cooldown, _envs, _lockfile
from pepperpy._paths import STAMP_FILE
from pepperpy._filelock import file_lock
from pepperpy._log import logger
from pepperpy._manifest import read_utf8
from pepperpy.errors import PluginDependencyError, PluginInstallError, PluginManifestError

LAST_USED_FILE = ".pepperpy-last-used"  # its mtime says when the env was last used
LAST_USED_EVERY_S = 3600.0  # the fast path refreshes the record at most this often
INSTALL_TIMEOUT_S = 600.0  # bounds one uv run and the wait for another process's install
ENV_NAME = _envs.ENV_NAME
Hashed = tuple[Requirement, tuple[str, ...]]  # a requirement and the values of its --hash options
_STAGING_NAME = re.compile(rf"\.(?P<env>{ENV_NAME.pattern})(?:\.partial)?-[a-z0-9_]+")  # older ones had no .partial
_NETWORK_HINTS = ("error sending request", "failed to fetch", "connection", "timed out", "dns error", "network")
_UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)  # explained by _storage_problem
_UV_STORAGE_WORDS = {  # how uv reports the first three
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
}
# Runs uv (argv[1:]) and kills it when this watchdog's stdin reaches EOF: the installing process
# holds the other end, so uv stops when that process dies, even by SIGKILL. On Linux uv also gets
# SIGKILL if the watchdog itself dies (PR_SET_PDEATHSIG; the watchdog has one thread, so it fires
# only when the watchdog exits).
_WATCHDOG = """
import os, subprocess, sys, threading
def die_with_parent():
    import ctypes
    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL,
                         preexec_fn=die_with_parent if sys.platform == "linux" else None)
def watch():
    while os.read(0, 4096):
        pass
    child.kill()
threading.Thread(target=watch, daemon=True).start()
try:
    code = child.wait()
finally:
    if child.poll() is None:
        child.kill()
        child.wait()
os._exit(code)
"""


@dataclass(frozen=True)
class RequirementSet:
    """What one plugin needs: its requirements and its data-only model packages."""

    plugin_id: str
    requirements: tuple[Requirement, ...] = ()
    model_packages: tuple[Requirement, ...] = ()
    requirements_file: Path | None = None
    lock_file: Path | None = None  # requirements.lock (pepperpy/_lockfile.py): install exactly it, hashes required
    lock_digest: str = ""  # the hash of the lock's bytes (pepperpy/_lockfile.py identity: one stat once read)
    hashed: tuple[_lockfile.Locked, ...] = ()  # the requirements file's name==version lines with --hash options

    def __bool__(self) -> bool:
        return bool(self.requirements or self.model_packages)

    @cached_property
    def locked(self) -> tuple[_lockfile.Locked, ...]:
        """The lock's entries, read once per set (the install checks them, then records their hashes)."""
        return () if self.lock_file is None else _lockfile.read_lock(self.lock_file, self.plugin_id)

    def required_hashes(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """``(canonical name, version) -> hashes`` an install of this set requires: the lock's when there is one,
        else the requirements file's."""
        return {(entry.name, entry.version): entry.hashes for entry in self.locked or self.hashed}

    def fingerprint(self) -> str:
        """Short hash of the requirements, the Python ABI and the platform."""
        parts = [str(r) for r in self.requirements] + ["--no-deps"] + [str(r) for r in self.model_packages]
        parts += [sys.implementation.cache_tag, sysconfig.get_platform()]
        if self.lock_digest:
            parts.append(f"lock={self.lock_digest}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


# Requirement lines: what uv would read as a path, an archive, a URL or an option is refused.
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)
_ARCHIVE_SUFFIXES = (
    ".whl", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz", ".tbz2", ".xz", ".txz", ".lz", ".tlz", ".lzma", ".zst",
    ".egg", ".exe", ".rar", ".7z",
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # line breaks uv and Python may split on
_COMMENT = re.compile(r"(?:^|\s)#.*", re.DOTALL)
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_MAX_LINE = 1000
_WRITE_INSTEAD = "write a package name from the index with an optional version instead, e.g. 'httpx>=0.27'"


def _quoted(line: str, limit: int = 80) -> str:
    """The line for an error message: stripped, cut to ``limit`` characters, escapes shown."""
    text = line.strip()
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def parse_requirement_line(line: str, where: str) -> Requirement | None:
    """Parse one requirement line (or a ``model_packages`` entry); None for blanks and comments."""
    parsed = parse_hashed_line(line, where)
    return None if parsed is None else parsed[0]


def parse_hashed_line(line: str, where: str) -> Hashed | None:
    """One requirement line and the values of its ``--hash`` options; None for blanks and comments.

    Only a PEP 508 requirement naming a package on the index is accepted, with optional
    ``--hash=`` options. Every line uv would read as a path, an archive, a URL, an option
    or an ``${VAR}`` reference is a PluginManifestError naming ``where`` (the plugin, file
    and line) and quoting at most this line, cut to 80 characters.
    """
    shown = _quoted(line)

    def refuse(problem: str, instead: str = _WRITE_INSTEAD) -> PluginManifestError:
        return PluginManifestError(f"{where}: {problem}: {shown}; {instead}")

    if len(line) > _MAX_LINE:
        raise refuse(f"the line is {len(line)} characters long, not a requirement")
    if _CONTROL.search(line):
        raise refuse("the line has a control character or a line break inside it", "remove it")
    text = _COMMENT.sub("", line).strip()
    if not text:
        return None
    if text.endswith("\\"):
        raise refuse("line continuations ('\\' at the end) are not allowed", "write each requirement on one line")
    text, hashes, malformed = _lockfile.split_hashes(text)
    if malformed is not None:
        raise refuse(f"the hash {malformed[:80]!r} is malformed: expected --hash=sha256:<64 hex digits>",
                     "write the hash uv pip compile --generate-hashes gives, or no --hash")
    if not text:
        raise refuse("a --hash option needs the package it is for on the same line", "write name==version --hash=...")
    if text.startswith("-") or re.search(r"\s-", text):
        option = next(word for word in text.split() if word.startswith("-"))
        raise refuse(f"option lines such as {option[:40]!r} are not allowed (only --hash=...)", "list packages only")
    if "$" in text:
        raise refuse("environment references such as ${VAR} are not allowed", "write the package name itself")
    name_part = text.split(";", 1)[0]
    looks_like_path = text.startswith((".", "~")) or "/" in name_part or "\\" in name_part
    if looks_like_path or "://" in text or "@" in name_part or _URL_SCHEME.match(text):
        raise refuse("URLs and local paths are not allowed (this is not a PEP 508 requirement naming a package)")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else "invalid"
        raise refuse(f"not a PEP 508 requirement ({reason})") from None
    if requirement.url:
        raise refuse("URLs and local paths are not allowed")
    name = requirement.name
    if not _REQUIREMENT_NAME.fullmatch(name) or name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise refuse(
            "URLs and local paths are not allowed, and this is a wheel or archive file name, which uv would install "
            "from disk (running an archive's build code) instead of a package from the index",
            f"write the package's name and version instead, e.g. {_package_for_file(name)!r}",
        )
    return requirement, hashes


def _package_for_file(filename: str) -> str:
    """``evilmod==1.0`` for ``evilmod-1.0-py3-none-any.whl`` or ``evilmod-1.0.tar.gz``; a guess for an example."""
    stem = filename
    while stem.lower().endswith(_ARCHIVE_SUFFIXES):
        stem = stem.rsplit(".", 1)[0]
    parts = stem.split("-")
    if len(parts) >= 2 and parts[1][:1].isdigit():
        return f"{parts[0]}=={parts[1]}"[:60]
    return (parts[0] or "httpx")[:60]


def parse_requirements_file(path: Path, plugin_id: str | None = None) -> tuple[Requirement, ...]:
    """The requirements listed in ``path`` (none when there is no such file); see ``read_requirements_file``."""
    return tuple(requirement for requirement, _hashes in read_requirements_file(path, plugin_id))


def read_requirements_file(path: Path, plugin_id: str | None = None) -> tuple[Hashed, ...]:
    """Each requirement listed in ``path`` with its ``--hash`` values (none when there is no such file).

    Lines are split on ``\\n`` only (``\\r\\n`` is fine), as uv splits them; any bad line is a
    PluginManifestError naming the plugin (``plugin_id``, when given), the file and the line number.
    """
    prefix = f"plugin {plugin_id}: " if plugin_id else ""
    if not path.is_file():
        return ()
    try:
        text = read_utf8(path)
    except PluginManifestError as exc:
        raise PluginManifestError(f"{prefix}{exc}") from None
    requirements = []
    for number, line in enumerate(text.split("\n"), 1):
        parsed = parse_hashed_line(line.removesuffix("\r"), f"{prefix}{path}:{number}")
        if parsed is not None:
            requirements.append(parsed)
    return tuple(requirements)


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


def installed_version(name: str) -> str | None:
    """The version of the distribution ``name`` this process would import, or None."""
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    folder = getattr(distribution, "_path", None)  # name-version.dist-info: no need to parse METADATA
    if folder is not None and folder.name.endswith(".dist-info"):
        version = folder.name[: -len(".dist-info")].partition("-")[2]
        if version:
            return version
    return distribution.version


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
                f"plugin {needed.plugin_id} needs {requirement}, but {loaded_from(requirement.name, version)} and "
                f"would shadow it; install a version that satisfies both, or run {needed.plugin_id} in a worker "
                'process with its own virtual environment: add "isolation": "process" to its plugin.json, or pass '
                'isolation="process" in its config'
            )
    return missing


def requirement_set(plugin_id: str, folder: Path, manifest: Any) -> RequirementSet:
    """What the plugin in ``folder`` asks for: its requirements file and its manifest's model packages."""
    requirements_file = folder / manifest.requirements
    where = f"plugin {plugin_id}: {folder / 'plugin.json'} model_packages"
    model_packages = (parse_requirement_line(line, where) for line in manifest.model_packages)
    listed = read_requirements_file(requirements_file, plugin_id=plugin_id)
    lock = _lockfile.lock_path(folder)
    digest = _lockfile.identity(lock, plugin_id) if listed else ""
    hashed = (_lockfile.pinned(requirement, hashes) for requirement, hashes in listed)
    return RequirementSet(
        plugin_id=plugin_id,
        requirements=tuple(requirement for requirement, _hashes in listed),
        model_packages=tuple(r for r in model_packages if r is not None),
        requirements_file=requirements_file,
        lock_file=lock if digest else None,
        lock_digest=digest,
        hashed=tuple(entry for entry in hashed if entry is not None),
    )


def loaded_from(distribution: str, version: str) -> str:
    """Who brought the loaded ``distribution`` into this process, for a version-conflict error: another
    plugin's env (``<home>/envs/<plugin>-<hash>``, named by its plugin id) or this environment, with its folder."""
    try:
        folder = Path(str(importlib.metadata.distribution(distribution).locate_file(""))).resolve()
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} {version} is already loaded in this process"
    plugin_id = _envs.plugin_of(folder)
    if plugin_id is not None:
        return f"{distribution} {version} is already loaded from the env of plugin {plugin_id} ({folder})"
    return f"{distribution} {version} is already installed in this environment ({folder})"


def env_dir(home: Path, needed: RequirementSet) -> Path:
    return _envs.env_folder(home, needed.plugin_id, needed.fingerprint())


def is_stamped(directory: Path, needed: RequirementSet) -> bool:
    """True when ``directory`` holds a complete install of ``needed``; the env's use is then noted (note_use)."""
    stamped = _envs.is_installed(directory, needed.fingerprint())
    if stamped:
        note_use(directory)
    return stamped


def note_use(directory: Path) -> None:
    """Refresh the env's last-used record when it is over an hour old: one stat, no write when fresh."""
    record = directory / LAST_USED_FILE
    try:
        if time.time() - record.stat().st_mtime < LAST_USED_EVERY_S:
            return
    except FileNotFoundError:
        pass  # an env installed before records existed: create it
    except OSError:
        return
    try:
        record.touch()
    except OSError:
        pass  # a read-only home, or an env another user installed: it still works, unrecorded


def last_used(directory: Path) -> float | None:
    """When the env was last used: its record's mtime, else its stamp's; None for an unstamped folder."""
    for name in (LAST_USED_FILE, STAMP_FILE):
        try:
            return (directory / name).stat().st_mtime
        except OSError:
            continue
    return None


def staging_target(name: str) -> str | None:
    """The env dir name that the install folder ``name`` (``.<env>.partial-<random>``) was building, else None."""
    match = _STAGING_NAME.fullmatch(name)
    return match["env"] if match else None


def lock_path(env: Path) -> Path:
    """The lock file an install of ``env`` (or anything removing it) holds."""
    return env.with_name(env.name + ".lock")


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
def _run_uv(arguments: list[str], timeout_s: float, lock_fd: int | None = None) -> None:
    """Run ``uv pip install`` under the watchdog; ``lock_fd`` stays held by the watchdog until uv is gone."""
    command = [_uv_binary(), "pip", "install", "--python", sys.executable, "--no-config", "--no-python-downloads"]
    command += ["--compile-bytecode"]  # else imports recompile every time where PYTHONDONTWRITEBYTECODE=1
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    watchdog = [sys.executable, "-I", "-S", "-c", _WATCHDOG]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            watchdog + command + arguments, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
            env=env, pass_fds=() if lock_fd is None else (lock_fd,),
        )
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise _NetworkError(f"uv did not finish within {timeout_s:.0f}s") from exc
        finally:
            _stop(process)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if returncode != 0:
        if any(hint in text.lower() for hint in _NETWORK_HINTS) and _storage_errno(text) is None:
            raise _NetworkError(text)
        raise subprocess.CalledProcessError(returncode, command, output=text)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Close the watchdog's stdin (it kills uv if still running) and wait for it."""
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _say(message: str) -> None:
    if sys.stderr.isatty():
        print(f"pepperpy: {message}", file=sys.stderr, flush=True)


def install(home: Path, needed: RequirementSet, timeout_s: float = INSTALL_TIMEOUT_S) -> Path:
    """Install ``needed`` into its env dir (once, under a lock shared by all processes) and return the dir."""
    target = env_dir(home, needed)
    try:
        _make_envs_dir(target.parent)
        with file_lock(lock_path(target), timeout_s) as lock_fd:
            _remove_leftovers(target)
            if not is_stamped(target, needed):
                _install_fresh(target, needed, timeout_s, lock_fd)
    except TimeoutError as exc:
        raise PluginInstallError(f"{needed.plugin_id}: another process is still installing it: {exc}") from None
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise PluginInstallError(_storage_problem(home, needed, exc.errno, str(exc))) from exc
    return target


def _make_envs_dir(envs: Path) -> None:
    """Create ``<home>/envs`` readable by every user (0755, whatever the umask), like site-packages."""
    try:
        envs.mkdir(parents=True)
    except FileExistsError:
        return
    os.chmod(envs, 0o755)


def _remove_leftovers(target: Path) -> None:
    """Delete the folders of interrupted installs of ``target``: its lock is held, so no live process builds them."""
    for entry in target.parent.iterdir():
        if staging_target(entry.name) == target.name:
            logger.info("removing {}, left by an interrupted install", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _install_fresh(target: Path, needed: RequirementSet, timeout_s: float, lock_fd: int) -> None:
    """Build the env in a temporary sibling, stamp it, then rename it into place."""
    started = time.perf_counter()
    logger.info("installing requirements of {} into {}", needed.plugin_id, target)
    _say(f"installing {needed.plugin_id}'s requirements (first use only)...")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        _install_into(staging, needed, timeout_s, lock_fd)
        record_install(staging, needed)
        (staging / LAST_USED_FILE).touch()
        (staging / STAMP_FILE).write_text(needed.fingerprint())
        _make_readable(staging)
        if target.exists():
            shutil.rmtree(target)  # an unstamped leftover of an interrupted older install
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - started
    logger.info("installed requirements of {} in {:.1f}s", needed.plugin_id, elapsed)
    _say(f"installed {needed.plugin_id}'s requirements in {elapsed:.1f}s")


def record_install(staging: Path, needed: RequirementSet) -> None:
    """Write the env's install record (``pepperpy/_install_record.py``): its distributions, hashes, ``.pth`` files,
    and the cooldown the install ran under."""
    from pepperpy import _install_record

    cooldown = _cooldown.cooldown_for(staging.parent.parent, needed.plugin_id)  # <home>/envs/<staging>
    policy = {"cooldown": cooldown.duration or "off", "cooldown_source": cooldown.source,
              "allow_newer": list(cooldown.allowed)}
    _install_record.write(staging, needed.plugin_id, needed.required_hashes(), policy)


def _make_readable(root: Path) -> None:
    """Modes like site-packages: folders 0755, files 0644 (0755 when executable), whatever the umask."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            wanted = 0o755 if mode & 0o111 else 0o644
            if stat.S_ISREG(mode) and stat.S_IMODE(mode) != wanted:
                os.chmod(path, wanted)


def requirement_arguments(needed: RequirementSet) -> list[str]:
    """uv's arguments for the plugin's requirements: its lock with hashes required (checked against its requirements
    first), else its requirements file."""
    if needed.lock_file is None:
        return ["-r", str(needed.requirements_file)]
    check_lock(needed)
    return ["--require-hashes", "-r", str(needed.lock_file)]


def check_lock(needed: RequirementSet) -> None:
    """Refuse (PluginManifestError naming the lock) a plugin's lock that cannot be read or does not match its
    requirements; nothing when it has no lock. Installs nothing (``plugins check`` and ``doctor`` run it too)."""
    if needed.lock_file is None:
        return
    _lockfile.check(needed.plugin_id, needed.requirements, needed.locked, needed.lock_file, needed.requirements_file)


def explain_failure(output: str, needed: RequirementSet, cooldown: _cooldown.Cooldown, home: Path) -> str | None:
    """A cooldown or hash-mismatch failure of uv, said with the plugin, the package and what to do; else None."""
    explained = _cooldown.explain(output, needed.plugin_id, cooldown, home)
    if explained is None and needed.lock_file is not None:
        explained = _lockfile.explain_mismatch(output, needed.plugin_id, needed.lock_file)
    return explained


def install_policy(home: Path, needed: RequirementSet) -> _cooldown.Cooldown:
    """The cooldown for this install; warns when uv may use sources it cannot check."""
    cooldown = _cooldown.cooldown_for(home, needed.plugin_id)
    unchecked = _cooldown.unchecked_sources(needed.plugin_id, cooldown) if needed.lock_file is None else None
    if unchecked is not None:
        warnings.warn(unchecked, RuntimeWarning, stacklevel=3)
        logger.warning(unchecked)
    return cooldown


def _install_into(staging: Path, needed: RequirementSet, timeout_s: float, lock_fd: int) -> None:
    home = staging.parent.parent  # <home>/envs/<staging>
    cooldown = install_policy(home, needed)
    steps: list[tuple[str, list[str]]] = []
    if needed.requirements:
        steps.append(("requirements", ["--target", str(staging), *requirement_arguments(needed)]))
    if needed.model_packages:
        packages = [str(r) for r in needed.model_packages]
        steps.append(("model packages", ["--target", str(staging), "--no-deps", *packages]))
    for label, arguments in steps:
        _say(f"  uv pip install {label} for {needed.plugin_id}")
        try:
            _run_uv(arguments + cooldown.uv_options(), timeout_s, lock_fd)
        except (_NetworkError, subprocess.CalledProcessError) as exc:
            output = (exc.output if isinstance(exc, subprocess.CalledProcessError) else str(exc)) or ""
            number = _storage_errno(output)
            if number is not None:
                raise PluginInstallError(_storage_problem(home, needed, number, _tail(output, 3))) from None
            explained = explain_failure(output, needed, cooldown, home)
            if explained is not None:
                raise PluginInstallError(explained) from None
            names = ", ".join(str(r) for r in needed.requirements + needed.model_packages)
            raise PluginInstallError(
                f"could not install the {label} of plugin {needed.plugin_id} ({names}); uv said:\n"
                f"{_tail(output)}\nCheck the requirement names and versions, and that the package index is reachable."
            ) from None


def _storage_errno(output: str) -> int | None:
    """The errno behind a uv failure to write (disk full, read-only file system), if that is what it was."""
    lowered = output.lower()
    return next((number for words, number in _UV_STORAGE_WORDS.items() if words in lowered), None)


def _storage_problem(home: Path, needed: RequirementSet, number: int, detail: str) -> str:
    """Say why nothing could be written under ``home`` and what to do; installed plugins keep working."""
    if number in (errno.ENOSPC, errno.EDQUOT):
        problem, fix = f"the disk holding {home} is full", "free some space on it"
    elif number == errno.EROFS:
        problem, fix = f"{home} is on a read-only file system", f"make {home} writable"
    else:  # EACCES, EPERM
        problem, fix = f"this user may not write in {home}", f"make {home} writable for this user"
    return (
        f"could not install the requirements of plugin {needed.plugin_id}: {problem} ({detail}). "
        f"{fix.capitalize()}, or use another home (PEPPERPY_HOME, or PluginManager(home=...)); "
        "plugins already installed there keep working."
    )


__all__ = [
    "ENV_NAME",
    "RequirementSet",
    "check_lock",
    "env_dir",
    "install",
    "is_stamped",
    "last_used",
    "loaded_from",
    "lock_path",
    "note_use",
    "staging_target",
    "missing_from_running_env",
    "parse_requirement_line",
    "parse_requirements_file",
]
