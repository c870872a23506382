"""The hybrid-search contract: search modes, reciprocal rank fusion, the BM25 fallback, keyword_search's default."""

from __future__ import annotations

import pytest

from pepperpy.errors import InvalidInputError
from pepperpy.rag import SEARCH_MODES, Document, RAGProvider, SearchResult, check_mode
from pepperpy.ranking import RRF_K, bm25, fuse, query_words, words


def ranking(*ids: str) -> list[SearchResult]:
    return [SearchResult(document=Document(id=i, text=i), score=10.0 - n) for n, i in enumerate(ids)]


def test_fusion_rewards_documents_both_rankings_agree_on():
    fused = fuse([ranking("a", "b", "c"), ranking("c", "d", "b")], k=3)
    assert [hit.document.id for hit in fused] == ["c", "b", "a"]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))


def test_fusion_uses_ranks_only_and_keeps_k():
    scaled = [SearchResult(document=h.document, score=h.score * 1000) for h in ranking("x", "y")]
    assert [h.document.id for h in fuse([scaled, ranking("y")], k=1)] == ["y"]
    assert fuse([[], []], k=5) == []
    assert [h.document.id for h in fuse([ranking("a"), ranking("b")], k=5)] == ["a", "b"], "a tie keeps the first"


def test_words_keep_codes_and_identifiers_whole():
    assert words('Why "E_CONN-42" AND NOT user.id?') == ["why", "e_conn-42", "and", "not", "user.id"]


def test_query_words_leave_out_stop_and_question_words_unless_nothing_else_is_left():
    assert query_words("What does E_CONN-42 mean? What is it?") == ["e_conn-42"]
    assert query_words("Who is The Who") == ["who", "is", "the"], "only stop words: all of them, once each"


def test_bm25_ranks_the_rare_exact_term_first_and_drops_non_matches():
    documents = [
        Document(id="code", text="Error E_CONN-42 means the pool is exhausted."),
        Document(id="common", text="An error means something failed, an error again."),
        Document(id="none", text="Bees dance."),
    ]
    hits = bm25("what is error E_CONN-42", documents)
    assert [hit.document.id for hit in hits] == ["code", "common"]
    assert hits[0].score > hits[1].score > 0
    assert bm25("", documents) == [] and bm25("bees", []) == []


def test_modes_are_checked_with_a_clear_error():
    assert SEARCH_MODES == ("vector", "keyword", "hybrid")
    assert check_mode("pepper.rag.search", "keyword") == "keyword"
    with pytest.raises(InvalidInputError, match=r"pepper.rag.search: unknown search mode 'bm25'; use one of 'vector'"):
        check_mode("pepper.rag.search", "bm25")


async def test_a_store_without_keyword_search_says_so_with_none():
    class VectorsOnly(RAGProvider):
        async def add(self, documents, vectors=None): ...
        async def search(self, query, k=5, filter=None): return []
        async def delete(self, ids): ...
        async def count(self): return 0

    store = VectorsOnly()
    await store.initialize()
    assert await store.keyword_search("E_CONN-42", k=3) is None
