"""embeddings/gemini: Gemini's embedContent (one text) and batchEmbedContents (up to 100 a request) over httpx."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field, SecretStr

from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ConfigError, ProviderError
from pepperpy.http import RemoteProvider
from pepperpy.plugins import first_key, versioned_url

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")  # as llm/gemini
TaskType = Literal[
    "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING",
    "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
]


class GeminiEmbeddingProvider(RemoteProvider, EmbeddingProvider):
    """Sends texts in batches of ``batch_size`` (the API takes 100 at most), up to ``concurrency`` at once, order kept."""

    model: str = Field(description="the model to use, e.g. gemini-embedding-001")
    batch_size: int = Field(100, gt=0, le=100)
    concurrency: int = 4
    dimensions: int | None = None  # outputDimensionality: a shorter vector (gemini-embedding-001: 3072 by default)
    task_type: TaskType | None = None  # e.g. RETRIEVAL_DOCUMENT for stored texts, RETRIEVAL_QUERY for questions

    def __init__(self, **config: Any):
        if config.get("api_key") is None:  # GEMINI_API_KEY (plugin.json's) was read already; GOOGLE_API_KEY next
            config["api_key"] = first_key(*KEY_VARIABLES)
        super().__init__(**config)
        # Like Google's SDK, a base URL without the API version (GOOGLE_GEMINI_BASE_URL=https://host) means its /v1beta.
        self.base_url = versioned_url(self.base_url, "v1beta")

    def headers(self) -> dict[str, str | SecretStr]:
        return {"x-goog-api-key": self.api_key}  # a header, never the URL; a SecretStr until httpx sends it

    def _request(self, model: str, text: str) -> dict[str, Any]:
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if self.task_type:
            request["taskType"] = self.task_type
        if self.dimensions:
            request["outputDimensionality"] = self.dimensions
        return request

    async def embed(self, texts: list[str]) -> list[Vector]:
        if any(not text.strip() for text in texts):
            raise ConfigError(f"{self.plugin_id}: cannot embed an empty text; drop empty strings first")
        endpoint = self.endpoint
        model = self.model if self.model.startswith("models/") else f"models/{self.model}"
        gate = asyncio.Semaphore(self.concurrency)

        async def one_batch(batch: list[str]) -> list[Vector]:
            async with gate:
                if len(batch) == 1:
                    answer = await endpoint.post(f"{model}:embedContent", self._request(model, batch[0]))
                    rows = [answer.get("embedding")] if isinstance(answer, dict) else None
                else:
                    body = {"requests": [self._request(model, text) for text in batch]}
                    answer = await endpoint.post(f"{model}:batchEmbedContents", body)
                    rows = answer.get("embeddings") if isinstance(answer, dict) else None
            try:
                vectors = [row["values"] for row in rows or []]
            except (KeyError, TypeError) as exc:
                raise ProviderError(f"{self.plugin_id}: unexpected embeddings answer: {str(answer)[:200]}") from exc
            if len(vectors) != len(batch):
                raise ProviderError(f"{self.plugin_id}: sent {len(batch)} texts, got {len(vectors)} vectors back")
            return vectors

        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        results = await asyncio.gather(*(one_batch(batch) for batch in batches))
        return [vector for batch in results for vector in batch]
