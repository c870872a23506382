"""A plugin's ``requirements.lock``: the exact, hash-checked set its requirements resolve to.

Written by ``pepperpy plugins lock`` (``uv pip compile --generate-hashes --universal``, under the
install cooldown). When a plugin folder has one, its requirements are installed from it with
``--require-hashes``; ``check`` first refuses a lock that does not cover requirements.txt (every
requirement that applies here must be pinned in the lock, at a version it allows; names compared
canonically). Uv reports a file whose hash differs; ``explain_mismatch`` names the plugin and package.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pepperpy._manifest import read_small_file, read_utf8
from pepperpy.errors import PluginManifestError

LOCK_FILE = "requirements.lock"
_HASH_OPTION = re.compile(r"\s--hash(?:=|\s+)(?P<value>\S*)")  # `--hash=v` or `--hash v`, as uv reads both
WELL_FORMED_HASH = re.compile(r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}")
_COMMENT = re.compile(r"(?:^|\s)#.*")
_MISMATCH = re.compile(r"Hash mismatch for `(?P<name>[^`=]+)==(?P<version>[^`]+)`")
_NO_HASH = re.compile(r"no trusted hash was provided for: `(?P<name>[^`]+)`")


@dataclass(frozen=True)
class Locked:
    """One pinned entry: ``name==version`` (name canonical), optional marker, its hashes."""

    requirement: Requirement
    version: str
    hashes: tuple[str, ...]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    def applies(self) -> bool:
        return self.requirement.marker is None or self.requirement.marker.evaluate()


def lock_path(folder: Path) -> Path:
    return folder / LOCK_FILE


def identity(path: Path, plugin_id: str) -> str:
    """The SHA-256 of the lock's bytes, for the env's fingerprint; "" when there is none. Remembered for the file's
    stat (size, times, inode), so readiness stays one stat after the first read in a process; a byte-identical
    rewrite (``plugins lock`` again, a ``git checkout``) keeps the env, any changed byte makes a new one."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return ""
    if not stat.S_ISREG(status.st_mode):
        raise PluginManifestError(f"plugin {plugin_id}: {path} is not a regular file; remove it, or write the lock "
                                  f"with `pepperpy plugins lock {plugin_id}`")
    try:
        return _content_hash(str(path), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
    except PluginManifestError as exc:
        raise PluginManifestError(f"plugin {plugin_id}: {exc}") from None


@lru_cache(maxsize=256)
def _content_hash(path: str, *_status: int) -> str:
    """The hash of the file's bytes; ``_status`` only keys the cache (a changed file is read again)."""
    return hashlib.sha256(read_small_file(path)).hexdigest()


def read_lock(path: Path, plugin_id: str) -> tuple[Locked, ...]:
    """The entries of ``path``; PluginManifestError naming the file and line for anything but ``name==version``
    lines with ``--hash=`` options (continued with ``\\``) and comments."""
    entries = []
    text = read_utf8(path).replace("\r\n", "\n")
    for number, line in _logical_lines(text):
        body = _COMMENT.sub("", line).strip()
        if not body:
            continue
        where = f"plugin {plugin_id}: {path}:{number}"
        spec, hashes, malformed = split_hashes(body)
        if malformed is not None:
            raise PluginManifestError(
                f"{where}: the hash {malformed[:80]!r} is malformed: expected --hash=sha256:<64 hex digits>; "
                f"write the lock again with `pepperpy plugins lock {plugin_id}`"
            )
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            raise PluginManifestError(f"{where}: not a pinned requirement: {spec[:80]!r}; "
                                      f"write the lock again with `pepperpy plugins lock {plugin_id}`") from None
        entry = pinned(requirement, hashes)
        if entry is None:
            raise PluginManifestError(
                f"{where}: every lock line must be name==version with --hash=sha256:... options, not {spec[:80]!r}; "
                f"write the lock again with `pepperpy plugins lock {plugin_id}`"
            )
        entries.append(entry)
    return tuple(entries)


def split_hashes(line: str) -> tuple[str, tuple[str, ...], str | None]:
    """``line`` without its ``--hash`` options, their values, and the first value that is not a well-formed hash
    (None when all are). The one reading of ``--hash`` for requirements files and locks."""
    hashes = tuple(m["value"] for m in _HASH_OPTION.finditer(" " + line))
    malformed = next((h for h in hashes if not WELL_FORMED_HASH.fullmatch(h)), None)
    return _HASH_OPTION.sub("", " " + line).strip(), hashes, malformed


def pinned(requirement: Requirement, hashes: tuple[str, ...]) -> Locked | None:
    """The entry for a ``name==version`` requirement (no URL) with hashes; None for anything else."""
    pins = [s.version for s in requirement.specifier if s.operator == "=="]
    if requirement.url or len(requirement.specifier) != 1 or not pins or not hashes:
        return None
    return Locked(requirement, pins[0], hashes)


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, the line with its ``\\`` continuations joined)."""
    pending: list[str] = []
    start = 1
    for number, line in enumerate(text.split("\n"), 1):
        if not pending:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\") and not stripped.lstrip().startswith("#"):
            pending.append(stripped[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def check(plugin_id: str, requirements: Iterable[Requirement], locked: Iterable[Locked], path: Path,
          requirements_file: Path | None) -> None:
    """Refuse (PluginManifestError naming ``path``) a lock that does not pin every requirement that applies here
    at a version the requirement allows."""
    pinned: dict[str, list[str]] = {}
    for entry in locked:
        if entry.applies():
            pinned.setdefault(entry.name, []).append(entry.version)
    source = requirements_file.name if requirements_file is not None else "the requirements"
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        versions = pinned.get(canonicalize_name(requirement.name), [])
        if not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
            found = f"pins {requirement.name}=={versions[0]}" if versions else f"does not list {requirement.name}"
            raise PluginManifestError(
                f"plugin {plugin_id}: {path} does not match {source}: {source} asks for {requirement}, but the lock "
                f"{found}. Refresh the lock with `pepperpy plugins lock {plugin_id}` (or delete it to install "
                "without one)."
            )


def explain_mismatch(output: str, plugin_id: str, path: Path) -> str | None:
    """The error for uv output saying a downloaded file's hash is not the locked one (or a package has none)."""
    match = _MISMATCH.search(output)
    if match is not None:
        return (
            f"plugin {plugin_id}: the file the package index serves for {match['name']} {match['version']} does not "
            f"have the hash recorded in {path}; it was replaced after the lock was made, or this index is not the one "
            "the lock was made from. Nothing was installed. If you trust the new file, refresh the lock: "
            f"`pepperpy plugins lock {plugin_id}`."
        )
    match = _NO_HASH.search(output)
    if match is not None:
        return (
            f"plugin {plugin_id}: {path} has no hash for {match['name']}, which its packages need here (a lock made "
            f"for another platform or Python?). Nothing was installed. Refresh it: `pepperpy plugins lock {plugin_id}`."
        )
    return None


__all__ = ["LOCK_FILE", "WELL_FORMED_HASH", "Locked", "check", "explain_mismatch", "identity", "lock_path",
           "pinned", "read_lock", "split_hashes"]
