"""Chunking policy and turning inputs into Documents."""

from __future__ import annotations


import pytest

from pepperpy.documents import chunk_text, load_file, text_id, to_documents
from pepperpy.errors import ConfigError
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


def test_unsupported_items_are_refused():
    with pytest.raises(ConfigError, match="cannot add int"):
        to_documents([42])  # type: ignore[list-item]
