"""loader/pdf: a PDF's text layer with pypdfium2 (PDFium), one section per page with its page number.

README.md says why pypdfium2 and not pypdf (measured) or PyMuPDF (AGPL).
"""

from __future__ import annotations

import threading
from pathlib import Path

from pepperpy.errors import FileLoadError
from pepperpy.loaders import LoaderProvider, section
from pepperpy.rag import Document


class PdfLoader(LoaderProvider):
    async def initialize(self) -> None:
        await self.import_modules("pypdfium2")

    def read(self, path: Path) -> list[Document]:
        with self.shared_resource("pdfium_lock", threading.Lock):  # PDFium is not safe to call from two threads
            return self._read(path)

    def _read(self, path: Path) -> list[Document]:
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise FileLoadError(
                    path, "the PDF is encrypted (it needs a password); save a copy without the password "
                    "(e.g. `qpdf --decrypt --password=... in.pdf out.pdf`) and add that"
                ) from None
            raise FileLoadError(
                path, f"not a readable PDF ({exc}); the file is damaged or not a PDF: export or download it again"
            ) from None
        try:
            title = (pdf.get_metadata_dict().get("Title") or "").strip() or None
            pages = [self._page(pdf, n, title) for n in range(len(pdf))]
        finally:
            pdf.close()
        if not any(page.text for page in pages):
            raise FileLoadError(
                path, f"the PDF has no text layer ({len(pages)} page(s) of images only, a scan?); run OCR on it "
                "first (e.g. `ocrmypdf in.pdf out.pdf`) and add the result"
            )
        return pages

    @staticmethod
    def _page(pdf: object, n: int, title: str | None) -> Document:
        page = pdf[n]  # type: ignore[index]
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "").replace("\ufffe", "")
        return section(f"p{n + 1}", text, page=n + 1, title=title)
