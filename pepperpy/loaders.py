"""The LoaderProvider contract: one kind of file (by suffix) read into Documents, and helpers for loader authors.

A loader's ``load(path)`` returns the file's *sections*: Documents whose ``id`` names the section within the
file (``"p3"`` for page 3, ``"s2"`` for the third heading section, ``""`` for a file read whole), whose ``text``
is that section's text, and whose ``metadata`` holds what the section knows: ``page`` (1-based), ``heading``
(the heading path, ``"Guide > Install"``) and ``title``. ``pepper.rag.add`` chunks each section and gives the
chunks ids ``<absolute path>#<section>#<n>``, so adding a changed file again replaces its chunks.
"""

from __future__ import annotations

import abc
import asyncio
import os
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from pepperpy.core import PepperpyPlugin, close_guard, open_guard, requires_open
from pepperpy.errors import FileLoadError, PepperPyError
from pepperpy.rag import Document

HEADING_SEPARATOR = " > "
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


class LoaderProvider(PepperpyPlugin):
    """Reads files into section Documents: ``await loader.load(path)``. Implement the blocking ``read(path)``.

    The suffixes a loader takes are listed in its plugin.json (``"suffixes": [".pdf"]``), so choosing a loader
    for a file imports nothing. ``read`` runs in a worker thread; any exception it raises becomes a
    FileLoadError naming the file (raise one yourself to say what the user should do).
    """

    category: ClassVar[str] = "loader"
    wrapped_methods: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "initialize": open_guard,
        "cleanup": close_guard,
        "load": requires_open,
    }

    async def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """The sections of the file at ``path`` that hold text; a FileLoadError naming the file if there are none
        or the file cannot be read."""
        path = Path(path)
        if not path.is_file():
            reason = "is a folder, not a file" if path.is_dir() else "no such file; check the path"
            raise FileLoadError(path, reason)
        try:
            sections = await asyncio.to_thread(self.read, path)
        except PepperPyError:
            raise
        except OSError as exc:
            raise FileLoadError(path, f"cannot be read ({exc.strerror or exc}); check that you may read it") from None
        except Exception as exc:
            raise FileLoadError(
                path, f"{self.plugin_id} cannot read it ({type(exc).__name__}: {exc}{_raised_at(exc)}); check that "
                f"the file is a valid {path.suffix or 'such'} file, or pass another loader="
            ) from exc
        sections = [section for section in sections if section.text.strip()]
        if not sections:
            raise FileLoadError(path, "the file is empty (no text); drop it, or convert it to text first")
        return sections

    @abc.abstractmethod
    def read(self, path: Path) -> list[Document]:
        """The sections of the file at ``path`` (blocking; called in a worker thread)."""


def _raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised (``", raised at provider.py:12"``): a bug in a loader shows apart from a bad file."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f", raised at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def utf8_text(raw: bytes) -> str | None:
    """``raw`` decoded as UTF-8 text (a BOM dropped), or None for binary content (a NUL byte, or not UTF-8)."""
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def read_utf8(path: Path) -> str:
    """The UTF-8 text of ``path``; binary content is a FileLoadError naming the file."""
    text = utf8_text(path.read_bytes())
    if text is None:
        raise FileLoadError(path, "not a UTF-8 text file (binary content); convert it to text first")
    return text


def section(key: str, text: str, **metadata: Any) -> Document:
    """A section Document; metadata entries that are None or empty are left out."""
    return Document(id=key, text=text.strip(), metadata={k: v for k, v in metadata.items() if v not in (None, "")})


class HeadingSections:
    """A document's blocks gathered into sections, one per heading, each keyed ``s<n>`` and knowing its heading
    path (``"Guide > Install"``): feed blocks in order with ``add`` and ``heading``, then take ``sections``."""

    def __init__(self) -> None:
        self._path: list[tuple[int, str]] = []  # (level, name) of the headings above the current block
        self._parts: list[tuple[str, list[str]]] = [("", [])]
        self._with_text: set[int] = set()  # the parts with text besides their heading

    def add(self, block: str) -> None:
        """A block of text in the current section."""
        self._parts[-1][1].append(block)
        if block.strip():
            self._with_text.add(len(self._parts) - 1)

    def heading(self, level: int, name: str, block: str | None = None) -> None:
        """A heading of ``level`` (1 outermost) starting a new section; ``block`` is its text in the section
        (``name`` when None)."""
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, name))
        self._parts.append((HEADING_SEPARATOR.join(n for _, n in self._path), [name if block is None else block]))

    def sections(self, joiner: str, title: str | None) -> list[Document]:
        """The sections with text besides their heading, their blocks joined with ``joiner``. A heading with no
        text under it is no section of its own (it is in the heading path of those below it); the others keep
        their numbers, so their ids do not change."""
        return [
            section(f"s{n}", joiner.join(blocks), heading=heading, title=title)
            for n, (heading, blocks) in enumerate(self._parts)
            if n in self._with_text
        ]


def markdown_sections(text: str, title: str | None = None) -> list[Document]:
    """Markdown split at its ATX headings (``#`` .. ``######``, not inside fenced code): one section per heading,
    with the heading path in ``heading``; the title is ``title`` or else the first level-1 heading."""
    found = HeadingSections()
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _ATX.match(line)
        if heading is None:
            found.add(line)
            continue
        level, name = len(heading.group(1)), heading.group(2).strip()
        if title is None and level == 1:
            title = name
        found.heading(level, name, line)
    return found.sections("\n", title)


__all__ = [
    "HEADING_SEPARATOR", "HeadingSections", "LoaderProvider", "markdown_sections", "read_utf8", "section", "utf8_text",
]
