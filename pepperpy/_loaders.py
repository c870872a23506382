"""Choosing a loader plugin for a file (by suffix, or by name) and turning what ``pepper.rag.add`` takes into chunks.

A loader's suffixes come from its plugin.json, so choosing one imports nothing. When two loaders claim one
suffix, the one found last on the search path wins (a folder in ./plugins over a built-in one); ``loader=``
names one outright. A loader is created (and its requirements installed) on first use in a call, and closed
at the end of it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from pepperpy.documents import (
    ACCEPTED, CHUNK_OVERLAP, CHUNK_SIZE, Addable, as_items, chunk_sections, files_under, text_id, url_of,
)
from pepperpy.errors import FileLoadError, InvalidInputError
from pepperpy.loaders import LoaderProvider
from pepperpy.plugin_manager import BrokenPlugin, PluginManager, get_plugin_manager
from pepperpy.rag import Document


@dataclass(frozen=True)
class Skipped:
    """A file of a folder that was not added (its absolute path, the folder resolved), and why (the
    FileLoadError's reason)."""

    path: str
    reason: str


class Added(list[Document]):
    """What ``pepper.rag.add`` stored (a list of Documents), with ``skipped``: the files of the folders given
    that could not be loaded, each with its reason; and ``removed``: ids of chunks deleted because the file
    they came from no longer has them."""

    def __init__(
        self, documents: Iterable[Document] = (), skipped: Iterable[Skipped] = (), removed: Iterable[str] = ()
    ):
        super().__init__(documents)
        self.skipped = list(skipped)
        self.removed = list(removed)


def suffix_table(manager: PluginManager) -> dict[str, str]:
    """Suffix (``.pdf``) -> the name of the loader plugin that reads it."""
    table: dict[str, str] = {}
    for info in manager.discover().values():  # lowest precedence first: later ones win
        if info.manifest.category == "loader":
            table.update(dict.fromkeys(info.manifest.suffixes, info.manifest.provider_name))
    return table


def loader_name(path: Path, table: dict[str, str], broken: Iterable[BrokenPlugin] = ()) -> str:
    """The loader for ``path`` by its suffix; a FileLoadError naming the file when none takes it, and the plugin
    folders that failed validation (the loader meant for it may be one of them)."""
    suffix = path.suffix.lower()
    if suffix in table:
        return table[suffix]
    what = f"{suffix} files" if suffix else "files without a suffix"
    reason = (
        f"no loader reads {what} (loaders read {', '.join(sorted(table)) or 'nothing'}); pass loader='text' "
        "to read it as plain text, or add a loader plugin (`pepperpy plugins new loader NAME`)"
    )
    for folder in broken:
        reason += f"; the plugin folder {folder.path} failed validation and was skipped: {folder.problem}"
    raise FileLoadError(path, reason)


class Loaders:
    """The loaders one call uses, opened on first use; ``close()`` closes them."""

    def __init__(self, manager: PluginManager | None = None, loader: str | None = None):
        self._manager = manager or get_plugin_manager()
        self._chosen = loader
        self._table: dict[str, str] | None = None
        self._open: dict[str, LoaderProvider] = {}

    async def load(self, path: Path) -> list[Document]:
        """The sections of the file at ``path`` from its loader (see ``pepperpy.loaders``)."""
        if self._chosen is None and self._table is None:
            self._table = suffix_table(self._manager)
        name = self._chosen or loader_name(path, self._table or {}, self._manager.broken)
        if name not in self._open:
            provider = await asyncio.to_thread(self._manager.create_provider, "loader", name)  # may install
            await provider.initialize()
            self._open[name] = provider
        return await self._open[name].load(path)

    async def close(self) -> None:
        providers, self._open = list(self._open.values()), {}
        for provider in providers:
            await provider.cleanup()


async def load_path(
    path: str | os.PathLike[str], loader: str | None = None, manager: PluginManager | None = None
) -> list[Document]:
    """The sections of one local file, read by its loader (by suffix, or ``loader=``): path -> Documents."""
    loaders = Loaders(manager, loader)
    try:
        return await loaders.load(Path(path))
    finally:
        await loaders.close()


async def to_chunks(
    items: Addable | Iterable[Addable],
    loader: str | None = None,
    glob: str | None = None,
    size: int = CHUNK_SIZE,
    overlap: int = CHUNK_OVERLAP,
    manager: PluginManager | None = None,
) -> tuple[list[Document], list[Skipped], list[str]]:
    """The Documents to store for ``items``, the folder files skipped, and the sources (absolute paths) of the
    files loaded. A file given alone that fails is a FileLoadError, and so is a folder where none loads; a file of
    a folder that fails is skipped."""
    loaders = Loaders(manager, loader)
    documents: list[Document] = []
    skipped: list[Skipped] = []
    sources: list[str] = []

    async def add_file(path: Path) -> None:
        chunks = chunk_sections(path, await loaders.load(path), size, overlap)
        documents.extend(chunks)
        sources.append(str(path.resolve()))

    try:
        for item in as_items(items):
            if isinstance(item, Document):
                documents.append(item)
            elif isinstance(item, (str, os.PathLike)) and url_of(item):
                raise InvalidInputError(
                    f"{url_of(item)}: URLs are not fetched; download the file and add its local path"
                )
            elif isinstance(item, str):
                if not item.strip():
                    raise InvalidInputError("cannot add an empty text; drop empty strings first")
                _warn_if_a_path(item)
                documents.append(Document(id=text_id(item), text=item))
            elif isinstance(item, os.PathLike):
                path = Path(item)
                if not path.is_dir():
                    await add_file(path)
                    continue
                await _add_folder(path, glob, add_file, skipped)
            else:
                raise InvalidInputError(f"cannot add {type(item).__name__}; pass {ACCEPTED}")
    finally:
        await loaders.close()
    return documents, skipped, sources


def _warn_if_a_path(text: str) -> None:
    """A string is stored as text; one that names a file or folder was most likely meant as its path."""
    if len(text) > 1024 or "\n" in text:
        return
    try:
        named = Path(text).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return
    if named:
        warnings.warn(
            f"rag.add got the string {text!r}, which names a file or folder: it is stored as that text; pass "
            f"Path({text!r}) to add the file's content",
            UserWarning,
            stacklevel=_caller_outside_pepperpy(),
        )


def _caller_outside_pepperpy() -> int:
    """The ``stacklevel`` of the first frame outside PepperPy's package, so that a warning names the user's line."""
    package = str(Path(__file__).parent) + os.sep  # not a sibling such as pepperpy_extras/
    level, frame = 1, sys._getframe(1)  # level 1: the function that warns
    while frame is not None and frame.f_code.co_filename.startswith(package):
        level, frame = level + 1, frame.f_back
    return level


async def _add_folder(
    folder: Path, glob: str | None, add_file: Callable[[Path], Awaitable[None]], skipped: list[Skipped]
) -> None:
    """Every file of ``folder`` through ``add_file``; those that fail go to ``skipped``, unless all of them do:
    then, as for a folder with no files, a FileLoadError naming the folder."""
    files = await asyncio.to_thread(files_under, folder, glob)
    narrowed = f" matching {glob!r}" if glob is not None else ""
    if not files:
        raise FileLoadError(folder, f"the folder holds no files{narrowed} (hidden ones are left out); check the path")
    failed: list[Skipped] = []
    for file in files:
        try:
            await add_file(file)
        except FileLoadError as exc:
            failed.append(Skipped(str(file.parent.resolve() / file.name), exc.reason))  # absolute, as sources
    if len(failed) == len(files):
        listed = "; ".join(f"{s.path}: {s.reason}" for s in failed[:5]) + ("; ..." if len(failed) > 5 else "")
        raise FileLoadError(folder, f"none of its {len(files)} files{narrowed} could be loaded ({listed})")
    skipped.extend(failed)


__all__ = ["Added", "Loaders", "Skipped", "load_path", "loader_name", "suffix_table", "to_chunks"]
