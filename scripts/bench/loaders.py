"""Issue 23 figures: the loaders. PDF pages/s and text quality of loader/pdf (pypdfium2) against pypdf on the
same generated files; HTML main-content extraction of loader/html (trafilatura) against a tag-based extractor
(selectolax, when importable) on the same hand-shaped pages.

Quality is the word-sequence similarity (difflib ratio) of the extracted text to the text written into the
file; for HTML, the share of main-content words kept and of boilerplate phrases that leaked through.
"""

from __future__ import annotations

import asyncio
import difflib
import random
import tempfile
import time
from pathlib import Path

from scripts.bench.common import table

FILES, PAGES = 6, 40
WORDS = (
    "the release of service build error code freeze branch staging customer rollout incident review team "
    "quarter revenue growth Lisbon Falcon E4217 migration changelog sign-off Tuesday percent engineer"
).split()


def write_pdfs(folder: Path) -> list[tuple[Path, list[str]]]:
    """Text PDFs with a heading and two paragraphs per page, a second, smaller font, and a title."""
    from fpdf import FPDF

    rng = random.Random(23)
    made = []
    for n in range(FILES):
        pdf, pages = FPDF(), []
        pdf.set_title(f"Report {n}")
        for p in range(PAGES):
            pdf.add_page()
            heading = f"Section {p + 1} of report {n}"
            body = [" ".join(rng.choice(WORDS) for _ in range(180)) for _ in range(2)]
            pdf.set_font("Helvetica", "B", 15)
            pdf.multi_cell(0, 9, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Times", size=11)
            for paragraph in body:
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
            pages.append(" ".join([heading, *body]))
        path = folder / f"report{n}.pdf"
        pdf.output(str(path))
        made.append((path, pages))
    return made


def similarity(got: str, want: str) -> float:
    return difflib.SequenceMatcher(None, got.split(), want.split(), autojunk=False).ratio()


def pypdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


async def pdf_figures(manager, files: list[tuple[Path, list[str]]]) -> list[tuple[str, ...]]:
    loader = manager.create_provider("loader", "pdf")
    await loader.initialize()
    try:
        async def chosen(path: Path) -> list[str]:
            return [section.text for section in await loader.load(path)]

        rows = []
        for label, extract in (("loader/pdf (pypdfium2)", chosen), ("pypdf", None)):
            texts, started = [], time.perf_counter()
            for path, _ in files:
                texts.append(await extract(path) if extract else pypdf_pages(path))
            seconds = time.perf_counter() - started
            pages = sum(len(t) for t in texts)
            quality = sum(similarity(g, w) for t, (_, want) in zip(texts, files) for g, w in zip(t, want)) / pages
            rows.append((label, f"{pages / seconds:.0f}", f"{quality:.4f}"))
        return rows
    finally:
        await loader.cleanup()


MAIN = ["Release Guide", "freezes the feature branch", "error code E4217", "Ask Ana Souza to sign off",
        "ships on a Tuesday morning", "five percent of customers"]
BOILERPLATE = ["Sign in", "Related reading", "Popular posts", "All rights reserved", "Privacy policy",
               "Cookie settings", "Subscribe to our newsletter", "analytics-boilerplate"]
ARTICLE = """<h1>Release Guide</h1>
<p>This guide explains how the quarterly release is prepared. Two weeks before the release the team freezes the
feature branch, and error code E4217 means it was not.</p>
<h2>Checklist</h2><ul><li>Run the migration dry run.</li><li>Ask Ana Souza to sign off the changelog.</li></ul>
<h2>Shipping</h2><p>The release ships on a Tuesday morning, to five percent of customers first, then to all.</p>"""
SEMANTIC = f"""<html><head><title>Release Guide</title></head><body>
<header><nav><a href="/">Home</a> <a href="/login">Sign in</a></nav></header>
<aside><a href="/a">Related reading</a> <a href="/b">Popular posts</a></aside>
<main><article>{ARTICLE}</article></main>
<footer>Copyright ACME. All rights reserved. <a href="/p">Privacy policy</a> <a href="/c">Cookie settings</a>
<form>Subscribe to our newsletter</form></footer><script>var t = "analytics-boilerplate";</script></body></html>"""
DIV_SOUP = f"""<html><head><title>Release Guide</title></head><body>
<div class="top-menu"><a href="/">Home</a> | <a href="/login">Sign in</a></div>
<div id="sidebar" class="widget"><div class="widget-title">Related reading</div><a href="/b">Popular posts</a></div>
<div id="content" class="post-body">{ARTICLE}</div>
<div id="footer" class="site-footer">Copyright ACME. All rights reserved. <a href="/p">Privacy policy</a> |
<a href="/c">Cookie settings</a> <div class="newsletter">Subscribe to our newsletter</div></div>
<script>var t = "analytics-boilerplate";</script></body></html>"""


def selectolax_text(html: str) -> str:
    """The tag-based alternative: drop nav/header/footer/aside/script/style/form, keep <main>/<article> or body."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for tag in ("nav", "header", "footer", "aside", "script", "style", "form", "noscript"):
        for node in tree.css(tag):
            node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body
    return root.text(separator=" ") if root is not None else ""


async def html_figures(manager, folder: Path) -> list[tuple[str, ...]]:
    pages = {"semantic": SEMANTIC, "div-soup": DIV_SOUP}
    paths = {}
    for name, html in pages.items():
        paths[name] = folder / f"{name}.html"
        paths[name].write_text(html)
    loader = manager.create_provider("loader", "html")
    await loader.initialize()

    async def trafilatura_text(name: str) -> str:
        return "\n".join(section.text for section in await loader.load(paths[name]))

    async def tags_text(name: str) -> str:
        return selectolax_text(pages[name])

    extractors = [("loader/html (trafilatura)", trafilatura_text)]
    try:
        import selectolax  # noqa: F401

        extractors.append(("selectolax, by tags", tags_text))
    except ImportError:
        print("(selectolax is not installed: the tag-based row is left out; `uv pip install selectolax` adds it)")
    rows = []
    try:
        for label, extract in extractors:
            for name in pages:
                text = " ".join((await extract(name)).split())
                kept = sum(phrase in text for phrase in MAIN) / len(MAIN)
                leaked = sum(phrase in text for phrase in BOILERPLATE) / len(BOILERPLATE)
                started, runs = time.perf_counter(), 50
                for _ in range(runs):
                    await extract(name)
                rate = runs / (time.perf_counter() - started)
                rows.append((label, name, f"{kept:.0%}", f"{leaked:.0%}", f"{rate:.0f}"))
    finally:
        await loader.cleanup()
    return rows


def main() -> None:
    from pepperpy._paths import builtin_plugins_dir
    from pepperpy.plugin_manager import PluginManager

    with tempfile.TemporaryDirectory() as folder:
        manager = PluginManager(search_paths=[builtin_plugins_dir()])
        files = write_pdfs(Path(folder))
        rows = asyncio.run(pdf_figures(manager, files))
        table(
            f"PDF text extraction, {FILES} files x {PAGES} pages written with fpdf2 (same files, same run)",
            rows, ("library", "pages/s", "quality (word-sequence ratio)"),
        )
        base = float(rows[1][1])
        print(f"loader/pdf reads {float(rows[0][1]) / base:.2f}x the pages/s of pypdf")
        table(
            "HTML main content: the article's phrases kept, boilerplate phrases leaked, pages/s",
            asyncio.run(html_figures(manager, Path(folder))), ("extractor", "page", "kept", "leaked", "pages/s"),
        )
