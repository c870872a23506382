"""The built-in loader plugins on real files the tests write with real libraries (fpdf2, pypdf, python-docx, a
hand-written HTML page), installed on first use; pepper.rag.add on a folder mixing good and bad files, into
rag/local with the local embeddings; re-adding a changed file; a loader folder dropped into ./plugins."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pepperpy import Document, PepperPy
from pepperpy._loaders import load_path, to_chunks
from pepperpy._paths import builtin_plugins_dir
from pepperpy.errors import FileLoadError
from pepperpy.plugin_manager import PluginManager
from tests.documents import write_pdf

pytestmark = pytest.mark.integration

PAGES = [
    "Quarterly revenue grew by twelve percent, led by the Falcon service in Lisbon.",
    "Error code E4217 means the release freeze was not applied; restart the build.",
    "Ana Souza signs off every release of the Falcon service before shipping.",
]
HTML = """<!doctype html><html><head><title>Release Guide | ACME Docs</title></head><body>
<header><nav><a href="/">Home</a> <a href="/products">Products</a> <a href="/login">Sign in</a></nav></header>
<aside class="sidebar"><ul><li><a href="/a">Related reading</a></li><li><a href="/b">Popular posts</a></li></ul></aside>
<main><article>
<h1>Release Guide</h1>
<p>This guide explains how the quarterly release of the Falcon service is prepared, signed off and shipped.</p>
<h2>Preparation</h2>
<p>Two weeks before the release the team freezes the feature branch, and error code E4217 means it was not.</p>
<h3>Checklist</h3>
<ul><li>Run the migration dry run on staging.</li><li>Ask Ana Souza to sign off the changelog.</li></ul>
<h2>Shipping</h2>
<p>The release ships on a Tuesday morning, to five percent of customers first and to everyone a day later.</p>
</article></main>
<footer><p>Copyright 2026 ACME Corp. All rights reserved.</p><a href="/privacy">Privacy policy</a>
<a href="/cookies">Cookie settings</a></footer>
<script>var tracking = "analytics-boilerplate";</script>
</body></html>
"""
BOILERPLATE = ["Sign in", "Related reading", "Popular posts", "All rights reserved", "Privacy policy",
               "Cookie settings", "analytics-boilerplate"]



def write_encrypted_pdf(path: Path, source: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="xxx-test-secret-not-real", algorithm="AES-256")
    writer.write(path)
    return path


def write_scanned_pdf(path: Path) -> Path:
    """A PDF whose page is a picture of text: no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).text((20, 80), "A scanned page: no text layer", fill="black")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=180)
    pdf.output(str(path))
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Operations Handbook"
    document.add_heading("Operations Handbook", level=0)
    document.add_paragraph("How the operations team runs the Falcon service.")
    document.add_heading("Deployments", level=1)
    document.add_paragraph("Deployments happen on Tuesdays after the freeze.")
    document.add_heading("Rollback", level=2)
    document.add_paragraph("To roll back, run the previous release tag.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Code", "Meaning"), ("E4217", "freeze missing")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.add_heading("On-call", level=1)
    document.add_paragraph("The on-call engineer answers pages within fifteen minutes.")
    document.save(str(path))
    return path


@pytest.fixture(scope="session")
def loader_manager(session_home) -> PluginManager:
    """The built-in plugins, installing into the session's home (loader/pdf and loader/html install there)."""
    return PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    report = write_pdf(folder / "report.pdf", PAGES)
    (folder / "page.html").write_text(HTML)
    (folder / "nested" / "notes.md").write_text("# Notes\n\nThe office closes at six.\n\n## Parking\n\nLevel B2.\n")
    return {
        "folder": folder, "report": report, "page": folder / "page.html", "notes": folder / "nested" / "notes.md",
        "handbook": write_docx(folder / "handbook.docx"),
    }


def bad_files(folder: Path, report: Path) -> dict[str, str]:
    """Bad files written into ``folder``: name -> what the error must say."""
    write_encrypted_pdf(folder / "locked.pdf", report)
    (folder / "broken.pdf").write_bytes(report.read_bytes()[:300] + b"\x00garbage, not the rest of a PDF")
    write_scanned_pdf(folder / "scan.pdf")
    (folder / "table.xyz").write_text("a,b")
    os.symlink(folder / "gone.txt", folder / "dangling.txt")  # the file it names is not there: unreadable
    (folder / "fake.docx").write_text("not a zip")
    return {
        "locked.pdf": "the PDF is encrypted", "broken.pdf": "not a readable PDF", "scan.pdf": "no text layer",
        "table.xyz": "no loader reads .xyz files", "dangling.txt": "no such file",
        "fake.docx": "not a readable .docx",
    }


