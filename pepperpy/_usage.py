"""``pepper.usage``: prompt and completion tokens per provider and model, cache hits counted apart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pepperpy.hooks import Call
from pepperpy.llm import GenerationChunk, Usage

if TYPE_CHECKING:
    from decimal import Decimal


FOLD_AT = 1000  # calls kept unpriced at most: then they are priced (cost is lazy, memory is not unbounded)


@dataclass
class UsageTotals:
    """Calls and tokens of one provider and model. ``cached_*``: answers the response cache served, which cost
    nothing; ``cache_read_tokens``/``cache_write_tokens``: prompt tokens the service read from (wrote to) its own
    prompt cache, among ``prompt_tokens``. ``cost``: USD, priced when read."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    _pending: list[Usage] = field(default_factory=list, repr=False)  # calls not priced yet
    _cost: Decimal | None = field(default=None, repr=False)
    _unpriced: int = field(default=0, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> Decimal | None:
        """USD of the calls made (not of answers the cache served), priced by genai-prices when read; None when
        no call could be priced (``unpriced_calls`` counts those that could not)."""
        self._fold()
        return self._cost

    @property
    def unpriced_calls(self) -> int:
        """Calls whose price is unknown: a local or unknown service or model, no usage, or genai-prices missing."""
        self._fold()
        return self._unpriced

    def add(self, usage: Usage | None, cached: bool) -> None:
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        if cached:
            self.cached_calls += 1
            self.cached_prompt_tokens += prompt
            self.cached_completion_tokens += completion
            return
        self.calls += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        if usage is not None:
            self.cache_read_tokens += usage.cache_read_tokens or 0
            self.cache_write_tokens += usage.cache_write_tokens or 0
            self.reasoning_tokens += usage.reasoning_tokens or 0
        if usage is None or usage.service is None:  # nothing to price: not kept
            self._unpriced += 1
            return
        self._pending.append(usage)
        if len(self._pending) >= FOLD_AT:
            self._fold()

    def merge(self, other: UsageTotals) -> None:
        """Add ``other``'s counts and calls to these."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self._pending += other._pending
        self._unpriced += other._unpriced
        if other._cost is not None:
            self._cost = other._cost if self._cost is None else self._cost + other._cost

    def _fold(self) -> None:
        for usage in self._pending:
            cost = usage.cost
            if cost is None:
                self._unpriced += 1
            else:
                self._cost = cost if self._cost is None else self._cost + cost
        self._pending.clear()


_COUNTS = [f.name for f in fields(UsageTotals) if not f.name.startswith("_")]


class UsageReport(Mapping[tuple[str, str], UsageTotals]):
    """``{(provider, model): UsageTotals}`` for one facade; ``.total`` sums them."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], UsageTotals] = {}

    def __getitem__(self, key: tuple[str, str]) -> UsageTotals:
        try:
            return self._totals[key]
        except KeyError:
            keys = ", ".join(map(repr, self._totals)) or "none yet"
            raise KeyError(f"no calls of {key!r}; the keys are (plugin id, model): {keys}") from None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._totals)

    def __len__(self) -> int:
        return len(self._totals)

    @property
    def total(self) -> UsageTotals:
        total = UsageTotals()
        for totals in self._totals.values():
            total.merge(totals)
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
        lines = [f"{'provider':<20} {'model':<28} {'calls':>6} {'prompt':>8} {'completion':>10} {'cached':>7} {'USD':>10}"]
        for (provider, model), t in sorted(self._totals.items()):
            cost = "-" if t.cost is None else f"{t.cost:.6f}"
            lines.append(
                f"{provider:<20} {model[:28]:<28} {t.calls:>6} {t.prompt_tokens:>8} {t.completion_tokens:>10} {t.cached_calls:>7} {cost:>10}"
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
