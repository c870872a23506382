"""Turning texts, .txt/.md files and folders of them into Documents: loading, chunking, stable ids.

Chunking policy: paragraphs (blank-line separated) are packed into chunks of at most
``size`` characters; a paragraph longer than that is split at sentence or word
boundaries; each chunk after the first starts with the last ``overlap`` characters
of the previous one (cut at a word boundary). Chunk ids are ``<file path>#<n>``, so
re-adding a file updates its chunks instead of duplicating them. A plain text gets
an id from its content hash.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel

from pepperpy.errors import ConfigError, InvalidInputError
from pepperpy.rag import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
# What ``pepper.rag.add()`` takes: one of these, or a list of them.
Addable = Document | str | os.PathLike[str]
ACCEPTED = (
    "a Document, a text (str), a pathlib.Path to a .txt/.md file or to a folder of them, or a list of these"
)
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


def read_text_file(path: Path) -> str:
    """The UTF-8 text of a .txt or .md file; any other file is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; check the path")
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise ConfigError(f"{path}: only {', '.join(sorted(TEXT_SUFFIXES))} files are loaded; convert it to text first")
    raw = path.read_bytes()
    binary = ConfigError(f"{path}: not a UTF-8 text file (binary content); convert it to text first")
    if b"\x00" in raw:
        raise binary
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise binary from None


def file_documents(path: Path, text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Document]:
    """The chunks of ``text``, read from ``path``, with ids ``<absolute path>#<n>``."""
    source = str(path.resolve())
    return [
        Document(id=f"{source}#{n}", text=chunk, metadata={"source": source, "chunk": n})
        for n, chunk in enumerate(chunk_text(text, size, overlap))
    ]


def load_file(path: str | os.PathLike[str], size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Document]:
    """A .txt or .md file as chunk Documents with ``source`` and ``chunk`` metadata."""
    path = Path(path)
    text = read_text_file(path)
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty")
    return file_documents(path, text, size, overlap)


def text_files(folder: Path) -> list[Path]:
    """The .txt/.md files under ``folder``, recursively, in path order; hidden files and folders are skipped."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        texts = (f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in TEXT_SUFFIXES)
        found += [Path(root, f) for f in texts]
    return found


def load_folder(folder: str | os.PathLike[str], size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Document]:
    """Every .txt/.md file under ``folder`` (see ``text_files``) as chunk Documents; empty files add nothing."""
    folder = Path(folder)
    files = text_files(folder)
    if not files:
        raise InvalidInputError(
            f"{folder}: the folder holds no {', '.join(sorted(TEXT_SUFFIXES))} files (hidden ones are skipped); "
            "check the path"
        )
    return [document for file in files for document in file_documents(file, read_text_file(file), size, overlap)]


def as_items(items: Addable | Iterable[Addable]) -> list[Addable]:
    """One Document, text or path as a one-item list; a list (or other iterable) as its items."""
    if isinstance(items, (Document, str, os.PathLike)):
        return [items]
    if isinstance(items, (bytes, bytearray, Mapping, BaseModel)) or not isinstance(items, Iterable):
        raise InvalidInputError(f"cannot add {type(items).__name__}; pass {ACCEPTED}")
    return list(items)


def to_documents(
    items: Addable | Iterable[Addable], size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP
) -> list[Document]:
    """Documents as given; files loaded and chunked, folders too (their .txt/.md files); a string is one Document
    (id from its content). One item may be given alone."""
    documents: list[Document] = []
    for item in as_items(items):
        if isinstance(item, Document):
            documents.append(item)
        elif isinstance(item, str):
            if not item.strip():
                raise InvalidInputError("cannot add an empty text; drop empty strings first")
            documents.append(Document(id=text_id(item), text=item))
        elif isinstance(item, os.PathLike):
            path = Path(item)
            documents += load_folder(path, size, overlap) if path.is_dir() else load_file(path, size, overlap)
        else:
            raise InvalidInputError(f"cannot add {type(item).__name__}; pass {ACCEPTED}")
    return documents


__all__ = [
    "ACCEPTED", "CHUNK_OVERLAP", "CHUNK_SIZE", "Addable", "as_items", "chunk_text", "file_documents", "load_file",
    "load_folder", "read_text_file", "text_files", "text_id", "to_documents",
]
