"""Ranking helpers shared by every store: reciprocal rank fusion, and BM25 for stores without keyword search."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from pepperpy.rag import Document, SearchResult

# Reciprocal rank fusion's constant (Cormack et al. 2009): a document at rank r adds 1 / (RRF_K + r).
RRF_K = 60
# A word: letters, digits and the joiners of identifiers and codes (E_CONN-42, user.id, v1.2).
WORD = re.compile(r"\w+(?:[-.]\w+)*")
# English function and question words, left out of keyword queries: in a small collection they are rare enough
# to outrank the word that matters ("What does E_CONN-42 mean?" must not rank "prints what would change" first).
# Lucene's English stop set plus question words and common auxiliaries.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with what which who whom whose when where why how do does did done has have had can could "
    "should would may might must shall am were been being i me my we our you your he him his she her its about "
    "tell explain mean means".split()
)


def fuse(rankings: Sequence[Sequence[SearchResult]], k: int, constant: int = RRF_K) -> list[SearchResult]:
    """The ``k`` best documents of several rankings by reciprocal rank fusion (score: the summed 1/(constant+rank)).

    Only ranks count, so cosine similarities and BM25 scores never need to share a scale. Ties keep the order of
    first appearance (the first ranking wins).
    """
    scores: dict[str, float] = {}
    documents: dict[str, Document] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, 1):
            scores[hit.document.id] = scores.get(hit.document.id, 0.0) + 1.0 / (constant + rank)
            documents.setdefault(hit.document.id, hit.document)
    best = sorted(scores, key=lambda i: -scores[i])[:k]  # sorted() is stable: ties keep first appearance
    return [SearchResult(document=documents[i], score=scores[i]) for i in best]


def words(text: str) -> list[str]:
    """The lowercased words of ``text`` (identifiers and codes such as ``e_conn-42`` stay whole)."""
    return [word.lower() for word in WORD.findall(text)]


def query_words(query: str) -> list[str]:
    """The words of a keyword query, once each, without STOP_WORDS (all of them when the query has nothing else)."""
    found = list(dict.fromkeys(words(query)))
    kept = [word for word in found if word not in STOP_WORDS]
    return kept or found


def bm25(
    query: str, documents: Sequence[Document], total: int | None = None, k1: float = 1.2, b: float = 0.75
) -> list[SearchResult]:
    """``documents`` that hold a word of ``query``, ranked by Okapi BM25, best first.

    Document frequencies come from ``documents`` themselves; ``total`` (the size of the whole collection, when
    ``documents`` are the candidates that matched) sharpens the idf. For stores without their own keyword search.
    """
    terms = set(query_words(query))
    counted = [Counter(words(document.text)) for document in documents]
    if not terms or not counted:
        return []
    average = sum(sum(c.values()) for c in counted) / len(counted) or 1.0
    population = max(total or 0, len(counted))
    frequency = {term: sum(term in c for c in counted) for term in terms}
    idf = {t: math.log(1 + (population - n + 0.5) / (n + 0.5)) for t, n in frequency.items() if n}
    hits = []
    for document, counts in zip(documents, counted):
        length = sum(counts.values())
        score = sum(
            idf[t] * counts[t] * (k1 + 1) / (counts[t] + k1 * (1 - b + b * length / average))
            for t in idf
            if counts[t]
        )
        if score > 0:
            hits.append(SearchResult(document=document, score=score))
    return sorted(hits, key=lambda hit: -hit.score)


__all__ = ["RRF_K", "STOP_WORDS", "WORD", "bm25", "fuse", "query_words", "words"]
