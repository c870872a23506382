"""loader/docx: a Word .docx with python-docx; one section per heading, with its heading path, tables as rows."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from pepperpy.errors import FileLoadError
from pepperpy.loaders import HeadingSections, LoaderProvider
from pepperpy.rag import Document

_HEADING = re.compile(r"Heading ([1-9])")


class DocxLoader(LoaderProvider):
    async def initialize(self) -> None:
        await self.import_modules("docx")

    def read(self, path: Path) -> list[Document]:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
        from docx.table import Table

        try:
            document = docx.Document(str(path))
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise FileLoadError(
                path, f"not a readable .docx ({type(exc).__name__}); the file is damaged or not a Word 2007+ "
                "document: open it in Word or LibreOffice and save it as .docx again"
            ) from None
        title = (document.core_properties.title or "").strip() or None
        found = HeadingSections()
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    found.add(" | ".join(cell.text.strip() for cell in row.cells))
                continue
            text = block.text.strip()
            style = block.style.name if block.style is not None else ""
            heading = _HEADING.fullmatch(style or "")
            if not text:
                continue
            if style == "Title":
                title = title or text
            if heading is None:
                found.add(text)
            else:
                found.heading(int(heading.group(1)), text)
        return found.sections("\n\n", title)
