"""loader/text: a plain text file, read whole as UTF-8 (one section)."""

from __future__ import annotations

from pathlib import Path

from pepperpy.loaders import LoaderProvider, read_utf8, section
from pepperpy.rag import Document


class TextLoader(LoaderProvider):
    def read(self, path: Path) -> list[Document]:
        return [section("", read_utf8(path))]
