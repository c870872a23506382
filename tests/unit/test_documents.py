"""Chunking policy and turning inputs (texts, files read by the built-in text loaders, folders) into Documents."""

from __future__ import annotations

import pytest

from pathlib import Path

from pepperpy._loaders import to_chunks
from pepperpy.documents import chunk_text, text_id
from pepperpy.errors import FileLoadError, InvalidInputError, PluginNotFoundError
from pepperpy.rag import Document


def test_short_text_is_one_chunk():
    assert chunk_text("One paragraph.\n\nAnother one.") == ["One paragraph.\n\nAnother one."]


def test_paragraphs_are_packed_up_to_the_size_with_overlap():
    paragraphs = [f"Paragraph {n} " + "word " * 30 for n in range(10)]
    chunks = chunk_text("\n\n".join(paragraphs), size=400, overlap=40)
    assert len(chunks) > 2
    assert all(len(c) <= 400 + 40 for c in chunks)
    for previous, chunk in zip(chunks, chunks[1:]):
        overlap = chunk.split(" Paragraph", 1)[0]
        assert previous.endswith(overlap.strip()), "each chunk starts with the tail of the previous one"
    joined = " ".join(chunks)
    assert all(f"Paragraph {n}" in joined for n in range(10))


def test_a_long_paragraph_is_split_at_word_boundaries():
    chunks = chunk_text("alpha " * 500, size=100, overlap=0)
    assert all(len(c) <= 100 for c in chunks)
    assert all(set(c.split()) == {"alpha"} for c in chunks)


async def test_strings_get_content_ids_and_documents_pass_through(builtin_manager):
    document = Document(id="mine", text="kept")
    documents = await chunks(["hello", document], builtin_manager)
    assert documents[0].id == text_id("hello") == (await chunks(["hello"], builtin_manager))[0].id
    assert documents[1] is document


async def chunks(items, manager, **options):
    documents, _, _ = await to_chunks(items, manager=manager, **options)
    return documents


async def test_file_chunks_carry_source_and_stable_ids(tmp_path, builtin_manager):
    file = tmp_path / "a.txt"
    file.write_text("First.\n\nSecond.")
    (document,) = await chunks(file, builtin_manager)
    assert document.id == f"{file.resolve()}#0"
    assert document.metadata == {"source": str(file.resolve()), "chunk": 0}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("missing.txt", None, "no such file"), ("blob.md", b"\x00\x01", "not a UTF-8 text file"),
     ("empty.txt", b"  \n", "the file is empty"), ("sheet.xlsx", b"data", r"no loader reads \.xlsx files"),
     ("Makefile", b"all:", "no loader reads files without a suffix")],
)
async def test_bad_files_name_the_file(tmp_path, builtin_manager, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FileLoadError, match=message) as raised:
        await chunks(path, builtin_manager)
    assert str(path) in str(raised.value) and raised.value.path == str(path)


@pytest.mark.parametrize("items", [[42], 42, b"text", {"id": "x", "text": "y"}, [("x", "y")], [b"text"]])
async def test_unsupported_items_are_refused_saying_what_is_accepted(items, builtin_manager):
    with pytest.raises(InvalidInputError, match=r"cannot add \w+; pass a Document, a text \(str\), a pathlib.Path"):
        await chunks(items, builtin_manager)


async def test_one_item_alone_is_a_one_item_list(tmp_path, builtin_manager):
    file = tmp_path / "notes.md"
    file.write_text("Release notes.")
    document = Document(id="mine", text="kept")
    sentence = await chunks("A sentence with spaces.", builtin_manager)
    assert sentence == await chunks(["A sentence with spaces."], builtin_manager)
    assert [d.text for d in sentence] == ["A sentence with spaces."]
    assert await chunks(file, builtin_manager) == await chunks([file], builtin_manager)
    assert await chunks(document, builtin_manager) == [document]
    assert await chunks((d for d in [document]), builtin_manager) == [document], "any iterable of items"


