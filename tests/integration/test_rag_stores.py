"""The same RAG contract on rag/local, Chroma embedded and a real `chroma run` server, with the real local embeddings."""

from __future__ import annotations

import re

import pytest

from pepperpy import Document, PepperPy
from pepperpy.errors import ConfigError, ProviderError

pytestmark = pytest.mark.integration

DOCS = [
    Document(id="paris", text="Paris is the capital and largest city of France.", metadata={"topic": "geography", "year": 2024}),
    Document(id="python", text="Python is a programming language created by Guido van Rossum.", metadata={"topic": "code"}),
    Document(id="sun", text="The Sun is the star at the center of the Solar System.", metadata={"topic": "space"}),
    Document(id="rust", text="Rust is a systems programming language focused on memory safety.", metadata={"topic": "code"}),
    Document(id="everest", text="Mount Everest is the highest mountain above sea level.", metadata={"topic": "geography"}),
]


@pytest.fixture(params=["local", "chroma-embedded", "chroma-server"])
async def empty(request, chroma_manager, tmp_path):
    """A PepperPy with a new, empty store of each kind."""
    if request.param == "local":
        config = {"path": tmp_path / "store.sqlite3"}
    elif request.param == "chroma-embedded":
        config = {"path": tmp_path / "chroma"}
    else:
        host, port = request.getfixturevalue("chroma_server")
        config = {"host": host, "port": port, "collection": f"c{abs(hash(request.node.name))}"}
    provider = "local" if request.param == "local" else "chroma"
    async with PepperPy(plugin_manager=chroma_manager).with_rag(provider, **config) as ready:
        yield ready


@pytest.fixture
async def pepper(empty):
    await empty.rag.add(DOCS)
    return empty


async def ids(pepper, query, k=5, filter=None, mode="hybrid"):
    return [hit.document.id for hit in await pepper.rag.search(query, k=k, filter=filter, mode=mode)]


async def test_an_empty_store_searches_to_nothing(empty):
    assert await empty.rag.count() == 0
    assert await empty.rag.search("anything at all") == []
    assert await empty.rag.search("anything at all", filter={"topic": "code"}) == []
    await empty.rag.add(DOCS[:1])
    await empty.rag.delete([DOCS[0].id])
    assert await empty.rag.search("Paris", k=3) == [], "emptied again: nothing to find"


async def test_search_ranks_the_answering_document_first(pepper):
    assert (await ids(pepper, "Who created Python?"))[0] == "python"
    assert (await ids(pepper, "What is the tallest mountain?"))[0] == "everest"
    hits = await pepper.rag.search("capital of France", k=2)
    assert hits[0].document == DOCS[0]
    assert hits[0].score > hits[1].score


async def test_ids_lists_the_documents_a_filter_matches(pepper):
    """What rag.add uses to delete the chunks a re-added file no longer has."""
    store = pepper.rag.provider
    assert sorted(await store.ids({"topic": "geography"})) == ["everest", "paris"]
    assert sorted(await store.ids({"topic": ["code", "space"]})) == ["python", "rust", "sun"]
    assert await store.ids({"topic": "none"}) == []


