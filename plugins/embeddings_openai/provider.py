"""embeddings/openai: the /embeddings endpoint of OpenAI or any compatible server, in batches."""

from __future__ import annotations

import asyncio

from pepperpy.embeddings import EmbeddingProvider, Vector
from pydantic import Field, SecretStr

from pepperpy.errors import ConfigError, ProviderError
from pepperpy.http import RemoteProvider, bearer


class OpenAIEmbeddingProvider(RemoteProvider, EmbeddingProvider):
    """Sends texts in batches of ``batch_size``, up to ``concurrency`` batches at once, order kept."""

    model: str = Field(description="the model to use")
    batch_size: int = 128
    concurrency: int = 4
    dimensions: int | None = None

    def headers(self) -> dict[str, str | SecretStr]:
        return {"Authorization": bearer(self.api_key)}  # a SecretStr until httpx sends it

    async def embed(self, texts: list[str]) -> list[Vector]:
        if any(not text.strip() for text in texts):
            raise ConfigError(f"{self.plugin_id}: cannot embed an empty text; drop empty strings first")
        endpoint = self.endpoint
        gate = asyncio.Semaphore(self.concurrency)

        async def one_batch(batch: list[str]) -> list[Vector]:
            body: dict = {"model": self.model, "input": batch}
            if self.dimensions:
                body["dimensions"] = self.dimensions
            async with gate:
                answer = await endpoint.post("embeddings", body)
            try:
                rows = sorted(answer["data"], key=lambda row: row["index"])
                vectors = [row["embedding"] for row in rows]
            except (KeyError, TypeError) as exc:
                raise ProviderError(f"{self.plugin_id}: unexpected embeddings answer: {str(answer)[:200]}") from exc
            if len(vectors) != len(batch):
                raise ProviderError(f"{self.plugin_id}: sent {len(batch)} texts, got {len(vectors)} vectors back")
            return vectors

        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        results = await asyncio.gather(*(one_batch(batch) for batch in batches))
        return [vector for batch in results for vector in batch]
