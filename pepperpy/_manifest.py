"""plugin.json: the manifest model and how a folder's manifest is read and checked."""

from __future__ import annotations

import codecs
import difflib
import json
import os
import re
import stat
from functools import lru_cache
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pepperpy.errors import PluginManifestError

MANIFEST_FILE = "plugin.json"
# Identifiers are matched whole (``fullmatch``): ``$`` would also accept a trailing newline.
_ENTRY_POINT = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", re.ASCII)
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_-]*")
_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an option name, e.g. api_key
_SUFFIX = re.compile(r"\.[a-z0-9][a-z0-9_+-]*")  # a loader's file suffix, e.g. .pdf
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an environment variable name, e.g. OPENAI_API_KEY
MAX_FILE_BYTES = 1 << 20  # plugin.json and requirements files are a few KB; more is a mistake or an attack
_SAVE_AS_UTF8 = "save it as UTF-8 (in most editors: Save As, Encoding: UTF-8)"


class PluginAlias(BaseModel):
    """Another name for a plugin with preset config, e.g. ``openrouter`` for ``openai``."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    description: str = ""

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_env(value)


class PluginDependency(BaseModel):
    """One entry of plugin.json's ``dependencies``: another plugin this one uses (see ``pepperpy._dependencies``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str  # the category, e.g. "embeddings"; also the key in ``provider.dependencies``
    provider: str | None = None  # None: the facade's provider of that category, else its default
    dependency_type: Literal["required", "optional", "runtime", "enhances"] = "required"
    config: dict[str, Any] = Field(default_factory=dict)  # options for an instance of its own

    @field_validator("type")
    @classmethod
    def _category(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"{_shown(value)} must be a category such as 'embeddings'")
        return value

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"{_shown(value)} must be a provider name such as 'local'")
        return value


class PluginManifest(BaseModel):
    """The contents of a plugin folder's plugin.json. Unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    category: str
    provider_name: str
    description: str = ""
    entry_point: str
    author: str = ""
    pepperpy_compatibility: str
    requirements: str = "requirements.txt"
    model_packages: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, PluginAlias] = Field(default_factory=dict)
    dependencies: list[PluginDependency] = Field(default_factory=list)
    isolation: Literal["inprocess", "process"] = "inprocess"  # "process": a worker process (pepperpy/_isolation)
    suffixes: list[str] = Field(default_factory=list)  # a loader's file suffixes, e.g. [".pdf"] (pepperpy/_loaders.py)

    @field_validator("name", "category", "provider_name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"{_shown(value)} must be lowercase letters, digits, '_' or '-', starting with a letter")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion:
            raise ValueError(f"{_shown(value)} is not a version such as '0.1.0'") from None
        if value != value.strip():
            raise ValueError(f"{_shown(value)} has spaces or line breaks around it; write it as {_shown(value.strip())}")
        return value

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if not value.strip() or "\x00" in value or value.startswith("/") or ".." in parts:
            raise ValueError(
                f"{_shown(value)} must name a file inside the plugin folder, such as 'requirements.txt'"
            )
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, PluginAlias]) -> dict[str, PluginAlias]:
        for alias in value:
            if not _IDENTIFIER.fullmatch(alias):
                raise ValueError(
                    f"alias {_shown(alias)} must be lowercase letters, digits, '_' or '-', starting with a letter"
                )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_env(value)

    @field_validator("suffixes")
    @classmethod
    def _suffixes(cls, value: list[str]) -> list[str]:
        for suffix in value:
            if not _SUFFIX.fullmatch(suffix):
                raise ValueError(f"suffix {_shown(suffix)} must be a lowercase file suffix such as '.pdf'")
        return value

    @field_validator("pepperpy_compatibility")
    @classmethod
    def _specifier(cls, value: str) -> str:
        _specifier_set(value)
        return value

    @field_validator("entry_point")
    @classmethod
    def _entry_point(cls, value: str) -> str:
        if "/" in value or "\\" in value or value.startswith("."):
            raise ValueError(
                f"{_shown(value)} points outside the plugin folder; name a module inside it, as 'provider:ClassName'"
            )
        if not _ENTRY_POINT.fullmatch(value):
            raise ValueError(f"{_shown(value)} must look like 'provider:ClassName' (a module in the folder, a class)")
        return value

    @property
    def id(self) -> str:
        return f"{self.category}/{self.provider_name}"

    @property
    def entry_module(self) -> str:
        return self.entry_point.split(":", 1)[0]

    @property
    def entry_class(self) -> str:
        return self.entry_point.split(":", 1)[1]


@lru_cache(maxsize=256)
def _specifier_set(value: str) -> SpecifierSet:
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        raise ValueError(f"{_shown(value)} is not a version specifier such as '>=0.1.0'") from None


def _shown(value: str, limit: int = 80) -> str:
    """``value`` quoted for an error message, cut to about ``limit`` characters."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _check_env(value: dict[str, str]) -> dict[str, str]:
    """An ``env`` mapping: option names to environment variable names, both plain identifiers."""
    for option, variable in value.items():
        if not _OPTION.fullmatch(option):
            raise ValueError(f"option name {_shown(option)} must be a Python identifier such as 'api_key'")
        if not _VARIABLE.fullmatch(variable):
            raise ValueError(
                f"environment variable {_shown(variable)} for option {option!r} must be letters, digits and '_', "
                "such as 'OPENAI_API_KEY'"
            )
    return value


