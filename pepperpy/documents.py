"""Turning texts and loaded files into Documents: chunking, stable ids, walking folders.

Chunking policy: paragraphs (blank-line separated) are packed into chunks of at most
``size`` characters; a paragraph longer than that is split at sentence or word
boundaries; each chunk after the first starts with the last ``overlap`` characters
of the previous one (cut at a word boundary). A file is read by a loader plugin
(pepperpy/loaders.py) into sections, each chunked on its own; chunk ids are
``<file path>#<section>#<n>``, so re-adding a file updates its chunks instead of
duplicating them. A plain text gets an id from its content hash.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel

from pepperpy.errors import InvalidInputError
from pepperpy.rag import Document

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")  # a scheme and a slash: "https://x" (Path() makes it "https:/x")
# What ``pepper.rag.add()`` takes: one of these, or a list of them.
Addable = Document | str | os.PathLike[str]
ACCEPTED = "a Document, a text (str), a pathlib.Path to a file or a folder, or a list of these"
CHUNK_SIZE = 800
CHUNK_OVERLAP = 100


def text_id(text: str) -> str:
    return "text-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _pieces(paragraph: str, size: int) -> list[str]:
    """Split one paragraph into pieces of at most ``size`` characters at sentence, then word, boundaries."""
    if len(paragraph) <= size:
        return [paragraph]
    pieces, current = [], ""
    for word in re.split(r"(?<=[.!?])\s+|\s+", paragraph):
        while len(word) > size:
            pieces.append(word[:size])
            word = word[size:]
        if current and len(current) + 1 + len(word) > size:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return pieces + ([current] if current else [])


def chunk_text(text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Chunks of at most ``size`` characters (plus the overlap), following paragraphs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunks: list[str] = []
    current = ""
    for piece in (piece for paragraph in paragraphs for piece in _pieces(paragraph, size)):
        if current and len(current) + 2 + len(piece) > size:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    if overlap <= 0:
        return chunks
    overlapped = chunks[:1]
    for previous, chunk in zip(chunks, chunks[1:]):
        tail = previous[-overlap:]
        tail = tail[tail.find(" ") + 1 :] if " " in tail else tail
        overlapped.append(f"{tail} {chunk}")
    return overlapped


def chunk_sections(
    path: Path, sections: list[Document], size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP
) -> list[Document]:
    """The chunks of a file's sections (a loader's output), with ids ``<absolute path>#<section>#<n>`` (a section
    with the id ``""`` gives ``<absolute path>#<n>``) and metadata: the section's, ``source`` and ``chunk``."""
    source = str(path.resolve())
    chunks = []
    for section in sections:
        prefix = f"{source}#{section.id}#" if section.id else f"{source}#"
        for n, chunk in enumerate(chunk_text(section.text, size, overlap)):
            metadata = {"source": source, **section.metadata, "chunk": n}
            chunks.append(Document(id=f"{prefix}{n}", text=chunk, metadata=metadata))
    return chunks


def files_under(folder: Path, glob: str | None = None) -> list[Path]:
    """The files under ``folder``: all of them recursively (in path order), or those matching ``glob`` (as
    ``Path.glob`` takes it: ``"**/*.pdf"`` at any depth, ``"*.pdf"`` at the top); hidden files and folders
    (``.name``) are left out."""
    if glob is not None:
        found = (p for p in folder.glob(glob) if p.is_file())
        return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(folder).parts))
    files = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        files += [Path(root, name) for name in sorted(names) if not name.startswith(".")]
    return files


def url_of(item: str | os.PathLike[str]) -> str | None:
    """``item`` when it is a URL alone (``https://...``, ``file://...``): those are refused, never fetched."""
    text = os.fspath(item).strip()
    return text if URL.match(text) and not any(c.isspace() for c in text) else None


def as_items(items: Addable | Iterable[Addable]) -> list[Addable]:
    """One Document, text or path as a one-item list; a list (or other iterable) as its items."""
    if isinstance(items, (Document, str, os.PathLike)):
        return [items]
    if isinstance(items, (bytes, bytearray, Mapping, BaseModel)) or not isinstance(items, Iterable):
        raise InvalidInputError(f"cannot add {type(items).__name__}; pass {ACCEPTED}")
    return list(items)


__all__ = [
    "ACCEPTED", "CHUNK_OVERLAP", "CHUNK_SIZE", "Addable", "as_items", "chunk_sections", "chunk_text", "files_under",
    "text_id", "url_of",
]