async def test_readding_a_file_removes_the_chunks_it_lost(empty, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# One\n\nFirst part.\n\n# Two\n\nSecond part.\n")
    assert len(await empty.rag.add(notes)) == 2
    notes.write_text("# One\n\nFirst part, changed.\n")
    again = await empty.rag.add(notes)
    assert again.removed == [f"{notes.resolve()}#s2#0"]
    assert await empty.rag.count() == 1
    (hit,) = await empty.rag.search("part", k=5)
    assert hit.document.text == "# One\n\nFirst part, changed."


async def test_readding_an_id_updates_instead_of_duplicating(pepper):
    await pepper.rag.add([Document(id="sun", text="The Moon orbits the Earth.", metadata={"topic": "space"})])
    assert await pepper.rag.count() == len(DOCS)
    (hit,) = await pepper.rag.search("What orbits the Earth?", k=1)
    assert hit.document.id == "sun" and hit.document.text == "The Moon orbits the Earth."


async def test_metadata_filters(pepper):
    assert set(await ids(pepper, "programming", filter={"topic": "code"})) == {"python", "rust"}
    assert set(await ids(pepper, "anything", filter={"topic": ["space", "code"]})) == {"python", "rust", "sun"}
    assert await ids(pepper, "city", filter={"topic": "geography", "year": 2024}) == ["paris"]
    assert await ids(pepper, "city", filter={"topic": "cooking"}) == []


CODES = [
    Document(id="conn", text="The client raises E_CONN-42 when the connection pool is exhausted.", metadata={"topic": "errors"}),
    Document(id="auth", text='E_AUTH-7 means "token expired": sign in again.', metadata={"topic": "errors"}),
    Document(id="pool", text="Set max_pool_size in pepper.toml to raise the pool limit.", metadata={"topic": "config"}),
]


@pytest.fixture
async def coded(pepper):
    await pepper.rag.add(CODES)
    return pepper


async def test_keyword_search_finds_exact_codes_and_names(coded):
    assert (await ids(coded, "E_CONN-42", mode="keyword"))[0] == "conn"
    assert (await ids(coded, "what does e_auth-7 mean", mode="keyword"))[0] == "auth"
    assert (await ids(coded, "max_pool_size", mode="keyword"))[0] == "pool"
    assert (await ids(coded, "Guido van Rossum", mode="keyword"))[0] == "python"
    assert await ids(coded, "zeppelin", mode="keyword") == [], "no word matches: nothing"
    hits = await coded.rag.search("E_CONN-42 pool", k=3, mode="keyword")
    assert hits[0].document == CODES[0] and hits[0].score > hits[-1].score
    assert (await ids(coded, "Which error code is E_CONN-42?"))[0] == "conn", "hybrid, the default"


@pytest.mark.parametrize("query", [
    '"E_CONN-42"', "E_CONN-42 AND NOT pool", "NEAR(E_CONN-42", "E_CONN-42*", "'); DROP TABLE docs; -- E_CONN-42",
    'E_CONN-42 "unbalanced', "E_CONN-42 OR", "^E_CONN-42 : {col}",
])
async def test_query_syntax_in_a_query_is_plain_words(coded, query):
    assert (await ids(coded, query, mode="keyword"))[0] == "conn"
    assert "conn" in await ids(coded, query, mode="hybrid")
    assert await coded.rag.count() == len(DOCS) + len(CODES)


async def test_a_query_without_words_finds_nothing_by_keyword(coded):
    assert await ids(coded, "?! -- \"\" *", mode="keyword") == []


async def test_filters_apply_to_keyword_and_hybrid_search(coded):
    assert await ids(coded, "pool E_CONN-42", mode="keyword", filter={"topic": "config"}) == ["pool"]
    assert set(await ids(coded, "pool E_CONN-42 token", mode="keyword", filter={"topic": ["errors"]})) == {"conn", "auth"}
    hybrid = await coded.rag.search("pool E_CONN-42", k=5, mode="hybrid", filter={"topic": "errors"})
    assert hybrid and {hit.document.metadata["topic"] for hit in hybrid} == {"errors"}
    assert await ids(coded, "E_CONN-42", mode="hybrid", filter={"topic": "cooking"}) == []


async def test_keyword_search_follows_updates_and_deletes(coded):
    await coded.rag.add([Document(id="conn", text="Renamed: E_NET-9 replaces the old code.", metadata={"topic": "errors"})])
    assert "conn" not in await ids(coded, "E_CONN-42", mode="keyword")
    assert (await ids(coded, "E_NET-9", mode="keyword"))[0] == "conn"
    await coded.rag.delete(["conn"])
    assert await ids(coded, "E_NET-9", mode="keyword") == []


async def test_an_unknown_mode_is_a_clear_error(pepper):
    from pepperpy.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown search mode 'semantic'; use one of 'vector', 'keyword', 'hybrid'"):
        await pepper.rag.search("Paris", mode="semantic")


async def test_delete_and_count(pepper):
    await pepper.rag.delete(["rust", "sun"])
    assert await pepper.rag.count() == len(DOCS) - 2
    assert "rust" not in await ids(pepper, "memory safe systems language")


async def test_embeddings_of_another_model_are_refused_naming_both(pepper, llama_embeddings_server):
    store = pepper.provider("rag")
    other = pepper._manager.create_provider("embeddings", "llamacpp", base_url=llama_embeddings_server)
    async with other:
        store.use_embeddings(other)
        try:
            with pytest.raises(ConfigError, match=r"all-MiniLM-L6-v2-int8.*embeddings/openai:default"):
                await store.add([Document(id="x", text="A new document.")])
            with pytest.raises(ConfigError, match=r"all-MiniLM-L6-v2-int8.*embeddings/openai:default"):
                await store.search("anything")
        finally:
            store.use_embeddings(pepper.provider("embeddings"))
    assert await pepper.rag.count() == len(DOCS)


async def test_empty_documents_and_queries_are_refused(pepper):
    with pytest.raises(ConfigError, match="empty"):
        await pepper.rag.add([""])
    with pytest.raises(ConfigError, match="empty"):
        await pepper.rag.search("  ")


async def test_unreachable_chroma_server_names_host_and_port(chroma_manager):
    from tests.integration.conftest import free_port

    port = free_port()
    pepper = PepperPy(plugin_manager=chroma_manager).with_rag("chroma", host="127.0.0.1", port=port, connect_attempts=2)
    with pytest.raises(ProviderError, match=rf"cannot reach the Chroma server 127\.0\.0\.1:{port} after 2 attempts"):
        async with pepper:
            pass



def store_config(kind, request, tmp_path):
    """(provider, config, how errors name the store) for a new store of ``kind``."""
    if kind == "local":
        return "local", {"path": tmp_path / "store.sqlite3"}, f"the store {tmp_path / 'store.sqlite3'}"
    if kind == "chroma-embedded":
        where = f"collection 'pepperpy' of the Chroma store {tmp_path / 'chroma'}"
        return "chroma", {"path": tmp_path / "chroma"}, where
    host, port = request.getfixturevalue("chroma_server")
    collection = f"c{abs(hash(request.node.name))}"
    return "chroma", {"host": host, "port": port, "collection": collection}, (
        f"collection {collection!r} of the Chroma server {host}:{port}")


REFUSED = (
    r"^rag/\w+: {where} holds 384-dimension vectors from 'all-MiniLM-L6-v2-int8', but the current embeddings give "
    r"576-dimension vectors from '{model}', and vectors of two models or sizes cannot be compared; use the embeddings "
    r"the store was built with, or another path or collection for these \(or move the store away and add the "
    r"documents again\)$"
)


@pytest.mark.parametrize("kind", ["local", "chroma-embedded", "chroma-server"])
async def test_a_store_reopened_with_other_embeddings_is_refused(
    kind, request, chroma_manager, llama_embeddings_server, tmp_path
):
    """Built with embeddings/local (384 dimensions), reopened with another model (576): add and search are refused
    naming the store, both models and both dimensions; the store is left as it was."""
    provider, config, where = store_config(kind, request, tmp_path)
    async with PepperPy(plugin_manager=chroma_manager).with_rag(provider, **config) as first:
        await first.rag.add(DOCS)
    other = PepperPy(plugin_manager=chroma_manager).with_embeddings("llamacpp", base_url=llama_embeddings_server)
    refused = REFUSED.format(where=re.escape(where), model="embeddings/openai:default")
    async with other.with_rag(provider, **config):
        with pytest.raises(ConfigError, match=refused):
            await other.rag.search("capital of France")
        with pytest.raises(ConfigError, match=refused):
            await other.rag.add([Document(id="x", text="A new one.")])
    async with PepperPy(plugin_manager=chroma_manager).with_rag(provider, **config) as again:
        assert await again.rag.count() == len(DOCS)
        assert (await again.rag.search("capital of France", k=1))[0].document.id == "paris"


@pytest.mark.parametrize("kind", ["local", "chroma-embedded", "chroma-server"])
async def test_a_text_query_against_vectors_of_another_size_is_refused(
    kind, request, chroma_manager, llama_embeddings_server, tmp_path
):
    """Vectors of another model (576 dimensions) given directly to a store whose embeddings give 384: a text query
    is refused naming both sizes, as is adding texts; a query vector of the stored size is served."""
    provider, config, where = store_config(kind, request, tmp_path)
    async with chroma_manager.create_provider("embeddings", "llamacpp", base_url=llama_embeddings_server) as other:
        vectors = await other.embed([d.text for d in DOCS])
        question = await other.embed_one("What is the capital of France?")
    async with PepperPy(plugin_manager=chroma_manager).with_rag(provider, **config) as pepper:
        store = pepper.provider("rag")
        await store.add(DOCS, vectors)
        refused = rf"^rag/\w+: {re.escape(where)} holds 576-dimension vectors from 'all-MiniLM-L6-v2-int8', but the " \
                  r"current embeddings give 384-dimension vectors from 'all-MiniLM-L6-v2-int8'"
        with pytest.raises(ConfigError, match=refused):
            await pepper.rag.search("capital of France")
        with pytest.raises(ConfigError, match=refused):
            await pepper.rag.add([Document(id="x", text="A new one.")])
        assert (await store.search(question, k=1))[0].document.id == "paris"
        assert await pepper.rag.count() == len(DOCS)