def entry_file(folder: str, manifest: PluginManifest) -> str:
    """The entry-point module's file path inside ``folder``."""
    return os.path.join(folder, *manifest.entry_module.split(".")) + ".py"


def field_problem(error: dict[str, Any], fields: list[str]) -> str:
    """One pydantic validation error of a manifest in words (an unknown field with the close one of ``fields``)."""
    where = _shown(".".join(str(part) for part in error["loc"]))[1:-1]
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1])[:100], fields, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known fields: {', '.join(fields)}"
        return f"unknown field '{where}'{hint}"
    if error["type"] == "missing":
        return f"missing field '{where}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"field '{where}': {message}"


@lru_cache(maxsize=8)
def _version(value: str) -> Version:
    return Version(value)


def read_utf8(path: str | os.PathLike[str]) -> str:
    """The text of a plugin file (plugin.json, requirements.txt): UTF-8, with or without a byte-order mark.

    Anything else is refused with the file's name rather than guessed: UTF-16 (with or
    without a byte-order mark, which shows as NUL bytes) and Latin-1/Windows-1252 bytes.
    """
    raw = read_small_file(path)
    if raw.startswith(codecs.BOM_UTF8):
        return _decode_utf8(path, raw[len(codecs.BOM_UTF8) :])
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        raise PluginManifestError(f"{path}: the file is UTF-16 or UTF-32 (it has a byte-order mark); {_SAVE_AS_UTF8}")
    if b"\x00" in raw:
        raise PluginManifestError(f"{path}: the file has NUL bytes (UTF-16 without byte-order mark?); {_SAVE_AS_UTF8}")
    return _decode_utf8(path, raw)


