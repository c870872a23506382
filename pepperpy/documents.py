"""Turning texts and .txt/.md files into Documents: loading, chunking, stable ids.

Chunking policy: paragraphs (blank-line separated) are packed into chunks of at most
``size`` characters; a paragraph longer than that is split at sentence or word
boundaries; each chunk after the first starts with the last ``overlap`` characters
of the previous one (cut at a word boundary). Chunk ids are ``<file path>#<n>``, so
re-adding a file updates its chunks instead of duplicating them. A plain text gets
an id from its content hash.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pepperpy.errors import ConfigError
from pepperpy.rag import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
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


def load_file(path: str | Path, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Document]:
    """A .txt or .md file as chunk Documents with ``source`` and ``chunk`` metadata."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; check the path")
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise ConfigError(f"{path}: only {', '.join(sorted(TEXT_SUFFIXES))} files are loaded; convert it to text first")
    raw = path.read_bytes()
    binary = ConfigError(f"{path}: not a UTF-8 text file (binary content); convert it to text first")
    if b"\x00" in raw:
        raise binary
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise binary from None
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty")
    source = str(path.resolve())
    return [
        Document(id=f"{source}#{n}", text=chunk, metadata={"source": source, "chunk": n})
        for n, chunk in enumerate(chunk_text(text, size, overlap))
    ]


def to_documents(items: list[Document | str | Path], size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Document]:
    """Documents as given; Paths loaded and chunked; strings as one Document each (id from their content)."""
    documents: list[Document] = []
    for item in items:
        if isinstance(item, Document):
            documents.append(item)
        elif isinstance(item, Path):
            documents.extend(load_file(item, size, overlap))
        elif isinstance(item, str):
            if not item.strip():
                raise ConfigError("cannot add an empty text; drop empty strings first")
            documents.append(Document(id=text_id(item), text=item))
        else:
            raise ConfigError(f"cannot add {type(item).__name__}; pass Documents, strings or pathlib.Path objects")
    return documents


__all__ = ["CHUNK_OVERLAP", "CHUNK_SIZE", "chunk_text", "load_file", "text_id", "to_documents"]
