"""loader/markdown: Markdown split at its headings; each section carries its heading path and the title."""

from __future__ import annotations

from pathlib import Path

from pepperpy.loaders import LoaderProvider, markdown_sections, read_utf8
from pepperpy.rag import Document


class MarkdownLoader(LoaderProvider):
    def read(self, path: Path) -> list[Document]:
        return markdown_sections(read_utf8(path))
