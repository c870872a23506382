"""Chunking policy and turning inputs into Documents."""

from __future__ import annotations


import pytest

from pepperpy.documents import chunk_text, load_file, text_id, to_documents
from pepperpy.errors import ConfigError, InvalidInputError
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


def test_strings_get_content_ids_and_documents_pass_through():
    document = Document(id="mine", text="kept")
    documents = to_documents(["hello", document])
    assert documents[0].id == text_id("hello") == to_documents(["hello"])[0].id
    assert documents[1] is document


def test_file_chunks_carry_source_and_stable_ids(tmp_path):
    file = tmp_path / "a.txt"
    file.write_text("First.\n\nSecond.")
    (document,) = load_file(file)
    assert document.id == f"{file.resolve()}#0"
    assert document.metadata == {"source": str(file.resolve()), "chunk": 0}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("missing.txt", None, "no such file"), ("blob.md", b"\x00\x01", "not a UTF-8 text file"),
     ("empty.txt", b"  \n", "the file is empty"), ("sheet.xlsx", b"data", "only .* files are loaded")],
)
def test_bad_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        load_file(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("items", [[42], 42, b"text", {"id": "x", "text": "y"}, [("x", "y")], [b"text"]])
def test_unsupported_items_are_refused_saying_what_is_accepted(items):
    with pytest.raises(InvalidInputError, match=r"cannot add \w+; pass a Document, a text \(str\), a pathlib.Path"):
        to_documents(items)


def test_one_item_alone_is_a_one_item_list(tmp_path):
    file = tmp_path / "notes.md"
    file.write_text("Release notes.")
    document = Document(id="mine", text="kept")
    assert to_documents("A sentence with spaces.") == to_documents(["A sentence with spaces."])
    assert [d.text for d in to_documents("A sentence with spaces.")] == ["A sentence with spaces."]
    assert to_documents(file) == to_documents([file]) == load_file(file)
    assert to_documents(document) == [document]
    assert to_documents(d for d in [document]) == [document], "any iterable of items"


def test_a_folder_adds_its_text_files_recursively(tmp_path):
    folder = tmp_path / "notes"
    (folder / "deep" / "deeper").mkdir(parents=True)
    (folder / "b.md").write_text("Bee.")
    (folder / "a.txt").write_text("Ay.")
    (folder / "deep" / "deeper" / "c.md").write_text("Sea.")
    (folder / "empty.md").write_text("  \n")
    (folder / "image.png").write_bytes(b"\x89PNG\x00")
    (folder / ".git").mkdir()
    (folder / ".git" / "notes.txt").write_text("hidden")
    (folder / ".draft.md").write_text("hidden")
    expected = [folder / "a.txt", folder / "b.md", folder / "deep" / "deeper" / "c.md"]
    alone = to_documents(folder)
    assert [d.metadata["source"] for d in alone] == [str(p.resolve()) for p in expected]
    assert [d.text for d in alone] == ["Ay.", "Bee.", "Sea."]
    assert to_documents([folder, "and a text"])[:3] == alone


def test_a_folder_without_text_files_is_refused(tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cat.png").write_bytes(b"\x89PNG")
    with pytest.raises(InvalidInputError, match=r"the folder holds no \.markdown, \.md, \.txt files") as raised:
        to_documents(tmp_path / "pictures")
    assert str(tmp_path / "pictures") in str(raised.value)


def test_a_bad_file_in_a_folder_names_it(tmp_path):
    (tmp_path / "ok.md").write_text("Fine.")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01")
    with pytest.raises(ConfigError, match="not a UTF-8 text file") as raised:
        to_documents(tmp_path)
    assert str(tmp_path / "blob.txt") in str(raised.value)
