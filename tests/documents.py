"""Real documents for loader tests, written by real libraries."""

from __future__ import annotations

from pathlib import Path


def write_pdf(path: Path, pages: list[str], title: str = "Quarterly Report") -> Path:
    """A PDF at ``path`` with one page per text of ``pages`` (a real text layer, by fpdf2) and ``title``."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path