async def test_pdf_pages_carry_page_numbers_title_and_stable_ids(loader_manager, files):
    documents, skipped, _ = await to_chunks(files["report"], manager=loader_manager)
    source = str(files["report"].resolve())
    assert [d.text for d in documents] == PAGES
    assert [d.id for d in documents] == [f"{source}#p{n}#0" for n in (1, 2, 3)]
    assert [d.metadata for d in documents] == [
        {"source": source, "page": n, "title": "Quarterly Report", "chunk": 0} for n in (1, 2, 3)
    ]
    assert skipped == []
    assert [d.text for d in await load_path(files["report"], manager=loader_manager)] == PAGES, "path -> documents"


def test_plugins_info_shows_a_loaders_suffixes(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pepperpy", "plugins", "info", "loader/html"], capture_output=True, text=True,
        env={**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")}, cwd=tmp_path, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "suffixes: .html, .htm, .xhtml" in done.stdout.splitlines()


async def test_docx_sections_carry_heading_paths_and_tables(loader_manager, files):
    documents, _, _ = await to_chunks(files["handbook"], manager=loader_manager)
    by_heading = {d.metadata.get("heading"): d.text for d in documents}
    assert list(by_heading) == [None, "Deployments", "Deployments > Rollback", "On-call"]
    assert "Code | Meaning\n\nE4217 | freeze missing" in by_heading["Deployments > Rollback"]
    assert {d.metadata["title"] for d in documents} == {"Operations Handbook"}


async def test_html_keeps_the_main_content_and_drops_the_boilerplate(loader_manager, files):
    documents, _, _ = await to_chunks(files["page"], manager=loader_manager)
    text = "\n".join(d.text for d in documents)
    assert [phrase for phrase in BOILERPLATE if phrase in text] == []
    for phrase in ("freezes the feature branch", "Ask Ana Souza", "ships on a Tuesday morning"):
        assert phrase in text
    assert [d.metadata["heading"] for d in documents] == [
        "Release Guide", "Release Guide > Preparation", "Release Guide > Preparation > Checklist",
        "Release Guide > Shipping",
    ]
    assert {d.metadata["title"] for d in documents} == {"Release Guide"}


async def test_bad_files_given_alone_are_errors_naming_the_file(loader_manager, files, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, message in bad_files(bad, files["report"]).items():
        with pytest.raises(FileLoadError, match=re.escape(message)) as raised:
            await to_chunks(bad / name, manager=loader_manager)
        assert raised.value.path == str(bad / name) and str(raised.value).startswith(f"{bad / name}: ")
        assert "xxx-test-secret-not-real" not in str(raised.value)


@pytest.fixture
async def pepper(loader_manager, local_manager, tmp_path):
    pepper = PepperPy(plugin_manager=loader_manager)
    async with pepper.with_rag("local", path=tmp_path / "store.sqlite3") as ready:
        yield ready


async def test_a_mixed_folder_adds_the_good_files_and_lists_every_bad_one(pepper, files):
    expected = bad_files(files["folder"], files["report"])
    added = await pepper.rag.add([files["folder"], "A text of its own."])
    sources = {d.metadata.get("source") for d in added}
    assert sources == {None, *(str(files[k].resolve()) for k in ("report", "page", "handbook", "notes"))}
    assert sorted(Path(s.path).name for s in added.skipped) == sorted(expected)
    for skip in added.skipped:
        assert expected[Path(skip.path).name] in skip.reason
    assert await pepper.rag.count() == len(added)
    hits = await pepper.rag.search("What does error E4217 mean?", k=1, filter={"page": 2})
    assert hits[0].document.metadata["source"] == str(files["report"].resolve())
    narrowed = await pepper.rag.add(files["folder"], glob="**/*.md")
    assert {d.metadata["source"] for d in narrowed} == {str(files["notes"].resolve())} and narrowed.skipped == []


async def test_a_folder_of_bad_files_only_stores_nothing(pepper, files, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    bad_files(bad, files["report"])
    with pytest.raises(FileLoadError, match=r"none of its 6 files could be loaded"):
        await pepper.rag.add([files["notes"], bad])
    assert await pepper.rag.count() == 0, "everything is read before anything is stored"


async def test_re_adding_a_changed_file_replaces_its_chunks_and_removes_lost_pages(pepper, files):
    report = files["report"]
    first = await pepper.rag.add(report)
    assert len(first) == 3 and first.removed == []
    write_pdf(report, ["Revenue fell by two percent.", PAGES[1]])
    second = await pepper.rag.add(report)
    source = str(report.resolve())
    assert second.removed == [f"{source}#p3#0"]
    assert sorted(await pepper.rag.provider.ids({"source": source})) == [f"{source}#p1#0", f"{source}#p2#0"]
    (hit,) = await pepper.rag.search("revenue", k=1, filter={"source": source, "page": 1})
    assert hit.document.text == "Revenue fell by two percent."
    assert await pepper.rag.count() == 2


async def test_a_heading_with_no_text_under_it_is_no_chunk_of_its_own_in_docx_and_html(loader_manager, tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Guide", level=1)
    document.add_heading("Install", level=2)
    document.add_paragraph("Run the installer and restart the service.")
    document.save(str(tmp_path / "guide.docx"))
    (tmp_path / "guide.html").write_text(
        "<html><body><main><article><h1>Guide</h1><h2>Install</h2><p>Run the installer and restart the service "
        "when it asks you to.</p></article></main></body></html>"
    )
    for name in ("guide.docx", "guide.html"):
        chunks, _, _ = await to_chunks(tmp_path / name, manager=loader_manager)
        assert [(Path(d.id).name, d.metadata["heading"]) for d in chunks] == [
            (f"{name}#s2#0", "Guide > Install")
        ], name


async def test_re_adding_a_file_removes_a_heading_only_chunk_an_older_version_stored(pepper, tmp_path):
    """A store made before heading-only sections were left out holds ``guide.md#s1#0`` (``# Guide`` alone);
    adding the file again removes it, and the other chunks keep their ids."""
    guide = tmp_path / "guide.md"
    guide.write_text("# Guide\n\n## Install\n\nRun the installer.\n")
    source = str(guide.resolve())
    await pepper.rag.add(Document(id=f"{source}#s1#0", text="# Guide", metadata={"source": source, "chunk": 0}))
    added = await pepper.rag.add(guide)
    assert [d.id for d in added] == [f"{source}#s2#0"]
    assert added.removed == [f"{source}#s1#0"]
    assert await pepper.rag.provider.ids({"source": source}) == [f"{source}#s2#0"]


GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()


def guide_block(language: str) -> str:
    """The first ``language`` block of docs/plugins.md's "Writing a loader": the guide runs as written."""
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(GUIDE, GUIDE.index("## Writing a loader"))
    assert match is not None
    return match.group(1)


async def test_a_loader_folder_dropped_into_plugins_adds_a_format_installed_on_first_use(files, tmp_path):
    """A third party's loader (docs/plugins.md's, as written): its own requirements.txt, installed with uv into a
    fresh home on first use."""
    folder = tmp_path / "plugins" / "loader_rtf"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(guide_block("json"))
    (folder / "requirements.txt").write_text("striprtf==0.0.29\n")
    (folder / "provider.py").write_text(guide_block("python"))
    (files["folder"] / "memo.rtf").write_text(r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0 The memo is signed.\par}")
    manager = PluginManager(search_paths=[builtin_plugins_dir(), tmp_path / "plugins"], home=tmp_path / "home")
    assert manager.needs_install("loader", "rtf")
    documents, skipped, _ = await to_chunks(files["folder"], manager=manager, glob="*.[rp][td]f")
    assert skipped == []
    assert [d.text.strip() for d in documents if d.metadata["source"].endswith(".rtf")] == ["The memo is signed."]
    (files["folder"] / "fake.rtf").write_text("plain words")
    _, skipped, _ = await to_chunks(files["folder"], manager=manager, glob="*.rtf")
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        ("fake.rtf", "not an RTF file; save it as .rtf again, or pass loader='text'")
    ]
    assert [d.metadata.get("page") for d in documents if d.metadata["source"].endswith(".pdf")] == [1, 2, 3]
    assert not manager.needs_install("loader", "rtf")
    assert list((tmp_path / "home" / "envs").glob("*/striprtf")), "installed with uv into the plugin's own env"


async def test_scaffolded_loader_reads_its_suffix(tmp_path, files):
    """`pepperpy plugins new loader NAME` writes a loader that works as written."""
    from pepperpy.cli._scaffold import scaffold

    folder = tmp_path / "plugins" / "loader_notes"
    folder.mkdir(parents=True)
    for name, text in scaffold("loader", "notes").items():
        (folder / name).write_text(text)
    (tmp_path / "a.notes").write_text("First line.\nSecond line.")
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=tmp_path / "home")
    (document,) = await load_path(tmp_path / "a.notes", manager=manager)
    assert document.text == "First line.\nSecond line." and document.metadata == {"title": "a"}
    shutil.rmtree(folder)


def test_the_scaffolded_loaders_readme_example_runs_as_written(tmp_path):
    """The README of `plugins new loader NAME` shows a script that runs as it is, from the folder holding plugins/."""
    from pepperpy.cli._scaffold import scaffold

    files = scaffold("loader", "notes")
    folder = tmp_path / "plugins" / "loader_notes"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    (tmp_path / "notes.notes").write_text("Read by the scaffolded loader.")
    (example,) = re.findall(r"```python\n(.*?)```", files["README.md"], re.DOTALL)
    env = {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Read by the scaffolded loader.\n"