async def test_a_folder_adds_its_files_recursively_and_lists_what_it_skipped(tmp_path, builtin_manager):
    folder = tmp_path / "notes"
    (folder / "deep" / "deeper").mkdir(parents=True)
    (folder / "b.md").write_text("Bee.")
    (folder / "a.txt").write_text("Ay.")
    (folder / "deep" / "deeper" / "c.md").write_text("Sea.")
    (folder / "empty.md").write_text("  \n")
    (folder / "image.png").write_bytes(b"\x89PNG\x00")
    (folder / "blob.txt").write_bytes(b"\x00\x01")
    (folder / ".git").mkdir()
    (folder / ".git" / "notes.txt").write_text("hidden")
    (folder / ".draft.md").write_text("hidden")
    expected = [folder / "a.txt", folder / "b.md", folder / "deep" / "deeper" / "c.md"]
    alone, skipped, sources = await to_chunks(folder, manager=builtin_manager)
    assert [d.metadata["source"] for d in alone] == [str(p.resolve()) for p in expected] == sources
    assert [d.text for d in alone] == ["Ay.", "Bee.", "Sea."]
    assert {Path(s.path).name: s.reason.split(";")[0] for s in skipped} == {
        "blob.txt": "not a UTF-8 text file (binary content)",
        "empty.md": "the file is empty (no text)",
        "image.png": "no loader reads .png files (loaders read .docx, .htm, .html, .markdown, .md, .pdf, .text, "
        ".txt, .xhtml)",
    }
    assert (await chunks([folder, "and a text"], builtin_manager))[:3] == alone


async def test_skipped_paths_are_absolute_like_sources(tmp_path, builtin_manager, monkeypatch):
    """A folder given by a relative path, through a symlink: skipped files are named like chunk sources (absolute,
    resolved), not as given."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "good.md").write_text("Good.")
    (tmp_path / "real" / "broken.png").write_bytes(b"\x89PNG")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "docs").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "work")
    documents, skipped, sources = await to_chunks(Path("docs"), manager=builtin_manager)
    assert sources == [str((tmp_path / "real" / "good.md").resolve())] == [d.metadata["source"] for d in documents]
    assert [s.path for s in skipped] == [str((tmp_path / "real" / "broken.png").resolve())]


async def test_glob_narrows_a_folder(tmp_path, builtin_manager):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("Top.")
    (tmp_path / "sub" / "b.md").write_text("Deep.")
    (tmp_path / "sub" / "c.txt").write_text("Text.")
    assert [d.text for d in await chunks(tmp_path, builtin_manager, glob="**/*.md")] == ["Top.", "Deep."]
    assert [d.text for d in await chunks(tmp_path, builtin_manager, glob="*.md")] == ["Top."]
    with pytest.raises(FileLoadError, match=r"the folder holds no files matching '\*\.pdf'"):
        await chunks(tmp_path, builtin_manager, glob="*.pdf")


async def test_a_folder_where_nothing_loads_is_refused_naming_each_file(tmp_path, builtin_manager):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cat.png").write_bytes(b"\x89PNG")
    with pytest.raises(FileLoadError, match=r"none of its 1 files could be loaded .*cat\.png: no loader reads \.png") as raised:
        await chunks(tmp_path / "pictures", builtin_manager)
    assert raised.value.path == str(tmp_path / "pictures"), "a FileLoadError naming the folder, as for a file"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileLoadError, match="the folder holds no files") as raised:
        await chunks(tmp_path / "empty", builtin_manager)
    assert raised.value.path == str(tmp_path / "empty")


@pytest.mark.parametrize("url", ["https://example.com/report.pdf", "file:///etc/passwd", " http://x.org/a.html "])
async def test_urls_are_refused_not_fetched(url, builtin_manager):
    for item in (url, Path(url.strip())):
        with pytest.raises(InvalidInputError, match="URLs are not fetched; download the file and add its local path"):
            await chunks([item], builtin_manager)
    assert [d.text for d in await chunks(f"See {url.strip()} for details.", builtin_manager)], "a sentence is text"


async def test_loader_overrides_the_suffix(tmp_path, builtin_manager):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nBody.")
    (as_text,) = await chunks(page, builtin_manager, loader="text")
    assert as_text.id == f"{page.resolve()}#0" and "heading" not in as_text.metadata
    with pytest.raises(PluginNotFoundError, match="no loader plugin named 'nope'"):
        await chunks(page, builtin_manager, loader="nope")
