"""Retrieval end to end with the real local embeddings and LLM: quality, loaders, pepper.ask with sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pepperpy import Document, PepperPy
from pepperpy.errors import ConfigError

pytestmark = pytest.mark.integration

# The labelled set: passages with a question each, in other words ("paraphrase") or hinging on an exact
# identifier, code or name ("exact"), and distractors (near misses of the exact terms); scripts/bench.py retrieval
# reports the same figures.
LABELLED_SET = json.loads((Path(__file__).parents[1] / "fixtures" / "retrieval" / "labelled.json").read_text())
LABELLED = [(p["text"], p["question"]) for p in LABELLED_SET["passages"] if p["kind"] == "paraphrase"]


@pytest.fixture
async def pepper(chroma_manager, local_manager, tmp_path):
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, seed=1, max_tokens=60)
    async with pepper.with_rag("local", path=tmp_path / "store.sqlite3") as ready:
        yield ready


async def recall_at_5(pepper, mode: str) -> dict[str, float]:
    """kind ("paraphrase", "exact", "all") -> the share of questions whose passage is in the top 5 of ``mode``."""
    found: dict[str, list[bool]] = {"all": []}
    for passage in LABELLED_SET["passages"]:
        hits = [hit.document.id for hit in await pepper.rag.search(passage["question"], k=5, mode=mode)]
        found.setdefault(passage["kind"], []).append(passage["id"] in hits)
        found["all"].append(passage["id"] in hits)
    return {kind: sum(hits) / len(hits) for kind, hits in found.items()}


@pytest.fixture
async def labelled(pepper):
    documents = [Document(id=p["id"], text=p["text"]) for p in LABELLED_SET["passages"]]
    documents += [Document(id=f"noise{n}", text=text) for n, text in enumerate(LABELLED_SET["distractors"])]
    await pepper.rag.add(documents)
    return pepper


async def test_recall_at_5_on_a_labelled_set(labelled):
    recall = (await recall_at_5(labelled, "hybrid"))["all"]
    assert recall >= 0.9, f"recall@5 = {recall:.2f}"
    assert await labelled.rag.search("What does E_CONN-42 mean?", k=5) == await labelled.rag.search(
        "What does E_CONN-42 mean?", k=5, mode="hybrid"
    ), "hybrid is the default"


async def test_hybrid_search_is_at_least_as_good_as_vector_search(labelled):
    """What makes hybrid the default: on the labelled set it finds at least what vectors alone find, and the
    keyword side finds the exact-term passages the vectors confuse with their near misses."""
    vector, keyword, hybrid = [await recall_at_5(labelled, mode) for mode in ("vector", "keyword", "hybrid")]
    assert hybrid["all"] >= vector["all"], (vector, hybrid)
    assert hybrid["paraphrase"] >= vector["paraphrase"] and hybrid["exact"] >= vector["exact"], (vector, hybrid)
    assert keyword["exact"] >= 0.9, keyword


async def test_ask_answers_with_the_sources_it_used(pepper):
    await pepper.rag.add([Document(id=f"p{n}", text=text) for n, (text, _) in enumerate(LABELLED)])
    answer = await pepper.ask("When was the Eiffel Tower finished?", k=3)
    assert answer.sources[0].document.id == "p0"
    assert len(answer.sources) == 3 and answer.content.strip()
    assert answer.result.messages[0].content.count("[1]") == 1 and LABELLED[0][0] in answer.result.messages[0].content


async def test_ask_takes_the_search_mode(labelled):
    answer = await labelled.ask("What does E_CONN-42 mean?", k=1, mode="keyword")
    assert [source.document.id for source in answer.sources] == ["x0"]
    assert "E_CONN-42" in answer.result.messages[0].content


async def test_files_are_chunked_with_stable_ids(pepper, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("\n\n".join(f"Paragraph {n}. " + "Some words about topic number %d. " % n * 12 for n in range(6)))
    first = await pepper.rag.add([notes], chunk_size=500, chunk_overlap=50)
    assert len(first) > 1 and all(len(d.text) <= 560 for d in first)
    assert [d.id for d in first] == [f"{notes.resolve()}#s0#{n}" for n in range(len(first))], "section s0: no heading"
    await pepper.rag.add([notes], chunk_size=500, chunk_overlap=50)
    assert await pepper.rag.count() == len(first), "re-adding a file updates its chunks"
    (hit,) = await pepper.rag.search("topic number 3", k=1, filter={"source": str(notes.resolve())})
    assert hit.document.metadata["source"] == str(notes.resolve())


async def test_bad_inputs_are_clear_errors(pepper, tmp_path):
    from pathlib import Path

    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\x00\x01\x02")
    with pytest.raises(ConfigError, match="no such file"):
        await pepper.rag.add([Path(tmp_path / "missing.txt")])
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        await pepper.rag.add([binary])
    with pytest.raises(ConfigError, match=r"no loader reads \.sqlite3 files"):
        await pepper.rag.add([tmp_path / "store.sqlite3"])
    with pytest.raises(ConfigError, match="empty text"):
        await pepper.rag.add(["   "])
    await pepper.rag.add(["Still works afterwards."])
    assert await pepper.rag.count() == 1


def test_with_rag_defaults_to_local_with_local_embeddings(chroma_manager):
    pepper = PepperPy(plugin_manager=chroma_manager).with_rag()
    assert pepper.provider("rag").name == "local"
    assert pepper.provider("rag").embeddings is pepper.provider("embeddings")
    assert pepper.provider("embeddings").model_id == "all-MiniLM-L6-v2-int8"
    chroma = PepperPy(plugin_manager=chroma_manager).with_rag("chroma", path="/tmp/unused")
    assert chroma.provider("rag").name == "chroma"


async def test_one_item_alone_and_a_folder_go_into_the_real_store(pepper, tmp_path):
    from pepperpy.errors import InvalidInputError

    folder = tmp_path / "handbook"
    (folder / "teams").mkdir(parents=True)
    (folder / "releases.md").write_text("Ana signs off every release on Fridays.")
    (folder / "teams" / "support.txt").write_text("The support team answers tickets within a day.")
    sentence = "The office coffee machine is descaled every Monday."
    assert [d.text for d in await pepper.rag.add(sentence)] == [sentence]
    assert len(await pepper.rag.add(folder / "releases.md")) == 1
    assert len(await pepper.rag.add(Document(id="wifi", text="The guest Wi-Fi password changes monthly."))) == 1
    assert len(await pepper.rag.add(folder)) == 2
    assert await pepper.rag.count() == 4, "the file given alone and again in its folder is one document"
    (hit,) = await pepper.rag.search("How fast are tickets answered?", k=1)
    assert hit.document.metadata["source"] == str((folder / "teams" / "support.txt").resolve())
    with pytest.raises(InvalidInputError, match="cannot add int"):
        await pepper.rag.add(7)  # type: ignore[arg-type]
    assert (pepper.rag.plugin_id, pepper.rag.name) == ("rag/local", "local")


async def test_ask_on_an_empty_store_does_not_ask_the_model_unless_told_to(pepper):
    nothing = await pepper.ask("Who signs off releases?")
    assert nothing.result is None and nothing.sources == [], "the model was not asked"
    assert nothing.content == "No passage in the store matches the question, so it was not answered."
    anyway = await pepper.ask("What is the capital of France?", answer_without_sources=True)
    assert anyway.sources == [] and anyway.result is not None and anyway.content.strip()
    assert "general knowledge" in anyway.result.messages[0].content


async def test_a_filter_with_an_operator_is_refused_not_an_empty_answer(pepper):
    from pepperpy.errors import InvalidInputError

    await pepper.rag.add([Document(id="p2", text="Page two of the guide.", metadata={"page": 2})])
    assert [hit.document.id for hit in await pepper.rag.search("guide", filter={"page": [2, 3]})] == ["p2"]
    for bad in ({"page": {"$gt": 1}}, {"page": {"$in": [2]}}):
        with pytest.raises(InvalidInputError, match=r"filter 'page': .* looks like an operator, and filters only match"):
            await pepper.rag.search("guide", filter=bad)
        with pytest.raises(InvalidInputError, match="looks like an operator"):
            await pepper.ask("What is on page two?", filter=bad)


async def test_a_file_deleted_from_a_folder_leaves_its_chunks_until_they_are_deleted_by_source(pepper, tmp_path):
    """Re-adding a folder adds and updates what is there; the chunks of a file no longer there are the caller's to
    remove (README: Collections): ``ids({"source": ...})`` finds them."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nalpha text about apples")
    (folder / "b.md").write_text("# B\n\nbravo text about bananas")
    await pepper.rag.add(folder)
    gone = folder / "b.md"
    gone.unlink()
    assert (await pepper.rag.add(folder)).removed == []
    stale = await pepper.rag.ids({"source": str(gone.resolve())})
    assert len(stale) == 1 and stale[0].startswith(f"{gone.resolve()}#")
    await pepper.rag.delete(stale)
    assert await pepper.rag.count() == 1
    assert all(hit.document.metadata["source"] != str(gone.resolve()) for hit in await pepper.rag.search("bananas"))


def test_ids_count_and_delete_have_sync_forms_for_scripts(local_manager, tmp_path):
    pepper = PepperPy(plugin_manager=local_manager).with_rag("local", path=tmp_path / "sync.sqlite3")
    try:
        pepper.rag.add_sync([Document(id="one", text="One", metadata={"n": 1}), Document(id="two", text="Two", metadata={"n": 2})])
        assert sorted(pepper.rag.ids_sync({"n": [1, 2]})) == ["one", "two"]
        pepper.rag.delete_sync(pepper.rag.ids_sync({"n": 1}))
        assert pepper.rag.count_sync() == 1
    finally:
        pepper.close()
