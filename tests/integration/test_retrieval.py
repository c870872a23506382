"""Retrieval end to end with the real local embeddings and LLM: quality, loaders, pepper.ask with sources."""

from __future__ import annotations

import pytest

from pepperpy import Document, PepperPy
from pepperpy.errors import ConfigError

pytestmark = pytest.mark.integration

# (passage, a question it answers, in other words)
LABELLED = [
    ("The Eiffel Tower was completed in 1889 for the World's Fair in Paris.", "When was the Eiffel Tower finished?"),
    ("Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.", "How do plants make food from light?"),
    ("The Great Wall of China stretches for thousands of kilometres across northern China.", "How long is the Great Wall?"),
    ("Honey bees communicate the location of flowers through a waggle dance.", "How do bees tell each other where flowers are?"),
    ("The Pacific is the largest and deepest of Earth's oceans.", "Which ocean is the biggest?"),
    ("Mozart composed more than 600 works, including symphonies and operas.", "How many pieces did Mozart write?"),
    ("Insulin is a hormone that regulates the amount of glucose in the blood.", "What controls blood sugar levels?"),
    ("The Amazon rainforest produces a large share of the world's oxygen and hosts vast biodiversity.", "Which rainforest has huge biodiversity?"),
    ("Venus is the hottest planet in the Solar System because of its thick carbon dioxide atmosphere.", "Why is Venus so hot?"),
    ("The printing press, invented by Johannes Gutenberg, spread books across Europe.", "Who invented the printing press?"),
    ("Penguins are flightless birds that live mostly in the Southern Hemisphere.", "Which birds cannot fly and live in the south?"),
    ("A marathon is a long-distance running race of 42.195 kilometres.", "How far is a marathon?"),
    ("Vaccines train the immune system to recognise a pathogen without causing the disease.", "How do vaccines protect us?"),
    ("The Sahara is the largest hot desert in the world, covering much of North Africa.", "What is the biggest hot desert?"),
    ("Bitcoin is a decentralized digital currency that uses a blockchain ledger.", "What is the cryptocurrency based on a blockchain?"),
    ("The human heart has four chambers: two atria and two ventricles.", "How many chambers does the heart have?"),
    ("Shakespeare wrote Hamlet, a tragedy about a Danish prince seeking revenge.", "Who is the author of Hamlet?"),
    ("Coffee beans are the roasted seeds of the Coffea plant's cherries.", "Where do coffee beans come from?"),
    ("Earthquakes happen when tectonic plates suddenly slip past each other.", "What causes earthquakes?"),
    ("The Moon's gravity is the main cause of ocean tides on Earth.", "Why does the sea have tides?"),
]
DISTRACTORS = [
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Our office is closed on public holidays.",
    "The train to Lyon leaves at nine every morning.",
    "Remember to water the tomatoes twice a week in summer.",
    "The meeting was moved to Thursday afternoon.",
]


@pytest.fixture
async def pepper(chroma_manager, local_manager, tmp_path):
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, seed=1, max_tokens=60)
    async with pepper.with_rag("local", path=tmp_path / "store.sqlite3") as ready:
        yield ready


async def test_recall_at_5_on_a_labelled_set(pepper):
    documents = [Document(id=f"p{n}", text=text) for n, (text, _) in enumerate(LABELLED)]
    documents += [Document(id=f"noise{n}", text=text) for n, text in enumerate(DISTRACTORS)]
    await pepper.rag.add(documents)
    found = 0
    for n, (_, question) in enumerate(LABELLED):
        hits = [hit.document.id for hit in await pepper.rag.search(question, k=5)]
        found += f"p{n}" in hits
    recall = found / len(LABELLED)
    assert recall >= 0.9, f"recall@5 = {recall:.2f}"


async def test_ask_answers_with_the_sources_it_used(pepper):
    await pepper.rag.add([Document(id=f"p{n}", text=text) for n, (text, _) in enumerate(LABELLED)])
    answer = await pepper.ask("When was the Eiffel Tower finished?", k=3)
    assert answer.sources[0].document.id == "p0"
    assert len(answer.sources) == 3 and answer.content.strip()
    assert answer.result.messages[0].content.count("[1]") == 1 and LABELLED[0][0] in answer.result.messages[0].content


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
