"""loader/html: a saved web page's main content (trafilatura), navigation and boilerplate left out; one section
per heading with its heading path, and the page title.

README.md says why trafilatura (measured against a tag-based extractor with selectolax).
"""

from __future__ import annotations

from pathlib import Path

from pepperpy.errors import FileLoadError
from pepperpy.loaders import LoaderProvider, markdown_sections
from pepperpy.rag import Document


class HtmlLoader(LoaderProvider):
    async def initialize(self) -> None:
        await self.import_modules("trafilatura")

    def read(self, path: Path) -> list[Document]:
        import trafilatura

        html = path.read_bytes()
        if b"\x00" in html:
            raise FileLoadError(path, "not an HTML file (binary content); save the page as HTML again")
        text = trafilatura.extract(
            html, output_format="markdown", include_formatting=True, include_links=False, include_images=False,
            include_comments=False, include_tables=True, favor_recall=True, deduplicate=False,
        )
        if not text or not text.strip():
            raise FileLoadError(
                path, "no main content found (the page is empty, or only navigation and scripts); save the "
                "article itself, or pass loader='text' to add the raw file"
            )
        metadata = trafilatura.extract_metadata(html)
        title = (metadata.title or "").strip() or None if metadata is not None else None
        return markdown_sections(text, title=title)
