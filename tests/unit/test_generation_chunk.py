"""GenerationChunk.from_text: the unvalidated text chunk a stream is mostly made of is the same chunk
``GenerationChunk(content=...)`` builds, in every way a user or a hook can see (a pydantic upgrade that changes
how a model instance is laid out fails here, not in a user's stream)."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from pepperpy.llm import GenerationChunk, ToolCall


def test_a_text_chunk_equals_the_validated_one():
    built, validated = GenerationChunk.from_text("tok "), GenerationChunk(content="tok ")
    assert built == validated
    assert repr(built) == repr(validated)
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set == {"content"}
    assert pickle.loads(pickle.dumps(built)) == validated


def test_each_text_chunk_has_its_own_lists_and_dicts():
    first, second = GenerationChunk.from_text("a"), GenerationChunk.from_text("b")
    first.tool_calls.append(ToolCall(id="1", name="f", arguments={}))
    first.metadata["model"] = "m"
    first.tool_results.append(first)  # any object: only whether the second sees it matters
    assert second.tool_calls == [] and second.metadata == {} and second.tool_results == []


def test_a_text_chunk_copies_and_takes_assignments_like_any_chunk():
    chunk = GenerationChunk.from_text("a")
    copied = chunk.model_copy(update={"finish_reason": "stop"})
    assert (copied.content, copied.finish_reason, chunk.finish_reason) == ("a", "stop", None)
    chunk.metadata = {"cache": "hit"}
    assert chunk.model_fields_set == {"content", "metadata"}


def test_anything_but_a_str_is_validated_as_the_constructor_would():
    with pytest.raises(ValidationError, match="content"):
        GenerationChunk.from_text(["not", "text"])  # type: ignore[arg-type]
