"""``pepper.usage``: prompt and completion tokens per provider and model, cache hits counted apart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pepperpy.hooks import Call
from pepperpy.llm import GenerationChunk, Usage


@dataclass
class UsageTotals:
    """Calls and tokens of one provider and model (``cached_*``: answers a cache served, which cost nothing)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, usage: Usage | None, cached: bool) -> None:
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        if cached:
            self.cached_calls += 1
            self.cached_prompt_tokens += prompt
            self.cached_completion_tokens += completion
        else:
            self.calls += 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion


class UsageReport(Mapping[tuple[str, str], UsageTotals]):
    """``{(provider, model): UsageTotals}`` for one facade; ``.total`` sums them."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], UsageTotals] = {}

    def __getitem__(self, key: tuple[str, str]) -> UsageTotals:
        return self._totals[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._totals)

    def __len__(self) -> int:
        return len(self._totals)

    @property
    def total(self) -> UsageTotals:
        total = UsageTotals()
        for totals in self._totals.values():
            for field in fields(UsageTotals):
                setattr(total, field.name, getattr(total, field.name) + getattr(totals, field.name))
        return total

    def record(self, provider: str, model: str | None, usage: Usage | None, cached: bool) -> None:
        key = (provider, model or "?")
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = UsageTotals()
        totals.add(usage, cached)

    def __repr__(self) -> str:
        return f"UsageReport({dict(self._totals)!r})"

    def __str__(self) -> str:
        lines = [f"{'provider':<20} {'model':<28} {'calls':>6} {'prompt':>8} {'completion':>10} {'cached':>7}"]
        for (provider, model), t in sorted(self._totals.items()):
            lines.append(
                f"{provider:<20} {model[:28]:<28} {t.calls:>6} {t.prompt_tokens:>8} {t.completion_tokens:>10} {t.cached_calls:>7}"
            )
        return "\n".join(lines)


def _served_by(call: Call, metadata: Mapping[str, Any]) -> str:
    fallback = metadata.get("fallback")
    if fallback:
        return f"llm/{fallback['served_by']}"
    return call.provider


class UsageMeter:
    """Adds every answer's usage to a ``UsageReport``; the facade applies it outside every hook.

    Not a hook itself: wrapping it as one (``pepperpy.hooks.compose``) would add a layer to every
    streamed chunk of every call, also when no hook is configured.
    """

    def __init__(self) -> None:
        self.report = UsageReport()

    def count(self, call: Call, outcome: Any) -> Any:
        """``outcome`` (the answer, or the stream of ``call``) after counting its usage (a stream's: at its end)."""
        if call.stream:
            return self._counted_stream(call, outcome)
        metadata = outcome.metadata
        model = call.model or metadata.get("model")  # the model asked for; the answer's own name otherwise
        self.report.record(_served_by(call, metadata), model, outcome.usage, metadata.get("cache") == "hit")
        return outcome

    async def _counted_stream(self, call: Call, chunks: Any) -> AsyncIterator[GenerationChunk]:
        from pepperpy.hooks import closing_stream

        usage: Usage | None = None
        metadata: dict[str, Any] = {}
        async with closing_stream(chunks) as stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.metadata:
                    metadata.update(chunk.metadata)
                yield chunk
        model = call.model or metadata.get("model")
        self.report.record(_served_by(call, metadata), model, usage, metadata.get("cache") == "hit")


__all__ = ["UsageMeter", "UsageReport", "UsageTotals"]
