"""embeddings/gemini on the scripted server (Gemini's service cannot run here; the replies follow the documented
embedContent / batchEmbedContents format), with request bodies checked against google-genai's types."""

from __future__ import annotations

import json

import pytest
from google.genai import types

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, ProviderError
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
SECRET = "test-gemini-key-not-real-0123456789"
TEXTS = ["The cat sleeps.", "Paris is in France.", "Stocks fell today.", "A kitten naps.", "Rain is coming."]


def vector(text: str) -> list[float]:
    return [float(TEXTS.index(text)), 0.5, -0.5]


def conforms(request: dict) -> None:
    """One embed request: model, content, and only the config fields the API has."""
    assert request["model"] == "models/gemini-embedding-001"
    types.Content.model_validate_json(json.dumps(request["content"]))
    types.EmbedContentConfig.model_validate_json(json.dumps({k: v for k, v in request.items() if k not in ("model", "content")}))


def gemini(remote_manager, scripted, **config) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_embeddings(
        "gemini", base_url=scripted.base_url, api_key=SECRET, max_retries=0, **config
    )


async def test_batches_and_a_single_text_keep_their_order(remote_manager, scripted):
    scripted.reset(
        Reply(json={"embeddings": [{"values": vector(t)} for t in TEXTS[0:2]]}),
        Reply(json={"embeddings": [{"values": vector(t)} for t in TEXTS[2:4]]}),
        Reply(json={"embedding": {"values": vector(TEXTS[4])}}),
    )
    async with gemini(remote_manager, scripted, batch_size=2, concurrency=1, dimensions=3, task_type="RETRIEVAL_DOCUMENT") as pepper:
        vectors = await pepper.provider("embeddings").embed(TEXTS)
    assert vectors == [vector(t) for t in TEXTS]
    paths = [r.path for r in scripted.requests]
    assert paths == ["/v1/models/gemini-embedding-001:batchEmbedContents"] * 2 + ["/v1/models/gemini-embedding-001:embedContent"]
    assert all(r.headers["x-goog-api-key"] == SECRET and SECRET not in r.path for r in scripted.requests)
    batch = scripted.requests[0].json()
    assert [r["content"]["parts"][0]["text"] for r in batch["requests"]] == TEXTS[0:2]
    for request in [*batch["requests"], scripted.requests[2].json()]:
        conforms(request)
        assert (request["taskType"], request["outputDimensionality"]) == ("RETRIEVAL_DOCUMENT", 3)


async def test_a_short_answer_and_a_service_error_are_provider_errors(remote_manager, scripted):
    scripted.reset(
        Reply(json={"embeddings": [{"values": [1.0]}]}),
        Reply(status=400, json={"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}}),
    )
    async with gemini(remote_manager, scripted) as pepper:
        with pytest.raises(ProviderError, match="sent 2 texts, got 1 vectors back"):
            await pepper.provider("embeddings").embed(TEXTS[:2])
        with pytest.raises(ProviderError, match="HTTP 400 .*Request contains an invalid argument"):
            await pepper.provider("embeddings").embed(TEXTS[:2])
        with pytest.raises(ConfigError, match="cannot embed an empty text"):
            await pepper.provider("embeddings").embed(["", "x"])