def read_small_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``; a FIFO or device is refused, never waited on."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PluginManifestError(f"{path}: cannot read it ({reason}); make the file readable") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise PluginManifestError(f"{path}: not a regular file (a FIFO, device or folder); replace it with a file")
        chunks, wanted = [], min(status.st_size, MAX_FILE_BYTES) + 1  # sized to the file, not to the limit
        while wanted > 0:
            chunk = os.read(descriptor, wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        raise PluginManifestError(f"{path}: cannot read it ({exc.strerror or exc}); make the file readable") from None
    finally:
        os.close(descriptor)
    if len(raw) > MAX_FILE_BYTES:
        raise PluginManifestError(
            f"{path}: the file is larger than {MAX_FILE_BYTES // 1024} KB; a plugin file holds a few lines, "
            "check that it is the right file"
        )
    return raw


def _decode_utf8(path: str | os.PathLike[str], raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PluginManifestError(
            f"{path}: line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x}: Latin-1 or Windows-1252?); {_SAVE_AS_UTF8}"
        ) from None


def read_manifest(folder: str, pepperpy_version: str) -> PluginManifest:
    """Read and check ``folder/plugin.json`` (``folder`` is a real path); raise PluginManifestError if wrong."""
    path = os.path.join(folder, MANIFEST_FILE)
    text = read_utf8(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:  # the message says where, never quotes the file
        comment = next((c for c in ("//", "/*", "#") if text.startswith(c, exc.pos)), None)
        if comment is not None:
            raise PluginManifestError(
                f"{path}: line {exc.lineno} has a comment ({comment!r}), but JSON has no comments; remove them "
                "(a note on the plugin can go in its 'description' or a README)"
            ) from None
        before = text[: exc.pos].rstrip()
        if text.startswith(("}", "]"), exc.pos) and before.endswith(","):  # Python's message points past the comma
            line = before.count("\n") + 1
            raise PluginManifestError(
                f"{path}: line {line} ends with a comma before the closing {text[exc.pos]!r}, which JSON does not "
                "allow; remove that comma"
            ) from None
        raise PluginManifestError(f"{path}: invalid JSON ({exc}); fix the file or remove the folder") from None
    except ValueError as exc:
        raise PluginManifestError(f"{path}: invalid JSON ({exc}); fix the file or remove the folder") from None
    except RecursionError:
        raise PluginManifestError(f"{path}: invalid JSON (nested too deeply); fix the file or remove the folder") from None
    if not isinstance(data, dict):
        raise PluginManifestError(f"{path}: the manifest must be a JSON object")
    try:
        manifest = PluginManifest.model_validate(data)
    except ValidationError as exc:
        fields = list(PluginManifest.model_fields)
        described = [field_problem(error, fields) for error in exc.errors()]
        more = f"; and {len(described) - 5} more problems" if len(described) > 5 else ""
        problems = "; ".join(described[:5]) + more
        raise PluginManifestError(f"{path}: {problems}") from None
    if not _specifier_set(manifest.pepperpy_compatibility).contains(_version(pepperpy_version), prereleases=True):
        raise PluginManifestError(
            f"{path}: needs pepperpy {manifest.pepperpy_compatibility} but this is pepperpy {pepperpy_version}; "
            "upgrade pepperpy or use a plugin version made for it"
        )
    _check_entry_file(path, folder, manifest)
    _check_requirements_file(path, folder, manifest)
    return manifest


def _check_requirements_file(path: str, folder: str, manifest: PluginManifest) -> None:
    """The ``requirements`` field must name a regular file inside ``folder`` (a real path), also through symlinks.

    A missing file is fine: the plugin then has no requirements.
    """
    target = os.path.join(folder, manifest.requirements)
    if "/" not in manifest.requirements and "\\" not in manifest.requirements:
        try:
            mode: int | None = os.lstat(target).st_mode
        except FileNotFoundError:
            mode = None
        if mode is None or stat.S_ISREG(mode):
            return  # absent, or a regular file directly in a real folder: inside by construction
    real_target = os.path.realpath(target)
    if real_target == folder or os.path.commonpath([folder, real_target]) != folder:
        raise PluginManifestError(
            f"{path}: field 'requirements' ({_shown(manifest.requirements)}) resolves to {real_target}, outside the "
            f"plugin folder {folder}; keep the requirements file inside the folder, e.g. 'requirements.txt'"
        )
    if os.path.lexists(target) and not os.path.isfile(real_target):
        raise PluginManifestError(
            f"{path}: field 'requirements' ({_shown(manifest.requirements)}) names {target}, which is not a regular "
            "file; make it a text file listing one package per line"
        )


def _check_entry_file(path: str, folder: str, manifest: PluginManifest) -> None:
    """The entry module must be a file inside ``folder`` (a real path), also through symlinks."""
    target = entry_file(folder, manifest)
    try:
        is_plain_file = stat.S_ISREG(os.lstat(target).st_mode)
    except OSError:
        raise PluginManifestError(
            f"{path}: entry_point '{manifest.entry_point}' needs the file {target}, which does not exist"
        ) from None
    if is_plain_file and "." not in manifest.entry_module:
        return  # a regular file directly in a real folder: inside by construction
    real_target = os.path.realpath(target)
    if os.path.commonpath([folder, real_target]) != folder:
        raise PluginManifestError(
            f"{path}: entry_point '{manifest.entry_point}' resolves to {real_target}, outside the plugin folder; "
            "keep the entry module inside the folder"
        )
    if not os.path.isfile(real_target):
        raise PluginManifestError(
            f"{path}: entry_point '{manifest.entry_point}' needs the file {target}, which does not exist"
        )


__all__ = ["MANIFEST_FILE", "PluginAlias", "PluginDependency", "PluginManifest", "entry_file", "field_problem",
           "read_manifest", "read_small_file", "read_utf8"]
